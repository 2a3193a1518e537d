"""JSON-ready dictionaries of fitted models (the command line's ``--json`` output)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults


def json_number(v: Any) -> float | None:
    """A float for JSON, or None for missing and non-finite values (JSON has no NaN)."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def residual_to_dict(r: "LinearMixedModelResults") -> dict[str, Any]:
    """The residual structure of a fit: structure, subject, time, levels, parameters, and the covariance and
    correlation matrices of a subject observed at every level of the time (the first group's)."""
    structure, spec = r.residual_structure, r.residual_binding.spec
    cov = r.residual_covariance.to_numpy()
    sd = np.sqrt(np.diag(cov))
    return {
        "structure": spec.structure,
        "subject": spec.subject,
        "time": spec.time,
        "group": spec.group,
        "levels": [str(v) for v in r.residual_covariance.index],
        "parameters": [{"name": n, "estimate": json_number(v)} for n, v in structure.natural_items(r.rho, r.sigma)],
        "covariance": [[json_number(v) for v in row] for row in cov],
        "correlation": [[json_number(v) for v in row] for row in cov / np.outer(sd, sd)],
    }


def random_terms_to_dict(r: "LinearMixedModelResults") -> list[dict[str, Any]]:
    """Each random-effects term: its group (lme4's name), columns, covariance structure and the structure's
    parameters on the SD/correlation scale (``sd(Days|Subject)``, ``cor(cs|Subject)``)."""
    from ..ranef import unique_group_names

    out, start = [], 0
    for name, t in zip(unique_group_names([t.group for t in r.terms]), r.terms):
        s = t.structure
        phi = s.to_phi(r.theta[start : start + t.ntheta], r.sigma)
        start += t.ntheta
        out.append({
            "group": name,
            "columns": list(t.cnames),
            "structure": s.kind,
            "parameters": [{"name": n, "estimate": json_number(v)} for n, v in zip(s.phi_labels(t.group), phi)],
        })
    return out


def results_to_dict(r: "LinearMixedModelResults", ddf: str | None = "satterthwaite") -> dict[str, Any]:
    """The fit as plain Python types: estimates, variance components, likelihood and fit record.

    ``ddf`` (``"satterthwaite"``, ``"kenward-roger"`` or None) fills each fixed effect's df and p-value.
    """
    fe = r.coef_table(ddf)
    rec = r.fit_record
    return {
        "formula": r.formula,
        "method": r.method,
        "nobs": r.nobs,
        "n_dropped": r.n_dropped,
        "groups": r.ngroups,
        "loglik": json_number(r.loglik),
        "objective": json_number(r.objective),
        "deviance": json_number(r.deviance),
        "aic": json_number(r.aic),
        "bic": json_number(r.bic),
        "df_residual": r.df_residual,
        "sigma": r.sigma,
        "theta": r.theta.tolist(),
        "ddf_method": None if ddf is None or str(ddf).lower() == "none" or r.sigma == 0 else r.ddf_calculator(ddf).method,
        "fixed_effects": [
            {
                "term": name,
                "estimate": json_number(row["Estimate"]),
                "std_error": json_number(row["Std. Error"]),
                "t_value": json_number(row["t value"]),
                "df": json_number(row["df"]),
                "p_value": json_number(row["Pr(>|t|)"]),
            }
            for name, row in fe.iterrows()
        ],
        "dropped_columns": list(r.design.dropped_columns),
        "random_effects": [
            {
                "group": row.grp,
                "term1": _str(row.var1),
                "term2": _str(row.var2),
                "variance": json_number(row.vcov),
                "sd_or_corr": json_number(row.sdcor),
            }
            for row in r.varcorr.itertuples(index=False)
        ],
        "random_terms": random_terms_to_dict(r),
        **({"residual": residual_to_dict(r)} if r.residual_structure is not None else {}),
        **(
            {"variance": {"function": str(r.variance_function.spec),
                          "parameters": [{"name": n, "estimate": json_number(v)} for n, v in r.variance_function.natural(r.delta)]}}
            if r.variance_function is not None
            else {}
        ),
        "converged": r.converged,
        "singular": r.singular,
        "warnings": r.warnings,
        "optimizer": {
            "name": rec.optimizer,
            "evaluations": rec.evaluations,
            "seconds": rec.seconds,
            "return_code": rec.return_code,
            "message": rec.message,
            "max_scaled_gradient": rec.max_scaled_gradient,
        },
    }
