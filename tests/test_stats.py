"""auralign.stats: the hierarchical bootstrap, its pairing, and the verdict tables."""

import time

import numpy as np
import pytest
import scipy.stats

from auralign.stats import (
    CONTRADICTED,
    INCONCLUSIVE,
    REPRODUCED,
    Interval,
    all_verdict,
    bootstrap,
    bootstrap_pair,
    equivalence_verdict,
    paired_difference,
    verdict,
)


def test_the_95_percent_interval_of_a_normal_mean_covers_it_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(11)
    hits = [bootstrap(rng.normal(size=(1, 200)), resamples=1000, seed=k).contains(0.0) for k in range(300)]
    assert 0.92 <= np.mean(hits) <= 0.98


def test_one_seed_agrees_with_scipys_percentile_bootstrap() -> None:
    # skewed, so the percentile interval differs from the basic one (by about 0.25 standard errors here)
    x = np.random.default_rng(0).lognormal(sigma=1.0, size=60)
    ours = bootstrap(x[None, :], resamples=20000, seed=5)
    ref = scipy.stats.bootstrap(
        (x,), np.mean, method="percentile", n_resamples=20000, rng=np.random.default_rng(6)
    ).confidence_interval
    se = x.std(ddof=1) / np.sqrt(x.size)
    assert ours.mean == pytest.approx(x.mean())
    # Monte-Carlo error of a 2.5 % quantile over 20000 resamples: about 0.02 standard errors
    assert abs(ours.low - ref.low) < 0.1 * se
    assert abs(ours.high - ref.high) < 0.1 * se
    assert ours.high - ours.mean > ours.mean - ours.low  # the right skew shows


def test_the_vectorised_mean_equals_the_resample_by_resample_definition() -> None:
    values = np.random.default_rng(0).normal(size=(3, 40, 2))
    fast = bootstrap(values, resamples=600, seed=9)
    slow = bootstrap(values, lambda sample: float(sample.mean()), resamples=600, seed=9)
    assert fast.mean == pytest.approx(slow.mean, abs=1e-12)
    assert fast.low == pytest.approx(slow.low, abs=1e-12)
    assert fast.high == pytest.approx(slow.high, abs=1e-12)


def test_every_drawn_seed_gets_the_same_item_indices() -> None:
    n_seeds, n_items = 3, 7
    grid = np.stack(np.meshgrid(np.arange(n_seeds), np.arange(n_items), indexing="ij"), axis=-1)
    samples: list[np.ndarray] = []

    def record(sample: np.ndarray) -> float:
        samples.append(sample.copy())
        return 0.0

    bootstrap(grid, record, resamples=50, seed=1)
    assert len(samples) == 51  # the observed data, then each resample
    drawn_seeds = set()
    for sample in samples[1:]:
        assert sample.shape == (n_seeds, n_items, 2)
        assert (sample[:, :, 1] == sample[:1, :, 1]).all()  # one item draw shared by every seed row
        assert (sample[:, :, 0] == sample[:, :1, 0]).all()  # a row is one seed throughout
        drawn_seeds.add(tuple(sample[:, 0, 0]))
    assert len(drawn_seeds) > 5  # seeds are resampled with replacement, not kept


def test_a_paired_difference_sees_a_small_shift_under_huge_shared_item_variance() -> None:
    rng = np.random.default_rng(2)
    items = rng.normal(scale=10.0, size=(1, 500)).repeat(3, axis=0)  # the same item effect in every seed
    b = items + rng.normal(scale=1e-3, size=items.shape)
    a = b + 0.01
    paired = paired_difference(a, b, seed=4)
    assert paired.contains(0.01) and paired.low > 0.0
    assert paired.high - paired.low < 1e-3
    # without the pairing, the shift drowns in the item variance
    unpaired = paired_difference(a, b[:, rng.permutation(500)], seed=4)
    assert unpaired.high - unpaired.low > 1.0 and unpaired.contains(0.0)


def test_a_between_seed_offset_widens_the_interval() -> None:
    rng = np.random.default_rng(7)
    base = rng.normal(size=(3, 300))
    with_offset = base + np.array([-0.5, 0.0, 0.5])[:, None]
    narrow, wide = bootstrap(base, seed=1), bootstrap(with_offset, seed=1)
    assert narrow.mean == pytest.approx(wide.mean)  # the offsets sum to 0
    assert (wide.high - wide.low) > 3 * (narrow.high - narrow.low)


def test_bootstrap_pair_resamples_both_arrays_with_the_same_indices() -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(size=(3, 60, 4))
    b = a + 1.0  # a centroid distance that is exactly 2 for any paired resample

    def centroid_distance(x: np.ndarray, y: np.ndarray) -> float:
        return float(np.linalg.norm(x.mean(axis=(0, 1)) - y.mean(axis=(0, 1))))

    ci = bootstrap_pair(a, b, centroid_distance, resamples=200, seed=3)
    assert ci.mean == pytest.approx(2.0)
    assert ci.low == pytest.approx(2.0) and ci.high == pytest.approx(2.0)


