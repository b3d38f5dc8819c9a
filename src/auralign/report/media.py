"""Audio and images as data URIs, so the HTML report is one file that plays its examples anywhere."""

import base64
import io
from pathlib import Path

import numpy as np

from auralign.errors import DataError

#: formats every current browser plays natively, embedded as they are when small enough
MIME = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".ogg": "audio/ogg"}
MAX_AS_IS = 600_000  # bytes; above this (or another format) a clip is re-encoded
CLIP_SECONDS = 10.0
CLIP_RATE = 16000  # what the models hear, so the page plays what they were given


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def audio_bytes(path: Path) -> tuple[bytes, str, str]:
    """(bytes, MIME type, note): the file as-is if small and playable, else its first 10 s as 16 kHz FLAC."""
    suffix = path.suffix.lower()
    size = path.stat().st_size
    if suffix in MIME and size <= MAX_AS_IS:
        return path.read_bytes(), MIME[suffix], ""
    wave, rate, seconds = _read_start(path, CLIP_SECONDS)
    buffer = io.BytesIO()
    import soundfile as sf

    sf.write(buffer, wave, rate, format="FLAC", subtype="PCM_16")
    note = f"first {CLIP_SECONDS:g} s of {seconds:.1f} s" if seconds > CLIP_SECONDS else "re-encoded"
    return buffer.getvalue(), "audio/flac", note


def _read_start(path: Path, seconds: float) -> tuple[np.ndarray, int, float]:
    import soundfile as sf
    import soxr

    try:
        with sf.SoundFile(path) as f:
            total = f.frames / f.samplerate
            data = f.read(int(seconds * f.samplerate), dtype="float32", always_2d=True)
            rate = f.samplerate
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise DataError(f"{path}: cannot decode this audio for the report: {exc}") from None
    mono = data.mean(axis=1)
    if rate > CLIP_RATE:
        mono, rate = soxr.resample(mono, rate, CLIP_RATE), CLIP_RATE
    return np.clip(mono, -1.0, 1.0), rate, total
