"""The reference grid of emmeans 1.8 and the marginal averages over it (see :mod:`.emmeans`).

:func:`reference_grid` builds emmeans' ``ref_grid``: every variable of the fixed effects is a
dimension — a factor with its levels, a number used as a factor (``factor(x)``) with its sorted
distinct values, a number with at most two distinct values with both (emmeans' default
``cov.keep = "2"``), any other number at its mean (``cov.reduce = mean``) — and the grid's rows
are all combinations, the first variable varying fastest, as R's ``expand.grid``. Their
fixed-effects rows ``X`` are rebuilt by the model's own formula spec, so transforms (``log(x)``,
``poly(x, 2)``, ``scale(x)``) are evaluated at the grid's values with the fitted data's
parameters. :func:`marginal_linfct` averages those rows over the variables not asked for, with
emmeans' weights. Non-estimable linear functions are found with the null space of the full
(rank-deficient) model matrix, as ``estimability::nonest.basis`` and ``is.estble``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..exceptions import ModelError

if TYPE_CHECKING:
    from .emmeans import FitView

#: emmeans' ``rg.limit``: largest reference grid built.
RG_LIMIT = 10_000
#: ``estimability::is.estble``'s tolerance (emmeans' ``estble.tol``).
ESTIMABLE_TOL = 1e-8
#: emmeans' ``weights`` options.
WEIGHTS = ("equal", "proportional", "outer", "cells", "flat")


def r_label(value: Any) -> str:
    """A grid value as R's ``as.character`` prints it (15 significant digits for numbers)."""
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "NA"
        if math.isinf(v):
            return "Inf" if v > 0 else "-Inf"
        return format(v, ".15g")
    return str(value)


@dataclass(frozen=True)
class GridVariable:
    """One dimension of the reference grid.

    Attributes
    ----------
    name : str
        The data column.
    kind : str
        ``"factor"``, ``"coerced"`` (a number used as a factor), ``"kept"`` (a number with at most
        two distinct values, kept at both) or ``"covariate"`` (a number at its mean).
    values : list
        The grid values in the data's own type (levels, distinct values, or the mean).
    """

    name: str
    kind: str
    values: list

    @property
    def labels(self) -> list[str]:
        """The values as R prints them."""
        return [r_label(v) for v in self.values]

    @property
    def is_factor(self) -> bool:
        """Counted in the grid's cell frequencies (emmeans' ``.wgt.``): everything but a reduced covariate."""
        return self.kind != "covariate"


@dataclass(frozen=True)
class ReferenceGrid:
    """emmeans' reference grid of a fit.

    Attributes
    ----------
    variables : list of GridVariable
    frame : pandas.DataFrame
        The grid's rows (first variable fastest), columns in the data's types.
    X : numpy.ndarray
        Full fixed-effects rows of the grid (dropped columns included), ``rows × p_full``.
    counts : numpy.ndarray
        Observations in each grid cell (emmeans' ``.wgt.``).
    nbasis : numpy.ndarray or None
        Orthonormal basis of the null space of the full model matrix (None: full rank).
    term_variables : list of frozenset
        The variables of each fixed-effects term (for emmeans' note on interactions).
    """

    variables: list[GridVariable]
    frame: pd.DataFrame
    X: np.ndarray
    counts: np.ndarray
    nbasis: np.ndarray | None
    term_variables: list[frozenset[str]]

    @property
    def dims(self) -> tuple[int, ...]:
        """Number of values of each variable."""
        return tuple(len(v.values) for v in self.variables)

    def variable(self, name: str) -> GridVariable:
        """The grid variable called ``name``."""
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(name)

    def estimable(self, x: np.ndarray, tol: float = ESTIMABLE_TOL) -> bool:
        """``estimability::is.estble``: ``x`` (over the full columns) is orthogonal to the null space."""
        if self.nbasis is None:
            return True
        x = np.where(np.isnan(x), 0.0, x)
        chk = self.nbasis.T @ x
        ssq = float(x @ x)
        if ssq < tol:
            ssq = 1.0
        return float(chk @ chk) < tol * ssq


