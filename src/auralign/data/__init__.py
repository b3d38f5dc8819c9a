"""Manifests, corpus readers, task builders (AC / ADC / ACC) and the offline mini corpus."""

from auralign.data.manifest import Message, Sample, load_manifest, make_sample, read_manifest, write_manifest

__all__ = ["Message", "Sample", "load_manifest", "make_sample", "read_manifest", "write_manifest"]
