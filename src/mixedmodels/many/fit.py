"""``fit_many``: one mixed model, the same X and Z, fitted to many responses (genes, metabolites, voxels).

The covariates are evaluated once; the cross-products of Z and X and the structure of the factor are
shared by every response (:class:`~mixedmodels.many.lean.SharedDesign`); ``Z'Y``, ``X'Y`` and ``Y'Y`` are
matrix products over all responses at once; each response is then fitted by BOBYQA on the lean
evaluator with lme4's settings and checks, and Satterthwaite's df are computed from the same evaluator
(:mod:`~mixedmodels.many.single`). Work is split into chunks of responses over forked processes; the
numbers do not depend on the number of processes.

Missing values in a response: the rows where it is missing are dropped for that response only, as
``lmer`` on that response alone would. Responses missing the same rows share one design (built again on
the rows they have), so a few missingness patterns cost a few designs; a response with a pattern of
its own costs one design build.
"""

from __future__ import annotations

import fnmatch
import multiprocessing
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..engine.threads import engine_threads
from ..exceptions import DataError, FormulaError, MixedModelsError, ModelError
from ..formula.design import exact_response
from ..inference.bootstrap import progress_enabled
from ..model import LinearMixedModel
from ..optimize import OptimizerControl
from .lean import SharedDesign
from .results import ManyResults
from .single import ResponseFit, fit_response, from_results

#: Name of the stand-in response the shared design is built with (the real responses replace it).
_STAND_IN = "mixedmodels_fit_many_response"

# State shared with forked worker processes (set just before the pool starts).
_JOB: dict[str, Any] = {}


