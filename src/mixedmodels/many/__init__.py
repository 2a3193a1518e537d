"""Many responses on one design: :func:`fit_many` and its :class:`ManyResults`."""

from .fit import fit_many
from .results import ManyResults

__all__ = ["fit_many", "ManyResults"]
