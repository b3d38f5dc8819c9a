"""auralign: audio-text alignment for multimodal LLMs (ACC commonality captioning, DALI zero-shot captioning)."""

from auralign.errors import AuralignError, ConfigError

__version__ = "0.1.0"
__all__ = ["AuralignError", "ConfigError", "__version__"]
