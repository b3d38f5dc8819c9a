"""The report's figures as PNG bytes, drawn with matplotlib's Agg backend (no display, no fonts to fetch)."""

import io
import math
from typing import Any

from auralign.report.results import Abilities, DaliPca
from auralign.report.tables import base_row, task_header

# One colour per configuration, the same in every figure (tab10 order).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def colour(names: list[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def _smooth(values: list[float], weight: float) -> list[float]:
    """Exponential moving average (TensorBoard's), skipping NaNs so one bad step does not erase the rest."""
    out, last = [], math.nan
    for v in values:
        if math.isfinite(v):
            last = v if math.isnan(last) else weight * last + (1 - weight) * v
        out.append(last)
    return out


def loss_curves(logs: dict[str, list[dict[str, Any]]], colours: dict[str, str], sharey: bool = True) -> bytes:
    """One panel per configuration: raw loss (light), smoothed loss (dark), stage changes as dashed lines.
    `sharey=False` for losses on different scales (DALI's stages: LM loss, MMD, OT cost, ...)."""
    plt = _pyplot()
    n = len(logs)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.9 * rows), sharey=sharey, squeeze=False)
    for ax, (name, log) in zip(axes.flat, logs.items(), strict=False):
        steps = [r["step"] for r in log]
        losses = [r["loss"] for r in log]
        c = colours.get(name, PALETTE[0])
        ax.plot(steps, losses, color=c, alpha=0.3, linewidth=1)
        if len(log) >= 20:
            ax.plot(steps, _smooth(losses, 0.9), color=c, linewidth=1.8)
        _mark_stages(ax, log)
        ax.set_title(name, fontsize=11)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in axes[:, 0] if sharey else axes.flat:
        ax.set_ylabel("training loss")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return _png(fig)


def _mark_stages(ax: Any, log: list[dict[str, Any]]) -> None:
    """A dashed line where the stage changes (AC -> ACC in AC+ACC) and each stage's name at its start."""
    previous = None
    for row in log:
        stage = row.get("stage")
        if stage != previous and stage is not None:
            if previous is not None:
                ax.axvline(row["step"], color="0.4", linestyle="--", linewidth=1)
            ax.annotate(
                str(stage),
                (row["step"], 1),
                xycoords=("data", "axes fraction"),
                xytext=(3, -12),
                textcoords="offset points",
                fontsize=8,
                color="0.3",
            )
        previous = stage


def ability_changes(abilities: Abilities, colours: dict[str, str]) -> bytes | None:
    """Grouped bars: per task, each configuration's accuracy change from the base (percentage points)."""
    base = base_row(abilities)
    if base is None or not abilities.tasks:
        return None
    configs = [r for r in abilities.rows if r.accuracy is not base]
    if not configs:
        return None
    plt = _pyplot()
    width = 0.8 / len(configs)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(abilities.tasks) + 2), 3.6))
    labelled: set[str] = set()
    for i, row in enumerate(configs):
        for t, task in enumerate(abilities.tasks):
            x = t - 0.4 + width * (i + 0.5)
            value, ref = row.accuracy.get(task), base.get(task)
            if value is None or ref is None:  # no bar at 0: that would read as "no change"
                ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90, color="0.4")
                continue
            label = None if row.config in labelled else row.config
            labelled.add(row.config)
            ax.bar(x, 100 * (value - ref), width, color=colours.get(row.config, PALETTE[0]), label=label)
    ax.axhline(0, color="0.2", linewidth=0.8)
    ax.set_xticks(range(len(abilities.tasks)))
    ax.set_xticklabels([task_header(abilities, t).replace(" (", "\n(") for t in abilities.tasks], fontsize=9)
    ax.set_ylabel("accuracy change from base (pp)")
    ax.grid(axis="y", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(
            handles,
            labels,
            fontsize=8,
            ncol=min(len(labels), 6),
            loc="upper center",
            bbox_to_anchor=(0.5, -0.25),
            frameon=False,
        )
    fig.tight_layout()
    return _png(fig)


def pca_scatter(pca: dict[str, DaliPca]) -> bytes:
    """DALI's Figure 4: per method, each clip's mean audio token and mean image token on the first two
    principal axes of the pooled means (a separate PCA per method)."""
    plt = _pyplot()
    n = len(pca)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.3 * rows), squeeze=False)
    for ax, (method, points) in zip(axes.flat, pca.items(), strict=False):
        for name, xy, c in (("image", points.image, PALETTE[0]), ("audio", points.audio, PALETTE[1])):
            ax.scatter([p[0] for p in xy], [p[1] for p in xy], s=10, alpha=0.7, color=c, label=name)
        title = (
            method if points.centroid_distance is None else f"{method} (gap {points.centroid_distance:.2f})"
        )
        ax.set_title(title, fontsize=10)
        ratio = points.explained_variance_ratio
        if len(ratio) >= 2:
            ax.set_xlabel(f"PC1 ({100 * ratio[0]:.0f} %)", fontsize=8)
            ax.set_ylabel(f"PC2 ({100 * ratio[1]:.0f} %)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8, loc="best")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return _png(fig)
