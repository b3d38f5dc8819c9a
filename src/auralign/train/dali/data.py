"""DALI's audio-visual data: the samples of a `data:` section, the files they need, CLIP tokens of their frames
(`ImageTokens`, cacheable: CLIP never trains), CAV-MAE's fbank augmentation, and the seeded batches a
DataLoader decodes (`AVDataset`, `epoch_order`, `av_batches`).

Every random draw is a function of (seed, epoch, clip): the same with or without DataLoader workers, and
after a resume.
"""

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from auralign.data.audiovisual import AVSample, read_av_manifest
from auralign.errors import DataError
from auralign.fileio import FileCache
from auralign.models.dali.llava import FrozenLlava
from auralign.models.encoders.base import AudioTokenizer
from auralign.train.dali.config import AVData


def read_av_samples(data: AVData) -> list[AVSample]:
    """The samples of a data section (the first `limit` if set), each keeping only the frame DALI looks at
    (`data.frame`: the middle or the first)."""
    path = Path(data.manifest)
    if not path.is_file():
        raise DataError(f"{path}: audio-visual manifest not found")
    samples = []
    for s in read_av_manifest(path)[: data.limit]:
        frames = s.frames and [s.frames[0] if data.frame == "first" else s.frames[len(s.frames) // 2]]
        samples.append(replace(s, frames=frames))
    if not samples:
        raise DataError(f"{path}: no samples")
    return samples


def frame_of(sample: AVSample) -> Path:
    """The frame of a sample (the middle one of its frames; one after `read_av_samples`)."""
    return Path(sample.frames[len(sample.frames) // 2])


def check_files(samples: Sequence[AVSample], manifest: str, *, audio: bool, frame: bool) -> None:
    """Every file a stage will read exists, before any training (the official code swapped missing audio for
    noise)."""
    for s in samples:
        if frame and not s.frames:
            raise DataError(f"{manifest}: sample {s.id!r} has no frames")
        wanted = ([("audio", Path(s.audio))] if audio else []) + ([("frame", frame_of(s))] if frame else [])
        for kind, path in wanted:
            if not path.is_file():
                raise DataError(f"{manifest}: sample {s.id!r}: {kind} file {path} not found")


def load_image(path: Path) -> Any:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise DataError(f"{path}: frame file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the image ({exc})") from None


def _save_tokens(tokens: torch.Tensor, handle) -> None:
    torch.save(tokens.cpu().clone(), handle)


def _load_tokens(handle) -> torch.Tensor:
    return torch.load(handle, weights_only=True)


class ImageTokens:
    """Frame -> CLIP tokens (N, 1024) of LLaVA's frozen vision tower. CLIP never trains, so with a cache
    ("memory" or "disk") each frame is encoded once; disk entries are keyed by the file's path, size and
    mtime and `tag` (the LLaVA in use), in `folder`."""

    def __init__(
        self, llava: FrozenLlava, mode: str = "none", folder: Path | None = None, tag: str = ""
    ) -> None:
        if mode == "disk" and folder is None:
            raise ValueError("a disk cache needs a folder")
        self.llava, self.mode = llava, mode
        self.memory: dict[str, torch.Tensor] = {}
        self.disk = FileCache(folder, ".pt", _save_tokens, _load_tokens, tag=tag) if mode == "disk" else None

    def has(self, frame: Path) -> bool:
        if self.mode == "memory":
            return str(frame) in self.memory
        return self.disk is not None and self.disk.has(frame)

    def cached(self, frame: Path) -> torch.Tensor | None:
        if self.mode == "memory":
            return self.memory.get(str(frame))
        return self.disk.load(frame) if self.disk is not None else None

    def _store(self, frame: Path, tokens: torch.Tensor) -> None:
        if self.mode == "memory":
            self.memory[str(frame)] = tokens.cpu()
        elif self.disk is not None:
            self.disk.put(frame, tokens)

    def pixels(self, frame: Path) -> torch.Tensor:
        return self.llava.preprocess([load_image(frame)])[0]

    def __call__(
        self, frames: Sequence[Path], pixels: Sequence[torch.Tensor | None] | None = None
    ) -> torch.Tensor:
        """(B, N, 1024) on LLaVA's device; `pixels` (from a DataLoader worker) spare decoding frames here."""
        out = [self.cached(Path(f)) for f in frames]
        todo = [i for i, t in enumerate(out) if t is None]
        if todo:
            batch = [
                pixels[i] if pixels and pixels[i] is not None else self.pixels(Path(frames[i])) for i in todo
            ]
            for i, tokens in zip(todo, self.llava.image_tokens(torch.stack(batch)), strict=True):
                out[i] = tokens
                self._store(Path(frames[i]), tokens)
        return torch.stack([t.to(self.llava.device) for t in out])


def cavmae_noise(fbank: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """CAV-MAE's training augmentation (the official alignment ran with `noise=True`): uniform noise of a random
    scale up to 0.1, then a random roll along time, on a normalised (frames, bins) fbank."""
    frames = fbank.shape[0]
    scale = torch.rand((), generator=gen) / 10
    fbank = fbank + torch.rand(fbank.shape, generator=gen) * scale
    return torch.roll(fbank, int(torch.randint(-frames, frames, (), generator=gen)), 0)


class AVDataset(torch.utils.data.Dataset):
    """A clip's audio as model inputs (the backbone's front end) and its frame as pixels unless cached; run in
    DataLoader workers when `num_workers` > 0. With `augment_seed`, CAV-MAE inputs get `cavmae_noise` drawn
    from (seed, epoch, clip): the same with or without workers, and after a resume."""

    def __init__(
        self,
        samples: Sequence[AVSample],
        audio: AudioTokenizer | None,
        images: ImageTokens | None,
        augment_seed: int | None = None,
    ) -> None:
        self.samples, self.audio, self.images = samples, audio, images
        self.augment_seed, self.epoch = augment_seed, 1

    def augment(self, inputs: torch.Tensor, i: int) -> torch.Tensor:
        state = np.random.SeedSequence([self.augment_seed, self.epoch, i]).generate_state(1)[0]
        return cavmae_noise(inputs, torch.Generator().manual_seed(int(state)))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, torch.Tensor | None]:
        s = self.samples[i]
        audio = self.audio.prepare([s.audio])[0] if self.audio is not None else None
        if audio is not None and self.augment_seed is not None:
            audio = self.augment(audio, i)
        frame = frame_of(s)
        pixels = self.images.pixels(frame) if self.images and not self.images.has(frame) else None
        return i, audio, pixels


def epoch_order(n: int, seed: int, epoch: int, batch_size: int) -> list[list[int]]:
    """Batches of sample indices for an epoch: a function of (seed, epoch) only, so a resumed run needs no state."""
    order = np.random.default_rng([seed, epoch]).permutation(n).tolist()
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def _collate(items: list) -> tuple[list[int], torch.Tensor | None, list[torch.Tensor | None]]:
    audio = [a for _, a, _ in items]
    return (
        [i for i, _, _ in items],
        torch.stack(audio) if audio[0] is not None else None,
        [p for *_, p in items],
    )


def av_batches(dataset: AVDataset, batches: list[list[int]], workers: int) -> Iterator:
    """(indices, audio inputs, pixels) per batch, in the given order; workers fork (they never touch CUDA)."""
    extra = {"multiprocessing_context": "fork"} if workers else {}
    yield from torch.utils.data.DataLoader(
        dataset, batch_sampler=batches, num_workers=workers, collate_fn=_collate, **extra
    )
