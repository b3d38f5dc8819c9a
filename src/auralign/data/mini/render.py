"""Rendering the mini corpus: planned clips from their sources, scenes from their clips, in worker processes.

Every file is written atomically and skipped when present, so an interrupted build resumes where it stopped.
"""

import multiprocessing
from pathlib import Path
from typing import Any

import numpy as np
import soxr
from tqdm import tqdm

from auralign.audio.io import audio_info, load_audio, write_audio
from auralign.data.mini import sounds as snd
from auralign.data.mini.plan import Clip
from auralign.data.mini.scenes import SCENE_SECONDS, Scene
from auralign.data.mini.sounds import SR, Source


def render_all(out: Path, jobs: list[tuple], *, workers: int, progress: bool, desc: str) -> dict[str, float]:
    """Render every job, (source, clips) or (scene,), into `out` in `workers` processes; returns each
    written file's length in seconds (what scene planning needs)."""

    durations: dict[str, float] = {}
    bar = tqdm(total=len(jobs), desc=desc, disable=not progress, unit="job")
    tasks = [(out, *job) for job in jobs]
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for result in pool.imap_unordered(_run_job_or_scene, tasks, chunksize=4):
                durations.update(result)
                bar.update()
    else:
        for task in tasks:
            durations.update(_run_job_or_scene(task))
            bar.update()
    bar.close()
    return durations


def _run_job_or_scene(task: tuple) -> list[tuple[str, float]]:
    return _render_scene(task) if isinstance(task[1], Scene) else _run_job(task)


def _run_job(args: tuple[Path, Source, list[Clip]]) -> list[tuple[str, float]]:
    """The clips of one source: the source is rendered once, and only when a clip is still missing."""
    out, source, clips = args
    todo = [c for c in clips if not (out / c.path).is_file()]
    audio = snd.render_source(source) if todo else None
    for clip in todo:
        write_audio(out / clip.path, render_clip(audio, clip.recipe), SR)
    return [(c.path, audio_info(out / c.path)[1] / SR) for c in clips]


