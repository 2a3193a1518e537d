"""Command line: ``mixedmodels fit | anova | compare | rlrt | emmeans | report | why | select | power | fit-many |
gwas | grm | datasets``.

``fit DATA --formula F [--ml] [--json] [--ddf M] [--ci M]``; ``anova`` prints the Type III table;
``compare DATA --formula F0 --formula F1 … [--name N0 --name N1 …]`` tests nested models (named by
their formulas unless named); ``rlrt`` the exact restricted LRT; ``fit-many DATA --formula "~ x + (1 | g)"
--responses "gene_*"`` one model for many responses (:mod:`mixedmodels.many`); ``gwas`` and ``grm``
(:mod:`.genetics.cli`) a genome-wide association scan and a genomic relationship matrix from PLINK genotypes.

Errors are reported as one line on standard error with exit code 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence

from .exceptions import MixedModelsError
from .protocols import MixedFit
from .report.serialize import json_number


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        sys.stderr.write(f"mixedmodels: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mixedmodels", description="Linear mixed-effects models with lme4 formulas.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    fit = sub.add_parser("fit", help="fit a linear mixed model and print its summary")
    _data_options(fit)
    _model_options(fit)
    fit.add_argument("--formula", "-f", required=True, help="lme4 formula, e.g. 'Reaction ~ Days + (Days | Subject)'")
    fit.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    fit.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    fit.add_argument("--ddf", default="satterthwaite", choices=["satterthwaite", "kenward-roger", "kenward-roger-linear", "none"],
                     help="denominator df for the t-tests (default: satterthwaite, as lmerTest)")
    fit.add_argument("--ci", choices=["wald", "profile", "boot"], help="add confidence intervals by this method")
    fit.add_argument("--level", type=float, default=0.95, help="confidence level (default 0.95)")
    fit.add_argument("--save", metavar="FILE", help="also save the fit as JSON (.json or .json.gz) for mixedmodels.load")
    fit.add_argument("--family", choices=["binomial", "poisson", "nbinom2"],
                     help="fit a generalised linear mixed model (lme4's glmer; nbinom2 as glmmTMB's)")
    fit.add_argument("--link", choices=["logit", "probit", "cloglog", "log"], help="link function (default: the family's canonical)")
    fit.add_argument("--nagq", type=int, default=1,
                     help="adaptive Gauss-Hermite points (glmer's nAGQ; 1 = Laplace, 0 = the fast first stage only)")
    fit.add_argument("--dask", action="store_true",
                     help="fit on Dask: DATA is Parquet files ('data/*.parquet', a directory) or CSVs, read and reduced by partition")
    fit.add_argument("--scheduler", metavar="ADDRESS", help="with --dask: the Dask scheduler of a cluster, e.g. tcp://host:8786")
    _sim_options(fit, nsim=500)
    fit.add_argument("--debug", action="store_true", help="show tracebacks")

    anova = sub.add_parser("anova", help="Type III ANOVA table of the fixed effects with F-tests")
    _data_options(anova)
    _model_options(anova)
    anova.add_argument("--formula", "-f", required=True, help="lme4 formula")
    anova.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    anova.add_argument("--ddf", default="satterthwaite", choices=["satterthwaite", "kenward-roger", "kenward-roger-linear"], help="denominator df method")
    anova.add_argument("--json", action="store_true", help="print JSON")
    anova.add_argument("--debug", action="store_true", help="show tracebacks")

    comp = sub.add_parser("compare", help="compare nested models: AIC, BIC, likelihood-ratio tests")
    _data_options(comp)
    _model_options(comp)
    comp.add_argument("--formula", "-f", action="append", required=True,
                      help="a model formula (give two or more); a formula without (…|…) terms is a linear model")
    comp.add_argument("--name", "-n", action="append", metavar="NAME",
                      help="a name for each model, in the order of --formula (default: the formulas)")
    comp.add_argument("--ml", action="store_true", help="fit by maximum likelihood")
    comp.add_argument("--refit", choices=["auto", "always", "never"], default="auto",
                      help="refit REML fits by ML: when fixed effects differ (auto, default: models differing "
                           "only in random effects are compared by REML), always (lme4's anova), never")
    comp.add_argument("--bootstrap", type=int, metavar="N", default=0,
                      help="also a parametric-bootstrap LRT with N simulations for each consecutive pair")
    _sim_options(comp, nsim=None)
    comp.add_argument("--json", action="store_true", help="print JSON")
    comp.add_argument("--debug", action="store_true", help="show tracebacks")

    rl = sub.add_parser("rlrt", help="exact restricted LRT for a model's single variance component (RLRsim's exactRLRT)")
    _data_options(rl)
    rl.add_argument("--formula", "-f", required=True, help="lme4 formula with one random-effects term, e.g. 'y ~ x + (1|g)'")
    _sim_options(rl, nsim=10000)
    rl.add_argument("--json", action="store_true", help="print JSON")
    rl.add_argument("--debug", action="store_true", help="show tracebacks")

    emm = sub.add_parser("emmeans", help="least-squares (estimated marginal) means and their contrasts, as R's emmeans")
    _data_options(emm)
    _model_options(emm, weights=False)
    emm.add_argument("--formula", "-f", required=True, help="lme4 formula")
    emm.add_argument("--specs", "-s", required=True, help="factors whose means are wanted, by-factors after '|', e.g. 'arm | visit'")
    emm.add_argument("--contrast", "-c", choices=["pairwise", "revpairwise", "trt.vs.ctrl"], help="also these contrasts within each by-group")
    emm.add_argument("--adjust", choices=["tukey", "dunnettx", "sidak", "bonferroni", "holm", "hochberg", "BH", "BY", "none"],
                     help="p-value adjustment (default as emmeans: tukey for pairwise, dunnettx for trt.vs.ctrl)")
    emm.add_argument("--ddf", choices=["kenward-roger", "kenward-roger-linear", "satterthwaite", "asymptotic"],
                     help="df and SEs (default kenward-roger, as emmeans; satterthwaite for --ml fits)")
    emm.add_argument("--weights", default="equal", choices=["equal", "proportional", "outer", "cells", "flat"],
                     help="weights when averaging over other factors (default equal)")
    emm.add_argument("--level", type=float, default=0.95, help="confidence level (default 0.95)")
    emm.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    emm.add_argument("--json", action="store_true", help="print JSON")
    emm.add_argument("--debug", action="store_true", help="show tracebacks")

    rep = sub.add_parser("report", help="write a self-contained HTML report of a fitted model")
    _data_options(rep)
    _model_options(rep)
    rep.add_argument("--formula", "-f", required=True, help="lme4 formula")
    rep.add_argument("--output", "-o", required=True, help="HTML file to write")
    rep.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    rep.add_argument("--ddf", default="satterthwaite", choices=["satterthwaite", "kenward-roger", "kenward-roger-linear", "none"], help="denominator df method")
    rep.add_argument("--profile", action="store_true", help="add profile-likelihood intervals and zeta plots")
    rep.add_argument("--debug", action="store_true", help="show tracebacks")

    why = sub.add_parser("why", help="the naive analyses (OLS, t-tests, slopes, RM-ANOVA, correlation) beside the mixed model")
    _data_options(why)
    _model_options(why)
    why.add_argument("--formula", "-f", required=True, help="lme4 formula, e.g. 'Reaction ~ Days + (Days | Subject)'")
    why.add_argument("--subject", help="subject column (default: the grouping factor of the random effects or --residual)")
    why.add_argument("--time", help="time or visit column (default: --residual's time, else the subject's random slope)")
    why.add_argument("--json", action="store_true", help="print JSON")
    why.add_argument("--report", metavar="FILE", help="also write an HTML page with the analyses and the sentences")
    why.add_argument("--debug", action="store_true", help="show tracebacks")

    from .cli_select import add_parsers

    add_parsers(sub)  # select, power

    from .many.cli import add_parser as add_fit_many

    add_fit_many(sub, _data_options)

    from .genetics.cli import add_parsers as add_genetics

    add_genetics(sub)  # gwas, grm

    data = sub.add_parser("datasets", help="list the bundled datasets")
    data.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return parser


def _data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="?", help="CSV, TSV, Parquet or Feather file, or a bundled dataset name (e.g. sleepstudy)")
    parser.add_argument("--sql", help="read the data with this query from --db (read-only)")
    parser.add_argument("--db", help="DuckDB or SQLite database file for --sql")


def _read(args: argparse.Namespace):
    """The data frame and its name, from DATA or from --sql/--db (read once per command)."""
    from .exceptions import DataError
    from .io import read_data, read_sql

    if getattr(args, "_frame", None) is None:
        if args.sql or args.db:
            if not (args.sql and args.db):
                raise DataError("--sql and --db go together: --sql 'select ...' --db FILE")
            if args.data:
                raise DataError("give either DATA or --sql/--db, not both")
            args._frame = read_sql(args.sql, args.db)
        elif args.data:
            args._frame = read_data(args.data)
        else:
            raise DataError("no data: give a file or bundled dataset name, or --sql 'select ...' --db FILE")
    return args._frame


def _model_options(parser: argparse.ArgumentParser, weights: bool = True) -> None:
    parser.add_argument("--residual", metavar="SPEC",
                        help="residual covariance within subjects, e.g. 'us(visit | subject)', 'ar1(visit | arm / subject)', "
                             "'car1(time | subject)' (structures: us toep toeph ar1 ar1h cs csh ad adh diag car1)")
    parser.add_argument("--variance", metavar="VSPEC",
                        help="variance function: ident(FACTOR), power() (of the fitted values), power(COL) or exp(COL) (nlme's varIdent, varPower, varExp)")
    if weights:
        parser.add_argument("--weights", dest="prior_weights", metavar="COL",
                            help="column of prior (precision) weights, as lme4's weights=")


def _sim_options(parser: argparse.ArgumentParser, nsim: int | None) -> None:
    if nsim is not None:
        parser.add_argument("--nsim", type=int, default=nsim, help=f"simulations for bootstrap/RLRT (default {nsim})")
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    parser.add_argument("--jobs", type=int, default=1, help="processes for bootstrap refits (-1: all cores)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _load_fit(args: argparse.Namespace, formula: str, reml: bool):
    """Read the data and fit the model (a linear model when the formula has no random effects)."""
    from .exceptions import ModelError
    from .formula.parse import parse_formula
    from .linear import LinearModelResults
    from .model import LinearMixedModel

    frame, name = _read(args)
    with warnings.catch_warnings():
        # warnings are reported in the summary / JSON rather than on stderr
        warnings.simplefilter("ignore")
        residual = getattr(args, "residual", None)
        variance = getattr(args, "variance", None)
        weights = getattr(args, "prior_weights", None)
        if not parse_formula(formula).random and residual is None and variance is None:
            if weights is not None:
                raise ModelError("--weights needs a mixed model (random effects or --residual)")
            return LinearModelResults.from_formula(formula, frame, reml=reml, data_name=name), frame, name
        model = LinearMixedModel.from_formula(
            formula, frame, reml=reml, data_name=name, residual=residual, variance=variance, weights=weights
        )
        return model.fit(), frame, name


def _progress(args: argparse.Namespace) -> bool | None:
    return False if args.quiet else None


def _dump(obj) -> None:
    sys.stdout.write(json.dumps(obj, allow_nan=False) + "\n")


def _fit_glmm(args: argparse.Namespace) -> int:
    """``fit --family``: a GLMM (z-tests; no df, intervals or saving yet)."""
    from .exceptions import ModelError
    from .glmm import glmer

    for flag, given in (("--ci", args.ci), ("--save", args.save), ("--residual", getattr(args, "residual", None)),
                        ("--variance", getattr(args, "variance", None)), ("--ml", args.ml)):
        if given:
            raise ModelError(f"{flag} is not available with --family (GLMMs are fitted by maximum likelihood)")
    frame, name = _read(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reported in the summary / JSON
        result = glmer(args.formula, frame, family=args.family, link=args.link, nAGQ=args.nagq,
                       weights=getattr(args, "prior_weights", None), data_name=name)
    if args.json:
        _dump(result.to_dict())
    else:
        sys.stdout.write(str(result.summary()))
    return 0


def _fit(args: argparse.Namespace) -> int:
    from .exceptions import ModelError

    if args.family:
        if args.dask or args.scheduler:
            raise ModelError("--dask is not available with --family (GLMMs are fitted in memory)")
        return _fit_glmm(args)
    if args.link or args.nagq != 1:
        raise ModelError("--link and --nagq need --family")
    if args.dask or args.scheduler:
        from .scale.cli import dask_fit

        if args.sql or args.db:
            raise ModelError("--dask reads DATA files; --sql/--db are not available with it")
        result = dask_fit(args.data, args.formula, reml=not args.ml, scheduler=args.scheduler, residual=args.residual,
                          variance=args.variance, weights=args.prior_weights)
    else:
        result, _, _ = _load_fit(args, args.formula, not args.ml)
    if not isinstance(result, MixedFit):
        raise ModelError("the formula has no random-effects terms such as (1 | g)")
    ddf = None if args.ddf == "none" else args.ddf
    ci = None
    if args.ci:
        kw = {}
        if args.ci == "boot":
            kw = {"nsim": args.nsim, "seed": args.seed, "n_jobs": args.jobs, "progress": _progress(args)}
        elif args.ci == "profile":
            kw = {"progress": _progress(args)}
        ci = result.confint(args.ci, args.level, **kw)
    if args.save:
        result.save(args.save)
    if args.json:
        out = result.to_dict(ddf=ddf)
        if ci is not None:
            out["confint"] = [
                {"parameter": str(name), "lower": json_number(row.iloc[0]), "upper": json_number(row.iloc[1])} for name, row in ci.iterrows()
            ]
            out["confint_method"] = args.ci
            out["confint_level"] = args.level
        _dump(out)
    else:
        sys.stdout.write(str(result.summary(ddf=ddf)))
        if ci is not None:
            sys.stdout.write(f"\nConfidence intervals ({args.ci}):\n{ci.to_string()}\n")
    return 0


def _anova(args: argparse.Namespace) -> int:
    from .exceptions import ModelError

    result, _, _ = _load_fit(args, args.formula, not args.ml)
    if not isinstance(result, MixedFit):
        raise ModelError("the formula has no random-effects terms such as (1 | g)")
    table = result.anova(args.ddf)
    if args.json:
        _dump({"ddf_method": args.ddf, "terms": [
            {"term": str(t), "sum_sq": json_number(r["Sum Sq"]), "mean_sq": json_number(r["Mean Sq"]), "num_df": json_number(r["NumDF"]),
             "den_df": json_number(r["DenDF"]), "f_value": json_number(r["F value"]), "p_value": json_number(r["Pr(>F)"])}
            for t, r in table.iterrows()]})
    else:
        method = result.ddf_calculator(args.ddf).method
        sys.stdout.write(f"Type III Analysis of Variance Table with {method}'s method\n{table}\n")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .exceptions import ModelError
    from .inference.compare import bootstrap_lrt, compare

    if len(args.formula) < 2:
        raise ModelError("compare needs at least two --formula options")
    names = args.name if args.name else args.formula
    if len(names) != len(args.formula):
        raise ModelError(f"give one --name per --formula ({len(args.formula)} formulas, {len(names)} names)")
    fits = [_load_fit(args, f, not args.ml)[0] for f in args.formula]
    refit = {"auto": None, "always": True, "never": False}[args.refit]
    with warnings.catch_warnings(record=True) as caught:  # the ML refits' own warnings, one line each
        warnings.simplefilter("always")
        comp = compare(*fits, refit=refit, names=names)
    for w in caught:
        sys.stderr.write(f"mixedmodels: warning: {w.message}\n")
    boot = []
    if args.bootstrap:
        ms = comp.models
        boot = [
            bootstrap_lrt(ms[i], ms[i + 1], args.bootstrap, seed=args.seed, n_jobs=args.jobs, progress=_progress(args))
            for i in range(len(ms) - 1)
        ]
    if args.json:
        out = comp.to_dict()
        for test, b in zip(out["tests"], boot):
            test["bootstrap"] = b.to_dict()
        _dump(out)
    else:
        sys.stdout.write(str(comp))
        for i, b in enumerate(boot):
            sys.stdout.write(
                f"Parametric bootstrap LRT, {comp.names[i]} vs {comp.names[i + 1]}: stat = {b.statistic:.4g}, "
                f"p = {b.p_value:.4g} ({b.nsim_used} of {b.nsim} simulations)\n"
            )
    return 0


def _report(args: argparse.Namespace) -> int:
    from .exceptions import ModelError
    from .report.html import write_report

    result, _, _ = _load_fit(args, args.formula, not args.ml)
    if not isinstance(result, MixedFit):
        raise ModelError("the formula has no random-effects terms such as (1 | g)")
    write_report(result, args.output, ddf=None if args.ddf == "none" else args.ddf, profile=args.profile)
    sys.stderr.write(f"wrote {args.output}\n")
    return 0


def _rlrt(args: argparse.Namespace) -> int:
    from .exceptions import ModelError
    from .inference.rlrt import exact_rlrt

    result, _, _ = _load_fit(args, args.formula, True)
    if not isinstance(result, MixedFit):
        raise ModelError("the formula has no random-effects terms such as (1 | g)")
    if len(result.terms) != 1:
        raise ModelError(
            "rlrt from the command line tests a model with exactly one random-effects term; "
            "for several terms use mixedmodels.inference.rlrt.exact_rlrt(alt, null, single)"
        )
    res = exact_rlrt(result, nsim=args.nsim, seed=args.seed)
    if args.json:
        _dump(res.to_dict())
    else:
        sys.stdout.write(str(res) + "\n")
    return 0


def _emmeans(args: argparse.Namespace) -> int:
    from .exceptions import ModelError
    from .inference.emmeans import emmeans, format_contrasts
    from .inference.emmeans_grid import r_label

    result, _, _ = _load_fit(args, args.formula, not args.ml)
    if not isinstance(result, MixedFit):
        raise ModelError("the formula has no random-effects terms such as (1 | g)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        emm = emmeans(result, args.specs, ddf=args.ddf, weights=args.weights, level=args.level)
    for w in caught:
        sys.stderr.write(f"mixedmodels: warning: {w.message}\n")
    con = emm.contrasts(args.contrast, args.adjust) if args.contrast else None
    if args.json:
        factors = emm.specs + emm.by
        means = [
            {**{f: r_label(row[f]) for f in factors}, "emmean": json_number(row["emmean"]), "se": json_number(row["SE"]),
             "df": json_number(row["df"]), "lower": json_number(row["lower.CL"]), "upper": json_number(row["upper.CL"])}
            for _, row in emm.table.iterrows()
        ]
        contrasts = [] if con is None else [
            {"contrast": str(row["contrast"]), **{b: r_label(row[b]) for b in emm.by}, "estimate": json_number(row["estimate"]),
             "se": json_number(row["SE"]), "df": json_number(row["df"]), "t_ratio": json_number(row["t.ratio"]),
             "p_value": json_number(row["p.value"])}
            for _, row in con.iterrows()
        ]
        _dump({"emmeans": means, "contrasts": contrasts})
    else:
        sys.stdout.write(str(emm))
        if con is not None:
            sys.stdout.write("\n" + format_contrasts(con))
    return 0


def _why(args: argparse.Namespace) -> int:
    from .naive import why
    from .report.why import write_why_report

    frame, name = _read(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comp = why(args.formula, frame, subject=args.subject, time=args.time, residual=args.residual, variance=args.variance,
                   weights=args.prior_weights, data_name=name)
    if args.report:
        write_why_report(comp, args.report)
        sys.stderr.write(f"wrote {args.report}\n")
    if args.json:
        _dump(comp.to_dict())
    else:
        sys.stdout.write(str(comp))
    return 0


def _fit_many(args: argparse.Namespace) -> int:
    from .many.cli import run

    return run(args, _read)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mixedmodels`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        from .cli_select import run_power, run_select

        handler = {"fit": _fit, "anova": _anova, "compare": _compare, "rlrt": _rlrt, "report": _report, "emmeans": _emmeans,
                   "why": _why, "select": run_select, "power": run_power,
                   "fit-many": _fit_many}.get(args.command)
        if args.command in ("gwas", "grm"):
            from .genetics import cli as genetics_cli

            handler = genetics_cli.run_gwas if args.command == "gwas" else genetics_cli.run_grm
        if handler is not None:
            return handler(args)
        from .datasets import list_datasets

        sys.stdout.write("\n".join(list_datasets()) + "\n")
        return 0
    except MixedModelsError as exc:
        if args.debug:
            raise
        sys.stderr.write(f"mixedmodels: error: {exc}\n")
        return 2
    except Exception as exc:  # noqa: BLE001 - never a traceback for the user
        if args.debug:
            raise
        sys.stderr.write(f"mixedmodels: error: unexpected {type(exc).__name__}: {exc}\n")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
