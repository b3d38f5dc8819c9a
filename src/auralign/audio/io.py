"""Load, inspect and write audio; every problem with a file becomes one `AudioError` that names it.

Decoding goes through soundfile (its bundled libsndfile reads WAV, FLAC, OGG/Vorbis/Opus and MP3), resampling
through soxr. Header checks (rate, length, truncation) run before any sample is decoded, so a 2-hour file is
rejected without reading it into memory.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import soundfile as sf
import soxr
from pydantic import Field

from auralign.errors import AuralignError
from auralign.fileio import atomic_write

log = logging.getLogger(__name__)

# Real recordings live between telephone (8 kHz) and studio (384 kHz) rates; 1 kHz .. 768 kHz leaves room
# for unusual but genuine files while catching corrupt headers (0 Hz, 4 GHz).
MIN_RATE, MAX_RATE = 1_000, 768_000
#: a config's target sample rate: validated when the config is read, so `load_audio` never sees a bad one
SampleRate = Annotated[int, Field(ge=MIN_RATE, le=MAX_RATE)]
# Below this peak (about -100 dBFS) a clip carries no audible content.
SILENCE_PEAK = 1e-5
# libsndfile estimates MP3/Vorbis lengths from the stream or a Xing tag; the decoded count can miss an MPEG
# frame or two, and some valid files (e.g. re-muxed ones) fall several percent short of their tag.
_ESTIMATED_LENGTH_SLACK = 4 * 1152
# For such formats a file is only called truncated when less than this share of the promised frames decodes.
_ESTIMATED_LENGTH_MIN_SHARE = 0.5
_WRITE_FORMATS = {".flac": "FLAC", ".wav": "WAV", ".ogg": "OGG", ".oga": "OGG"}
_DEFAULT_SUBTYPES = {"FLAC": "PCM_16", "WAV": "PCM_16", "OGG": "VORBIS"}


class AudioError(AuralignError):
    """An audio file that cannot be used; the message starts with the file's path."""


class AudioWarning(UserWarning):
    """A usable but suspicious file (silent, truncated to the maximum length)."""


def _warn(message: str) -> None:
    warnings.warn(message, AudioWarning, stacklevel=3)


