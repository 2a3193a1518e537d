"""Command-line subcommands ``select`` (model choice) and ``power`` (power by simulation).

``select DATA --fixed F --random R1 --random R2 … [--residual S …]`` ranks candidate structures;
``select DATA --formula F --ranova | --step | --allfit`` runs lmerTest's ``ranova``/``step`` or
lme4's ``allFit`` on one model. ``power DATA --formula F --effect X [--value V] [--along G --sizes
…]`` estimates power by simulation. Both print a table, or one JSON object with ``--json``.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from .exceptions import ModelError


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the ``select`` and ``power`` subcommands to the main parser."""
    from .cli import _data_options, _sim_options

    sel = sub.add_parser("select", help="choose random-effects/residual structures (AIC, AICc, BIC, LRTs); ranova, step, allfit")
    _data_options(sel)
    sel.add_argument("--fixed", action="append", help="fixed part with the response, e.g. 'Reaction ~ Days' (candidates mode); repeat to compare several")
    sel.add_argument("--random", "-r", action="append", metavar="TERMS",
                     help="a candidate random-effects part, e.g. '(Days | Subject)'; 'none' for no random effects; repeat")
    sel.add_argument("--residual", action="append", metavar="SPEC",
                     help="a residual structure crossed with every --random candidate ('none': iid); repeat. "
                          "With --formula: the model's residual structure")
    sel.add_argument("--formula", "-f", help="one model for --ranova, --step or --allfit")
    mode = sel.add_mutually_exclusive_group()
    mode.add_argument("--ranova", action="store_true", help="LRTs for reducing each random-effects term (lmerTest's ranova)")
    mode.add_argument("--step", action="store_true", help="backward elimination of random then fixed terms (lmerTest's step)")
    mode.add_argument("--allfit", action="store_true", help="refit with every optimizer and show the spread (lme4's allFit)")
    sel.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    sel.add_argument("--criterion", choices=["AIC", "AICc", "BIC"], default="AIC", help="order of the candidates (default AIC)")
    sel.add_argument("--ddf", choices=["satterthwaite", "kenward-roger"], default="satterthwaite", help="df of step's F-tests")
    sel.add_argument("--alpha-random", type=float, default=0.1, help="step: eliminate random terms with p above this (0.1)")
    sel.add_argument("--alpha-fixed", type=float, default=0.05, help="step: eliminate fixed terms with p above this (0.05)")
    sel.add_argument("--keep", action="append", default=[], metavar="TERM", help="step: a fixed term never eliminated; repeat")
    sel.add_argument("--json", action="store_true", help="print JSON")
    sel.add_argument("--debug", action="store_true", help="show tracebacks")

    pw = sub.add_parser("power", help="power to detect a fixed effect by simulation, per sample size (simr)")
    _data_options(pw)
    pw.add_argument("--formula", "-f", required=True, help="lme4 formula of the model simulated from")
    pw.add_argument("--effect", "-e", required=True, help="the coefficient or fixed term tested, e.g. Days")
    pw.add_argument("--value", help="its value(s) in the simulations, comma-separated for several coefficients (default: fitted)")
    pw.add_argument("--along", help="column whose first k levels make a sample of size k (e.g. Subject)")
    pw.add_argument("--sizes", help="numbers of levels of --along, comma-separated (beyond the data's: the design is extended)")
    pw.add_argument("--test", choices=["kr", "satterthwaite", "lr", "z"], help="default: kr (lr for a factor; satterthwaite with --ml)")
    pw.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    pw.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    pw.add_argument("--plot", metavar="FILE", help="also save the power curve (PNG, PDF or SVG)")
    _sim_options(pw, nsim=1000)
    pw.add_argument("--json", action="store_true", help="print JSON")
    pw.add_argument("--debug", action="store_true", help="show tracebacks")


def _one_residual(args: argparse.Namespace) -> str | None:
    res = [r for r in (args.residual or []) if r.lower() != "none"]
    if len(res) > 1:
        raise ModelError("with --formula give at most one --residual")
    return res[0] if res else None


def _single_fit(args: argparse.Namespace):
    from .cli import _read
    from .model import LinearMixedModel

    frame, name = _read(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LinearMixedModel.from_formula(args.formula, frame, reml=not args.ml, data_name=name, residual=_one_residual(args))
        return model.fit(warn=False)


def run_select(args: argparse.Namespace) -> int:
    """``mixedmodels select``."""
    from .cli import _dump, _read

    if args.ranova or args.step or args.allfit:
        if not args.formula or args.fixed or args.random:
            raise ModelError("--ranova, --step and --allfit take one --formula (not --fixed/--random)")
        fit = _single_fit(args)
        if args.ranova:
            from .inference.ranova import ranova

            out = ranova(fit)
        elif args.step:
            from .inference.step import step

            out = step(fit, args.ddf, alpha_random=args.alpha_random, alpha_fixed=args.alpha_fixed, keep=args.keep)
        else:
            from .inference.allfit import allfit

            out = allfit(fit)
    else:
        from .inference.select import select

        if args.formula:
            raise ModelError("--formula goes with --ranova, --step or --allfit; candidates take --fixed and --random")
        if not args.fixed or not args.random:
            raise ModelError("give --fixed 'y ~ x' and two or more --random candidates (or --formula with --ranova/--step/--allfit)")
        frame, name = _read(args)
        random = [None if r.strip().lower() == "none" else r for r in args.random]
        residual = None if not args.residual else [None if r.lower() == "none" else r for r in args.residual]
        fixed = args.fixed if len(args.fixed) > 1 else args.fixed[0]
        out = select(frame, fixed, random, residual=residual, REML=not args.ml, criterion=args.criterion, data_name=name)
    if args.json:
        _dump(out.to_dict())
    else:
        sys.stdout.write(str(out))
    return 0


def _numbers(text: str | None, kind: type, what: str) -> list | None:
    if text is None:
        return None
    try:
        return [kind(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise ModelError(f"{what} must be comma-separated numbers, got {text!r}") from None


def run_power(args: argparse.Namespace) -> int:
    """``mixedmodels power``."""
    from .cli import _dump, _progress
    from .inference.power import power

    args.residual = None
    fit = _single_fit(args)
    value = _numbers(args.value, float, "--value")
    if value is not None and len(value) == 1:
        value = value[0]
    curve = power(fit, args.effect, value, nsim=args.nsim, along=args.along, sizes=_numbers(args.sizes, int, "--sizes"),
                  test=args.test, alpha=args.alpha, seed=args.seed, n_jobs=args.jobs, progress=_progress(args))
    if args.plot:
        curve.plot().savefig(args.plot)
    if args.json:
        _dump(curve.to_dict())
    else:
        sys.stdout.write(str(curve))
    return 0
