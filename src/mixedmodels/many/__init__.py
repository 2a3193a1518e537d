"""Many responses on one design: :func:`fit_many` and its :class:`ManyResults`.

Imported on first use, so that the command line's parser does not load the fitting code.
"""

from __future__ import annotations

__all__ = ["ManyResults", "fit_many"]


def __getattr__(name: str):
    if name == "fit_many":
        from .fit import fit_many

        return fit_many
    if name == "ManyResults":
        from .results import ManyResults

        return ManyResults
    raise AttributeError(f"module 'mixedmodels.many' has no attribute {name!r}")
