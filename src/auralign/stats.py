"""Confidence intervals and verdicts for the miniatures' claims: plain functions over numpy arrays.

A score is an array of shape (seeds, items, ...): every configuration runs with several seeds and scores the same
test items, in the same order, in every seed. `bootstrap` resamples both levels (hierarchical bootstrap): each
resample draws seeds with replacement and, independently, item indices with replacement, the same item indices
for every drawn seed, so an item stays paired with itself across seeds (and across the two arrays of
`paired_difference` / `bootstrap_pair`). The interval is the percentile interval of the resampled statistic;
`Interval.mean` is the statistic of the data as observed.

    ci = paired_difference(lora_scores, base_scores)   # (seeds, items) each
    verdict(ci, expected="greater")                   # "reproduced" | "contradicted" | "inconclusive"
"""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass

import numpy as np

REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"
VERDICTS = (REPRODUCED, CONTRADICTED, INCONCLUSIVE)
EXPECTED = ("greater", "less")

# Resamples drawn per block: bounds the (block, items) count matrix of the vectorised mean.
_BLOCK = 256

Statistic = Callable[[np.ndarray], float]
PairStatistic = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class Interval:
    mean: float  # the statistic of the observed data
    low: float  # percentile bootstrap bounds
    high: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high


# --- input checks -------------------------------------------------------------------------------------------


