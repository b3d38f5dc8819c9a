"""The arithmetic of docs/replication.md: per-item scores -> intervals, comparisons, checks and verdicts."""

import numpy as np
import pytest

from auralign.experiments import replication as rep
from auralign.experiments.dali import centroid_gap

RNG = np.random.default_rng(0)
ITEMS = 300


def scores(mean: float, seeds: int = 3, spread: float = 0.2) -> np.ndarray:
    return mean + spread * RNG.standard_normal((seeds, ITEMS))


def claim(expected: str = "greater", margin: float = 0.0, checks: tuple[str, ...] = ()) -> rep.Claim:
    return rep.Claim("X1", "A beats B", "m", (rep.compare("A", "B"),), expected, margin=margin, checks=checks)


@pytest.mark.parametrize(
    ("a", "expected", "verdict"),
    [
        (0.6, "greater", "reproduced"),
        (0.4, "greater", "contradicted"),
        (0.5, "greater", "inconclusive"),
        (0.4, "less", "reproduced"),
        (0.5, "within", "reproduced"),
        (0.8, "within", "contradicted"),
    ],
)
def test_a_claims_verdict_follows_its_interval(a: float, expected: str, verdict: str) -> None:
    base = scores(0.5)
    measures = {"m": {"A": base + (a - 0.5), "B": base}}
    if a == 0.5:  # no true difference: independent noise around the same mean
        measures["m"]["A"] = scores(0.5)
    (found,) = rep.judge([claim(expected, margin=0.05)], measures, passed={}, tested=True)
    assert found["verdict"] == verdict
    (comparison,) = found["comparisons"]
    assert comparison["name"] == "A - B" and comparison["verdict"] == verdict
    assert comparison["low"] <= comparison["mean"] <= comparison["high"]
    assert comparison["mean"] == pytest.approx(float(np.mean(measures["m"]["A"] - base)), abs=1e-4)


def test_not_tested_and_failed_checks_override_the_verdict() -> None:
    measures = {"m": {"A": scores(0.9), "B": scores(0.1)}}
    (quick,) = rep.judge([claim()], measures, passed={}, tested=False)
    assert quick["verdict"] == "not tested" and quick["comparisons"][0]["verdict"] == "not tested"
    (failed,) = rep.judge([claim(checks=("V1",))], measures, passed={"V1": False}, tested=True)
    assert failed["verdict"] == "inconclusive (check V1 failed)"
    assert failed["comparisons"][0]["verdict"] == "reproduced"  # the interval itself is still reported
    (missing,) = rep.judge([claim()], {"other": {}}, passed={}, tested=True)
    assert missing["verdict"] == "not tested (no m scores)" and missing["comparisons"] == []


def test_a_claim_over_several_comparisons_needs_all_of_them() -> None:
    measures = {"m": {"A": scores(0.9), "B": scores(0.1), "C": scores(0.89)}}
    several = rep.Claim(
        "X2", "A beats B and C", "m", (rep.compare("A", "B"), rep.compare("A", "C")), "greater"
    )
    (found,) = rep.judge([several], measures, passed={}, tested=True)
    assert [c["verdict"] for c in found["comparisons"]] == ["reproduced", "inconclusive"]
    assert found["verdict"] == "inconclusive"


def test_a_row_evaluated_once_is_paired_with_every_seed() -> None:
    base = scores(0.5, seeds=1)
    tuned = np.repeat(base, 3, axis=0) + np.array([[0.1], [0.2], [0.3]])
    found = rep.interval({"A": tuned, "B": base}, rep.compare("A", "B"))
    assert found.mean == pytest.approx(0.2)
    assert found.low >= 0.1 - 1e-9 and found.high <= 0.3 + 1e-9  # only the seeds vary the difference
    with pytest.raises(ValueError, match="different test items"):
        rep.paired(np.zeros((1, 4)), np.zeros((1, 5)))


def test_a_side_of_several_rows_is_their_mean() -> None:
    x, y = scores(0.2), scores(0.6)
    np.testing.assert_allclose(rep.side({"x": x, "y": y}, ("x", "y")), (x + y) / 2)
    comparison = rep.Comparison("mean", ("x", "y"), ("x",))
    assert rep.interval({"x": x, "y": y}, comparison).mean == pytest.approx(float(np.mean((y - x) / 2)))


