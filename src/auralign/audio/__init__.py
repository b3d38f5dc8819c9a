"""Audio I/O (load, resample, validate, write) and AUDIT-style mixing of edit pairs."""

from auralign.audio.io import (
    AudioError,
    AudioWarning,
    SampleRate,
    audio_info,
    load_audio,
    load_audio_windows,
    write_audio,
)
from auralign.audio.mix import EditPair, MixConfig, edit_pair

__all__ = [
    "AudioError",
    "AudioWarning",
    "EditPair",
    "MixConfig",
    "SampleRate",
    "audio_info",
    "edit_pair",
    "load_audio",
    "load_audio_windows",
    "write_audio",
]