def _check_values(values: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim < 2:
        raise ValueError(f"{name}: expected shape (seeds, items, ...), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: needs at least one seed and one item, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"{name}: holds NaN or infinite values (first at index {tuple(int(i) for i in bad)})"
        )
    return arr


def _check_pair(a: np.ndarray, b: np.ndarray, *, same_shape: bool) -> tuple[np.ndarray, np.ndarray]:
    a, b = _check_values(a, "a"), _check_values(b, "b")
    if same_shape and a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    if a.shape[:2] != b.shape[:2]:
        raise ValueError(f"a and b must have the same (seeds, items), got {a.shape[:2]} and {b.shape[:2]}")
    return a, b


def _check_options(resamples: int, level: float) -> None:
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")


# --- resampling ---------------------------------------------------------------------------------------------


def _draws(n_seeds: int, n_items: int, resamples: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Blocks of (seed indices (block, seeds), item indices (block, items)); the same stream for every path."""
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, _BLOCK):
        block = min(_BLOCK, resamples - start)
        yield rng.integers(0, n_seeds, (block, n_seeds)), rng.integers(0, n_items, (block, n_items))


def _counts(idx: np.ndarray, n: int) -> np.ndarray:
    """(block, k) indices -> (block, n) how often each index was drawn in each resample."""
    rows = np.arange(idx.shape[0])[:, None] * n
    return np.bincount((idx + rows).ravel(), minlength=idx.shape[0] * n).reshape(idx.shape[0], n)


def _mean_resamples(values: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """The mean of every resample without building it: mean = seed counts @ M @ item counts / (seeds * items),
    M the per-(seed, item) mean over trailing dims (every cell has as many trailing values)."""
    n_seeds, n_items = values.shape[:2]
    cell = values.reshape(n_seeds, n_items, -1).mean(axis=2)
    out = []
    for seed_idx, item_idx in _draws(n_seeds, n_items, resamples, seed):
        by_item = _counts(seed_idx, n_seeds) @ cell  # (block, items): drawn seeds summed per item
        out.append((by_item * _counts(item_idx, n_items)).sum(axis=1) / (n_seeds * n_items))
    return np.concatenate(out)


def _finite(stat: float, where: str) -> float:
    value = float(stat)
    if not np.isfinite(value):
        raise ValueError(f"statistic returned {value} on {where}; it must return a finite number")
    return value


def _loop_resamples(
    arrays: tuple[np.ndarray, ...], statistic: Callable, resamples: int, seed: int
) -> np.ndarray:
    n_seeds, n_items = arrays[0].shape[:2]
    out: list[float] = []
    for seed_idx, item_idx in _draws(n_seeds, n_items, resamples, seed):
        for s, i in zip(seed_idx, item_idx, strict=True):
            out.append(_finite(statistic(*(arr[s][:, i] for arr in arrays)), f"resample {len(out)}"))
    return np.asarray(out)


def _interval(observed: float, stats: np.ndarray, level: float) -> Interval:
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(stats, [tail, 1.0 - tail])
    return Interval(mean=float(observed), low=float(low), high=float(high))


# --- the public functions -----------------------------------------------------------------------------------


def bootstrap(
    values: np.ndarray,
    statistic: Statistic | None = None,
    *,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Hierarchical percentile bootstrap of `statistic(sample)` (default: the mean of everything) over values of
    shape (seeds, items, ...); a sample has shape (seeds, items, ...) too. One seed: the plain item bootstrap."""
    _check_options(resamples, level)
    values = _check_values(values, "values")
    if statistic is None:
        return _interval(values.mean(), _mean_resamples(values, resamples, seed), level)
    observed = _finite(statistic(values), "the observed data")
    return _interval(observed, _loop_resamples((values,), statistic, resamples, seed), level)


def paired_difference(
    a: np.ndarray, b: np.ndarray, *, resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> Interval:
    """Bootstrap of mean(a - b), a and b resampled with the same seeds and items (seeds paired by index)."""
    a, b = _check_pair(a, b, same_shape=True)
    return bootstrap(a - b, resamples=resamples, level=level, seed=seed)  # the mean is linear: resample a - b


def bootstrap_pair(
    a: np.ndarray,
    b: np.ndarray,
    statistic: PairStatistic,
    *,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Bootstrap of `statistic(sample_a, sample_b)`, both drawn with the same seed and item indices; a and b
    share (seeds, items), their trailing dims may differ."""
    _check_options(resamples, level)
    a, b = _check_pair(a, b, same_shape=False)
    observed = _finite(statistic(a, b), "the observed data")
    return _interval(observed, _loop_resamples((a, b), statistic, resamples, seed), level)


# --- verdicts -----------------------------------------------------------------------------------------------


def verdict(interval: Interval, *, expected: str) -> str:
    """A directional claim on a difference: "greater" claims it is > 0, "less" that it is < 0. Reproduced when
    the interval excludes 0 on the claimed side, contradicted when it excludes 0 on the other."""
    if expected not in EXPECTED:
        raise ValueError(f"expected must be one of {EXPECTED}, got {expected!r}")
    above, below = interval.low > 0.0, interval.high < 0.0
    claimed, other = (above, below) if expected == "greater" else (below, above)
    return REPRODUCED if claimed else CONTRADICTED if other else INCONCLUSIVE


def equivalence_verdict(interval: Interval, *, margin: float) -> str:
    """A claim of no difference: reproduced when the whole interval lies within [-margin, margin],
    contradicted when it lies entirely beyond one of them."""
    if not margin > 0.0:
        raise ValueError(f"margin must be > 0, got {margin}")
    if -margin <= interval.low and interval.high <= margin:
        return REPRODUCED
    if interval.high < -margin or interval.low > margin:
        return CONTRADICTED
    return INCONCLUSIVE


def all_verdict(verdicts: Iterable[str]) -> str:
    """A claim made of several comparisons: contradicted if any is, reproduced if all are, else inconclusive."""
    items = list(verdicts)
    if not items:
        raise ValueError("all_verdict: no verdicts given")
    unknown = sorted({v for v in items if v not in VERDICTS})
    if unknown:
        raise ValueError(f"all_verdict: unknown verdicts {unknown}; expected one of {VERDICTS}")
    if CONTRADICTED in items:
        return CONTRADICTED
    return REPRODUCED if all(v == REPRODUCED for v in items) else INCONCLUSIVE
