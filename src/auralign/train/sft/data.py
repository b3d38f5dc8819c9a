"""Deterministic sample order for a stage: a function of (seed, stage, epoch) alone, so resuming needs no state."""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from auralign.data.manifest import Sample, load_manifest
from auralign.errors import ConfigError, DataError
from auralign.models.base import Chat, chat_from_sample
from auralign.train.sft.config import Stage


@dataclass
class StageData:
    samples: list[tuple[Sample, Path]]  # (sample, folder its audio paths are relative to)
    order: np.ndarray  # indices into samples, over all epochs

    def chats(self, positions: range) -> list[Chat]:
        return [chat_from_sample(*self.samples[self.order[i]]) for i in positions]


def load_stage(stage: Stage, seed: int, stage_index: int, source: str = "config") -> StageData:
    pools: list[list[tuple[Sample, Path]]] = []
    for k, src in enumerate(stage.data):
        path = Path(src.manifest)
        if not path.is_file():
            raise ConfigError(f"{source}: stages.{stage_index}.data.{k}.manifest: {path} not found")
        samples = load_manifest(path)
        if not samples:
            raise DataError(f"{path}: no samples to train on (stages.{stage_index}.data.{k}.manifest)")
        bad = next((s.id for s in samples if s.target is None), None)
        if bad:
            raise DataError(f"{path}: sample {bad!r} has no final assistant message to learn from")
        for sample in samples:  # before any step, not at the batch that needs the file
            absent = next((a for a in sample.audio_paths(path.parent) if not a.is_file()), None)
            if absent is not None:
                raise DataError(f"{path}: sample {sample.id!r}: audio file not found: {absent}")
        pools.append([(s, path.parent) for s in samples])
    rng = np.random.default_rng([seed, stage_index])
    flat = [s for pool in pools for s in pool]
    offsets = np.cumsum([0] + [len(p) for p in pools])
    epochs = []
    for _epoch in range(math.ceil(stage.epochs)):
        picks = [
            mix_indices(len(p), src.weight, rng) + offsets[k]
            for k, (p, src) in enumerate(zip(pools, stage.data, strict=True))
        ]
        epoch_order = np.concatenate(picks)
        rng.shuffle(epoch_order)
        epochs.append(epoch_order)
    order = np.concatenate(epochs)
    per_epoch = len(epochs[0])
    order = order[: round(stage.epochs * per_epoch)]  # fractional epochs stop part-way
    if len(order) == 0:
        raise ConfigError(f"{source}: stages.{stage_index}: no samples to train on")
    return StageData(flat, order)


def mix_indices(size: int, weight: float, rng: np.random.Generator) -> np.ndarray:
    """round(weight x size) indices: whole repeats of the source plus a random subset for the fraction."""
    count = round(weight * size)
    whole, rest = divmod(count, size)
    return np.concatenate([np.tile(np.arange(size), whole), rng.permutation(size)[:rest]]).astype(np.int64)
