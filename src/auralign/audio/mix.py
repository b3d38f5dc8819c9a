"""AUDIT-style edit pairs: add, drop or replace an event clip in a base clip at a target SNR.

Semantics (PAPERS.md, section 1): add -> (A, A+B); drop -> (A+B, A); replace -> (A+B, A+C).

None of the mixing parameters is published in the ACC paper; every default below is our choice:

- SNR is the event's power over the base's power *in the region the event covers* (the overlap), so an
  event laid over a quiet stretch of the base is not drowned or blasted by loud parts elsewhere. Where
  that region of the base is silent, the base's whole-clip power is the reference; where the whole base
  is silent, the event keeps its normalised loudness (`info["snr_reference"]` says which applied).
- `snr_db` = (-5, 10): from an event a little under the scene (still audible to a listener, harder for
  a model) to one clearly in front of it, the range where "what was added/removed" is answerable.
- `target_dbfs` = -20: each input is RMS-normalised to it before mixing, and the output pair is scaled
  back to it afterwards, which is typical of AudioCaps-like clips and leaves headroom for the mixture.
- `output_norm` = "pair": both outputs get one common gain (the louder output at `target_dbfs`), so the
  base part is sample-for-sample identical in both and the difference between them is exactly the edit.
  "each" normalises the two outputs separately; "none" keeps the mixing scale.
- `peak` = 0.99: if any sample would exceed it, the whole pair is scaled down, which keeps the SNR.
- Offset: uniform over the positions where the event fits; an event longer than the base is cropped to
  a uniformly random window of the base's length. In replace, C takes B's place (same offset and SNR),
  so only the identity of the event changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import field_validator, model_validator

from auralign.config import StrictModel

_EPS = 1e-12


class MixConfig(StrictModel):
    """How edit pairs are mixed; all defaults are not published in the paper: our choice (see module doc)."""

    snr_db: tuple[float, float] = (-5.0, 10.0)
    target_dbfs: float = -20.0
    peak: float = 0.99
    output_norm: Literal["pair", "each", "none"] = "pair"
    sample_rate: int = 16000

    @field_validator("peak")
    @classmethod
    def _peak_in_range(cls, value: float) -> float:
        if not 0.0 < value <= 1.0:
            raise ValueError("must be in (0, 1]")
        return value

    @field_validator("target_dbfs")
    @classmethod
    def _dbfs_negative(cls, value: float) -> float:
        if not -80.0 <= value < 0.0:
            raise ValueError("must be in [-80, 0) dBFS")
        return value

    @model_validator(mode="after")
    def _ordered_range(self) -> MixConfig:
        low, high = self.snr_db
        if low > high:
            raise ValueError(f"snr_db range ({low}, {high}) must be (low, high) with low <= high")
        return self


@dataclass
class EditPair:
    """The two audios of one edit (same length as the base) and how they were made (JSON-serialisable)."""

    first: np.ndarray
    second: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def rms(x: np.ndarray) -> float:
    """Root mean square via a BLAS dot product (no squared copy); float32 accumulation is good to ~1e-6."""
    x = np.asarray(x, dtype=np.float64) if x.dtype != np.float32 else x
    return float(np.sqrt(np.dot(x, x) / x.size)) if x.size else 0.0


def _peak(x: np.ndarray) -> float:
    return max(float(x.max()), -float(x.min())) if x.size else 0.0


def _normalise(x: np.ndarray, target_rms: float) -> tuple[np.ndarray, float]:
    level = rms(x)
    gain = target_rms / level if level > _EPS else 1.0
    return (x * gain).astype(np.float32), gain


def _place(event: np.ndarray, length: int, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
    """Crop `event` to at most `length` samples and pick its offset: (segment, offset, crop_start)."""
    if event.size >= length:
        start = int(rng.integers(0, event.size - length + 1))
        return event[start : start + length], 0, start
    return event, int(rng.integers(0, length - event.size + 1)), 0


def _as_mono(name: str, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{name} must be a non-empty mono array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or Inf samples")
    return x


def _event_gain(base: np.ndarray, segment: np.ndarray, offset: int, snr_db: float) -> tuple[float, str]:
    """Gain on `segment` that puts it `snr_db` above the base where they overlap."""
    event_power = rms(segment) ** 2
    if event_power <= _EPS**2:
        raise ValueError("event clip is silent (all zeros): it cannot be mixed at a target SNR")
    ref_power, reference = rms(base[offset : offset + segment.size]) ** 2, "overlap"
    if ref_power <= _EPS**2:
        ref_power, reference = rms(base) ** 2, "whole"
    if ref_power <= _EPS**2:
        return 1.0, "none"
    return float(np.sqrt(ref_power * 10.0 ** (snr_db / 10.0) / event_power)), reference


def _finish(first: np.ndarray, second: np.ndarray, config: MixConfig) -> tuple[np.ndarray, np.ndarray, list]:
    """Output loudness normalisation and the peak guard; returns the outputs and their two gains."""
    target = 10.0 ** (config.target_dbfs / 20.0)
    if config.output_norm == "pair":
        level = max(rms(first), rms(second))
        gains = [target / level if level > _EPS else 1.0] * 2
    elif config.output_norm == "each":
        gains = [target / rms(x) if rms(x) > _EPS else 1.0 for x in (first, second)]
    else:
        gains = [1.0, 1.0]
    peaks = [_peak(x) * g for x, g in zip((first, second), gains, strict=True)]
    if config.output_norm == "pair":
        worst = max(peaks)
        guard = [config.peak / worst if worst > config.peak else 1.0] * 2
    else:
        guard = [config.peak / p if p > config.peak else 1.0 for p in peaks]
    gains = [g * s for g, s in zip(gains, guard, strict=True)]
    # The clip only absorbs float32 rounding: the guard already keeps every sample within `peak`.
    outs = [x * np.float32(g) for x, g in zip((first, second), gains, strict=True)]
    for out in outs:
        np.clip(out, -config.peak, config.peak, out=out)
    return outs[0], outs[1], gains


def edit_pair(
    op: Literal["add", "drop", "replace"],
    base: np.ndarray,
    event: np.ndarray,
    rng: np.random.Generator,
    config: MixConfig,
    replacement: np.ndarray | None = None,
) -> EditPair:
    """Mix one edit pair: add -> (A, A+B), drop -> (A+B, A), replace -> (A+B, A+C); deterministic given `rng`.

    Both outputs have the base's length. `info` holds op, snr_db, snr_reference ("overlap" | "whole" |
    "none"), offset_seconds, event_seconds, event_crop_seconds, base_gain and event_gain (input scale to
    mixing scale), output_gains (mixing scale to output, one per output), sample_rate, and for replace
    replacement_gain, replacement_seconds, replacement_crop_seconds.
    """
    if op not in ("add", "drop", "replace"):
        raise ValueError(f"unknown edit operation {op!r} (expected add, drop or replace)")
    if (op == "replace") != (replacement is not None):
        raise ValueError("a replacement clip is required for 'replace' and only for it")
    target = 10.0 ** (config.target_dbfs / 20.0)
    a, base_gain = _normalise(_as_mono("base", base), target)
    b, event_gain = _normalise(_as_mono("event", event), target)
    snr = float(rng.uniform(*config.snr_db))
    segment, offset, crop = _place(b, a.size, rng)
    gain_b, reference = _event_gain(a, segment, offset, snr)
    mixed_b = a.copy()
    mixed_b[offset : offset + segment.size] += np.float32(gain_b) * segment
    info: dict[str, Any] = {"op": op, "snr_db": snr, "snr_reference": reference}
    if op == "replace":
        c, repl_gain = _normalise(_as_mono("replacement", replacement), target)
        seg_c, crop_c = _crop_to(c, a.size - offset, rng)
        gain_c, _ = _event_gain(a, seg_c, offset, snr)
        mixed_c = a.copy()
        mixed_c[offset : offset + seg_c.size] += np.float32(gain_c) * seg_c
        first, second = mixed_b, mixed_c
        info.update(replacement_gain=repl_gain * gain_c, replacement_seconds=seg_c.size / config.sample_rate)
        info.update(replacement_crop_seconds=crop_c / config.sample_rate)
    else:
        first, second = (a, mixed_b) if op == "add" else (mixed_b, a)
    first, second, out_gains = _finish(first, second, config)
    info.update(
        offset_seconds=offset / config.sample_rate,
        event_seconds=segment.size / config.sample_rate,
        event_crop_seconds=crop / config.sample_rate,
        base_gain=base_gain,
        event_gain=event_gain * gain_b,
        output_gains=out_gains,
        sample_rate=config.sample_rate,
    )
    return EditPair(first=first, second=second, info=info)


def _crop_to(x: np.ndarray, length: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A random window of at most `length` samples (the replacement must end inside the base)."""
    if x.size <= length:
        return x, 0
    start = int(rng.integers(0, x.size - length + 1))
    return x[start : start + length], start
