"""DALI's stages as recipes (Malard et al., NeurIPS 2024), each a plain function of its config.

    prefix_tune  (frame, audio caption) pairs -> prefix.safetensors                  only the prefix trains
    align        (frame, audio) pairs -> audio.safetensors (+ prefix)                audio branch + adapter
    distill      pseudo-captions of frame + audio + prefix -> audio_projector.safetensors (+ audio, prefix)
    caption      audio | audio-visual | image -> predictions JSONL, as `auralign caption` writes it

A stage writes into its output folder the parts it trained (safetensors, loadable without auralign), the parts
it inherited (so a folder is all the next stage needs), `config.json` (the resolved model section included),
`log.jsonl` ({"stage", "step", "loss", ...} a line) and, last, `done.json`: a finished folder is not trained
again, and a folder trained with another config is refused. Alignment checkpoints every epoch (and every
`save_every` steps) and resumes from its latest checkpoint; pseudo-captioning and captioning resume from the
predictions already written. A missing audio or frame file is an error naming it, checked before any training.
"""

import hashlib
import importlib
import json
import logging
import math
import os
import random
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from auralign.config import StrictModel
from auralign.data.audiovisual import AVSample, read_av_manifest
from auralign.errors import ConfigError, DataError
from auralign.fileio import atomic_write, atomic_write_text
from auralign.models.dali.captioner import DALICaptioner, load_prefix_weights, load_projector_weights
from auralign.models.dali.cavmae import CAVMAEConfig
from auralign.models.dali.llava import FrozenLlava
from auralign.models.encoders.backbones import AudioTokenizer
from auralign.train.dali.config import (
    AlignConfig,
    AudioSource,
    AVData,
    CaptionConfig,
    DALIModel,
    DistillConfig,
    LlavaSource,
    Precision,
    PrefixConfig,
    Sampling,
)

log = logging.getLogger(__name__)

LOG, DONE, CONFIG = "log.jsonl", "done.json", "config.json"
PART_FILES = {
    "prefix": "prefix.safetensors",
    "audio": "audio.safetensors",
    "audio_projector": "audio_projector.safetensors",
}
ATTENTION_FILE = "attentive_ot.safetensors"
PSEUDO_CAPTIONS = "pseudo_captions.jsonl"
CKPT_PREFIX = "epoch-"
#: config keys that do not change what a stage computes, so a resumed or re-run folder may differ in them
RUNTIME_KEYS = ("device", "log_every", "num_workers", "save_every", "keep_checkpoints", "image_token_cache",
                "cache_dir", "micro_batch_size")  # fmt: skip


# ---------------------------------------------------------------- audio-visual samples


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


def check_files(samples: Sequence[AVSample], manifest: str, audio: bool, frame: bool) -> None:
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


# ---------------------------------------------------------------- building the model


LLAVA_LOADERS: dict[str, str | Callable[..., FrozenLlava]] = {
    "tiny": "auralign.models.testing:tiny_llava",
}
AUDIO_LOADERS: dict[str, str | Callable[..., nn.Module]] = {}


def register_llava_loader(name: str, loader: str | Callable[..., FrozenLlava]) -> None:
    """Make `model.llava.loader: NAME` call `loader(**loader_args)`, which returns a FrozenLlava."""
    LLAVA_LOADERS[name] = loader


def register_audio_loader(name: str, loader: str | Callable[..., nn.Module]) -> None:
    """Make `model.audio.loader: NAME` call `loader(**loader_args)`: an AudioBackbone or an AudioTokenizer."""
    AUDIO_LOADERS[name] = loader


def _resolve(name: str, registry: dict[str, Any], key: str) -> Callable[..., Any]:
    target = registry.get(name, name)
    if callable(target):
        return target
    module, sep, attr = target.partition(":")
    if not sep:
        module, _, attr = target.rpartition(".")
    if not module:
        known = ", ".join(sorted(registry)) or "none"
        raise ConfigError(
            f"{key}: {name!r} is neither a registered loader ({known}) nor 'package.module:function'"
        )
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{key}: cannot import {target!r} ({exc})") from exc


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_llava(source: LlavaSource, device: torch.device) -> FrozenLlava:
    if source.loader:
        llava = _resolve(source.loader, LLAVA_LOADERS, "model.llava.loader")(**source.loader_args)
        if not isinstance(llava, FrozenLlava):
            raise ConfigError(
                f"model.llava.loader: {source.loader!r} returned {type(llava).__name__}, not a FrozenLlava"
            )
        return llava.to(device)
    from auralign.models.factory import resolve_dtype

    return FrozenLlava.from_pretrained(source.path, dtype=resolve_dtype(source.dtype, device), device=device)


