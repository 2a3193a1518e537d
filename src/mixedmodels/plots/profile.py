"""Profile zeta plots (lme4's ``xyplot(profile(m))``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..exceptions import ModelError
from ._common import POINT, REFERENCE, SUBJECT, new_figure, panel_grid, z_value

if TYPE_CHECKING:
    from ..inference.confint import Profile
    from ..results import LinearMixedModelResults


def parameter_labels(result: "LinearMixedModelResults") -> dict[str, str]:
    """Readable names of lme4's profile parameters: ``.sig01`` → ``sd((Intercept)|Subject)``."""
    out, k = {}, 1
    for t in result.terms:
        for label in t.structure.phi_labels(t.group):
            out[f".sig{k:02d}"] = label
            k += 1
    out[".sigma"] = "sigma"
    return out


def _as_profile(obj: Any, level: float) -> tuple["Profile", dict[str, str]]:
    from ..inference.confint import Profile

    if isinstance(obj, Profile):
        return obj, {}
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[1], Profile):
        return obj[1], {}  # what result.profile() returns: (intervals, Profile)
    from ..protocols import MixedFit

    if isinstance(obj, MixedFit):
        return obj.profile(level=level)[1], parameter_labels(obj)
    raise ModelError(f"zeta_plot needs a Profile or a fitted model, not {type(obj).__name__}")


def zeta_plot(
    profile_or_result: "Profile | LinearMixedModelResults | tuple[Any, Profile]",
    *,
    parameters: Sequence[str] | None = None,
    level: float = 0.95,
    labels: dict[str, str] | None = None,
    ncols: int = 3,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Profile ζ against the parameter's value, one panel per parameter, with ±z reference lines.

    ``ζ(ψ) = sign(ψ − ψ̂) √(d(ψ) − d(ψ̂))`` is a straight line through the estimate when the
    likelihood is quadratic (Wald intervals are then fine); curvature shows where they are not.
    The profile interval's ends are where the trace crosses ``±z``.

    Parameters
    ----------
    profile_or_result : Profile, LinearMixedModelResults or tuple
        A :class:`~mixedmodels.inference.confint.Profile`, the ``(intervals, Profile)`` pair that
        ``result.profile()`` returns, or a fitted model (profiled here, at ``level``).
    parameters : sequence of str, optional
        Parameters to draw, by lme4 name (``".sig01"``, ``".sigma"``, ``"Days"``); all by default.
    level : float
        Confidence level of the reference lines (0.95: ζ = ±1.96).
    labels : dict, optional
        Panel titles per parameter name; when a fitted model is given, ``.sigNN`` are named
        ``sd(col|group)`` / ``cor(col1,col2|group)`` automatically.
    ncols : int
        Panels per row.
    figsize : tuple of float, optional
        Figure size in inches; about 3 × 2.6 inches per panel by default.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ModelError
        If the argument is neither a profile nor a fit, the profile is empty, or a requested
        parameter was not profiled.
    """
    z = z_value(level)
    profile, auto = _as_profile(profile_or_result, level)
    names = {**auto, **(labels or {})}
    available = [p for p, pts in profile.traces.items() if pts]
    if not available:
        raise ModelError("the profile has no traces to plot")
    if parameters is not None:
        missing = [p for p in parameters if p not in available]
        if missing:
            raise ModelError(f"parameter(s) {', '.join(map(repr, missing))} not in the profile; it has {', '.join(map(repr, available))}")
        available = list(parameters)
    n = len(available)
    cols = max(1, min(ncols, n))
    nrows = -(-n // cols)
    fig = new_figure(figsize, (0.6 + 3.0 * cols, 0.4 + 2.6 * nrows))
    for ax, name in zip(panel_grid(fig, n, cols, sharex=False, sharey=True), available):
        pts = np.array(profile.traces[name], dtype=float).reshape(-1, 2)
        est = profile.estimates.get(name)
        if est is not None and np.isfinite(est):
            pts = np.vstack([pts, [est, 0.0]])
        pts = pts[np.isfinite(pts).all(axis=1)]
        pts = pts[np.argsort(pts[:, 0], kind="stable")]
        for h in (-z, z):
            ax.axhline(h, color=SUBJECT, linestyle="--", linewidth=0.8)
        ax.axhline(0.0, color=REFERENCE, linewidth=0.6)
        ax.plot(pts[:, 0], pts[:, 1], "-o", color=POINT, markersize=3, linewidth=1.2)
        if est is not None and np.isfinite(est):
            ax.axvline(est, color=REFERENCE, linewidth=0.6, linestyle=":")
        title = names.get(name, name)
        ax.set_title(title if title == name else f"{title}  ({name})", fontsize=9)
        ax.tick_params(labelsize=8)
    fig.supylabel("ζ", fontsize=11)
    return fig
