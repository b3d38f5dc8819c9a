"""`auralign dali caption`: zero-shot captioning with a trained stage folder, and DALI's token statistics.

    in    `distill_dir` (a distill folder; an align folder works without the distilled projector, a prefix
          folder in image mode), `data:` clips, `mode`: audio | audio-visual | image
    out   `output`: predictions JSONL in the format of `auralign caption` (scored by `auralign score`), with
          each clip's frame and the mode, and its origin file (`fileio.origin_file`: `X.origin.json`), what
          produced it (the config but its runtime keys, and the stage folder's done.json). A finished output
          is kept when a rerun has the same origin and refused otherwise; resumable while being written.
          Under `accelerate launch` the processes share the batches (`generation`) and write the file one
          process writes

`mean_tokens` gives the points of DALI's PCA figure (Figure 4): per clip, the mean audio and image token.
"""

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from auralign.data.audiovisual import AVSample
from auralign.errors import ConfigError
from auralign.fileio import record_origin, reusable
from auralign.models.dali.captioner import DALICaptioner
from auralign.train.common import DONE, progress_bar, seed_everything
from auralign.train.dali.config import CaptionConfig
from auralign.train.dali.data import ImageTokens, check_files, frame_of, read_av_samples
from auralign.train.dali.folders import PART_FILES, load_captioner, upstream
from auralign.train.dali.generation import Row, generate_jsonl
from auralign.train.dali.processes import processes

log = logging.getLogger(__name__)


def caption_row(mode: str, task: str, prompt: str) -> Row:
    """Rows of `auralign caption`'s predictions JSONL (+ the frame and the mode)."""

    def row(sample: AVSample, text: str) -> dict:
        refs = list(sample.references) or ([sample.caption] if sample.caption else [])
        return {
            "id": sample.id,
            "task": task,
            "audios": [str(sample.audio)],
            "frames": [str(frame_of(sample))] if sample.frames else [],
            "mode": mode,
            "prompt": prompt,
            "prediction": text,
            "references": refs,
            "label": None,
        }

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
    procs = processes(cfg.device)
    folder = upstream(cfg.distill_dir, "distill_dir", "distill")
    origin = caption_origin(cfg, folder)
    if reusable(out, origin, what="holds captions of another run", remedy="delete it to caption again"):
        log.info("%s: already written by this config (delete it to caption again)", out)
        return out
    if cfg.mode != "image" and not (folder / PART_FILES["audio"]).is_file():
        raise ConfigError(
            f"distill_dir: {folder} has no aligned audio tokenizer ({PART_FILES['audio']}); "
            "give a distill or align folder, or use mode: image"
        )
    samples = read_av_samples(cfg.data)
    check_files(samples, cfg.data.manifest, audio=cfg.mode != "image", frame=cfg.mode != "audio")
    seed_everything(cfg.seed)
    captioner = load_captioner(folder, cfg.model, str(procs.device), with_audio=cfg.mode != "image")
    if not uses_prefix(cfg, captioner):
        captioner.prefix = None
    if procs.main:
        record_origin(out, origin)
    generate_jsonl(
        captioner,
        samples,
        mode=cfg.mode,
        options=cfg.generation,
        out=out,
        row=caption_row(cfg.mode, cfg.task, captioner.prompt),
        origin=origin,
        progress=progress,
        desc=f"dali caption ({cfg.mode})",
        procs=procs,
    )
    return out


def caption_origin(cfg: CaptionConfig, folder: Path) -> dict:
    """What decides the captions: the config without its runtime keys and output path, and the stage folder's
    done.json (a folder trained again with other settings writes another one)."""
    done = folder / DONE
    return {
        "config": cfg.model_dump(mode="json", exclude={"device", "output"}),
        "stage": json.loads(done.read_text(encoding="utf-8")) if done.is_file() else None,
    }


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