def render_clip(audio: np.ndarray, recipe: dict[str, Any]) -> np.ndarray:
    """Augment one source into a clip of 1-5 s at the recipe's loudness (peak at most 0.95).

    Optional recipe keys (the ability tasks' listening conditions): `note_seconds` (a melody's note length,
    default 0.7 s), `lowpass_hz` (a muffled channel), `noise` (`colour`, `snr_db`, `seed`: background noise).
    """
    gap = np.zeros(int(recipe["gap"] * SR), np.float32)
    if "melody" in recipe:
        note = audio[: int(recipe.get("note_seconds", 0.7) * SR)]
        parts = [
            np.concatenate([_fade(_shift(note, s).copy()), gap[: len(gap) // 3]]) for s in recipe["melody"]
        ]
        audio = np.concatenate(parts)
    else:
        audio = _shift(audio, recipe.get("semitones", 0.0))
    unit = np.concatenate([audio, gap])
    while audio.size < recipe["min_seconds"] * SR and audio.size + unit.size <= 5 * SR:
        audio = np.concatenate([audio, unit])  # a short sound repeated, as a short sound often is
    limit = int(recipe["max_seconds"] * SR)
    if audio.size > limit:
        start = int(recipe["crop"] * (audio.size - limit))
        audio = audio[start : start + limit]
    if audio.size < SR:
        audio = np.concatenate([audio, np.zeros(SR - audio.size, np.float32)])
    if "lowpass_hz" in recipe:
        audio = _lowpass(audio, recipe["lowpass_hz"])
    audio = _fade(audio.astype(np.float32, copy=True))
    if "noise" in recipe:
        audio = _with_noise(audio, recipe["noise"])
    return _level(audio, recipe["level_db"], 0.95)


def _lowpass(x: np.ndarray, cutoff: float) -> np.ndarray:
    """A 4th-order Butterworth low-pass: the sound heard through a small speaker or a wall."""
    from scipy.signal import butter, sosfilt

    return sosfilt(butter(4, cutoff, fs=SR, output="sos"), x).astype(np.float32)


def _with_noise(x: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """`x` plus background noise of `spec["colour"]` at `spec["snr_db"]` below the clip's own power."""
    noise = coloured_noise(x.size, spec["colour"], np.random.default_rng(spec["seed"]))
    power = float(np.mean(np.square(x, dtype=np.float64)))
    noise_power = float(np.mean(np.square(noise, dtype=np.float64)))
    if power <= 0 or noise_power <= 0:
        return x
    gain = np.sqrt(power / noise_power * 10 ** (-spec["snr_db"] / 10))
    return (x + gain * noise).astype(np.float32)


NOISES = ("white", "pink", "brown", "speech-shaped")


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise shaped in frequency: white (flat), pink (-3 dB/octave), brown (-6 dB/octave), or
    speech-shaped (the long-term speech spectrum, flat to 500 Hz then -6 dB/octave, 100 Hz high-pass) with a
    syllable-rate (2-6 Hz) loudness fluctuation, the stand-in for distant babble."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.maximum(np.fft.rfftfreq(n, 1 / SR), 20.0)
    if colour == "pink":
        spectrum /= np.sqrt(freqs)
    elif colour == "brown":
        spectrum /= freqs
    elif colour == "speech-shaped":
        spectrum *= np.minimum(1.0, 500.0 / freqs) * (freqs >= 100.0)
    elif colour != "white":
        raise ValueError(f"unknown noise colour {colour!r}")
    noise = np.fft.irfft(spectrum, n).astype(np.float32)
    if colour == "speech-shaped":
        noise *= _syllabic_envelope(n, rng)
    return noise


def _syllabic_envelope(n: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth positive loudness curve fluctuating at 2-6 Hz (random phases), between about 0.2 and 1."""
    t = np.arange(n) / SR
    curve = sum(np.sin(2 * np.pi * rng.uniform(2.0, 6.0) * t + rng.uniform(0, 2 * np.pi)) for _ in range(3))
    return (0.6 + 0.4 * np.asarray(curve) / 3).astype(np.float32)


def _shift(x: np.ndarray, semitones: float) -> np.ndarray:
    """Tape-style pitch and speed change by resampling (a higher pitch plays faster)."""
    if not semitones:
        return x
    return soxr.resample(x, SR * 2 ** (semitones / 12), SR, quality="HQ").astype(np.float32)


def _fade(x: np.ndarray, seconds: float = 0.01) -> np.ndarray:
    n = min(int(seconds * SR), x.size // 2)
    if n:
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        x[:n] *= ramp
        x[x.size - n :] *= ramp[::-1]
    return x


def _level(x: np.ndarray, dbfs: float, peak: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    if rms <= 0:
        return x
    gain = 10 ** (dbfs / 20) / rms
    gain = min(gain, peak / float(np.max(np.abs(x))))
    return (x * gain).astype(np.float32)


def _render_scene(task: tuple) -> list[tuple[str, float]]:
    out, scene = task
    path = out / scene.path
    if not path.is_file():
        n = int(SCENE_SECONDS * SR)
        mix = _background(scene.background, n)
        for event in scene.events:
            clip = _level(load_audio(out / event["clip"], sr=SR), event["level_db"], 1.0)
            start = int(event["onset"] * SR)
            end = min(n, start + clip.size)
            mix[start:end] += clip[: end - start]
        peak = float(np.max(np.abs(mix)))
        write_audio(path, mix * (0.95 / peak) if peak > 0.95 else mix, SR)
    return [(scene.path, SCENE_SECONDS)]


def _background(spec: dict[str, Any], n: int) -> np.ndarray:
    """Quiet room tone: brown noise with its highs rolled off above `cutoff` (cheap to store as FLAC)."""
    rng = np.random.default_rng(spec["seed"])
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.maximum(np.fft.rfftfreq(n, 1 / SR), 20.0)
    spectrum /= freqs
    above = freqs > spec["cutoff"]
    spectrum[above] *= np.exp(-(freqs[above] - spec["cutoff"]) / spec["cutoff"])
    return _level(np.fft.irfft(spectrum, n).astype(np.float32), spec["level_db"], 0.5)
