"""The privacy-utility plot of an evaluation report (matplotlib, imported when used).

:func:`privacy_utility_figure` draws, from an
:class:`~pixveil.evaluate.results.EvaluationResult`, one panel per privacy
measure against utility: one curve per method over its swept parameter, the
unprotected baseline as a star, chance as a dashed line.  The informed
attacker's panel (the CNN re-identification attack) also draws its frontier
(:func:`informed_frontier`) in every context the attack saw.
:func:`pixveil.evaluate.report.write_report` embeds it in the HTML page and
writes it as ``privacy_utility.png``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeGuard

from pixveil.errors import MissingDependencyError
from pixveil.evaluate.results import BASELINE, EvaluationResult, SettingResult

__all__ = ["informed_frontier", "privacy_utility_figure"]

#: Line styles of the informed attacker's frontiers, one per context.
_FRONTIER_STYLES = ("-", "--", ":", "-.")


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError("matplotlib", "eval") from None
    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _finite(value: Any) -> TypeGuard[int | float]:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def _curves(
    ax: Any,
    results: Sequence[SettingResult],
    x: Callable[[SettingResult], Any],
    y: Callable[[SettingResult], Any],
    *,
    colors: Mapping[str, Any],
) -> tuple[list[float], tuple[float, float] | None]:
    """One line per method over its parameter (its first and last values annotated).

    Returns the y values drawn (in %) and the baseline point, which is left to
    the caller (it may lie off the zoomed scale).
    """
    drawn: list[float] = []
    baseline: tuple[float, float] | None = None
    methods: dict[str, list[SettingResult]] = {}
    for r in results:
        methods.setdefault(r.setting.method, []).append(r)
    for method, rows in methods.items():
        pts = [(x(r), y(r), r) for r in rows]
        pts = [(float(a), 100.0 * float(b), r) for a, b, r in pts if _finite(a) and _finite(b)]
        if not pts:
            continue
        if method == BASELINE:
            baseline = (pts[0][0], pts[0][1])
            continue
        parameter = rows[0].setting.parameter
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            marker="o",
            markersize=6,
            linewidth=1.8,
            color=colors[method],
            label=f"{method} ({parameter})" if parameter else method,
        )
        if parameter is not None:
            ends = [pts[0], pts[-1]] if len(pts) > 1 else pts[:1]
            for a, b, r in ends:
                ax.annotate(
                    r.setting.value_text,
                    (a, b),
                    textcoords="offset points",
                    xytext=(5, 5),
                    fontsize=9,
                    color=colors[method],
                    fontweight="bold",
                )
        drawn.extend(p[1] for p in pts)
    return drawn, baseline


def _cnn_by_context(r: SettingResult) -> dict[str, dict[str, Any]]:
    entry = r.attacks.get("cnn")
    if not entry:
        return {}
    by_context: dict[str, dict[str, Any]] = entry.get("contexts") or {
        entry.get("context", "1.2"): entry
    }
    return by_context


def _worst_top1(r: SettingResult) -> float | None:
    """The informed attacker's highest top-1 over the contexts it saw (None if it did not run)."""
    values = [f.get("top1") for f in _cnn_by_context(r).values()]
    finite = [float(v) for v in values if _finite(v)]
    return max(finite) if finite else None


def informed_frontier(
    results: Sequence[SettingResult], context: str
) -> list[tuple[float, float, str]]:
    """The informed attacker's privacy-utility frontier in ``context``.

    Among the protected settings (the baseline left out) whose CNN attack saw
    ``context``, those no other setting beats on both axes: none has a
    whole-image SSIM at least as high *and* an attack top-1 at least as low
    (one of them strictly).  For a utility ``x`` the frontier's height is the
    lowest top-1 any setting reaches with SSIM >= ``x``: the best privacy
    against this attacker that this utility allows, among the settings run.

    Returns
    -------
    list of (ssim, top1, label)
        Sorted by SSIM, increasing (top-1 then increases too); ``top1`` in
        ``[0, 1]``; empty when no setting has both figures.
    """
    points = []
    for r in results:
        if r.setting.is_baseline:
            continue
        top1 = _cnn_by_context(r).get(context, {}).get("top1")
        utility = r.utility.get("ssim")
        if _finite(top1) and _finite(utility):
            points.append((float(utility), float(top1), r.setting.label))
    points.sort(key=lambda p: (-p[0], p[1]))
    frontier: list[tuple[float, float, str]] = []
    best = math.inf
    for point in points:
        if point[1] < best:
            frontier.append(point)
            best = point[1]
    return frontier[::-1]


def _context_name(context: str) -> str:
    return "the whole photo" if context == "full" else f"face box x {context}"


def _draw_frontiers(ax: Any, results: Sequence[SettingResult], contexts: Sequence[str]) -> None:
    """One black step line per context through its frontier settings (hollow squares)."""
    for k, c in enumerate(contexts):
        pts = informed_frontier(results, c)
        if not pts:
            continue
        ax.step(
            [p[0] for p in pts],
            [100.0 * p[1] for p in pts],
            where="pre",
            color="black",
            linestyle=_FRONTIER_STYLES[k % len(_FRONTIER_STYLES)],
            linewidth=1.4,
            marker="s",
            markersize=5,
            fillstyle="none",
            alpha=0.75,
            zorder=4,
            label=f"informed attacker's frontier, sees {_context_name(c)}",
        )


