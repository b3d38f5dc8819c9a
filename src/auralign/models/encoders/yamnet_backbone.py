"""YAMNet as a DALI audio backbone: 1024-d frame embeddings (one per 0.96 s patch at a 0.48 s hop, 20 for a
10 s clip) from the packaged int8 ONNX graph, frozen.

ONNX runs outside torch, so all of YAMNet happens in `prepare` (with the on-disk FeatureCache for files:
an epoch after the first does no audio work) and `forward` passes the embeddings through; in an
`AudioTokenizer` only the Linear(1024, token_dim) adapter trains.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from auralign.models.encoders.backbones import AudioTokenizer, Wave
from auralign.models.encoders.yamnet import FeatureCache, YamnetEncoder


class YamnetBackbone(nn.Module):
    """Waves or audio paths -> (B, N, 1024) YAMNet embeddings; clips of other lengths are tiled or cut to N.

    `tokens` fixes N (default: the longest clip of the batch); a shorter clip repeats its own frames rather
    than adding padding tokens, which distribution alignment would count as audio.
    """

    dim = YamnetEncoder.dim

    def __init__(
        self, tokens: int | None = None, cache: str | os.PathLike | None = None, threads: int = 1
    ) -> None:
        super().__init__()
        self.tokens = tokens
        self.features = FeatureCache(YamnetEncoder(threads=threads), cache)

    def embed(self, wave: Wave) -> np.ndarray:
        if isinstance(wave, str | os.PathLike):
            return self.features(os.fspath(wave))
        return self.features(np.asarray(torch.as_tensor(wave, dtype=torch.float32)))

    def prepare(self, waves: Sequence[Wave]) -> torch.Tensor:
        feats = [self.embed(w) for w in waves]
        n = self.tokens or max(len(f) for f in feats)
        return torch.stack([torch.from_numpy(_fit(f, n)) for f in feats])

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.float()  # frozen: the embeddings are the tokens


def _fit(feats: np.ndarray, n: int) -> np.ndarray:
    reps = -(-n // len(feats))
    return np.ascontiguousarray(np.tile(feats, (reps, 1))[:n], dtype=np.float32)


def yamnet_tokenizer(
    token_dim: int = 1024, tokens: int | None = None, cache: str | os.PathLike | None = None, threads: int = 1
) -> AudioTokenizer:
    """YAMNet tokens through a trainable Linear(1024, token_dim) adapter (e.g. the mini captioner's 256)."""
    return AudioTokenizer(YamnetBackbone(tokens, cache, threads), token_dim)
