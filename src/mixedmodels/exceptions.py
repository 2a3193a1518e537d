"""Exceptions and warnings raised by mixedmodels.

Every problem the library detects in its input is reported as a subclass of
:class:`MixedModelsError`, so callers (and the command line) can catch one type.
"""

from __future__ import annotations

import os
import sys
import warnings

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def warn_user(message: str, category: type[Warning]) -> None:
    """Emit a warning attributed to the first caller outside this package (the user's line)."""
    level, frame = 2, sys._getframe(1)  # stacklevel 1 is this function, 2 its caller
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


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


class DataWarning(MixedModelsWarning):
    """Something in the data was read in a way worth knowing (an empty string kept as a level, an unused setting)."""


class ScaleWarning(MixedModelsWarning):
    """Predictors are on very different scales; the fit may be numerically delicate."""