def privacy_utility_figure(result: EvaluationResult) -> bytes | None:
    """The privacy-utility plot as PNG bytes (None when nothing can be plotted).

    Panels: rank-1 re-identification (or same-photo verification without
    identities) against whole-image SSIM; same-photo verification against
    region-only SSIM; and, when the CNN attack ran, the informed attacker's
    top-1 accuracy against whole-image SSIM.  One curve per method over its
    parameter (values annotated), the unprotected baseline as a star, chance
    as a dashed line.  In the informed attacker's panel each method's curve is
    its worst context (the highest top-1 over the contexts the attack saw),
    and the attacker's frontier (:func:`informed_frontier`) is drawn once per
    context as a black step line.
    """
    results = result.results
    has_reid = any(r.reid is not None for r in results)
    has_cnn = any("cnn" in r.attacks for r in results)
    has_ids = any(r.reid is not None and r.reid.rank1 is not None for r in results)
    if not (has_reid or has_cnn) or not result.config.utility:
        return None
    methods = [m for m in dict.fromkeys(r.setting.method for r in results) if m != BASELINE]
    try:
        from matplotlib import colormaps
    except ImportError:
        raise MissingDependencyError("matplotlib", "eval") from None
    cmap = colormaps["tab10"]
    colors = {m: cmap(i % 10) for i, m in enumerate(methods)}
    panels: list[
        tuple[
            str, str, Callable[[SettingResult], Any], Callable[[SettingResult], Any], float | None
        ]
    ] = []
    if has_reid:
        chance = next((r.reid.chance_rank1 for r in results if r.reid is not None), None)
        if has_ids:
            panels.append(
                (
                    "Re-identification (dlib, rank-1) vs utility",
                    "rank-1 identification (%)",
                    lambda r: r.utility.get("ssim"),
                    lambda r: None if r.reid is None else r.reid.rank1,
                    chance,
                )
            )
        panels.append(
            (
                "Same-photo verification (dlib) vs region utility",
                "same-photo verification (%)",
                lambda r: r.utility_region.get("ssim"),
                lambda r: None if r.reid is None else r.reid.same_photo,
                None,
            )
        )
    contexts = list(dict.fromkeys(c for r in results for c in _cnn_by_context(r)))
    if has_cnn:
        chance = next(
            (r.attacks["cnn"].get("chance_top1") for r in results if "cnn" in r.attacks), None
        )
        panels.append(
            (
                "Informed attacker (CNN re-identification) vs utility",
                "attack top-1, worst context (%)" if len(contexts) > 1 else "attack top-1 (%)",
                lambda r: r.utility.get("ssim"),
                _worst_top1,
                chance,
            )
        )
    fig = _figure(5.6 * len(panels), 5.4)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    drawn = 0
    for ax, (title, ylabel, x, y, chance) in zip(axes, panels, strict=True):
        ys, base = _curves(ax, results, x, y, colors=colors)
        drawn += len(ys)
        if y is _worst_top1:
            _draw_frontiers(ax, results, contexts)
        top = max([*ys, 100 * chance if chance is not None else 0.0], default=100.0)
        zoom = base is not None and top < 50 and base[1] > top * 1.5 + 5
        if zoom and base is not None:
            # Every protected point is far below the baseline: zoom on them and
            # pin the baseline to the top edge, with its value.
            y_max = top * 1.25 + 3
            ax.set_ylim(-0.04 * y_max, y_max)
            ax.plot(
                [base[0]],
                [y_max],
                marker="^",
                markersize=13,
                color="black",
                linestyle="none",
                clip_on=False,
                zorder=5,
                label="none (unprotected), off scale",
            )
            ax.annotate(
                f"none: {base[1]:.1f} % ↑",
                (base[0], y_max),
                textcoords="offset points",
                xytext=(-8, -16),
                ha="right",
                fontsize=9,
            )
            title += " (zoomed)"
        else:
            if base is not None:
                ax.plot(
                    [base[0]],
                    [base[1]],
                    marker="*",
                    markersize=16,
                    color="black",
                    linestyle="none",
                    label="none (unprotected)",
                    zorder=5,
                )
            ax.set_ylim(-3, 103)
        if chance is not None:
            ax.axhline(100 * chance, color="grey", linestyle="--", linewidth=1, label="chance")
        xlabel = "region-only SSIM" if "region" in title else "whole-image SSIM"
        ax.set_xlabel(f"{xlabel} (higher = more useful)", fontsize=11)
        ax.set_ylabel(f"{ylabel} (lower = more private)", fontsize=11)
        ax.set_title(title, fontsize=12)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=10)
    if drawn == 0:
        return None
    # One legend for every panel, below them, so that no data is hidden.
    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    fig.legend(
        list(entries.values()),
        list(entries),
        loc="outside lower center",
        ncol=min(len(entries), 4),
        fontsize=10,
        frameon=False,
    )
    return _png(fig)
