"""Models like a fit with another formula: the reduced models of ``ranova``, ``step`` and ``select``.

A reduced model is fitted to the rows the fit used (its design's frame), with the fit's criterion,
contrasts, prior weights, offset, residual structure, variance function and optimizer settings, so
that its likelihood is comparable with the fit's. A formula without random-effects terms (and
without a residual structure or variance function) gives a linear model, as lmerTest's ``lm`` refit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from formulaic import Formula

from ..exceptions import FormulaError, ModelError
from ..formula.parse import ParsedFormula, RandomTermSpec, parse_formula
from ..formula.rsyntax import is_r_syntactic


def refit_formula(fit: Any, formula: str, *, reml: bool | None = None, warn: bool = False) -> Any:
    """``formula`` fitted to the rows and with the settings of ``fit``.

    Parameters
    ----------
    fit : LinearMixedModelResults or LinearModelResults
        The model whose rows, criterion and settings are kept.
    formula : str
        The new formula (same response).
    reml : bool, optional
        REML or ML; default: as ``fit``.
    warn : bool
        Emit the new fit's warnings (singular fit, convergence); they are always kept in ``.warnings``.

    Returns
    -------
    LinearMixedModelResults or LinearModelResults
    """
    from ..linear import LinearModelResults
    from ..model import LinearMixedModel

    design = fit.design
    if design.frame is None:
        raise ModelError("the model does not keep its data; a reduced model cannot be fitted")
    reml = fit.reml if reml is None else bool(reml)
    model = getattr(fit, "model", None)
    residual = getattr(model, "residual_spec", None)
    variance = getattr(model, "variance_spec", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notes on the data were given when the fit was made
        if not parse_formula(formula).random and residual is None and variance is None:
            if design.weights is not None or design.offset is not None:
                raise ModelError("a reduced model without random effects cannot keep prior weights or an offset")
            return LinearModelResults.from_formula(formula, design.frame, reml=reml, data_name=fit.data_name)
        new = LinearMixedModel.from_formula(
            formula, design.frame, reml=reml, data_name=fit.data_name, contrasts=design.contrasts or None,
            control=getattr(model, "control", None), weights=design.weights, offset=design.offset_argument,
            residual=residual, variance=variance,
        )
    if new.nobs != fit.nobs:
        raise ModelError(f"the reduced model {formula!r} uses {new.nobs} rows, the model {fit.nobs}")
    return new.fit(warn=warn)


def assemble(parsed: ParsedFormula, fixed: str, random: list[RandomTermSpec] | tuple[RandomTermSpec, ...]) -> str:
    """A formula from a response, a fixed part, the parsed formula's offsets and random-effects terms."""
    parts = [fixed] + [f"offset({o})" for o in parsed.offsets] + [r.label for r in random]
    return f"{parsed.response} ~ " + " + ".join(parts)


def _quoted(expr: str) -> str:
    """A factor expression as R writes it: a column name that is not syntactic in backticks."""
    if "(" in expr or is_r_syntactic(expr):
        return expr
    return f"`{expr}`"


@dataclass(frozen=True)
class ExprTerm:
    """One term of a right-hand side: its R label and the set of its factors."""

    label: str
    factors: frozenset[str]


def expression_terms(expr: str) -> tuple[bool, list[ExprTerm]]:
    """The intercept (present or not) and the terms of a right-hand side such as ``"1 + a*b"`` (R's expansion).

    Raises
    ------
    FormulaError
        If the expression cannot be read as a formula's right-hand side.
    """
    try:
        terms = list(Formula(expr))
    except Exception as exc:  # noqa: BLE001 - formulaic's parser errors are of many types
        raise FormulaError(f"cannot read the terms of {expr!r}: {str(exc).splitlines()[0]}") from None
    intercept = False
    out: list[ExprTerm] = []
    for t in terms:
        names = [f.expr for f in t.factors]
        if names == ["1"]:
            intercept = True
            continue
        out.append(ExprTerm(":".join(_quoted(n) for n in names), frozenset(names)))
    return intercept, out


def droppable(terms: list[ExprTerm]) -> list[ExprTerm]:
    """The terms no other term contains (R's ``drop.scope``): those that can be dropped respecting marginality."""
    return [a for a in terms if not any(a.factors < b.factors for b in terms)]


def rhs_text(intercept: bool, terms: list[ExprTerm]) -> str:
    """A right-hand side from an intercept flag and terms (``"1"`` or ``"0"`` when there are no terms)."""
    if not terms:
        return "1" if intercept else "0"
    body = " + ".join(t.label for t in terms)
    return body if intercept else f"0 + {body}"
