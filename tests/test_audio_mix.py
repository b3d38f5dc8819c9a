"""auralign.audio.mix: AUDIT-style add / drop / replace at a target SNR, no clipping, deterministic."""

import json

import numpy as np
import pytest

from auralign.audio import MixConfig, edit_pair
from auralign.config import validate
from auralign.errors import ConfigError

SR = 16000


def noise(seconds: float, seed: int, amp: float = 0.1) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * SR)) * amp).astype(np.float32)


def tone(seconds: float, freq: float = 880.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def db(x: float) -> float:
    return 10 * np.log10(x)


def power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def region(pair) -> slice:
    start = round(pair.info["offset_seconds"] * SR)
    return slice(start, start + round(pair.info["event_seconds"] * SR))


def achieved_snr(pair) -> float:
    """Event power over base power in the event's region, measured on the outputs themselves."""
    r = region(pair)
    if pair.info["op"] == "add":
        base, event = pair.first, pair.second - pair.first
    elif pair.info["op"] == "drop":
        base, event = pair.second, pair.first - pair.second
    else:
        raise ValueError
    return db(power(event[r]) / power(base[r]))


@pytest.mark.parametrize("op", ["add", "drop"])
@pytest.mark.parametrize("seed", range(8))
def test_snr_is_reached_within_a_tenth_of_a_db(op, seed):
    config = MixConfig(snr_db=(-5.0, 10.0))
    base = noise(10, seed) * np.linspace(0.2, 1.5, 10 * SR, dtype=np.float32)  # uneven loudness over time
    pair = edit_pair(op, base, tone(2.0, 300 + 50 * seed), np.random.default_rng(seed), config)
    assert -5.0 <= pair.info["snr_db"] <= 10.0
    assert achieved_snr(pair) == pytest.approx(pair.info["snr_db"], abs=0.1)


def test_replace_puts_both_events_at_the_same_place_and_snr():
    base, b, c = noise(10, 0), tone(3.0, 440), noise(4, 1, amp=0.3)
    pair = edit_pair("replace", base, b, np.random.default_rng(3), MixConfig(), replacement=c)
    start = round(pair.info["offset_seconds"] * SR)
    r_b = region(pair)
    r_c = slice(start, start + round(pair.info["replacement_seconds"] * SR))
    # The shared base is identical in both outputs ("pair" normalisation): they differ only where B or C is.
    outside = np.ones(base.size, bool)
    outside[start : max(r_b.stop, r_c.stop)] = False
    assert outside.any()
    np.testing.assert_allclose(pair.first[outside], pair.second[outside], atol=1e-6)
    scaled_base = base * pair.info["base_gain"] * pair.info["output_gains"][0]
    for out, r in ((pair.first, r_b), (pair.second, r_c)):
        snr = db(power(out[r] - scaled_base[r]) / power(scaled_base[r]))
        assert snr == pytest.approx(pair.info["snr_db"], abs=0.1)


@pytest.mark.parametrize("op", ["add", "drop", "replace"])
def test_lengths_peak_and_json_info(op):
    base, event = noise(10, 0, amp=0.5), tone(2.5, amp=0.9)
    config = MixConfig(snr_db=(15.0, 20.0), target_dbfs=-3.0, peak=0.9)  # forces the peak guard
    replacement = tone(1.0, 220.0) if op == "replace" else None
    pair = edit_pair(op, base, event, np.random.default_rng(0), config, replacement=replacement)
    for out in (pair.first, pair.second):
        assert out.shape == base.shape and out.dtype == np.float32
        assert np.max(np.abs(out)) <= 0.9 + 1e-7
    assert max(np.max(np.abs(pair.first)), np.max(np.abs(pair.second))) == pytest.approx(0.9, abs=1e-4)
    json.dumps(pair.info)
    if op != "replace":
        assert achieved_snr(pair) == pytest.approx(pair.info["snr_db"], abs=0.1)


def test_outputs_never_exceed_full_scale_over_many_random_pairs():
    rng = np.random.default_rng(0)
    config = MixConfig(snr_db=(-10.0, 30.0), target_dbfs=-1.0, peak=0.99)
    for i in range(30):
        base = noise(rng.uniform(5, 10), i, amp=rng.uniform(0.01, 1.0))
        event = tone(rng.uniform(0.2, 12.0), rng.uniform(100, 4000), amp=rng.uniform(0.01, 1.0))
        op = ["add", "drop", "replace"][i % 3]
        pair = edit_pair(op, base, event, rng, config, replacement=noise(2, 99) if op == "replace" else None)
        assert np.max(np.abs(pair.first)) <= 0.99 and np.max(np.abs(pair.second)) <= 0.99
        assert pair.first.size == base.size == pair.second.size


def test_loudness_normalisation_to_target():
    base, event = noise(10, 0, amp=0.003), tone(1.0, amp=0.001)
    for mode in ("pair", "each"):
        pair = edit_pair("add", base, event, np.random.default_rng(0), MixConfig(output_norm=mode))
        levels = [db(power(x)) for x in (pair.first, pair.second)]
        if mode == "each":
            assert levels == pytest.approx([-20.0, -20.0], abs=0.01)
        else:
            assert max(levels) == pytest.approx(-20.0, abs=0.01)  # the louder output (with the event)
            assert levels[0] < levels[1]


def test_event_longer_than_base_is_cropped():
    pair = edit_pair("add", noise(5, 0), tone(12.0), np.random.default_rng(1), MixConfig())
    assert pair.first.size == pair.second.size == 5 * SR
    assert pair.info["offset_seconds"] == 0.0 and pair.info["event_seconds"] == 5.0
    assert 0.0 <= pair.info["event_crop_seconds"] <= 7.0


def test_deterministic_given_rng_state():
    base, event = noise(10, 0), tone(2.0)
    one = edit_pair("drop", base, event, np.random.default_rng(42), MixConfig())
    two = edit_pair("drop", base, event, np.random.default_rng(42), MixConfig())
    other = edit_pair("drop", base, event, np.random.default_rng(43), MixConfig())
    assert np.array_equal(one.first, two.first) and np.array_equal(one.second, two.second)
    assert one.info == two.info
    assert one.info["offset_seconds"] != other.info["offset_seconds"]


def test_offsets_cover_the_base_uniformly():
    rng = np.random.default_rng(0)
    offsets = [
        edit_pair("add", noise(10, 0), tone(2.0), rng, MixConfig()).info["offset_seconds"] for _ in range(200)
    ]
    assert min(offsets) < 0.5 and max(offsets) > 7.5
    assert 3.0 < float(np.mean(offsets)) < 5.0


def test_silent_base_keeps_the_event():
    pair = edit_pair("add", np.zeros(5 * SR, np.float32), tone(1.0), np.random.default_rng(0), MixConfig())
    assert pair.info["snr_reference"] == "none"
    assert not pair.first.any() and pair.second.any()


def test_bad_inputs_are_rejected():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="silent"):
        edit_pair("add", noise(2, 0), np.zeros(SR, np.float32), rng, MixConfig())
    with pytest.raises(ValueError, match="replacement"):
        edit_pair("replace", noise(2, 0), tone(1.0), rng, MixConfig())
    with pytest.raises(ValueError, match="replacement"):
        edit_pair("add", noise(2, 0), tone(1.0), rng, MixConfig(), replacement=tone(1.0))
    with pytest.raises(ValueError, match="unknown edit"):
        edit_pair("swap", noise(2, 0), tone(1.0), rng, MixConfig())
    with pytest.raises(ValueError, match="NaN"):
        edit_pair("add", np.full(SR, np.nan, np.float32), tone(1.0), rng, MixConfig())


def test_config_validation_names_the_key():
    with pytest.raises(ConfigError, match="snr_db"):
        validate({"snr_db": [10, -5]}, MixConfig, source="mix.yaml")
    with pytest.raises(ConfigError, match="peak"):
        validate({"peak": 1.5}, MixConfig, source="mix.yaml")
    with pytest.raises(ConfigError, match="unknown key"):
        validate({"snr": [0, 1]}, MixConfig, source="mix.yaml")
    assert validate({"snr_db": [0, 5]}, MixConfig).snr_db == (0.0, 5.0)