def resolve_responses(data: pd.DataFrame, responses: object) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The covariates (data without the response columns) and the responses, one numeric column each.

    ``responses`` is a sequence of column names, a glob pattern on the column names (``"gene_*"``),
    several patterns separated by commas, or a DataFrame with one column per response and the
    rows (index) of ``data``.
    """
    if isinstance(responses, pd.DataFrame):
        if len(responses) != len(data) or not responses.index.equals(data.index):
            raise DataError("a DataFrame of responses must have the rows (index) of data")
        Y, covariates = responses, data
    else:
        if isinstance(responses, str):
            patterns = [p.strip() for p in responses.split(",") if p.strip()]
            names = [c for c in data.columns if any(fnmatch.fnmatchcase(str(c), p) for p in patterns)]
            if not names:
                raise DataError(f"no column of the data matches {responses!r}")
        else:
            names = list(responses)
            missing = [c for c in names if c not in data.columns]
            if missing:
                raise DataError(f"response column(s) not in the data: {', '.join(map(str, missing[:10]))}")
        if not names:
            raise DataError("no responses given")
        if len(set(names)) != len(names):
            raise DataError("a response is named more than once")
        Y = data[names]
        covariates = data.drop(columns=names)
    if Y.shape[1] == 0:
        raise DataError("no responses given")
    bad = [str(c) for c in Y.columns if not pd.api.types.is_numeric_dtype(Y[c]) or pd.api.types.is_bool_dtype(Y[c])]
    if bad:
        raise DataError(f"responses must be numeric; not: {', '.join(bad[:10])}" + (" …" if len(bad) > 10 else ""))
    return covariates, Y


def _build(formula: str, covariates: pd.DataFrame, seed: int, **kwargs: Any) -> LinearMixedModel:
    """The model of the covariates with a stand-in response (drawn, so never degenerate)."""
    frame = covariates.assign(**{_STAND_IN: np.random.default_rng(seed).standard_normal(len(covariates))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LinearMixedModel.from_formula(f"{_STAND_IN} {formula}", frame, **kwargs)
    if not model.iid_residuals:
        raise ModelError("fit_many fits models with iid residuals")
    return model


def _degenerate(model: LinearMixedModel, y: np.ndarray, name: str) -> str | None:
    d = model.design
    return exact_response(y if d.offset is None else y - d.offset, d.X, name)


def _maybe_degenerate(model: LinearMixedModel, Y: np.ndarray) -> np.ndarray:
    """Which columns of ``Y`` may be constant or reproduced by X (checked one by one by :func:`_degenerate`):
    the screen of :func:`~mixedmodels.formula.design.exact_response`, for all columns at once."""
    d = model.design
    Y = Y if d.offset is None else Y - d.offset[:, None]
    out = np.ptp(Y, axis=0) == 0
    X = d.X
    if X.shape[1]:
        scale = np.linalg.norm(Y - Y.mean(axis=0), axis=0)
        try:
            resid = Y - X @ np.linalg.solve(X.T @ X, X.T @ Y)
            out |= ~(np.linalg.norm(resid, axis=0) > 1e-6 * scale)
        except np.linalg.LinAlgError:
            out[:] = True
    return out


def _ordinary(model: LinearMixedModel, y: np.ndarray, why: str | None, ddf: bool) -> ResponseFit:
    """An ordinary fit of one response (degenerate responses; responses the lean evaluator cannot factor)."""
    import dataclasses

    one = model.with_response(y)
    one.design = dataclasses.replace(one.design, degenerate=why)
    return from_results(one.fit(warn=False), ddf=ddf)


def _chunk(task: tuple[int, np.ndarray]) -> list[tuple[int, ResponseFit | str]]:
    """Fit the responses ``cols`` of group ``g`` (run in a worker, or in the calling process)."""
    g, cols = task
    model, shared, Y, names, ddf = _JOB["groups"][g]
    out: list[tuple[int, ResponseFit | str]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y_chunk = Y[:, cols]
        u0, ur, yy, shift = shared.response_products(y_chunk)
        suspects = _maybe_degenerate(model, y_chunk)
        for i, j in enumerate(cols):
            y = y_chunk[:, i]
            try:
                why = _degenerate(model, y, names[j]) if suspects[i] else None
                if why is not None:
                    out.append((j, _ordinary(model, y, why, ddf)))
                    continue
                try:
                    fit = fit_response(shared, shared.evaluator(u0[:, i], ur[:, i], yy[i], shift[i]), ddf=ddf)
                except ModelError:
                    fit = _ordinary(model, y, None, ddf)
                out.append((j, fit))
            except (MixedModelsError, np.linalg.LinAlgError, FloatingPointError, ValueError) as exc:
                out.append((j, f"{type(exc).__name__}: {exc}"))
    return out


@engine_threads
def fit_many(
    formula: str,
    data: pd.DataFrame,
    responses: str | Sequence[str] | pd.DataFrame,
    *,
    REML: bool = True,
    ddf: str | None = "satterthwaite",
    n_jobs: int = 1,
    progress: bool | None = None,
    control: OptimizerControl | dict | None = None,
    contrasts: dict[str, str] | None = None,
    weights: str | Sequence[float] | None = None,
    offset: str | Sequence[float] | None = None,
    chunk_size: int | None = None,
) -> ManyResults:
    """Fit ``response ~ formula`` for many responses on one design (variancePartition's and dream's use).

    Parameters
    ----------
    formula : str
        One-sided lme4 formula, ``"~ x + (1 | individual) + (1 | batch)"`` (iid residuals).
    data : pandas.DataFrame
        Covariates, and the responses when they are named by column.
    responses : str, sequence of str or pandas.DataFrame
        Column names, a glob pattern on the column names (``"gene_*"``; several separated by commas),
        or a DataFrame with one column per response and the rows of ``data``.
    REML : bool
        REML (default, as ``lmer`` and dream) or maximum likelihood (variancePartition's
        ``fitExtractVarPartModel`` fits by ML).
    ddf : {"satterthwaite", None}
        Satterthwaite's df and p-values for every coefficient (as lmerTest), or none.
    n_jobs : int
        Processes (``-1``: all cores). The results do not depend on it.
    progress : bool, optional
        Progress bar on standard error; default: only when it is a terminal.
    control : OptimizerControl or dict, optional
        Optimizer settings, as ``mm.lmer``'s.
    contrasts, weights, offset
        As ``mm.lmer``'s (shared by every response).
    chunk_size : int, optional
        Responses per task handed to a process (default: about 8 tasks per process, at most 256).

    Returns
    -------
    ManyResults
        Variance fractions, fixed effects with df, p-values and BH-adjusted p-values, convergence and
        singular-fit flags, per response.
    """
    if not isinstance(formula, str) or not formula.strip().startswith("~"):
        raise FormulaError(
            f"fit_many takes a one-sided formula such as '~ x + (1 | g)' (the responses are given separately), got {formula!r}"
        )
    use_ddf = ddf is not None and str(ddf).lower() != "none"
    if use_ddf and str(ddf).lower() not in ("satterthwaite", "sat"):
        raise ModelError(f"fit_many computes Satterthwaite's df (ddf='satterthwaite') or none (ddf=None), not {ddf!r}")
    data = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    covariates, Yframe = resolve_responses(data, responses)
    names = [str(c) for c in Yframe.columns]
    kwargs = {"reml": REML, "control": OptimizerControl.make(control), "contrasts": contrasts, "weights": weights,
              "offset": offset}
    base = _build(formula, covariates, 0, **kwargs)
    rows = base.design.row_index
    Y = Yframe.loc[rows].to_numpy(dtype=float, na_value=np.nan)
    finite = np.isfinite(Y)
    results: dict[int, ResponseFit | str] = {}
    infinite = np.flatnonzero(np.any(np.isinf(Y), axis=0))
    for j in infinite:
        results[int(j)] = f"DataError: the response {names[j]!r} has infinite values"
    # one group per pattern of missing rows (complete responses first)
    patterns: dict[bytes, list[int]] = {}
    complete = finite.all(axis=0)
    if complete.any():
        patterns[b""] = np.flatnonzero(complete).tolist()
    for j in np.setdiff1d(np.flatnonzero(~complete), infinite):
        patterns.setdefault(np.packbits(~finite[:, j]).tobytes(), []).append(int(j))
    groups: list[tuple] = []
    group_cols: list[list[int]] = []
    tasks: list[tuple[int, np.ndarray]] = []
    jobs = (os.cpu_count() or 1) if n_jobs == -1 else max(1, int(n_jobs))
    total = sum(len(v) for v in patterns.values())
    size = chunk_size or int(min(256, max(8, -(-total // (8 * jobs)))))
    for cols in patterns.values():
        keep = finite[:, cols[0]]
        try:
            model = base if keep.all() else _build(formula, covariates.loc[rows[keep]], 0, **kwargs)
            shared = SharedDesign(model)
        except MixedModelsError as exc:
            for j in cols:
                results[j] = f"{type(exc).__name__}: {exc} (on the {int(keep.sum())} rows where {names[j]!r} is observed)"
            continue
        g = len(groups)
        groups.append((model, shared, np.ascontiguousarray(Y[keep][:, cols]), [names[j] for j in cols], use_ddf))
        group_cols.append(cols)
        tasks += [(g, np.arange(start, min(start + size, len(cols)))) for start in range(0, len(cols), size)]
    _JOB["groups"] = groups
    try:
        pieces = _run(tasks, jobs, progress_enabled(progress), total)
    finally:
        _JOB.clear()
    for g, piece in pieces:
        for local, fit in piece:
            results[group_cols[g][local]] = fit
    return ManyResults.assemble(
        formula, names, results, [(grp[0], group_cols[g]) for g, grp in enumerate(groups)], REML=REML, ddf=use_ddf
    )


def _run(tasks: list[tuple[int, np.ndarray]], jobs: int, show: bool, total: int) -> list[tuple[int, list]]:
    """Run the chunks, over a pool of forked processes when ``jobs > 1``, with a progress bar of responses."""
    out: list[tuple[int, list]] = []
    bar = None
    if show:
        import sys

        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="fit_many", unit="response", leave=False, file=sys.stderr)
    try:
        if jobs == 1 or len(tasks) < 2 or "fork" not in multiprocessing.get_all_start_methods():
            for task in tasks:
                out.append((task[0], _chunk(task)))
                if bar is not None:
                    bar.update(len(task[1]))
        else:
            with multiprocessing.get_context("fork").Pool(min(jobs, len(tasks))) as pool:
                for task, piece in zip(tasks, pool.imap(_chunk, tasks)):
                    out.append((task[0], piece))
                    if bar is not None:
                        bar.update(len(task[1]))
    finally:
        if bar is not None:
            bar.close()
    return out
