"""Genetics: known relationship matrices as random-effect covariances, heritability, genomic relationship
matrices from genotypes and genome-wide association scans.

>>> import mixedmodels as mm
>>> fit = mm.lmer("y ~ sex + (1 | id)", data, covariance={"id": K})   # doctest: +SKIP
>>> fit.heritability(ci="profile")                                     # doctest: +SKIP
"""

from __future__ import annotations

from .kinship import Kinship

__all__ = ["Kinship"]