def _check_path(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: file not found")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if not path.is_file():
        raise AudioError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")


def _riff_header(path: Path) -> dict[str, int]:
    """Sample rate and data-chunk sizes declared by a RIFF/WAVE header ({} for other files).

    Keys: "rate" (from the fmt chunk), "data_claimed" and "data_present" (bytes). libsndfile silently shortens
    a WAV whose data chunk claims more than the file holds and gives a vague message for a 0 Hz rate, so
    these two checks read the header themselves.
    """
    found: dict[str, int] = {}
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return found
        pos = 12
        while pos + 8 <= size:
            handle.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", handle.read(8))
            fmt = handle.read(8) if chunk_id == b"fmt " else b""
            if len(fmt) == 8:
                found["rate"] = struct.unpack("<I", fmt[4:8])[0]
            elif chunk_id == b"data":
                found["data_claimed"], found["data_present"] = chunk_size, size - (pos + 8)
                break
            pos += 8 + chunk_size + (chunk_size & 1)
    return found


def _check_rate(path: Path, rate: int) -> None:
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(
            f"{path}: implausible sample rate {rate} Hz in the header "
            f"(expected {MIN_RATE}..{MAX_RATE} Hz); the file is probably corrupt"
        )


def _open_info(path: Path) -> sf._SoundFileInfo:
    """Header information with the path, rate and length validated; AudioError otherwise."""
    _check_path(path)
    riff = _riff_header(path)
    if "rate" in riff:
        _check_rate(path, riff["rate"])
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(
            f"{path}: unreadable audio (not a WAV/FLAC/OGG/MP3 file, or corrupt): {exc}"
        ) from None
    _check_rate(path, info.samplerate)
    if info.channels < 1:
        raise AudioError(f"{path}: header declares {info.channels} channels")
    if info.frames <= 0:
        raise AudioError(f"{path}: zero length: no audio frames (an empty recording, or a truncated file)")
    # Streamed WAVs leave the data size at 0 or 0xFFFFFFFF ("unknown"); those are not judged.
    claimed, present = riff.get("data_claimed", 0), riff.get("data_present", 0)
    if claimed not in (0, 0xFFFFFFFF) and claimed > present:
        raise AudioError(
            f"{path}: truncated WAV: the header declares {claimed} bytes of audio but only {present} are present"
        )
    return info


def audio_info(path: str | os.PathLike) -> tuple[int, int, int]:
    """(sample_rate, frames, channels) from the file's header, without decoding the audio."""
    info = _open_info(Path(path))
    return info.samplerate, info.frames, info.channels


def _decode(path: Path, info: sf._SoundFileInfo, frames: int) -> np.ndarray:
    try:
        with sf.SoundFile(str(path)) as handle:
            data = handle.read(frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{path}: unreadable or truncated audio data: {exc}") from None
    if len(data) == 0:
        raise AudioError(f"{path}: zero length (no audio frames could be decoded)")
    promise = f"the header promises {frames} frames, only {len(data)} could be decoded"
    if info.format not in ("MP3", "OGG", "MPEG"):
        if len(data) < frames:
            raise AudioError(f"{path}: truncated or corrupt: {promise}")
    elif len(data) < _ESTIMATED_LENGTH_MIN_SHARE * frames:
        raise AudioError(f"{path}: truncated or corrupt: {promise}")
    elif len(data) < frames - _ESTIMATED_LENGTH_SLACK:
        _warn(f"{path}: {promise} (an estimated length, or a truncated file); keeping what decodes")
    return data


def load_audio(
    path: str | os.PathLike,
    sr: int = 16000,
    max_seconds: float | None = None,
    on_too_long: Literal["error", "truncate"] = "error",
    channel: Literal["mean", "first"] = "mean",
) -> np.ndarray:
    """Mono float32 samples of `path` at `sr` Hz.

    Channels are averaged, or only the first is kept (`channel="first"`, as DALI's official feature extraction
    does). With `max_seconds`, a longer file is rejected ("error") or cut to its first
    `max_seconds` with a warning ("truncate"), judged from the header before decoding. Silent audio loads
    with an `AudioWarning`; NaN/Inf samples are an error.
    """
    path = Path(path)
    if not MIN_RATE <= sr <= MAX_RATE:
        raise ValueError(f"target sample rate {sr} Hz is outside {MIN_RATE}..{MAX_RATE}")
    if on_too_long not in ("error", "truncate"):
        raise ValueError(f"on_too_long must be 'error' or 'truncate', not {on_too_long!r}")
    info = _open_info(path)
    frames = info.frames
    duration = frames / info.samplerate
    if max_seconds is not None and duration > max_seconds:
        if on_too_long == "error":
            raise AudioError(
                f"{path}: {duration:.1f} s long, more than the maximum of {max_seconds:g} s "
                "(set on_too_long: truncate to keep the beginning)"
            )
        _warn(f"{path}: {duration:.1f} s long; truncated to the first {max_seconds:g} s")
        frames = int(max_seconds * info.samplerate)
    data = _decode(path, info, frames)
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        raise AudioError(f"{path}: {bad} of {data.size} samples are NaN or Inf")
    if channel not in ("mean", "first"):
        raise ValueError(f"channel must be 'mean' or 'first', not {channel!r}")
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 and channel == "mean" else data[:, 0]
    if info.samplerate != sr:
        mono = soxr.resample(mono, info.samplerate, sr, quality="HQ")
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if mono.size == 0 or float(np.max(np.abs(mono))) < SILENCE_PEAK:
        _warn(f"{path}: silent audio (peak below -100 dBFS)")
    return mono


def load_audio_windows(path: str | os.PathLike, seconds: float, sr: int = 16000) -> Iterator[np.ndarray]:
    """Mono float32 windows of at most `seconds` at `sr` Hz, one after another, decoded one window at a time:
    a long file is never held whole at its own rate and channel count. Each window is resampled on its own.
    A file that ends before its header says is an AudioError, as in `load_audio`."""
    path = Path(path)
    if not MIN_RATE <= sr <= MAX_RATE:
        raise ValueError(f"target sample rate {sr} Hz is outside {MIN_RATE}..{MAX_RATE}")
    info = _open_info(path)
    block, decoded = max(1, int(seconds * info.samplerate)), 0
    try:
        with sf.SoundFile(str(path)) as handle:
            while decoded < info.frames:
                data = handle.read(min(block, info.frames - decoded), dtype="float32", always_2d=True)
                if len(data) == 0:
                    break
                decoded += len(data)
                if not np.all(np.isfinite(data)):
                    raise AudioError(f"{path}: NaN or Inf samples near {decoded / info.samplerate:.1f} s")
                mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
                if info.samplerate != sr:
                    mono = soxr.resample(mono, info.samplerate, sr, quality="HQ")
                yield np.ascontiguousarray(mono, dtype=np.float32)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{path}: unreadable or truncated audio data: {exc}") from None
    if decoded < info.frames and info.format not in ("MP3", "OGG", "MPEG"):
        raise AudioError(
            f"{path}: truncated or corrupt: the header promises {info.frames} frames, only {decoded} decode"
        )


def write_audio(
    path: str | os.PathLike, samples: np.ndarray, sr: int, subtype: str | None = None, durable: bool = True
) -> None:
    """Write `samples` (frames, or frames x channels) atomically; format from the suffix (.flac by default).

    Integer subtypes (16-bit PCM by default) clip to full scale rather than wrap around, and FLAC output is
    byte-for-byte deterministic for the same samples.
    """
    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(f"{path}: cannot write audio with suffix {path.suffix!r} (use .flac, .wav or .ogg)")
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim not in (1, 2) or data.shape[0] == 0:
        raise AudioError(f"{path}: refusing to write audio of shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise AudioError(f"{path}: refusing to write NaN or Inf samples")
    subtype = subtype or _DEFAULT_SUBTYPES[fmt]
    if subtype.startswith("PCM"):
        data = np.clip(data, -1.0, 1.0)
    # Encode in memory, then one write: libsndfile's many small writes through a Python file handle cost
    # more than the encoding itself.
    buffer = io.BytesIO()
    sf.write(buffer, data, sr, format=fmt, subtype=subtype)
    with atomic_write(path, "wb", durable=durable) as handle:
        handle.write(buffer.getbuffer())
