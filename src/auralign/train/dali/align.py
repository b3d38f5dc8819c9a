"""Stage 1b, `auralign dali align`: align the audio tokenizer's token distribution with CLIP's.

    in    `prefix_dir` (a finished prefix stage: its prefix and model section), `data:` audio-visual clips
    train the audio tokenizer (the backbone too, unless `train_backbone: false`) with Adam, lr step decay per
    epoch; the loss between the clip's audio tokens and its frame's CLIP tokens is `method`: a loss of
    `auralign.align.LOSSES` (with `method_options`) or attentive OT (its heads: own Adam, `attention:`)
    out   audio.safetensors, the prefix carried over, attentive_ot.safetensors (attentive OT), config.json,
          log.jsonl, checkpoints/, done.json

Resumable: a checkpoint every epoch (and every `save_every` steps) holds the weights, the optimisers and
torch's RNG; batches and augmentation are functions of (seed, epoch), so a resumed run trains as an
uninterrupted one.
"""

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from auralign.align import ATTENTIVE_OT, AlignmentLoss, AttentiveOT, EntropySchedule
from auralign.models.encoders.base import AudioTokenizer
from auralign.models.encoders.cavmae import CAVMAEBackbone
from auralign.train.common import (
    checkpoint_folder,
    finish_run,
    latest_checkpoint,
    progress_bar,
    training_log,
)
from auralign.train.dali.build import autocast, build_audio, build_llava
from auralign.train.dali.config import AlignConfig
from auralign.train.dali.data import (
    AVDataset,
    ImageTokens,
    av_batches,
    epoch_order,
    frame_of,
)
from auralign.train.dali.folders import (
    PART_FILES,
    continue_stage,
    copy_parts,
    load_module,
    save_tensors,
)

log = logging.getLogger(__name__)

ATTENTION_FILE = "attentive_ot.safetensors"
CKPT_PREFIX = "epoch-"


@dataclass
class Aligner:
    """What trains in alignment: the audio tokenizer (Adam), and for attentive OT its heads (own Adam)."""

    audio: AudioTokenizer
    optimizer: torch.optim.Optimizer
    loss: nn.Module | None = None
    attention: AttentiveOT | None = None
    attention_optimizer: torch.optim.Optimizer | None = None


def make_aligner(cfg: AlignConfig, audio: AudioTokenizer, device: torch.device) -> Aligner:
    """The optimiser of the audio tokenizer and the loss `cfg.method` names (attentive OT: heads + theirs)."""
    if not cfg.train_backbone:  # only the adapter into CLIP's space learns
        audio.backbone.requires_grad_(False).eval()
    params = [p for p in audio.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.method != ATTENTIVE_OT:
        return Aligner(audio, optimizer, loss=AlignmentLoss(cfg.method, **cfg.method_options))
    a = cfg.attention
    heads = AttentiveOT(
        audio.token_dim,
        num_heads=a.heads,
        temperature=a.temperature,
        uniform_mix=a.uniform_mix,
        solver=a.solver,
        solver_kwargs=a.solver_options,
        schedule=EntropySchedule(a.frozen_epochs, tuple(a.lambdas), a.final_lambda),
        adversarial=a.adversarial,
        encoder_objective=a.encoder_objective,
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
    aligner.attention.encoder_loss(out, epoch).backward(retain_graph=head_loss is not None, inputs=encoder)
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
    """Step decay: lr x gamma after each milestone epoch, as MultiStepLR stepped once per epoch (DALI: halved
    after epoch 10 and every 5 epochs after it)."""
    lr = cfg.lr * cfg.lr_gamma ** sum(epoch > m for m in cfg.lr_milestones)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def augment_seed(cfg: AlignConfig, audio: AudioTokenizer) -> int | None:
    """The augmentation seed, or None: `augment` applies to CAV-MAE's fbank inputs only."""
    if not cfg.augment:
        return None
    if not isinstance(audio.backbone, CAVMAEBackbone):
        log.info(
            "augment: only CAV-MAE inputs are augmented; %s inputs are not", type(audio.backbone).__name__
        )
        return None
    return cfg.seed


def save_checkpoint(out: Path, aligner: Aligner, *, epoch: int, step: int, keep: int) -> Path:
    """Weights, optimisers and torch's RNG after `step` batches of `epoch`."""
    folder = out / "checkpoints" / f"{CKPT_PREFIX}{epoch:03d}-step-{step:07d}"
    with checkpoint_folder(folder, prefix=CKPT_PREFIX, keep=keep, durable=False) as tmp:
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
    return folder


def resume(out: Path, aligner: Aligner, steps_per_epoch: int) -> tuple[int, int]:
    """Load the latest checkpoint, if any; (epoch, step) to continue from (1-based epoch, batches done)."""
    ckpt = latest_checkpoint(out / "checkpoints", CKPT_PREFIX)
    if ckpt is None:
        return 1, 0
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
    stage = continue_stage(cfg, key="prefix_dir", stage="prefix")
    if stage is None:
        return Path(cfg.output_dir)
    cfg, out, device, samples = stage.cfg, stage.out, stage.device, stage.samples
    model = cfg.model

    # model: frozen LLaVA (only its CLIP tokens are used) and the audio tokenizer that trains
    llava = build_llava(model.llava, device)
    audio = build_audio(model.audio, llava.token_dim).to(device).train()
    aligner = make_aligner(cfg, audio, device)
    cache = Path(cfg.cache_dir) if cfg.cache_dir else out / "image_tokens"
    images = ImageTokens(llava, cfg.image_token_cache, cache, tag=model.llava.model_dump_json())

    # resume: the checkpoint's weights and RNG, and the log up to its step
    per_epoch = math.ceil(len(samples) / cfg.batch_size)
    first, step = resume(out, aligner, per_epoch)
    done = (first - 1) * per_epoch + step
    journal = training_log(out, keep=lambda row: isinstance(row.get("step"), int) and row["step"] <= done)

    dataset = AVDataset(samples, audio, images, augment_seed=augment_seed(cfg, audio))
    with progress_bar(cfg.epochs * per_epoch, done, f"dali align ({cfg.method})", progress) as bar:
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
                    journal.append({"stage": "align", "step": global_step, "epoch": epoch, "lr": lr, **row})
                if k == per_epoch or (cfg.save_every and k % cfg.save_every == 0):
                    save_checkpoint(out, aligner, epoch=epoch, step=k, keep=cfg.keep_checkpoints)
            step = 0

    save_tensors(out / PART_FILES["audio"], audio.state_dict())
    if aligner.attention is not None:
        save_tensors(out / ATTENTION_FILE, aligner.attention.state_dict())
    copy_parts(stage.upstream, out, ["prefix"])
    info = {"stage": "align", "method": cfg.method, "epochs": cfg.epochs, "samples": len(samples)}
    return finish_run(out, info)
