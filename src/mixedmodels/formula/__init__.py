"""Formula handling: lme4-style model formulas split into fixed and random parts."""

from .parse import ParsedFormula, RandomTermSpec, parse_formula

__all__ = ["ParsedFormula", "RandomTermSpec", "parse_formula"]
