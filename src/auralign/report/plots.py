"""The report's figures as PNG bytes, drawn with matplotlib's Agg backend (no display, no fonts to fetch)."""

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from auralign.report.results import Abilities, Captioning, Dali, DaliPca
from auralign.report.tables import (
    METRIC_LABELS,
    base_row,
    dali_keys,
    metric_columns,
    primary_metric,
    task_header,
)

# One colour per configuration, the same in every figure (tab10 order).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
#: DALI's bars are coloured by what the captioner was given
INPUT_COLOURS = {"audio": PALETTE[1], "audio-visual": PALETTE[4], "image": PALETTE[0], "none": PALETTE[7]}


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
            interval = row.intervals.get(task)
            if interval:  # the configuration's interval, shifted by the base's mean
                _error_bar(ax, x, 100 * (interval[0] - ref), 100 * (interval[1] - ref), width)
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


def _error_bar(ax: Any, x: float, low: float, high: float, width: float) -> None:
    """A 95 % interval drawn from its bounds (matplotlib's yerr cannot show a mean outside its interval)."""
    ax.vlines(x, low, high, color="0.15", linewidth=1.1, zorder=3)
    ax.hlines([low, high], x - width / 4, x + width / 4, color="0.15", linewidth=1.1, zorder=3)


@dataclass(frozen=True)
class Bar:
    label: str
    mean: float | None
    interval: Sequence[float] | None
    colour: str


def interval_bars(bars: list[Bar], ylabel: str, legend: dict[str, str] | None = None) -> bytes:
    """One bar per row (its mean), with its 95 % interval as an error bar; n/a where there is no mean."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(bars) + 2), 3.6))
    for x, bar in enumerate(bars):
        if bar.mean is None:  # no bar at 0: that would read as a score of 0
            ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90, color="0.4")
            continue
        ax.bar(x, bar.mean, 0.7, color=bar.colour)
        if bar.interval:
            _error_bar(ax, x, bar.interval[0], bar.interval[1], 0.7)
    ax.axhline(0, color="0.2", linewidth=0.8)
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels([b.label for b in bars], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    if legend:
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in legend.values()]
        ax.legend(handles, list(legend), fontsize=8, frameon=False)
    fig.tight_layout()
    return _png(fig)


def captioning_bars(captioning: Captioning, colours: dict[str, str]) -> bytes | None:
    """The primary captioning metric per configuration with its interval; None unless some row has one."""
    key = primary_metric(metric_columns(captioning))
    if key is None or not any(r.intervals.get(key) for r in captioning.rows):
        return None
    bars = [
        Bar(r.config, r.metrics.get(key), r.intervals.get(key), colours.get(r.config, PALETTE[0]))
        for r in captioning.rows
    ]
    return interval_bars(bars, f"{METRIC_LABELS.get(key, key)} (mean, 95 % interval)")


def dali_bars(dali: Dali) -> bytes | None:
    """The primary metric per (method, input), baselines last, coloured by input; None without intervals."""
    rows = dali.rows + dali.baselines
    key = primary_metric(dali_keys(dali))
    if key is None or not any(r.intervals.get(key) for r in rows):
        return None
    bars = [
        Bar(
            f"{r.method}\n{r.input}",
            r.metrics.get(key),
            r.intervals.get(key),
            INPUT_COLOURS.get(r.input, PALETTE[2]),
        )
        for r in rows
    ]
    inputs = dict.fromkeys(r.input for r in rows)
    legend = {i: INPUT_COLOURS.get(i, PALETTE[2]) for i in inputs}
    return interval_bars(bars, f"{METRIC_LABELS.get(key, key)} (mean, 95 % interval)", legend)


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
