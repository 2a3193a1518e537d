"""Exceptions and warnings raised by mixedmodels.

Every problem the library detects in its input is reported as a subclass of
:class:`MixedModelsError`, so callers (and the command line) can catch one type.
"""

from __future__ import annotations


class MixedModelsError(Exception):
    """Base class of every error this package raises on purpose."""


class FormulaError(MixedModelsError, ValueError):
    """The model formula is malformed or uses something that is not allowed."""


class DataError(MixedModelsError, ValueError):
    """The data cannot be used: missing columns, wrong types, no rows, unreadable files."""


class ModelError(MixedModelsError, ValueError):
    """The model cannot be fitted to these data (e.g. it is not identifiable)."""


class MixedModelsWarning(UserWarning):
    """Base class of the warnings this package emits."""


class ConvergenceWarning(MixedModelsWarning):
    """The optimizer may not have reached the optimum."""


class SingularFitWarning(MixedModelsWarning):
    """A variance-covariance estimate lies on the boundary of its parameter space."""


class RankDeficiencyWarning(MixedModelsWarning):
    """Columns of the fixed-effects model matrix were dropped as linearly dependent."""


class DroppedRowsWarning(MixedModelsWarning):
    """Rows were dropped because of missing values."""


class ScaleWarning(MixedModelsWarning):
    """Predictors are on very different scales; the fit may be numerically delicate."""