def _sort_unique(values: np.ndarray) -> list:
    return sorted(pd.unique(values).tolist())


def classify(view: FitView) -> list[GridVariable]:
    """The grid variables of a fit, as emmeans' ``ref_grid`` classifies the predictors."""
    frame = view.frame
    out = []
    for name in view.variables:
        col = frame[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            out.append(GridVariable(name, "factor", list(col.cat.remove_unused_categories().cat.categories)))
        elif pd.api.types.is_bool_dtype(col.dtype):
            out.append(GridVariable(name, "factor", _sort_unique(col.to_numpy())))
        elif not pd.api.types.is_numeric_dtype(col.dtype):
            levels = view.factor_levels.get(name)
            out.append(GridVariable(name, "factor", list(levels) if levels else _sort_unique(col.to_numpy())))
        elif name in view.coerced:
            out.append(GridVariable(name, "coerced", _sort_unique(col.to_numpy())))
        else:
            distinct = _sort_unique(col.to_numpy())
            if len(distinct) > 2:
                values = col.to_numpy(dtype=float)
                out.append(GridVariable(name, "covariate", [math.fsum(values) / values.size]))
            else:
                out.append(GridVariable(name, "kept", distinct))
    return out


def _grid_column(var: GridVariable, template: pd.Series, codes: np.ndarray) -> pd.Series:
    """Grid values of one variable in the type of its data column."""
    if isinstance(template.dtype, pd.CategoricalDtype):
        cats = template.cat.categories
        pos = np.array([cats.get_loc(v) for v in var.values], dtype=np.int64)
        return pd.Series(pd.Categorical.from_codes(pos[codes], categories=cats, ordered=template.cat.ordered))
    values = np.empty(len(var.values), dtype=object)
    values[:] = var.values
    out = pd.Series(values[codes])
    if pd.api.types.is_numeric_dtype(template.dtype) or pd.api.types.is_bool_dtype(template.dtype):
        out = out.astype(float if var.kind == "covariate" else template.dtype)
    return out


def _codes(var: GridVariable, column: pd.Series) -> np.ndarray:
    """Position of each data row's value among the grid values of ``var`` (0 for a covariate)."""
    if not var.is_factor:
        return np.zeros(len(column), dtype=np.int64)
    index = {v: i for i, v in enumerate(var.values)}
    return np.array([index[v] for v in column.tolist()], dtype=np.int64)


def _null_basis(X: np.ndarray, kept: np.ndarray) -> np.ndarray | None:
    """Orthonormal basis of ``{b : X b = 0}`` when columns were dropped as dependent."""
    p = X.shape[1]
    dropped = np.setdiff1d(np.arange(p), kept)
    if dropped.size == 0:
        return None
    coef = np.linalg.lstsq(X[:, kept], X[:, dropped], rcond=None)[0]
    N = np.zeros((p, dropped.size))
    N[kept] = -coef
    N[dropped, np.arange(dropped.size)] = 1.0
    return np.linalg.qr(N)[0]


def reference_grid(view: FitView, rg_limit: int = RG_LIMIT) -> ReferenceGrid:
    """emmeans' ``ref_grid`` of a fit (see the module docstring).

    Raises
    ------
    ModelError
        If the grid would have more than ``rg_limit`` rows (as emmeans' ``rg.limit``).
    """
    variables = classify(view)
    dims = tuple(len(v.values) for v in variables)
    size = int(np.prod(dims)) if dims else 1
    if size > rg_limit:
        raise ModelError(
            f"the reference grid would have {size} rows, more than the limit of {rg_limit} "
            f"(dimensions {', '.join(f'{v.name}: {len(v.values)}' for v in variables)})"
        )
    multi = np.unravel_index(np.arange(size), dims, order="F") if dims else ()
    frame = pd.DataFrame({v.name: _grid_column(v, view.frame[v.name], multi[i]) for i, v in enumerate(variables)})
    if not variables:
        frame = pd.DataFrame(index=range(1))
    X = view.model_matrix(frame)
    if X.shape[0] != size:
        raise ModelError(f"the fixed-effects formula gave {X.shape[0]} rows for a reference grid of {size}")
    if variables:
        data_codes = [_codes(v, view.frame[v.name]) for v in variables]
        cells = np.ravel_multi_index(data_codes, dims, order="F")
        counts = np.bincount(cells, minlength=size).astype(float)
    else:
        counts = np.array([float(len(view.frame))])
    nbasis = None
    if len(view.kept_columns) < X.shape[1]:
        nbasis = _null_basis(view.model_matrix(view.frame), np.asarray(view.kept_columns))
    return ReferenceGrid(variables, frame, X, counts, nbasis, view.term_variables)


def find_nests(grid: ReferenceGrid) -> dict[str, list[str]]:
    """emmeans' ``.find_nests``: which grid variables are nested in which (``{"arm": ["visit"]}``).

    A variable is nested in another when each of its levels occurs (in the data) with a single
    level of the other, or when it has no main effect and enters the model only in interactions
    in which, as R codes terms, it gets contrasts and the other variable does not
    (``visit + visit:arm``: arm is nested in visit).
    """
    names = [v.name for v in grid.variables]
    nms = [v.name for v in grid.variables if len(v.values) > 1]
    result: dict[str, list[str]] = {}
    if len(nms) < 2:
        return result
    codes = np.unravel_index(np.arange(grid.X.shape[0]), grid.dims, order="F")
    present = grid.counts > 0
    for nm in nms:
        a = codes[names.index(nm)][present]
        excl = {k for k, inside in result.items() if nm in inside}
        within = []
        for other in (n for n in nms if n != nm and n not in excl):
            b = codes[names.index(other)][present]
            if max(len(set(b[a == x].tolist())) for x in range(len(grid.variable(nm).values))) == 1:
                within.append(other)
        if within:
            result[nm] = within
    terms = list(grid.term_variables)

    def code(i: int, v: str) -> int:  # R's TermCode: 1 with contrasts, 2 without
        rest = terms[i] - {v}
        return 1 if not rest or any(rest <= t for t in terms[:i]) else 2

    for nm in (n for n in nms if frozenset([n]) not in terms):
        with_contrasts = [i for i, t in enumerate(terms) if nm in t and code(i, nm) == 1]
        candidates = with_contrasts or [i for i, t in enumerate(terms) if nm in t]
        sets = [[v for v in nms if v != nm and v in terms[i] and code(i, v) == 2] for i in candidates]
        if len({len(x) for x in sets}) > 1:  # emmeans' .strip.supersets (R's apply gave a list)
            sets = sorted(sets, key=len)
            sets = [x for k, x in enumerate(sets) if not any(set(y) <= set(x) for y in sets[:k])]
        nst = list(dict.fromkeys(v for x in sets for v in x))
        if nst:
            result[nm] = list(dict.fromkeys(result.get(nm, []) + nst))
    for nm in list(result):
        result[nm] = list(dict.fromkeys([v for c in result[nm] for v in result.get(c, [])] + result[nm]))
    return {nm: inside for nm, inside in result.items() if nm not in inside}


def check_nesting(grid: ReferenceGrid, factors: list[str]) -> list[str]:
    """emmeans' note on a nesting structure; an error where emmeans' nested means would differ from these.

    With every combination of a nested factor and its containers in the data, averaging over the
    nested factor is what emmeans does too; asking for a nested factor without its containers
    (emmeans adds them) or a structure with empty nests (emmeans averages over existing nests
    only) is not implemented.
    """
    nests = find_nests(grid)
    if not nests:
        return []
    text = ", ".join(f"{nm} %in% " + (inside[0] if len(inside) == 1 else "(" + "*".join(inside) + ")") for nm, inside in nests.items())
    names = [v.name for v in grid.variables]
    for nm, inside in nests.items():
        if nm in factors and not set(inside) <= set(factors):
            raise ModelError(
                f"{nm} is nested in {', '.join(inside)} in this model ({text}); ask for its means within "
                f"{'each level' if len(inside) == 1 else 'each combination'} of {', '.join(inside)}, e.g. specs "
                f"'{nm} | {', '.join(inside)}'"
            )
        keep = sorted(names.index(v) for v in [nm] + inside)
        cells = grid.counts.reshape(grid.dims, order="F").sum(axis=tuple(i for i in range(len(names)) if i not in keep))
        if np.any(cells == 0):
            raise ModelError(
                f"nesting structure {text} with levels of {nm} missing from some levels of {', '.join(inside)}: "
                "emmeans' means over the existing nests only are not implemented"
            )
    return [f"NOTE: A nesting structure was detected in the fitted model: {text}"]


@dataclass(frozen=True)
class Marginal:
    """Linear functions of emmeans' marginal means over a reference grid.

    Attributes
    ----------
    factors : list of str
        The variables kept (specs then by), in order.
    levels : list of list
        Their values; row ``i`` of ``linfct`` is the combination ``i`` with the first factor fastest.
    linfct : numpy.ndarray
        ``combinations × p_full``.
    averaged_over : list of str
        Variables with more than one value averaged over (emmeans' ``avgd.over``).
    """

    factors: list[str]
    levels: list[list]
    linfct: np.ndarray
    averaged_over: list[str]


def marginal_linfct(grid: ReferenceGrid, factors: Sequence[str], weights: str | Sequence[float] = "equal") -> Marginal:
    """emmeans' ``emmeans()`` averaging: the grid's rows averaged over the variables not in ``factors``.

    Parameters
    ----------
    grid : ReferenceGrid
    factors : sequence of str
        Variables of the grid to keep (specs, then by-variables).
    weights : str or sequence of float
        ``"equal"`` (emmeans' default), ``"proportional"`` (the marginal frequencies of the
        combinations averaged over), ``"outer"`` (products of each variable's marginal
        frequencies), ``"cells"`` (each mean a frequency-weighted average of its own cells),
        ``"flat"`` (equal weights over the non-empty cells), or one weight per combination
        averaged over (first variable fastest).
    """
    names = [v.name for v in grid.variables]
    dims = grid.dims
    use = [names.index(f) for f in factors]
    other = [i for i in range(len(dims)) if i not in use]
    avgd = [names[i] for i in other if dims[i] > 1]
    row_idx = np.arange(int(np.prod(dims)) if dims else 1).reshape(dims if dims else (1,), order="F")
    n_use = int(np.prod([dims[i] for i in use])) if use else 1
    index = np.transpose(row_idx, use + other).reshape((n_use, -1), order="F") if dims else row_idx.reshape(1, 1)
    W = grid.counts[index]  # cell frequencies, one row per kept combination
    if isinstance(weights, str):
        if weights not in WEIGHTS:
            raise ModelError(f"unknown weights {weights!r}; use one of {', '.join(WEIGHTS)} or a sequence of numbers")
        if not avgd or weights == "equal":
            K = np.ones_like(W)
        elif weights == "proportional":
            K = np.broadcast_to(W.sum(axis=0), W.shape)
        elif weights == "outer":
            K = np.broadcast_to(_outer_weights(W, [dims[i] for i in other]), W.shape)
        elif weights == "cells":
            K = W
        else:  # flat
            K = (W > 0).astype(float)
    else:
        w = np.asarray(weights, dtype=float).reshape(-1)
        if w.size != index.shape[1]:
            raise ModelError(f"weights: {index.shape[1]} numbers needed (one per combination averaged over), got {w.size}")
        K = np.broadcast_to(w, W.shape)
    total = K.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        K = np.where(total > 1e-8, K / np.where(total > 0, total, 1.0), np.nan)
    linfct = np.einsum("uo,uop->up", K, grid.X[index])
    levels = [list(grid.variables[i].values) for i in use]
    return Marginal(list(factors), levels, linfct, avgd)


def _outer_weights(W: np.ndarray, other_dims: list[int]) -> np.ndarray:
    """emmeans' ``outer`` weights: ``N ∏_d (marginal_d / N)`` over the variables averaged over."""
    table = W.sum(axis=0).reshape(other_dims, order="F")
    N = table.sum()
    w = np.array(N)
    for d in range(table.ndim):
        axes = tuple(a for a in range(table.ndim) if a != d)
        w = np.multiply.outer(w, table.sum(axis=axes) / N)
    return np.asarray(w).reshape(-1, order="F")