def test_checks_pass_on_comparisons_and_ranges() -> None:
    measures = {"m": {"A": scores(0.7), "base": scores(0.3, seeds=1)}}
    checks = (
        rep.Check("V1", "A moved", parts=(("m", rep.compare("A", "base")),)),
        rep.Check("V2", "base in range", ranges=(("m", "base", 0.4, 0.9),)),
        rep.Check("V3", "missing", parts=(("absent", rep.compare("A", "base")),)),
    )
    passed, entries = rep.run_checks(checks, measures, tested=True)
    assert passed == {"V1": True, "V2": False, "V3": False}
    assert [e["verdict"] for e in entries] == ["passed", "failed", "failed"]
    assert entries[1]["parts"][0]["name"] == "base in [0.4, 0.9]"
    assert entries[2]["parts"][0]["verdict"] == "no absent scores"
    _, quick = rep.run_checks(checks, measures, tested=False)
    assert {e["verdict"] for e in quick} == {"not tested"}


def test_differences_cover_every_comparison_on_every_available_measure() -> None:
    measures = {"m": {"A": scores(0.6), "B": scores(0.5)}, "s": {"A": scores(1.0), "B": scores(0.0)}}
    two = rep.Claim("X1", "A beats B", "m", (rep.compare("A", "B"),), "greater", secondary=("s", "absent"))
    found = rep.differences([two], measures)
    assert [(d["name"], d["measure"]) for d in found] == [("X1: A - B", "m"), ("X1: A - B", "s")]
    assert found[1]["mean"] == pytest.approx(1.0, abs=0.05)


def test_event_precision_pairs_give_the_mean_over_captions_that_name_something() -> None:
    precision = np.array([1.0, np.nan, 0.5, 0.0, np.nan])
    pairs = rep.precision_pairs(precision)
    assert not np.isnan(pairs).any()
    assert rep.mean_where_named(pairs) == pytest.approx(np.nanmean(precision))
    assert np.isnan(rep.mean_where_named(rep.precision_pairs(np.array([np.nan]))))


def test_a_statistic_claim_compares_the_modality_gaps() -> None:
    """D4's arithmetic: clip means (seeds, clips, 2, dim); a shifted audio cloud has the larger gap."""
    image = RNG.standard_normal((3, 80, 1, 4))
    aligned = np.concatenate([image + 0.1 * RNG.standard_normal(image.shape), image], axis=2)
    apart = np.concatenate([image + 3.0, image], axis=2)
    assert centroid_gap(apart) == pytest.approx(6.0, rel=0.01)  # |(3, 3, 3, 3)|
    gap = rep.Claim("D4", "gap", "gap", (rep.compare("contrastive", "MMD"),), "greater")
    measures = {"gap": {"contrastive": apart, "MMD": aligned}}
    (found,) = rep.judge([gap], measures, passed={}, tested=True, statistics={"gap": centroid_gap})
    assert found["verdict"] == "reproduced"
    assert found["comparisons"][0]["mean"] == pytest.approx(
        centroid_gap(apart) - centroid_gap(aligned), abs=1e-4
    )


def test_verdict_lines_print_checks_then_claims() -> None:
    measures = {"m": {"A": scores(0.9), "B": scores(0.1)}}
    _, check_entries = rep.run_checks(
        [rep.Check("V1", "A moved", parts=(("m", rep.compare("A", "B")),))], measures, tested=True
    )
    results = {
        "preset": "full",
        "seeds": [0, 1, 2],
        "checks": check_entries,
        "claims": rep.judge([claim()], measures, passed={}, tested=True),
    }
    lines = rep.verdict_lines(results).splitlines()
    assert lines[0] == "verdicts (full preset, seeds [0, 1, 2]):"
    assert lines[1] == "  V1: passed (A moved)"
    assert lines[2].startswith("  X1 A beats B: reproduced (m: A - B +0.")


def test_an_undefined_statistic_gives_none_not_an_error() -> None:
    """Event precision of captions that name nothing is undefined: None in the row, no interval; a handful
    of naming captions give a mean whose resamples may leave it undefined: no bounds then."""
    nothing = rep.precision_pairs(np.full((1, 40), np.nan))
    one = rep.precision_pairs(np.array([[1.0] + [np.nan] * 39]))
    many = rep.precision_pairs(RNG.choice([0.0, 0.5, 1.0, np.nan], size=(2, 200)))
    found = {
        k: rep.cell(v, rep.mean_where_named) for k, v in (("nothing", nothing), ("one", one), ("many", many))
    }
    metrics, intervals = rep.cell_fields(found)
    assert metrics["nothing"] is None and metrics["one"] == 1.0
    assert set(intervals) == {"many"} and intervals["many"][0] <= metrics["many"] <= intervals["many"][1]
    assert rep.f1(0.5, None) is None and rep.f1(0.5, 0.5) == 0.5 and rep.f1(0.0, 0.0) == 0.0
