"""FER, the fluency error rate of FENSE: the share of candidates whose "error" probability from FENSE's error
detector (a BERT classifier over 6 error types) exceeds 0.9.

The detector is FENSE's `BERTFlatClassifier`: a BERT encoder, dropout and a linear head on the [CLS] state.
FENSE's checkpoints (`echecker_clotho_audiocaps_base.ckpt`, `..._tiny.ckpt`) are torch files holding
`model_type` (the base model's hub id), `num_classes` and `state_dict`. Nothing is downloaded here: pass the
checkpoint path (or set $AURALIGN_FENSE_ECHECKER) and, where the base model is not in the local hub cache,
`base=` a folder with its config and tokenizer (or set $AURALIGN_FENSE_ECHECKER_BASE).
"""

import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from auralign.metrics._common import Outs
from auralign.metrics._inputs import MetricUnavailable, allow_download, check_candidates

ECHECKER_ENV, BASE_ENV = "AURALIGN_FENSE_ECHECKER", "AURALIGN_FENSE_ECHECKER_BASE"
ERROR_NAMES = ("add_tail", "repeat_event", "repeat_adv", "remove_conj", "remove_verb", "error")
ERROR_THRESHOLD = 0.9
_CACHE: dict[tuple[str, str | None, str], tuple[Any, Any]] = {}


def _classifier_class() -> type:
    from torch import nn

    class BERTFlatClassifier(nn.Module):
        """FENSE's error detector: encoder -> [CLS] state -> dropout -> linear, one logit per error type."""

        def __init__(self, encoder: nn.Module, num_classes: int) -> None:
            super().__init__()
            self.encoder = encoder
            self.dropout = nn.Dropout(encoder.config.hidden_dropout_prob)
            self.clf = nn.Linear(encoder.config.hidden_size, num_classes)

        def forward(self, input_ids, attention_mask=None, token_type_ids=None):  # type: ignore[no-untyped-def]
            out = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return self.clf(self.dropout(out.last_hidden_state[:, 0, :]))

    return BERTFlatClassifier


def build_classifier(base: str | os.PathLike, num_classes: int = len(ERROR_NAMES)) -> Any:
    """An untrained classifier whose encoder is built from `base`'s config (weights come from a checkpoint)."""
    from transformers import AutoConfig, AutoModel

    return _classifier_class()(
        AutoModel.from_config(AutoConfig.from_pretrained(str(base), local_files_only=not allow_download())),
        num_classes,
    )


def load_echecker(
    checkpoint: str | os.PathLike | None = None, base: str | os.PathLike | None = None, device: str = "cpu"
) -> tuple[Any, Any]:
    """(classifier, tokenizer) from a FENSE checkpoint; MetricUnavailable saying what is missing otherwise."""
    path = str(checkpoint or os.environ.get(ECHECKER_ENV) or "")
    if not path or not os.path.isfile(path):
        raise MetricUnavailable(
            f"FENSE's error detector not found ({path or 'no path given'}): download "
            "echecker_clotho_audiocaps_base.ckpt from FENSE's releases and pass its path "
            f"(or set ${ECHECKER_ENV}); the base model's config and tokenizer must be in the hub cache or "
            f"in a folder given as base= (or ${BASE_ENV})"
        )
    base = base or os.environ.get(BASE_ENV)
    key = (path, str(base) if base else None, device)
    if key not in _CACHE:
        _CACHE[key] = _load(path, base, device)
    return _CACHE[key]


def _load(path: str, base: str | os.PathLike | None, device: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoTokenizer

    states = torch.load(path, map_location="cpu", weights_only=False)  # FENSE's files are pickled dicts
    base = str(base or states["model_type"])
    try:
        model = build_classifier(base, int(states["num_classes"]))
        tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=not allow_download())
    except OSError as exc:
        raise MetricUnavailable(
            f"cannot load the error detector's base model {base!r}: {str(exc)[:200]}"
        ) from None
    state = dict(states["state_dict"])
    state.pop("encoder.embeddings.position_ids", None)  # a buffer older transformers saved, newer ones do not
    model.load_state_dict(state)
    return model.eval().to(device), tokenizer


def error_probs(
    sentences: Sequence[str], model: Any, tokenizer: Any, batch_size: int = 32, max_len: int = 64
) -> dict[str, np.ndarray]:
    """Sigmoid probability of each error type per sentence (FENSE's preprocessing: drop punctuation, lower)."""
    import torch

    texts = [re.sub(r"[^\w\s]", "", s).lower() for s in sentences]
    device = next(model.parameters()).device
    probs = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size],
                truncation=True,
                padding="max_length",
                max_length=max_len,
                return_tensors="pt",
            )
            batch = {
                k: v.to(device)
                for k, v in batch.items()
                if k in ("input_ids", "attention_mask", "token_type_ids")
            }
            probs.append(model(**batch).sigmoid().float().cpu().numpy())
    stacked = np.concatenate(probs) if probs else np.zeros((0, len(ERROR_NAMES)))
    return dict(zip(ERROR_NAMES, stacked.T, strict=False))


def fer(
    candidates: Sequence[str],
    echecker: str | os.PathLike | None = None,
    base: str | os.PathLike | None = None,
    device: str = "cpu",
    threshold: float = ERROR_THRESHOLD,
    batch_size: int = 32,
) -> Outs:
    """FER (key `fer`): share of candidates flagged as disfluent, and 0/1 per candidate."""
    cands = check_candidates(candidates)
    model, tokenizer = load_echecker(echecker, base, device)
    flags = (error_probs(cands, model, tokenizer, batch_size)["error"] > threshold).astype(float)
    return {"fer": float(flags.mean()) if len(flags) else 0.0}, {"fer": flags}