def build_audio(source: AudioSource, token_dim: int) -> AudioTokenizer:
    """The audio tokenizer (fp32: it trains) with tokens of CLIP's width `token_dim`."""
    if source.kind == "cavmae":
        sizes = CAVMAEConfig(**source.sizes.model_dump())
        tokenizer, loaded = AudioTokenizer.cavmae(source.checkpoint, sizes, token_dim, source.std_scale)
        if loaded is not None:
            log.info("%s: %s", source.checkpoint, loaded)
        else:
            log.warning(
                "model.audio.checkpoint is not set: the CAV-MAE audio branch starts from random weights"
            )
        return tokenizer
    if source.kind == "transformers":
        return AudioTokenizer.from_transformers(source.path, token_dim)
    made = _resolve(source.loader, AUDIO_LOADERS, "model.audio.loader")(**source.loader_args)
    if isinstance(made, AudioTokenizer):
        if made.token_dim != token_dim:
            raise ConfigError(
                f"model.audio.loader: tokens are {made.token_dim} wide, LLaVA takes {token_dim}"
            )
        return made
    try:
        return AudioTokenizer(made, token_dim)
    except TypeError as exc:
        raise ConfigError(f"model.audio.loader: {exc}") from exc


def build_captioner(
    model: DALIModel, device: torch.device, with_audio: bool = True, seed: int = 0
) -> DALICaptioner:
    """Frozen LLaVA (+ audio tokenizer) + a fresh prefix, on `device`; trained parts come from `load_parts`."""
    llava = build_llava(model.llava, device)
    audio = build_audio(model.audio, llava.token_dim) if with_audio else None
    captioner = DALICaptioner(
        llava, audio, model.prefix_length, model.prefix_position, model.prompt, seed=seed
    )
    return captioner.to(device)


# ---------------------------------------------------------------- stage folders


def save_tensors(path: Path, state: dict[str, torch.Tensor]) -> None:
    """A safetensors file written beside its final name, then renamed over it."""
    from safetensors.torch import save_file

    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp))
    os.replace(tmp, path)


def load_module(module: nn.Module, path: Path) -> None:
    from safetensors.torch import load_file

    result = module.load_state_dict(load_file(str(path)), strict=False)
    if result.missing_keys or result.unexpected_keys:
        wrong = (result.missing_keys or result.unexpected_keys)[0]
        raise ConfigError(f"{path}: saved by another model config (e.g. {wrong!r} does not match)")


def load_parts(captioner: DALICaptioner, folder: str | os.PathLike) -> list[str]:
    """Load the trained parts a stage folder holds (prefix, audio tokenizer, audio projector); their names."""
    folder, loaded = Path(folder), []
    if captioner.prefix is not None and (folder / PART_FILES["prefix"]).is_file():
        load_prefix_weights(captioner.prefix, folder / PART_FILES["prefix"])
        loaded.append("prefix")
    if captioner.audio is not None and (folder / PART_FILES["audio"]).is_file():
        load_module(captioner.audio, folder / PART_FILES["audio"])
        loaded.append("audio")
    if (folder / PART_FILES["audio_projector"]).is_file():
        device = captioner.llava.device
        load_projector_weights(
            captioner.distil_projector().to(device), folder / PART_FILES["audio_projector"]
        )
        loaded.append("audio_projector")
    return loaded


def copy_parts(source: Path, out: Path, names: Sequence[str]) -> None:
    """Carry a finished stage's parts into this stage's folder, so each folder stands alone."""
    for name in names:
        src = source / PART_FILES[name]
        if src.is_file():
            tmp = out / f".{src.name}.tmp"
            shutil.copyfile(src, tmp)
            os.replace(tmp, out / src.name)


