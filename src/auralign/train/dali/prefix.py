"""Stage 1a, `auralign dali prefix`: learn DALI's prefix on (frame, audio caption) pairs.

in    `data:` clips with a caption (the first `num_pairs`), their frames; `model:` (LLaVA, prefix length)
train the prefix only, through the frozen LLaVA on its image tokens; LM loss on the audio caption
out   prefix.safetensors, config.json, log.jsonl, done.json

Under `accelerate launch` each process trains on its share of every batch (`lm_training`); the main one
writes the folder.
"""

import logging
from pathlib import Path

import torch

from auralign.errors import ConfigError, DataError
from auralign.train.common import finish_run, seed_everything
from auralign.train.dali.build import build_captioner
from auralign.train.dali.config import PrefixConfig
from auralign.train.dali.data import ImageTokens, check_files, frame_of, read_av_samples
from auralign.train.dali.folders import PART_FILES, save_tensors, start_stage
from auralign.train.dali.lm_training import train_lm_part
from auralign.train.dali.processes import processes

log = logging.getLogger(__name__)


def prefix_tune(cfg: PrefixConfig, progress: bool = True) -> Path:
    """Learn the prefix from `num_pairs` (frame, audio caption) pairs through the frozen LLaVA; returns the
    stage folder (prefix.safetensors)."""
    out = Path(cfg.output_dir)
    procs = processes(cfg.device)
    if start_stage(cfg, out, procs):
        return out
    if cfg.model.prefix_length == 0:
        raise ConfigError("model.prefix_length is 0: there is no prefix to tune")
    device = procs.device
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

    # CLIP is frozen: every pair's image tokens are computed once, up front
    images = ImageTokens(captioner.llava)
    batches = [pairs[i : i + cfg.batch_size] for i in range(0, len(pairs), cfg.batch_size)]
    tokens = torch.cat([images([frame_of(s) for s in batch]) for batch in batches])

    def loss_of(batch: list[int]) -> torch.Tensor:
        return captioner([pairs[i].caption for i in batch], image_tokens=tokens[batch])

    steps = train_lm_part(
        list(captioner.prefix.parameters()),
        captioner=captioner,
        captions=[s.caption for s in pairs],
        loss_of=loss_of,
        cfg=cfg,
        stage="prefix",
        out=out,
        progress=progress,
        procs=procs,
    )
    if procs.main:
        save_tensors(out / PART_FILES["prefix"], captioner.prefix.state_dict())
        finish_run(out, {"stage": "prefix", "pairs": [s.id for s in pairs], "steps": steps})
    procs.barrier()  # every process returns a finished folder
    return out
