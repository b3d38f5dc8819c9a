"""The claims a miniature tests, as data, and how per-item scores become cells, differences and verdicts.

docs/replication.md is the protocol; this module is its arithmetic. Scores are arrays of shape (seeds, items)
(trailing dims allowed), one per (measure, row): `Measures = {measure: {row: array}}`. A row evaluated once
(the base, the image captioner) is repeated over the seeds of the row it is compared with (`paired`).

A `Claim` names its primary measure and its comparisons; `judge` returns the report's `claims` entries (the
contract of docs/report.md) and `differences` the same comparisons on the secondary measures.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from auralign import stats

Measures = Mapping[str, Mapping[str, np.ndarray]]
#: a non-mean statistic of one row's resampled values (e.g. the modality gap of its clip means)
Statistic = Callable[[np.ndarray], float]

NOT_TESTED = "not tested"


@dataclass(frozen=True)
class Comparison:
    """`a` minus `b`; a side of several rows is their mean (e.g. audio-visual averaged over the methods)."""

    name: str
    a: tuple[str, ...]
    b: tuple[str, ...]


def compare(a: str | Sequence[str], b: str | Sequence[str], name: str | None = None) -> Comparison:
    left = (a,) if isinstance(a, str) else tuple(a)
    right = (b,) if isinstance(b, str) else tuple(b)
    return Comparison(name or f"{' + '.join(left)} - {' + '.join(right)}", left, right)


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str
    measure: str
    comparisons: tuple[Comparison, ...]
    #: "greater" / "less": every comparison's sign; "within": every comparison inside +-margin
    expected: Literal["greater", "less", "within"]
    margin: float = 0.0
    #: validity checks (ids) this claim depends on
    checks: tuple[str, ...] = ()
    #: measures reported beside the primary one (they never change the verdict)
    secondary: tuple[str, ...] = ()

    def rule(self) -> str:
        if self.expected == "within":
            return f"reproduced if every interval lies inside +-{self.margin:g}"
        sign = "> 0" if self.expected == "greater" else "< 0"
        return f"reproduced if every interval lies {sign}; contradicted if any lies on the other side"


@dataclass(frozen=True)
class Check:
    """A validity check: comparisons expected > 0 (`parts`, each on its own measure) and rows whose mean must
    lie in a range (`ranges`: measure, row, low, high)."""

    id: str
    text: str
    parts: tuple[tuple[str, Comparison], ...] = ()
    ranges: tuple[tuple[str, str, float, float], ...] = ()


def side(measure: Mapping[str, np.ndarray], rows: tuple[str, ...]) -> np.ndarray:
    """The mean of `rows`' arrays (each broadcast to the most seeds among them)."""
    arrays = [np.asarray(measure[r], dtype=float) for r in rows]
    seeds = max(a.shape[0] for a in arrays)
    return np.mean([np.broadcast_to(a, (seeds, *a.shape[1:])) for a in arrays], axis=0)


