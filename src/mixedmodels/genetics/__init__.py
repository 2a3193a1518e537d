"""Genetics: known relationship matrices as random-effect covariances, heritability, genomic relationship
matrices from genotypes and genome-wide association scans.

>>> import mixedmodels as mm
>>> K = mm.genetics.grm("data/cohort")                                   # doctest: +SKIP
>>> fit = mm.lmer("y ~ sex + (1 | id)", data, covariance={"id": K})     # doctest: +SKIP
>>> fit.heritability(ci="profile")                                       # doctest: +SKIP
>>> mm.gwas("data/cohort", "pheno.txt", "covar.txt", exact=True).table   # doctest: +SKIP
"""

from __future__ import annotations

from .grm import grm, grm_loco, read_kinship, write_kinship
from .gwas import GwasResult, NullModel, gwas
from .heritability import GeneticVarianceTest, genetic_variance_test, heritability
from .kinship import Kinship

__all__ = [
    "Kinship", "grm", "grm_loco", "read_kinship", "write_kinship", "gwas", "GwasResult", "NullModel",
    "heritability", "genetic_variance_test", "GeneticVarianceTest",
]
