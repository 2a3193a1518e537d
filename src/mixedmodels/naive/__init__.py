"""Why a mixed model: the naive analyses of repeated measures side by side with the fit (``fit.compare_naive()``).

See :mod:`.compare` for what is computed, :mod:`.rmanova` for the RM-ANOVA and sphericity, :mod:`.classical`
for OLS and the t-tests, :mod:`.correlation` for the correlation across time points.
"""

from .compare import NaiveComparison, compare_naive, why

__all__ = ["NaiveComparison", "compare_naive", "why"]