def test_the_same_seed_gives_the_same_interval_and_another_seed_another() -> None:
    values = np.random.default_rng(8).normal(size=(3, 100))
    assert bootstrap(values, seed=12) == bootstrap(values, seed=12)
    assert bootstrap(values, seed=12) != bootstrap(values, seed=13)


def test_the_default_statistic_is_fast() -> None:
    values = np.random.default_rng(0).normal(size=(3, 1000))
    start = time.perf_counter()
    bootstrap(values, resamples=2000)
    assert time.perf_counter() - start < 1.0


def test_interval_to_dict_and_contains() -> None:
    ci = Interval(mean=0.5, low=0.25, high=0.75)
    assert ci.to_dict() == {"mean": 0.5, "low": 0.25, "high": 0.75}
    assert ci.contains(0.25) and ci.contains(0.75) and not ci.contains(0.8)


@pytest.mark.parametrize(
    ("low", "high", "expected", "answer"),
    [
        (0.1, 0.3, "greater", REPRODUCED),
        (-0.3, -0.1, "greater", CONTRADICTED),
        (-0.1, 0.3, "greater", INCONCLUSIVE),
        (0.0, 0.3, "greater", INCONCLUSIVE),  # touching 0 does not exclude it
        (-0.3, -0.1, "less", REPRODUCED),
        (0.1, 0.3, "less", CONTRADICTED),
        (-0.3, 0.1, "less", INCONCLUSIVE),
    ],
)
def test_verdict_table(low: float, high: float, expected: str, answer: str) -> None:
    assert verdict(Interval((low + high) / 2, low, high), expected=expected) == answer


@pytest.mark.parametrize(
    ("low", "high", "answer"),
    [
        (-0.05, 0.05, REPRODUCED),
        (-0.1, 0.1, REPRODUCED),  # the margin itself is inside
        (-0.05, 0.2, INCONCLUSIVE),
        (-0.3, 0.3, INCONCLUSIVE),
        (0.15, 0.4, CONTRADICTED),
        (-0.4, -0.15, CONTRADICTED),
        (0.05, 0.15, INCONCLUSIVE),  # straddles +margin
    ],
)
def test_equivalence_verdict_table(low: float, high: float, answer: str) -> None:
    assert equivalence_verdict(Interval((low + high) / 2, low, high), margin=0.1) == answer


@pytest.mark.parametrize(
    ("verdicts", "answer"),
    [
        ([REPRODUCED, REPRODUCED, REPRODUCED], REPRODUCED),
        ([REPRODUCED, INCONCLUSIVE, REPRODUCED], INCONCLUSIVE),
        ([REPRODUCED, CONTRADICTED, INCONCLUSIVE], CONTRADICTED),
        ([CONTRADICTED], CONTRADICTED),
        ([INCONCLUSIVE, INCONCLUSIVE], INCONCLUSIVE),
    ],
)
def test_all_verdict_table(verdicts: list[str], answer: str) -> None:
    assert all_verdict(verdicts) == answer


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.zeros(5), r"values: expected shape \(seeds, items, \.\.\.\), got shape \(5,\)"),
        (np.zeros((0, 5)), r"values: needs at least one seed and one item, got shape \(0, 5\)"),
        (np.zeros((3, 0)), r"values: needs at least one seed and one item, got shape \(3, 0\)"),
        (
            np.array([[0.0, np.nan], [1.0, 2.0]]),
            r"values: holds NaN or infinite values \(first at index \(0, 1\)\)",
        ),
    ],
)
def test_bad_values_are_named(values: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bootstrap(values)


def test_bad_pairs_options_and_statistics_are_named() -> None:
    ok = np.zeros((2, 4))
    with pytest.raises(ValueError, match=r"a and b must have the same shape, got \(2, 4\) and \(2, 5\)"):
        paired_difference(ok, np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"same \(seeds, items\), got \(2, 4\) and \(3, 4\)"):
        bootstrap_pair(ok, np.zeros((3, 4, 2)), lambda x, y: 0.0)
    with pytest.raises(ValueError, match=r"b: holds NaN"):
        paired_difference(ok, np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="resamples must be >= 1, got 0"):
        bootstrap(ok, resamples=0)
    with pytest.raises(ValueError, match="level must lie strictly between 0 and 1, got 95"):
        bootstrap(ok, level=95)
    with pytest.raises(ValueError, match="statistic returned nan on the observed data"):
        bootstrap(ok, lambda x: float("nan"))
    with pytest.raises(ValueError, match="expected must be one of"):
        verdict(Interval(0, 0, 0), expected="bigger")
    with pytest.raises(ValueError, match="margin must be > 0, got 0"):
        equivalence_verdict(Interval(0, 0, 0), margin=0)
    with pytest.raises(ValueError, match="no verdicts given"):
        all_verdict([])
    with pytest.raises(ValueError, match=r"unknown verdicts \['maybe'\]"):
        all_verdict([REPRODUCED, "maybe"])
