"""DALI's stage folders: what a finished stage leaves for the next one, and how the next one reads it.

A stage folder follows the run-folder protocol of `auralign.train.common` (config.json, log.jsonl, done.json
last) and holds the parts it trained (safetensors, loadable without auralign) and the parts it inherited, so
a folder is all the next stage needs. A stage may leave out `model:`; it then takes the upstream folder's.
"""

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel
from torch import nn

from auralign.data.audiovisual import AVSample
from auralign.errors import ConfigError
from auralign.fileio import atomic_write_bytes
from auralign.models.dali.captioner import DALICaptioner, load_prefix_weights, load_projector_weights
from auralign.train.common import CONFIG, is_finished, seed_everything, start_run
from auralign.train.dali.build import build_captioner, resolve_device
from auralign.train.dali.config import DALIModel
from auralign.train.dali.data import check_files, read_av_samples
from auralign.train.dali.processes import Processes, processes

PART_FILES = {
    "prefix": "prefix.safetensors",
    "audio": "audio.safetensors",
    "audio_projector": "audio_projector.safetensors",
}
#: config keys that do not change what a stage computes, so a resumed or re-run folder may differ in them
RUNTIME_KEYS = (
    "device",
    "log_every",
    "num_workers",
    "save_every",
    "keep_checkpoints",
    "image_token_cache",
    "cache_dir",
    "micro_batch_size",
)


def start_stage(cfg: BaseModel, out: Path, procs: Processes | None = None) -> bool:
    """Start (or resume) a stage in `out`; True when it has finished already. With several processes the main
    one writes config.json (or refuses the folder) before the others read it."""
    return (procs or Processes()).first(lambda: start_run(cfg, out, RUNTIME_KEYS))


def upstream(folder: str, key: str, stage: str | None = None) -> Path:
    """A finished stage's output folder named in a config (done.json is written last)."""
    path = Path(folder)
    if not is_finished(path):
        run = f"run `auralign dali {stage}` first" if stage else "run that stage first"
        raise ConfigError(f"{key}: {path} is not a finished DALI stage folder (no done.json); {run}")
    return path


def resolve_model(model: DALIModel | None, folder: Path) -> DALIModel:
    """The config's model section, or the one the upstream stage ran with."""
    if model is not None:
        return model
    saved = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    if not saved.get("model"):
        raise ConfigError(f"{folder / CONFIG}: no model section to inherit; give `model:` in this config")
    return DALIModel.model_validate(saved["model"])


def save_tensors(path: Path, state: dict[str, torch.Tensor]) -> None:
    """A safetensors file, written atomically."""
    from safetensors.torch import save

    atomic_write_bytes(path, save({k: v.detach().cpu().contiguous() for k, v in state.items()}))


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
            atomic_write_bytes(out / src.name, src.read_bytes())


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


@dataclass(frozen=True)
class ChainedStage:
    """A stage that continues an earlier stage's folder, ready to train: its config with the model section
    filled in, the earlier folder, its own output folder, the device, its checked samples and the processes
    it runs on."""

    cfg: Any
    upstream: Path
    out: Path
    device: torch.device
    samples: list[AVSample]
    procs: Processes


def continue_stage(cfg: Any, *, key: str, stage: str) -> ChainedStage | None:
    """Set up a stage whose `cfg.<key>` names a finished `stage` folder: inherit that folder's model section,
    join the launch's processes (if any), claim the output folder (None: it already holds this run,
    finished), seed, and read the samples with every audio and frame file checked."""
    upstream_dir = upstream(getattr(cfg, key), key, stage)
    cfg = cfg.model_copy(update={"model": resolve_model(cfg.model, upstream_dir)})
    out = Path(cfg.output_dir)
    procs = processes(cfg.device)
    if start_stage(cfg, out, procs):
        return None
    seed_everything(cfg.seed)
    samples = read_av_samples(cfg.data)
    check_files(samples, cfg.data.manifest, audio=True, frame=True)
    return ChainedStage(
        cfg=cfg, upstream=upstream_dir, out=out, device=procs.device, samples=samples, procs=procs
    )