def upstream(folder: str, key: str, stage: str | None = None) -> Path:
    """A finished stage's output folder named in a config (done.json is written last)."""
    path = Path(folder)
    if not (path / DONE).is_file():
        run = f"run `auralign dali {stage}` first" if stage else "run that stage first"
        raise ConfigError(f"{key}: {path} is not a finished DALI stage folder (no {DONE}); {run}")
    return path


def resolve_model(model: DALIModel | None, folder: Path) -> DALIModel:
    """The config's model section, or the one the upstream stage ran with."""
    if model is not None:
        return model
    saved = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    if not saved.get("model"):
        raise ConfigError(f"{folder / CONFIG}: no model section to inherit; give `model:` in this config")
    return DALIModel.model_validate(saved["model"])


def _fingerprint(dump: Any) -> Any:
    if isinstance(dump, dict):
        return {k: _fingerprint(v) for k, v in dump.items() if k not in RUNTIME_KEYS}
    return dump


def start_run(cfg: StrictModel, out: Path) -> bool:
    """Create the folder and its config.json; refuse one trained with another config. True when finished."""
    out.mkdir(parents=True, exist_ok=True)
    current = cfg.model_dump(mode="json")
    path = out / CONFIG
    if path.exists():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if _fingerprint(saved) != _fingerprint(current):
            keys = sorted(k for k in current if _fingerprint(saved.get(k)) != _fingerprint(current[k]))
            raise ConfigError(f"{out}: holds a run with another config (differs in: {', '.join(keys)}); "
                              "use a new output_dir or delete it")  # fmt: skip
    else:
        atomic_write_text(path, json.dumps(current, indent=2) + "\n")
    if (out / DONE).is_file():
        log.info("%s: already finished (delete it to run again)", out)
        return True
    return False


def finish(out: Path, info: dict[str, Any]) -> Path:
    atomic_write_text(out / DONE, json.dumps(info) + "\n")
    return out


