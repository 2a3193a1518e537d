"""Residual (R-side) covariance structures for marginal and mixed models (MMRM; nlme's correlation and
weights): the structures, their specification syntax, binding to data and brute-force criteria.

>>> from mixedmodels.covariance import bind
>>> b = bind("us(visit | subject)", frame)                     # doctest: +SKIP
>>> s = b.structure(); par = s.start()                         # doctest: +SKIP
>>> s.cov(par, b.patterns[0].times)                            # doctest: +SKIP
"""

from .binding import ResidualBinding, SubjectBatch, VisitPattern, bind, empirical_covariances
from .criterion import dense_criterion, marginal_criterion, profiled_dense_criterion, residual_matrix
from .residual import ResidualStructure
from .residual_spec import ResidualSpec, extract_residual, parse_residual
from .structures import (
    AR1,
    AR1H,
    CAR1,
    CS,
    CSH,
    IID,
    STRUCTURES,
    AnteDependence,
    AnteDependenceH,
    Diagonal,
    Toeplitz,
    ToeplitzH,
    Unstructured,
)

__all__ = [
    "AR1", "AR1H", "CAR1", "CS", "CSH", "IID", "STRUCTURES", "AnteDependence", "AnteDependenceH", "Diagonal",
    "ResidualBinding", "ResidualSpec", "ResidualStructure", "SubjectBatch", "Toeplitz", "ToeplitzH",
    "Unstructured", "VisitPattern", "bind", "dense_criterion", "empirical_covariances", "extract_residual",
    "marginal_criterion", "parse_residual", "profiled_dense_criterion", "residual_matrix",
]