def paired(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sides over the same seeds: a side evaluated once is repeated for each seed of the other."""
    seeds = max(a.shape[0], b.shape[0])
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"cannot pair scores of shapes {a.shape} and {b.shape}: different test items")
    return np.broadcast_to(a, (seeds, *a.shape[1:])), np.broadcast_to(b, (seeds, *b.shape[1:]))


def interval(
    measure: Mapping[str, np.ndarray], comparison: Comparison, statistic: Statistic | None = None
) -> stats.Interval:
    a, b = paired(side(measure, comparison.a), side(measure, comparison.b))
    if statistic is None:
        return stats.paired_difference(a, b)
    return _undefined_safe(lambda x, y: statistic(x) - statistic(y), a, b)


def cell(values: np.ndarray, statistic: Statistic | None = None) -> stats.Interval:
    """A row's mean (or `statistic`) and interval; NaN where the statistic is undefined (event precision of
    captions that name no source at all), NaN bounds where some resamples leave it undefined."""
    values = np.asarray(values, dtype=float)
    if statistic is None:
        return stats.bootstrap(values)
    return _undefined_safe(lambda x, _: statistic(x), values, values)


def _undefined_safe(
    statistic: Callable[[np.ndarray, np.ndarray], float], a: np.ndarray, b: np.ndarray
) -> stats.Interval:
    observed = float(statistic(a, b))
    if not np.isfinite(observed):
        return stats.Interval(np.nan, np.nan, np.nan)
    try:
        return stats.bootstrap_pair(a, b, statistic)
    except ValueError as exc:
        if "statistic returned" not in str(exc):
            raise
        return stats.Interval(observed, np.nan, np.nan)


def _entry(comparison: Comparison, found: stats.Interval, verdict: str) -> dict[str, Any]:
    return {"name": comparison.name, **_rounded(found), "verdict": verdict}


def _rounded(found: stats.Interval, digits: int = 4) -> dict[str, float | None]:
    """mean / low / high rounded; None where undefined (JSON has no NaN)."""
    return {k: round(v, digits) if np.isfinite(v) else None for k, v in found.to_dict().items()}


def _comparison_verdict(claim: Claim, found: stats.Interval) -> str:
    if claim.expected == "within":
        return stats.equivalence_verdict(found, margin=claim.margin)
    return stats.verdict(found, expected=claim.expected)


def run_checks(
    checks: Sequence[Check],
    measures: Measures,
    *,
    tested: bool,
    statistics: Mapping[str, Statistic] | None = None,
) -> tuple[dict[str, bool], list[dict[str, Any]]]:
    """Which checks passed, and their report entries: each comparison with its interval and label, each
    ranged row with its mean, interval and "passed" / "failed"."""
    statistics = statistics or {}
    passed: dict[str, bool] = {}
    entries = []
    for check in checks:
        parts = []
        for name, comparison in check.parts:
            if name not in measures:
                parts.append({"name": comparison.name, "measure": name, "verdict": f"no {name} scores"})
                continue
            found = interval(measures[name], comparison, statistics.get(name))
            entry = _entry(comparison, found, stats.verdict(found, expected="greater"))
            parts.append({**entry, "measure": name})
        for name, row, low, high in check.ranges:
            found = cell(measures[name][row], statistics.get(name))
            verdict = "passed" if low <= found.mean <= high else "failed"
            parts.append(
                {
                    "name": f"{row} in [{low:g}, {high:g}]",
                    "measure": name,
                    **_rounded(found),
                    "verdict": verdict,
                }
            )
        ok = all(p["verdict"] in ("reproduced", "passed") for p in parts)
        passed[check.id] = ok
        verdict = ("passed" if ok else "failed") if tested else NOT_TESTED
        entries.append({"id": check.id, "check": check.text, "parts": parts, "verdict": verdict})
    return passed, entries


def judge(
    claims: Sequence[Claim],
    measures: Measures,
    *,
    passed: Mapping[str, bool],
    tested: bool,
    statistics: Mapping[str, Statistic] | None = None,
) -> list[dict[str, Any]]:
    """Each claim's comparisons with their intervals and labels, and its verdict ("not tested" unless
    `tested`; "inconclusive (check V1 failed)" when a check it depends on failed)."""
    statistics = statistics or {}
    out = []
    for claim in claims:
        if claim.measure not in measures:  # e.g. a test run that computes no METEOR
            verdict = f"{NOT_TESTED} (no {claim.measure} scores)"
            out.append(
                {
                    "id": claim.id,
                    "claim": claim.claim,
                    "measure": claim.measure,
                    "comparisons": [],
                    "verdict": verdict,
                    "rule": claim.rule(),
                }
            )
            continue
        measure = measures[claim.measure]
        entries, verdicts = [], []
        for comparison in claim.comparisons:
            found = interval(measure, comparison, statistics.get(claim.measure))
            verdicts.append(_comparison_verdict(claim, found))
            entries.append(_entry(comparison, found, verdicts[-1] if tested else NOT_TESTED))
        failed = [c for c in claim.checks if not passed.get(c, False)]
        if not tested:
            verdict = NOT_TESTED
        elif failed:
            verdict = f"inconclusive (check {', '.join(failed)} failed)"
        else:
            verdict = stats.all_verdict(verdicts)
        out.append(
            {
                "id": claim.id,
                "claim": claim.claim,
                "measure": claim.measure,
                "comparisons": entries,
                "verdict": verdict,
                "rule": claim.rule(),
            }
        )
    return out


def differences(
    claims: Sequence[Claim], measures: Measures, statistics: Mapping[str, Statistic] | None = None
) -> list[dict[str, Any]]:
    """Every claim comparison on its primary and secondary measures, as the report's `differences`."""
    statistics = statistics or {}
    out = []
    for claim in claims:
        for name in (claim.measure, *claim.secondary):
            if name not in measures:
                continue
            for comparison in claim.comparisons:
                found = interval(measures[name], comparison, statistics.get(name))
                out.append({"name": f"{claim.id}: {comparison.name}", "measure": name, **_rounded(found)})
    return out


def cell_fields(
    found: Mapping[str, stats.Interval],
) -> tuple[dict[str, float | None], dict[str, list[float]]]:
    """Cells as a results row's `metrics` (means, None where undefined) and `intervals` (where defined)."""
    means = {k: round(v.mean, 4) if np.isfinite(v.mean) else None for k, v in found.items()}
    bounds = {
        k: [round(v.low, 4), round(v.high, 4)] for k, v in found.items() if np.isfinite([v.low, v.high]).all()
    }
    return means, bounds


def f1(recall: float | None, precision: float | None) -> float | None:
    """The event F1 of a row's mean recall and precision (None when precision is undefined)."""
    if recall is None or precision is None:
        return None
    return round(2 * recall * precision / (recall + precision), 4) if recall + precision else 0.0


def precision_pairs(precision: Any) -> np.ndarray:
    """Per-caption event precision as (value or 0, named?) pairs, so that a resample's precision is the mean
    over the captions that name a source (`mean_where_named`) without NaNs in the bootstrap."""
    values = np.asarray(precision, dtype=float)
    named = ~np.isnan(values)
    return np.stack([np.where(named, values, 0.0), named.astype(float)], axis=-1)


def mean_where_named(values: np.ndarray) -> float:
    named = values[..., 1].sum()
    return float(values[..., 0].sum() / named) if named else float("nan")


def verdict_lines(results: Mapping[str, Any]) -> str:
    """The claims' verdicts (and the checks), as printed at the end of a run."""
    lines = [f"verdicts ({results['preset']} preset, seeds {results['seeds']}):"]
    for check in results.get("checks", []):
        lines.append(f"  {check['id']}: {check['verdict']} ({check['check']})")
    for claim in results["claims"]:
        parts = "; ".join(
            f"{c['name']} {c['mean']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}]" for c in claim["comparisons"]
        )
        lines.append(f"  {claim['id']} {claim['claim']}: {claim['verdict']} ({claim['measure']}: {parts})")
    return "\n".join(lines)
