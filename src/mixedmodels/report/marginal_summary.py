"""mmrm-style summary of a marginal model (a residual structure, no random effects): lme4 has no layout
for it, and mmrm's is the one MMRM users read (``print(summary(fit))`` of mmrm 0.3)."""

from __future__ import annotations

import math

import numpy as np

from .format import format_r, round_r
from .summary import Summary


class MarginalSummary(Summary):
    """``str(summary)`` as mmrm prints ``summary(fit)``; the fixed-effects table is this package's."""

    def criteria(self) -> dict[str, float]:
        """mmrm's model selection criteria: ``k`` covariance parameters (by REML and ML alike), BIC with the
        number of subjects (mmrm's ``AIC``/``BIC`` for ``mmrm_tmb``)."""
        r = self.results
        k = r.theta.size + 1
        dev = -2.0 * r.loglik
        n_subjects = len(r.residual_binding.subject_levels)
        return {"AIC": dev + 2 * k, "BIC": dev + k * math.log(n_subjects), "logLik": r.loglik, "deviance": dev}

    def header(self) -> str:
        r = self.results
        s, binding = r.residual_structure, r.residual_binding
        n_sub = len(binding.subject_levels)
        most = s.n_levels if s.discrete else max(int(p.rows.shape[1]) for p in binding.batches)
        npar = r.theta.size + 1
        if self.ddf is None:
            method, vcov = "none", "Asymptotic"
        else:
            method = r.ddf_calculator(self.ddf).method
            vcov = "Asymptotic" if method == "Satterthwaite" else method
        rows = [
            ("Formula:", r.formula),
            ("Data:", f"{r.data_name or 'data'} (used {r.nobs} observations from {n_sub} subjects with maximum {most} timepoints)"),
            ("Covariance:", f"{s.description} ({npar} variance parameters)"),
            ("Method:", method.split(" (")[0]),
            ("Vcov Method:", vcov),
            ("Inference:", "REML" if r.reml else "ML"),
        ]
        return "mmrm fit\n\n" + "\n".join(f"{a:<12} {b}" for a, b in rows)

    def criterion(self) -> str:
        crit = self.criteria()
        cells = format_r([round_r(v, 1) for v in crit.values()])
        width = max(len(c) for c in cells + list(crit))
        lines = [" ".join(c.rjust(width) for c in line) for line in (list(crit), cells)]
        return "Model selection criteria:\n" + "\n".join(lines)

    def covariance(self) -> str:
        r = self.results
        s = r.residual_structure
        if not s.discrete:
            nat = s.natural_items(r.rho, r.sigma)
            return "Covariance parameters:\n" + "\n".join(f"  {a}  {b}" for (a, _), b in zip(nat, format_r([v for _, v in nat], 4)))
        out = []
        for g in range(s.n_groups):
            cov = s.covariance(r.rho, r.sigma, group=g)
            labels = list(s.levels)
            cells = [[f"{v:.4f}" for v in row] for row in np.asarray(cov)]
            width = max(len(c) for row in cells for c in row + labels)
            lw = max(len(x) for x in labels)
            text = " " * lw + " " + " ".join(c.rjust(width) for c in labels)
            text += "".join("\n" + lab.ljust(lw) + " " + " ".join(c.rjust(width) for c in row) for lab, row in zip(labels, cells))
            title = "Covariance estimate:" if s.groups is None else f"Covariance estimate ({s.group_name} = {s.groups[g]}):"
            out.append(f"{title}\n{text}")
        return "\n\n".join(out)

    def fixed(self) -> str:
        return super().fixed().replace("Fixed effects:", "Coefficients:", 1)

    def __str__(self) -> str:
        parts = [self.header(), self.criterion(), self.fixed(), self.covariance()]
        if self.results.variance_function is not None:
            r = self.results
            nat = r.variance_function.natural(r.delta)
            parts.append(f"Variance function: {r.variance_function.spec}\n"
                         + "\n".join(f"  {n}  {c}" for (n, _), c in zip(nat, format_r([v for _, v in nat], 4))))
        parts.append(self.notes())
        return "\n\n".join(p for p in parts if p) + "\n"

    __repr__ = __str__
