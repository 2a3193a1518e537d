"""Families and links of generalised linear mixed models, computed as R's ``family`` objects compute them.

A :class:`Link` maps the mean to the linear predictor (``linkfun``), back (``linkinv``) and gives
``dμ/dη`` (``mu_eta``) with the clamps of R's ``make.link``/``binomial()`` (means kept a machine epsilon
inside their range, ``mu.eta`` at least ``DBL_EPSILON``). A :class:`Family` gives the variance function,
the deviance residuals (``dev.resids``), ``aic`` (−2 × the log-likelihood with its normalising constants,
which is what glmer's Laplace deviance adds to ``log|L|² + ‖u‖²``) and the starting means (R's
``initialize``). Prior weights are R's: for the binomial the number of trials, with ``y`` the proportion.

Families with a dispersion parameter estimated with the other parameters (the negative binomial NB2, as
glmmTMB's ``nbinom2``) carry it as a field; :meth:`Family.with_dispersion` gives the family at another value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
from scipy.special import expit, gammaln, ndtr, ndtri, xlogy

from ..exceptions import ModelError

EPS = float(np.finfo(float).eps)
#: R's ``logit_linkinv`` thresholds (``THRESH``/``MTHRESH`` in family.c).
_LOGIT_THRESH = 30.0
#: R's probit threshold ``-qnorm(.Machine$double.eps)``.
_PROBIT_THRESH = float(-ndtri(EPS))


@dataclass(frozen=True)
class Link:
    """A link function ``η = g(μ)``; subclasses give the formulas (R's ``make.link``)."""

    name: str = ""

    def linkfun(self, mu: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def linkinv(self, eta: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        """``dμ/dη``."""
        raise NotImplementedError

    def mu_eta2(self, eta: np.ndarray) -> np.ndarray:
        """``d²μ/dη²`` (for the observed information; not part of R's family objects)."""
        raise NotImplementedError


@dataclass(frozen=True)
class LogitLink(Link):
    name: str = "logit"

    def linkfun(self, mu):
        return np.log(mu / (1.0 - mu))

    def linkinv(self, eta):
        eta = np.asarray(eta, dtype=float)
        mu = 1.0 / (1.0 + np.exp(-np.clip(eta, -_LOGIT_THRESH, _LOGIT_THRESH)))
        if eta.size and (eta.max() > _LOGIT_THRESH or eta.min() < -_LOGIT_THRESH):
            mu = np.where(eta < -_LOGIT_THRESH, EPS, np.where(eta > _LOGIT_THRESH, 1.0 - EPS, mu))
        return mu

    def mu_eta(self, eta):
        eta = np.asarray(eta, dtype=float)
        e = np.exp(-np.abs(eta))
        me = e / (1.0 + e) ** 2
        if eta.size and (eta.max() > _LOGIT_THRESH or eta.min() < -_LOGIT_THRESH):
            me = np.where(np.abs(eta) > _LOGIT_THRESH, EPS, me)
        return me

    def mu_eta2(self, eta):
        mu = expit(np.asarray(eta, dtype=float))
        return self.mu_eta(eta) * (1.0 - 2.0 * mu)


@dataclass(frozen=True)
class ProbitLink(Link):
    name: str = "probit"

    def linkfun(self, mu):
        return ndtri(mu)

    def linkinv(self, eta):
        return ndtr(np.clip(eta, -_PROBIT_THRESH, _PROBIT_THRESH))

    def mu_eta(self, eta):
        eta = np.asarray(eta, dtype=float)
        return np.maximum(np.exp(-0.5 * eta**2) / math.sqrt(2.0 * math.pi), EPS)

    def mu_eta2(self, eta):
        eta = np.asarray(eta, dtype=float)
        return -eta * np.exp(-0.5 * eta**2) / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class CloglogLink(Link):
    name: str = "cloglog"

    def linkfun(self, mu):
        return np.log(-np.log1p(-mu))

    def linkinv(self, eta):
        return np.clip(-np.expm1(-np.exp(eta)), EPS, 1.0 - EPS)

    def mu_eta(self, eta):
        eta = np.minimum(eta, 700.0)
        return np.maximum(np.exp(eta) * np.exp(-np.exp(eta)), EPS)

    def mu_eta2(self, eta):
        eta = np.minimum(eta, 700.0)
        e = np.exp(eta)
        return e * np.exp(-e) * (1.0 - e)


@dataclass(frozen=True)
class LogLink(Link):
    name: str = "log"

    def linkfun(self, mu):
        return np.log(mu)

    def linkinv(self, eta):
        return np.maximum(np.exp(eta), EPS)

    def mu_eta(self, eta):
        return np.maximum(np.exp(eta), EPS)

    def mu_eta2(self, eta):
        return np.exp(eta)


LINKS: dict[str, Link] = {k.name: k for k in (LogitLink(), ProbitLink(), CloglogLink(), LogLink())}


@dataclass(frozen=True)
class Family:
    """A response distribution with its link (subclasses give the formulas).

    Attributes
    ----------
    name : str
        R's family name (``"binomial"``, ``"poisson"``, ``"nbinom2"``).
    link : Link
    dispersion : float or None
        The dispersion parameter of families that estimate one (NB2's θ), else None.
    information : {"expected", "observed"}
        The weights of the Laplace approximation's ``L``: the expected (Fisher) information, as lme4's
        glmer, or the observed information, as glmmTMB (the same for canonical links).
    """

    name: str = ""
    link: Link = LogitLink()
    dispersion: float | None = None
    information: str = "expected"

    #: Links the family takes, the first its canonical link.
    links: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        if self.link.name not in self.links:
            raise ModelError(
                f"link {self.link.name!r} is not available for the {self.name} family; use one of {', '.join(self.links)}"
            )
        if self.information not in ("expected", "observed"):
            raise ModelError(f"information must be 'expected' or 'observed', got {self.information!r}")

    # -- what every family gives --------------------------------------------------------------
    @property
    def has_dispersion(self) -> bool:
        """True when the family carries a dispersion parameter estimated with the other parameters."""
        return False

    @property
    def label(self) -> str:
        """The family as glmer's summary names it (``binomial  ( logit )``)."""
        return f"{self.name}  ( {self.link.name} )"

    def variance(self, mu: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def dvariance(self, mu: np.ndarray) -> np.ndarray:
        """``dV/dμ``."""
        raise NotImplementedError

    def dev_resids(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """Squared deviance residuals, R's ``dev.resids(y, mu, wt)``."""
        raise NotImplementedError

    def aic(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> float:
        """R's ``aic(y, n, mu, wt, dev)``: −2 × the log-likelihood with its normalising constants."""
        raise NotImplementedError

    def mustart(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """Starting means, as R's ``initialize``."""
        raise NotImplementedError

    def simulate(self, mu: np.ndarray, wt: np.ndarray, rng: np.random.Generator, nsim: int) -> np.ndarray:
        """Responses drawn at means ``mu`` (``n × nsim``), on the scale of ``y``."""
        raise NotImplementedError

    def with_dispersion(self, value: float) -> Family:
        """The family at another value of its dispersion parameter."""
        raise ModelError(f"the {self.name} family has no dispersion parameter")

    # -- shared ------------------------------------------------------------------------------------
    def weights(self, y: np.ndarray, eta: np.ndarray, mu: np.ndarray, wt: np.ndarray, information: str) -> np.ndarray:
        """Working weights ``−E[d²ℓ/dη²]`` (``"expected"``, R's IRLS weights) or ``−d²ℓ/dη²`` (``"observed"``).

        With ``ℓᵢ`` the log-likelihood of one observation, ``dℓ/dη = w (y − μ) μ'/V`` and
        ``−d²ℓ/dη² = w [μ'²/V − (y − μ)(μ''/V − μ'² V'/V²)]``; the second term vanishes for canonical links.
        """
        me = self.link.mu_eta(eta)
        var = self.variance(mu)
        expected = wt * me**2 / var
        if information == "expected":
            return expected
        curvature = self.link.mu_eta2(eta) / var - me**2 * self.dvariance(mu) / var**2
        return expected - wt * (y - mu) * curvature

    def score(self, y: np.ndarray, eta: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """``dℓ/dη`` of each observation."""
        return wt * (y - mu) * self.link.mu_eta(eta) / self.variance(mu)

    def working(
        self, y: np.ndarray, eta: np.ndarray, mu: np.ndarray, wt: np.ndarray, information: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`weights` and :meth:`score` together (one evaluation of ``μ'`` and ``V``)."""
        me = self.link.mu_eta(eta)
        var = self.variance(mu)
        wv = wt / var
        score = wv * (y - mu) * me
        w = wv * me**2
        if information == "observed" and not self.canonical:
            w = w - wt * (y - mu) * (self.link.mu_eta2(eta) / var - me**2 * self.dvariance(mu) / var**2)
        return w, score

    @property
    def canonical(self) -> bool:
        """The link is the family's canonical link (observed and expected information agree)."""
        return self.link.name == self.links[0] and self.name in ("binomial", "poisson")

    def dev_constant(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """The part of :meth:`dev_resids` that does not depend on μ (``dev_resids = dev_constant + dev_variable``)."""
        raise NotImplementedError

    def dev_variable(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """The part of :meth:`dev_resids` that depends on μ (cheaper: what PIRLS evaluates at every step)."""
        raise NotImplementedError

    def aic_constant(self, y: np.ndarray, wt: np.ndarray) -> float | None:
        """``aic − Σ dev_variable``, which does not depend on μ; None where R's ``aic`` does not split so."""
        raise NotImplementedError


def _ylogy(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """``y log(y/μ)``, 0 where ``y = 0`` (R's ``y_log_y``)."""
    return xlogy(y, y) - xlogy(y, mu)


def _dbinom_log(x: np.ndarray, size: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``dbinom(x, size, p, log = TRUE)`` for integer ``x``, ``size``."""
    coef = gammaln(size + 1.0) - gammaln(x + 1.0) - gammaln(size - x + 1.0)
    return coef + xlogy(x, p) + xlogy(size - x, 1.0 - p)


@dataclass(frozen=True)
class Binomial(Family):
    """R's ``binomial()``: ``y`` the proportion of successes, prior weights the numbers of trials."""

    name: str = "binomial"
    link: Link = LogitLink()
    links: ClassVar[tuple[str, ...]] = ("logit", "probit", "cloglog")

    def variance(self, mu):
        return mu * (1.0 - mu)

    def dvariance(self, mu):
        return 1.0 - 2.0 * mu

    def dev_resids(self, y, mu, wt):
        return 2.0 * wt * (_ylogy(y, mu) + _ylogy(1.0 - y, 1.0 - mu))

    def dev_constant(self, y, wt):
        return 2.0 * wt * (xlogy(y, y) + xlogy(1.0 - y, 1.0 - y))

    def dev_variable(self, y, mu, wt):
        # μ is kept inside (0, 1) by the links' clamps, so 0 · log μ is 0
        return -2.0 * wt * (y * np.log(mu) + (1.0 - y) * np.log1p(-mu))

    def aic_constant(self, y, wt):
        m = np.round(wt)
        x = np.round(wt * y)
        if not (np.array_equal(m, wt) and np.allclose(x, wt * y, rtol=0, atol=1e-9)):
            return None  # R rounds non-integer trials and successes inside aic: no split
        used = m > 0
        coef = gammaln(m[used] + 1.0) - gammaln(x[used] + 1.0) - gammaln(m[used] - x[used] + 1.0)
        return -2.0 * float(np.sum(coef))

    def aic(self, y, mu, wt):
        # R: m <- if (any(n > 1)) n else weights; the trials are the prior weights here, so m = wt
        m = np.round(wt)
        x = np.round(wt * y)
        contrib = np.where(m > 0, _dbinom_log(x, m, mu), 0.0)
        return -2.0 * float(np.sum(np.where(m > 0, wt / np.where(m > 0, m, 1.0), 0.0) * contrib))

    def mustart(self, y, wt):
        return (wt * y + 0.5) / (wt + 1.0)

    def simulate(self, mu, wt, rng, nsim):
        trials = np.round(wt).astype(np.int64)
        draws = rng.binomial(trials[:, None], mu[:, None], size=(mu.size, nsim))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(trials[:, None] > 0, draws / np.maximum(trials, 1)[:, None], 0.0)


@dataclass(frozen=True)
class Poisson(Family):
    """R's ``poisson()``."""

    name: str = "poisson"
    link: Link = LogLink()
    links: ClassVar[tuple[str, ...]] = ("log",)

    def variance(self, mu):
        return mu

    def dvariance(self, mu):
        return np.ones_like(mu)

    def dev_resids(self, y, mu, wt):
        return 2.0 * wt * (_ylogy(y, mu) - (y - mu))

    def dev_constant(self, y, wt):
        return 2.0 * wt * (xlogy(y, y) - y)

    def dev_variable(self, y, mu, wt):
        return 2.0 * wt * (mu - y * np.log(mu))

    def aic_constant(self, y, wt):
        return 2.0 * float(np.sum(wt * gammaln(y + 1.0)))

    def aic(self, y, mu, wt):
        logp = xlogy(y, mu) - mu - gammaln(y + 1.0)
        return -2.0 * float(np.sum(logp * wt))

    def mustart(self, y, wt):
        return y + 0.1

    def simulate(self, mu, wt, rng, nsim):
        return rng.poisson(mu[:, None], size=(mu.size, nsim)).astype(float)


@dataclass(frozen=True)
class NegativeBinomial(Family):
    """The negative binomial NB2 (``Var = μ + μ²/θ``; glmmTMB's ``nbinom2``, MASS's ``negative.binomial(θ)``).

    ``dispersion`` is θ (glmmTMB's ``sigma()``, MASS's ``theta``); the Laplace approximation uses the
    observed information by default, as glmmTMB (lme4's ``glmer.nb`` uses the expected one).
    """

    name: str = "nbinom2"
    link: Link = LogLink()
    dispersion: float | None = 1.0
    information: str = "observed"
    links: ClassVar[tuple[str, ...]] = ("log",)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dispersion is None or not (self.dispersion > 0 and math.isfinite(self.dispersion)):
            raise ModelError(f"the negative binomial's theta must be positive and finite, got {self.dispersion!r}")

    @property
    def has_dispersion(self) -> bool:
        return True

    @property
    def label(self) -> str:
        return f"Negative Binomial({self.dispersion:.4g})  ( {self.link.name} )"

    def variance(self, mu):
        return mu + mu**2 / self.dispersion

    def dvariance(self, mu):
        return 1.0 + 2.0 * mu / self.dispersion

    def dev_resids(self, y, mu, wt):
        th = self.dispersion
        return 2.0 * wt * (xlogy(y, np.maximum(1.0, y)) - xlogy(y, mu) - (y + th) * np.log((y + th) / (mu + th)))

    def dev_constant(self, y, wt):
        th = self.dispersion
        return 2.0 * wt * (xlogy(y, np.maximum(1.0, y)) - (y + th) * np.log(y + th))

    def dev_variable(self, y, mu, wt):
        th = self.dispersion
        return 2.0 * wt * ((y + th) * np.log(mu + th) - y * np.log(mu))

    def aic_constant(self, y, wt):
        th = self.dispersion
        return 2.0 * float(np.sum(wt * (gammaln(y + 1.0) - th * math.log(th) + gammaln(th) - gammaln(th + y))))

    def aic(self, y, mu, wt):
        th = self.dispersion
        term = (
            (y + th) * np.log(mu + th) - xlogy(y, mu) + gammaln(y + 1.0) - th * math.log(th) + gammaln(th) - gammaln(th + y)
        )
        return 2.0 * float(np.sum(term * wt))

    def mustart(self, y, wt):
        return y + (y == 0) / 6.0

    def simulate(self, mu, wt, rng, nsim):
        th = self.dispersion
        lam = rng.gamma(th, mu[:, None] / th, size=(mu.size, nsim))
        return rng.poisson(lam).astype(float)

    def with_dispersion(self, value: float) -> NegativeBinomial:
        return replace(self, dispersion=float(value))


_FAMILIES = {
    "binomial": Binomial,
    "poisson": Poisson,
    "nbinom2": NegativeBinomial,
    "negative_binomial": NegativeBinomial,
    "negbin": NegativeBinomial,
}


def make_family(family: str | Family = "binomial", link: str | None = None, **kwargs) -> Family:
    """A :class:`Family` from a name (``"binomial"``, ``"poisson"``, ``"nbinom2"``) and an optional link name.

    Raises
    ------
    ModelError
        For an unknown family or link, or a link the family does not take.
    """
    if isinstance(family, Family):
        if link is not None and link != family.link.name:
            return replace(family, link=_link(link))
        return family
    key = str(family).strip()
    cls = _FAMILIES.get(key) or _FAMILIES.get(key.lower())
    if cls is None:
        if key.lower() == "gaussian":
            raise ModelError("family 'gaussian' is a linear mixed model: use lmer()")
        raise ModelError(f"unknown family {family!r}; use one of binomial, poisson, nbinom2")
    if link is not None:
        kwargs["link"] = _link(link)
    return cls(**kwargs)


def _link(name: str) -> Link:
    link = LINKS.get(str(name))
    if link is None:
        raise ModelError(f"unknown link {name!r}; use one of {', '.join(LINKS)}")
    return link
