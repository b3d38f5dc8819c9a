"""Stage 2, `auralign dali distill`: pseudo-captions from frame + audio, then an audio-only projector.

in    `align_dir` (a finished align stage: audio tokenizer, prefix, model section), `data:` clips
1     pseudo-caption every clip from its frame + audio + prefix (`pseudo:` decoding) into
      pseudo_captions.jsonl (resumable; an audio-visual manifest with absolute paths)
2     train a copy of LLaVA's projector for audio tokens alone on those captions (the image path keeps
      the original); the prefix joins the training input only with `use_prefix`
out   audio_projector.safetensors, the audio tokenizer and prefix carried over, pseudo_captions.jsonl,
      config.json, log.jsonl, done.json

Under `accelerate launch` the processes share the pseudo-captioning batch by batch (`generation`: the file is
the one process's, in sample order) and each trains on its share of every batch (`lm_training`); the main
one writes the folder.
"""

from pathlib import Path

import torch

from auralign.data.audiovisual import AVSample, read_av_manifest
from auralign.train.common import finish_run
from auralign.train.dali.build import autocast, build_captioner
from auralign.train.dali.config import DistillConfig
from auralign.train.dali.data import frame_of
from auralign.train.dali.folders import (
    PART_FILES,
    continue_stage,
    copy_parts,
    load_parts,
    save_tensors,
)
from auralign.train.dali.generation import generate_jsonl
from auralign.train.dali.lm_training import train_lm_part

PSEUDO_CAPTIONS = "pseudo_captions.jsonl"


def pseudo_row(sample: AVSample, text: str) -> dict:
    """A pseudo-captioned clip as an audio-visual manifest line (absolute paths: it is read from elsewhere)."""
    return {
        "id": sample.id,
        "audio": str(Path(sample.audio).resolve()),
        "frames": [str(frame_of(sample).resolve())],
        "caption": text,
    }


def distill(cfg: DistillConfig, progress: bool = True) -> Path:
    """Pseudo-caption the clips from frame + audio + prefix, then fine-tune a copy of LLaVA's projector for
    audio tokens alone (the image path keeps the original); returns the stage folder."""
    stage = continue_stage(cfg, key="align_dir", stage="align")
    if stage is None:
        return Path(cfg.output_dir)
    cfg, out, device, samples, procs = stage.cfg, stage.out, stage.device, stage.samples, stage.procs
    captioner = build_captioner(cfg.model, device, seed=cfg.seed)
    load_parts(captioner, stage.upstream)
    captioner.requires_grad_(False)  # only the projector copy, made below, trains

    # 1: pseudo-captions
    pseudo = out / PSEUDO_CAPTIONS
    if not pseudo.is_file():
        generate_jsonl(
            captioner,
            samples,
            mode="audio-visual",
            options=cfg.pseudo,
            out=pseudo,
            row=pseudo_row,
            origin={"pseudo": cfg.pseudo.model_dump(mode="json"), "samples": [x.id for x in samples]},
            progress=progress,
            desc="dali pseudo-captions",
            procs=procs,
        )
    pairs = read_av_manifest(pseudo)

    # 2: the audio projector
    if not cfg.use_prefix:
        captioner.prefix = None  # the projector learns audio alone, as the official distillation
    device = captioner.llava.device
    projector = captioner.distil_projector().to(device)

    def loss_of(batch: list[int]) -> torch.Tensor:
        with torch.no_grad(), autocast(cfg.precision, device):
            audio_tokens = captioner.audio.encode([pairs[i].audio for i in batch])
        return captioner([pairs[i].caption for i in batch], audio_tokens=audio_tokens.float())

    steps = train_lm_part(
        list(projector.parameters()),
        captioner=captioner,
        captions=[p.caption for p in pairs],
        loss_of=loss_of,
        cfg=cfg,
        stage="distill",
        out=out,
        progress=progress,
        procs=procs,
    )
    if procs.main:
        save_tensors(out / PART_FILES["audio_projector"], captioner.audio_projector.state_dict())
        copy_parts(stage.upstream, out, ["prefix", "audio"])
        finish_run(out, {"stage": "distill", "pseudo_captions": len(pairs), "steps": steps})
    procs.barrier()  # every process returns a finished folder
    return out