class JsonlLog:
    """log.jsonl of a stage: one {"stage", "step", "loss", ...} row per logged step; rows past `keep_until` (a
    checkpoint's step, on resume) are dropped because those steps run again."""

    def __init__(self, path: Path, keep_until: int = 0) -> None:
        self.path = path
        rows = []
        if path.exists() and keep_until > 0:
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line)["step"] <= keep_until:
                        rows.append(line + "\n")
                except (json.JSONDecodeError, KeyError, TypeError):  # a line torn by a kill
                    continue
        atomic_write_text(path, "".join(rows))

    def write(self, row: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


# ---------------------------------------------------------------- training helpers


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def epoch_order(n: int, seed: int, epoch: int, batch_size: int) -> list[list[int]]:
    """Batches of sample indices for an epoch: a function of (seed, epoch) only, so a resumed run needs no state."""
    order = np.random.default_rng([seed, epoch]).permutation(n).tolist()
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def cosine_lr(total: int, warmup_ratio: float) -> Callable[[int], float]:
    warmup = int(total * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return factor


def autocast(precision: Precision, device: torch.device) -> AbstractContextManager:
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def progress_bar(total: int, initial: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled)


class ImageTokens:
    """Frame -> CLIP tokens (N, 1024) of LLaVA's frozen vision tower. CLIP never trains, so with a cache
    ("memory" or "disk") each frame is encoded once; the key covers the file's path, size and mtime and `tag`
    (the LLaVA in use)."""

    def __init__(
        self, llava: FrozenLlava, mode: str = "none", folder: Path | None = None, tag: str = ""
    ) -> None:
        if mode == "disk" and folder is None:
            raise ValueError("a disk cache needs a folder")
        self.llava, self.mode, self.folder, self.tag = llava, mode, folder, tag
        self.memory: dict[str, torch.Tensor] = {}

    def _file(self, frame: Path) -> Path:
        st = frame.stat()
        key = f"{self.tag}|{frame.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        return self.folder / f"{hashlib.sha1(key.encode()).hexdigest()}.pt"

    def cached(self, frame: Path) -> torch.Tensor | None:
        if self.mode == "memory":
            return self.memory.get(str(frame))
        if self.mode == "disk" and (path := self._file(frame)).is_file():
            return torch.load(path, weights_only=True)
        return None

    def has(self, frame: Path) -> bool:
        if self.mode == "memory":
            return str(frame) in self.memory
        return self.mode == "disk" and self._file(frame).is_file()

    def _store(self, frame: Path, tokens: torch.Tensor) -> None:
        if self.mode == "memory":
            self.memory[str(frame)] = tokens.cpu()
        elif self.mode == "disk":
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_write(self._file(frame), "wb", durable=False) as handle:
                torch.save(tokens.cpu().clone(), handle)

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


# ---------------------------------------------------------------- stage 1a: prefix tuning


def prefix_tune(cfg: PrefixConfig, progress: bool = True) -> Path:
    """Learn the prefix from `num_pairs` (frame, audio caption) pairs through the frozen LLaVA; returns the
    stage folder (prefix.safetensors)."""
    out = Path(cfg.output_dir)
    if start_run(cfg, out):
        return out
    if cfg.model.prefix_length == 0:
        raise ConfigError("model.prefix_length is 0: there is no prefix to tune")
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    pairs = [s for s in read_av_samples(cfg.data) if s.caption][: cfg.num_pairs]
    if not pairs:
        raise DataError(f"{cfg.data.manifest}: no sample has a 'caption' to tune the prefix on")
    if len(pairs) < cfg.num_pairs:
        log.warning(
            "%s: %d captioned samples, fewer than num_pairs=%d", cfg.data.manifest, len(pairs), cfg.num_pairs
        )
    check_files(pairs, cfg.data.manifest, audio=False, frame=True)
    captioner = build_captioner(cfg.model, device, with_audio=False, seed=cfg.seed)
    images = ImageTokens(captioner.llava)
    tokens = torch.cat([images([frame_of(s) for s in pairs[i : i + cfg.batch_size]])
                        for i in range(0, len(pairs), cfg.batch_size)])  # fmt: skip

    def loss_of(batch: list[int]) -> torch.Tensor:
        return captioner([pairs[i].caption for i in batch], image_tokens=tokens[batch])

    step = train_lm_part(
        list(captioner.prefix.parameters()), len(pairs), loss_of, cfg, "prefix", out, progress
    )
    save_tensors(out / PART_FILES["prefix"], captioner.prefix.state_dict())
    return finish(out, {"stage": "prefix", "pairs": [s.id for s in pairs], "steps": step})


# ---------------------------------------------------------------- stage 1b: distribution alignment


@dataclass
class Aligner:
    """What trains in alignment: the audio tokenizer (Adam), and for attentive OT its heads (own Adam)."""

    audio: AudioTokenizer
    optimizer: torch.optim.Optimizer
    loss: nn.Module | None = None
    attention: nn.Module | None = None
    attention_optimizer: torch.optim.Optimizer | None = None


def make_aligner(cfg: AlignConfig, audio: AudioTokenizer, device: torch.device) -> Aligner:
    from auralign.align import AlignmentLoss, AttentiveOT, EntropySchedule

    if not cfg.train_backbone:  # only the adapter into CLIP's space learns
        audio.backbone.requires_grad_(False).eval()
    params = [p for p in audio.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.method != "attentive_ot":
        return Aligner(audio, optimizer, loss=AlignmentLoss(cfg.method, **cfg.method_options))
    a = cfg.attention
    schedule = EntropySchedule(a.frozen_epochs, tuple(a.lambdas), a.final_lambda)
    heads = AttentiveOT(
        audio.token_dim,
        num_heads=a.heads,
        temperature=a.temperature,
        uniform_mix=a.uniform_mix,
        solver=a.solver,
        solver_kwargs=a.solver_options,
        schedule=schedule,
        adversarial=a.adversarial,
    ).to(device)
    head_optimizer = torch.optim.Adam(heads.parameters(), lr=a.lr, betas=a.betas, weight_decay=a.weight_decay)
    return Aligner(audio, optimizer, attention=heads, attention_optimizer=head_optimizer)


def align_step(aligner: Aligner, audio_tokens: torch.Tensor, image_tokens: torch.Tensor, epoch: int) -> dict:
    """One optimiser step (two for attentive OT once its heads train); the losses as floats."""
    if aligner.attention is None:
        loss = aligner.loss(audio_tokens, image_tokens)
        loss.backward()
        aligner.optimizer.step()
        aligner.optimizer.zero_grad(set_to_none=True)
        return {"loss": loss.item()}
    out = aligner.attention(audio_tokens, image_tokens)
    head_loss = aligner.attention.attention_loss(out, epoch)
    # both gradients before either step, each into its own parameters (see AttentiveOT's docstring)
    encoder = [p for p in aligner.audio.parameters() if p.requires_grad]
    out.loss.backward(retain_graph=head_loss is not None, inputs=encoder)
    if head_loss is not None:
        head_loss.backward(inputs=list(aligner.attention.parameters()))
    aligner.optimizer.step()
    aligner.optimizer.zero_grad(set_to_none=True)
    row = {"loss": out.loss.item(), "entropy": out.entropy.mean().item()}
    if head_loss is not None:
        aligner.attention_optimizer.step()
        aligner.attention_optimizer.zero_grad(set_to_none=True)
        row |= {"attention_loss": head_loss.item(), "lambda": aligner.attention.schedule(epoch)}
    return row


def set_epoch_lr(cfg: AlignConfig, optimizer: torch.optim.Optimizer, epoch: int) -> float:
    """Step decay: lr x gamma after each milestone epoch (DALI: halved after epochs 10 and 15)."""
    lr = cfg.lr * cfg.lr_gamma ** sum(epoch > m for m in cfg.lr_milestones)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def augment_seed(cfg: AlignConfig, audio: AudioTokenizer) -> int | None:
    """The augmentation seed, or None: `augment` applies to CAV-MAE's fbank inputs only."""
    from auralign.models.encoders.backbones import CAVMAEBackbone

    if not cfg.augment:
        return None
    if not isinstance(audio.backbone, CAVMAEBackbone):
        log.info(
            "augment: only CAV-MAE inputs are augmented; %s inputs are not", type(audio.backbone).__name__
        )
        return None
    return cfg.seed


def save_align_checkpoint(out: Path, aligner: Aligner, epoch: int, step: int, keep: int) -> Path:
    """Weights, optimisers and RNG after `step` batches of `epoch`, in a folder renamed into place."""
    folder = out / "checkpoints" / f"{CKPT_PREFIX}{epoch:03d}-step-{step:07d}"
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_tensors(tmp / PART_FILES["audio"], aligner.audio.state_dict())
    state = {
        "epoch": epoch,
        "step": step,
        "optimizer": aligner.optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    if aligner.attention is not None:
        save_tensors(tmp / ATTENTION_FILE, aligner.attention.state_dict())
        state["attention_optimizer"] = aligner.attention_optimizer.state_dict()
    torch.save(state, tmp / "state.pt")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    for old in sorted(folder.parent.glob(f"{CKPT_PREFIX}*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def resume_align(out: Path, aligner: Aligner, steps_per_epoch: int) -> tuple[int, int]:
    """Load the latest checkpoint, if any; (epoch, step) to continue from (1-based epoch, batches done)."""
    folder = out / "checkpoints"
    found = sorted(folder.glob(f"{CKPT_PREFIX}*")) if folder.is_dir() else []
    if not found:
        return 1, 0
    ckpt = found[-1]
    load_module(aligner.audio, ckpt / PART_FILES["audio"])
    state = torch.load(ckpt / "state.pt", weights_only=False)
    aligner.optimizer.load_state_dict(state["optimizer"])
    if aligner.attention is not None:
        load_module(aligner.attention, ckpt / ATTENTION_FILE)
        aligner.attention_optimizer.load_state_dict(state["attention_optimizer"])
    torch.set_rng_state(state["torch_rng"])
    log.info("resuming from %s", ckpt)
    epoch, step = state["epoch"], state["step"]
    return (epoch + 1, 0) if step >= steps_per_epoch else (epoch, step)


def align(cfg: AlignConfig, progress: bool = True) -> Path:
    """Train the audio tokenizer so its tokens' distribution matches CLIP's on the clip's frame; returns the stage
    folder (audio.safetensors, the prefix carried over, attentive_ot.safetensors for attentive OT)."""
    prefix_dir = upstream(cfg.prefix_dir, "prefix_dir", "prefix")
    model = resolve_model(cfg.model, prefix_dir)
    cfg = cfg.model_copy(update={"model": model})
    out = Path(cfg.output_dir)
    if start_run(cfg, out):
        return out
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    samples = read_av_samples(cfg.data)
    check_files(samples, cfg.data.manifest, audio=True, frame=True)
    llava = build_llava(model.llava, device)
    audio = build_audio(model.audio, llava.token_dim).to(device).train()
    aligner = make_aligner(cfg, audio, device)
    cache = Path(cfg.cache_dir) if cfg.cache_dir else out / "image_tokens"
    images = ImageTokens(llava, cfg.image_token_cache, cache, tag=model.llava.model_dump_json())
    per_epoch = math.ceil(len(samples) / cfg.batch_size)
    first, step = resume_align(out, aligner, per_epoch)
    logger = JsonlLog(out / LOG, keep_until=(first - 1) * per_epoch + step)
    dataset = AVDataset(samples, audio, images, augment_seed=augment_seed(cfg, audio))
    with progress_bar(cfg.epochs * per_epoch, (first - 1) * per_epoch + step, f"dali align ({cfg.method})",
                      progress) as bar:  # fmt: skip
        for epoch in range(first, cfg.epochs + 1):
            lr = set_epoch_lr(cfg, aligner.optimizer, epoch)
            dataset.epoch = epoch
            batches = epoch_order(len(samples), cfg.seed, epoch, cfg.batch_size)[step:]
            loader = av_batches(dataset, batches, cfg.data.num_workers)
            for k, (indices, inputs, pixels) in enumerate(loader, start=step + 1):
                with autocast(cfg.precision, device):
                    audio_tokens = audio(inputs.to(device))
                image_tokens = images([frame_of(samples[i]) for i in indices], pixels)
                row = align_step(aligner, audio_tokens.float(), image_tokens.float(), epoch)
                global_step = (epoch - 1) * per_epoch + k
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{row['loss']:.4f}")
                if global_step % cfg.log_every == 0:
                    logger.write({"stage": "align", "step": global_step, "epoch": epoch, "lr": lr, **row})
                if k == per_epoch or (cfg.save_every and k % cfg.save_every == 0):
                    save_align_checkpoint(out, aligner, epoch, k, cfg.keep_checkpoints)
            step = 0
    save_tensors(out / PART_FILES["audio"], audio.state_dict())
    if aligner.attention is not None:
        save_tensors(out / ATTENTION_FILE, aligner.attention.state_dict())
    copy_parts(prefix_dir, out, ["prefix"])
    return finish(
        out, {"stage": "align", "method": cfg.method, "epochs": cfg.epochs, "samples": len(samples)}
    )


# ---------------------------------------------------------------- generation (pseudo-captions, captions)


@torch.no_grad()
def generate_batch(
    captioner: DALICaptioner,
    samples: Sequence[AVSample],
    mode: str,
    images: ImageTokens,
    sampling: Sampling,
    seed: int,
) -> list[str]:
    """Captions of a batch from its frames ("image"), audio ("audio") or both ("audio-visual")."""
    image_tokens = images([frame_of(s) for s in samples]) if mode != "audio" else None
    audio_tokens = captioner.audio.encode([s.audio for s in samples]) if mode != "image" else None
    return captioner.generate(
        image_tokens,
        audio_tokens,
        max_new_tokens=sampling.max_new_tokens,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        num_beams=sampling.num_beams,
        seed=seed,
    )


def generate_jsonl(
    captioner: DALICaptioner,
    samples: Sequence[AVSample],
    mode: str,
    sampling: Sampling,
    seed: int,
    out: Path,
    row: Callable[[AVSample, str], dict],
    progress: bool,
    desc: str,
) -> Path:
    """One JSON row per sample into `out`, resumable: batches are fixed (batch k is seeded seed + k), rows go to
    `out.partial` as they come, and `out` appears atomically in sample order."""
    from auralign.infer.caption import _partial_rows
    from auralign.infer.caption import finish as finish_rows

    partial = out.with_name(out.name + ".partial")
    done = set(_partial_rows(partial)) if partial.exists() else set()
    if done and not partial.read_bytes().endswith(b"\n"):
        with partial.open("a", encoding="utf-8") as handle:
            handle.write("\n")  # close a line torn by a kill
    images = ImageTokens(captioner.llava)
    captioner.eval()
    with partial.open("a", encoding="utf-8") as handle, progress_bar(len(samples), 0, desc, progress) as bar:
        for k in range(0, len(samples), sampling.batch_size):
            batch = samples[k : k + sampling.batch_size]
            if all(s.id in done for s in batch):
                bar.update(len(batch))
                continue
            texts = generate_batch(captioner, batch, mode, images, sampling, seed + k // sampling.batch_size)
            for s, text in zip(batch, texts, strict=True):
                handle.write(json.dumps(row(s, text), ensure_ascii=False) + "\n")
            handle.flush()
            bar.update(len(batch))
    finish_rows(partial, out, [s.id for s in samples])
    return out


def pseudo_row(sample: AVSample, text: str) -> dict:
    """A pseudo-captioned clip as an audio-visual manifest line (absolute paths: it is read from elsewhere)."""
    return {"id": sample.id, "audio": str(Path(sample.audio).resolve()),
            "frames": [str(frame_of(sample).resolve())], "caption": text}  # fmt: skip


# ---------------------------------------------------------------- stage 2: distillation


def train_lm_part(
    params: list[nn.Parameter],
    n: int,
    loss_of: Callable[[list[int]], torch.Tensor],
    cfg: PrefixConfig | DistillConfig,
    stage: str,
    out: Path,
    progress: bool,
) -> int:
    """AdamW + warm-up/cosine over `cfg.epochs` of seeded batches of the n samples; `loss_of(indices)` is a
    micro-batch's LM loss. Micro-batches (`micro_batch_size`) accumulate into one step, weighted by their size;
    returns the number of steps."""
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = math.ceil(n / cfg.batch_size)
    total = cfg.epochs * per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_lr(total, cfg.warmup_ratio))
    micro = cfg.micro_batch_size or cfg.batch_size
    logger, step = JsonlLog(out / LOG), 0
    with progress_bar(total, 0, f"dali {stage}", progress) as bar:
        for epoch in range(1, cfg.epochs + 1):
            for batch in epoch_order(n, cfg.seed, epoch, cfg.batch_size):
                loss = 0.0
                for i in range(0, len(batch), micro):
                    part = loss_of(batch[i : i + micro]) * (len(batch[i : i + micro]) / len(batch))
                    part.backward()
                    loss += part.item()
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
                if step % cfg.log_every == 0:
                    lr = scheduler.get_last_lr()[0]
                    logger.write({"stage": stage, "step": step, "epoch": epoch, "loss": loss, "lr": lr})
    return step


def distill(cfg: DistillConfig, progress: bool = True) -> Path:
    """Pseudo-caption the clips from frame + audio + prefix, then fine-tune a copy of LLaVA's projector for
    audio tokens alone (the image path keeps the original); returns the stage folder."""
    align_dir = upstream(cfg.align_dir, "align_dir", "align")
    model = resolve_model(cfg.model, align_dir)
    cfg = cfg.model_copy(update={"model": model})
    out = Path(cfg.output_dir)
    if start_run(cfg, out):
        return out
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    samples = read_av_samples(cfg.data)
    check_files(samples, cfg.data.manifest, audio=True, frame=True)
    captioner = build_captioner(model, device, seed=cfg.seed)
    load_parts(captioner, align_dir)
    captioner.requires_grad_(False)  # only the projector copy, made below, trains
    pseudo = out / PSEUDO_CAPTIONS
    if not pseudo.is_file():
        generate_jsonl(captioner, samples, "audio-visual", cfg.pseudo, cfg.seed, pseudo, pseudo_row, progress,
                       "dali pseudo-captions")  # fmt: skip
    pairs = read_av_manifest(pseudo)
    if not cfg.use_prefix:
        captioner.prefix = None  # the projector learns audio alone, as the official distillation
    device = captioner.llava.device
    projector = captioner.distil_projector().to(device)

    def loss_of(batch: list[int]) -> torch.Tensor:
        with torch.no_grad(), autocast(cfg.precision, device):
            audio_tokens = captioner.audio.encode([pairs[i].audio for i in batch])
        return captioner([pairs[i].caption for i in batch], audio_tokens=audio_tokens.float())

    steps = train_lm_part(list(projector.parameters()), len(pairs), loss_of, cfg, "distill", out, progress)
    save_tensors(out / PART_FILES["audio_projector"], captioner.audio_projector.state_dict())
    copy_parts(align_dir, out, ["prefix", "audio"])
    return finish(out, {"stage": "distill", "pseudo_captions": len(pairs), "steps": steps})


# ---------------------------------------------------------------- zero-shot captioning


def load_captioner(
    stage_dir: str | os.PathLike,
    model: DALIModel | None = None,
    device: str = "auto",
    with_audio: bool = True,
) -> DALICaptioner:
    """The captioner of a finished stage folder (its model section unless `model` is given), parts loaded."""
    folder = upstream(str(stage_dir), "stage folder")
    captioner = build_captioner(resolve_model(model, folder), resolve_device(device), with_audio=with_audio)
    load_parts(captioner, folder)
    return captioner.eval()


def caption_row(mode: str, task: str, prompt: str) -> Callable[[AVSample, str], dict]:
    """Rows of `auralign caption`'s predictions JSONL (+ the frame and the mode)."""

    def row(sample: AVSample, text: str) -> dict:
        refs = list(sample.references) or ([sample.caption] if sample.caption else [])
        return {"id": sample.id, "task": task, "audios": [str(sample.audio)],
                "frames": [str(frame_of(sample))] if sample.frames else [],
                "mode": mode, "prompt": prompt, "prediction": text, "references": refs, "label": None}  # fmt: skip

    return row


def uses_prefix(cfg: CaptionConfig, captioner: DALICaptioner) -> bool:
    """The official inference feeds audio through the distilled projector without the prefix (the projector
    learnt without it); image and audio-visual input keep the prefix, as in pseudo-captioning."""
    if cfg.use_prefix is not None:
        return cfg.use_prefix
    return not (cfg.mode == "audio" and captioner.audio_projector is not None)


def caption(cfg: CaptionConfig, progress: bool = True) -> Path:
    """Caption every clip of the manifest in `mode`; returns the predictions JSONL (kept if it exists)."""
    out = Path(cfg.output)
    if out.is_file():
        log.info("%s: already written (delete it to caption again)", out)
        return out
    folder = upstream(cfg.distill_dir, "distill_dir", "distill")
    if cfg.mode != "image" and not (folder / PART_FILES["audio"]).is_file():
        raise ConfigError(f"distill_dir: {folder} has no aligned audio tokenizer ({PART_FILES['audio']}); "
                          "give a distill or align folder, or use mode: image")  # fmt: skip
    samples = read_av_samples(cfg.data)
    check_files(samples, cfg.data.manifest, audio=cfg.mode != "image", frame=cfg.mode != "audio")
    seed_everything(cfg.seed)
    captioner = load_captioner(folder, cfg.model, cfg.device, with_audio=cfg.mode != "image")
    if not uses_prefix(cfg, captioner):
        captioner.prefix = None
    out.parent.mkdir(parents=True, exist_ok=True)
    row = caption_row(cfg.mode, cfg.task, captioner.prompt)
    return generate_jsonl(captioner, samples, cfg.mode, cfg.generation, cfg.seed, out, row, progress,
                          f"dali caption ({cfg.mode})")  # fmt: skip


# ---------------------------------------------------------------- token statistics (DALI Figure 4)


@torch.no_grad()
def mean_tokens(
    captioner: DALICaptioner, samples: Sequence[AVSample], batch_size: int = 16, progress: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-clip mean audio token and mean image token, (B, 1024) each, float32 on CPU: the points of DALI's PCA
    figure. `auralign.align.modality_gap(audio[:, None], image[:, None])` gives the figures and the PCA."""
    if captioner.audio is None:
        raise ConfigError("mean_tokens needs a captioner with an audio tokenizer")
    check_files(samples, "samples", audio=True, frame=True)
    images, audio_means, image_means = ImageTokens(captioner.llava), [], []
    captioner.eval()
    with progress_bar(len(samples), 0, "dali mean tokens", progress) as bar:
        for k in range(0, len(samples), batch_size):
            batch = samples[k : k + batch_size]
            audio_means.append(captioner.audio.encode([s.audio for s in batch]).float().mean(1).cpu())
            image_means.append(images([frame_of(s) for s in batch]).float().mean(1).cpu())
            bar.update(len(batch))
    return torch.cat(audio_means), torch.cat(image_means)
