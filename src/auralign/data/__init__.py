"""Manifests, corpus readers, task builders (AC / ADC / ACC) and the offline mini corpus."""

from auralign.data.manifest import Message, Sample, load_manifest, make_sample, read_manifest, write_manifest
from auralign.data.text import longest_common_phrase

__all__ = [
    "Message",
    "Sample",
    "load_manifest",
    "longest_common_phrase",
    "make_sample",
    "read_manifest",
    "write_manifest",
]
