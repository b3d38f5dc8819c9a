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

Several processes (`accelerate launch`, see `processes`): `batch_size` stays the global batch (DALI: 256);
each process encodes its share of it and solves its own samples' transport problems. Every loss but
contrastive is a mean of per-sample terms (attentive OT's heads weigh each clip's tokens from that clip
alone), so each process's batch mean, weighed by its share, sums over the processes to the global batch's
mean; the gradients of both modules (audio tokenizer, attentive OT's heads) are summed before each of the two
optimisers steps, so all processes step alike. Contrastive's negatives are the other clips of the batch: its
pooled tokens are gathered (`COUPLED`) and every process computes the loss over the whole batch. The main
process writes the log, the checkpoints (the weights are the same in every process) and the outputs; a
checkpoint resumes under any number of processes, the global batch being the same.
"""

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from auralign.align import ATTENTIVE_OT, AlignmentLoss, AttentiveOT, EntropySchedule
from auralign.data.audiovisual import AVSample
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
from auralign.train.dali.processes import Processes, Share

log = logging.getLogger(__name__)

ATTENTION_FILE = "attentive_ot.safetensors"
CKPT_PREFIX = "epoch-"
#: losses that couple the samples of a batch, and what each gathers per clip from every process (contrastive:
#: the mean token, its negatives being the other clips); every other loss is a mean of per-sample terms
COUPLED: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"contrastive": lambda tokens: tokens.mean(1)}


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
    optimizer = torch.optim.Adam(trainable(audio), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
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


def align_step(
    aligner: Aligner,
    audio_tokens: torch.Tensor | None,
    image_tokens: torch.Tensor | None,
    epoch: int,
    share: Share | None = None,
) -> dict:
    """One optimiser step (two for attentive OT once its heads train); the global batch's losses as floats.
    `share`: this process's part of the global batch, whose tokens `audio_tokens` are (None when it has
    none); None: one process, the whole batch."""
    heads = aligner.attention
    if heads is None:
        parts = plain_backward(aligner, audio_tokens, image_tokens, share)
    else:
        parts = attentive_backward(aligner, audio_tokens, image_tokens, epoch, share)
    procs = share.procs if share is not None else Processes()
    procs.sum_grads(trainable(aligner.audio))
    step(aligner.optimizer)
    if heads is not None and not heads.schedule.frozen(epoch):
        procs.sum_grads(heads.parameters())
        step(aligner.attention_optimizer)
    row = dict(zip(parts, procs.sum(list(parts.values())), strict=True))
    if "attention_loss" in row:
        row["lambda"] = heads.schedule(epoch)
    return row


def trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def step(optimizer: torch.optim.Optimizer) -> None:
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def plain_backward(
    aligner: Aligner,
    audio_tokens: torch.Tensor | None,
    image_tokens: torch.Tensor | None,
    share: Share | None,
) -> dict[str, float]:
    """Backpropagate a loss of `LOSSES` from this process's share; its part of the global batch's loss."""
    pool = COUPLED.get(aligner.loss.method)
    if pool is not None and share is not None and share.procs.several:
        return coupled_backward(aligner, pool, audio_tokens, image_tokens, share)
    if audio_tokens is None:
        return {"loss": 0.0}
    loss = aligner.loss(audio_tokens, image_tokens) * (share.weight if share is not None else 1.0)
    loss.backward()
    return {"loss": loss.item()}


def coupled_backward(
    aligner: Aligner,
    pool: Callable[[torch.Tensor], torch.Tensor],
    audio_tokens: torch.Tensor | None,
    image_tokens: torch.Tensor | None,
    share: Share,
) -> dict[str, float]:
    """Every process computes the loss over the whole batch's pooled tokens and backpropagates it into its own
    clips; the main process alone reports it (the reports are summed)."""
    empty = torch.zeros(0, aligner.audio.token_dim, device=share.procs.device)
    mine = [pool(t) if t is not None else empty for t in (audio_tokens, image_tokens)]
    loss = aligner.loss(share.gather(mine[0]), share.gather(mine[1]))
    if audio_tokens is not None:
        loss.backward()
    return {"loss": loss.item() if share.procs.main else 0.0}


def attentive_backward(
    aligner: Aligner,
    audio_tokens: torch.Tensor | None,
    image_tokens: torch.Tensor | None,
    epoch: int,
    share: Share | None,
) -> dict[str, float]:
    """Backpropagate attentive OT's two losses from this process's share, each into its own parameters (both
    gradients before either step, see AttentiveOT's docstring); its part of the global batch's OT loss, entropy
    and, once the heads train, their loss."""
    heads = aligner.attention
    keys = ["loss", "entropy"] + ([] if heads.schedule.frozen(epoch) else ["attention_loss"])
    if audio_tokens is None:
        return dict.fromkeys(keys, 0.0)
    weight = share.weight if share is not None else 1.0
    out = heads(audio_tokens, image_tokens)
    head_loss = heads.attention_loss(out, epoch)
    encoder = trainable(aligner.audio)
    (heads.encoder_loss(out, epoch) * weight).backward(retain_graph=head_loss is not None, inputs=encoder)
    values = [out.loss.item() * weight, out.entropy.mean().item() * weight]
    if head_loss is not None:
        (head_loss * weight).backward(inputs=list(heads.parameters()))
        values.append(head_loss.item() * weight)
    return dict(zip(keys, values, strict=True))


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


def save_checkpoint(
    out: Path, aligner: Aligner, *, epoch: int, step: int, keep: int, processes: int = 1
) -> Path:
    """Weights, optimisers and torch's RNG after `step` batches of `epoch` (written by the main process: every
    process holds the same weights and optimiser states, and nothing in a step draws from torch's RNG)."""
    folder = out / "checkpoints" / f"{CKPT_PREFIX}{epoch:03d}-step-{step:07d}"
    with checkpoint_folder(folder, prefix=CKPT_PREFIX, keep=keep, durable=False) as tmp:
        save_tensors(tmp / PART_FILES["audio"], aligner.audio.state_dict())
        state = {
            "epoch": epoch,
            "step": step,
            "processes": processes,  # who wrote it; any number resumes it (the global batch is the config's)
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
    cfg, out, device, samples, procs = stage.cfg, stage.out, stage.device, stage.samples, stage.procs
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
    heads = aligner.attention.parameters() if aligner.attention is not None else []
    procs.broadcast([*trainable(audio), *heads])
    done = (first - 1) * per_epoch + step
    journal = None
    if procs.main:
        journal = training_log(out, keep=lambda row: isinstance(row.get("step"), int) and row["step"] <= done)

    dataset = AVDataset(samples, audio, images, augment_seed=augment_seed(cfg, audio))
    bar = progress_bar(cfg.epochs * per_epoch, done, f"dali align ({cfg.method})", progress and procs.main)
    with bar:
        for epoch in range(first, cfg.epochs + 1):
            lr = set_epoch_lr(cfg, aligner.optimizer, epoch)
            dataset.epoch = epoch
            shares = [
                procs.split(b) for b in epoch_order(len(samples), cfg.seed, epoch, cfg.batch_size)[step:]
            ]
            # each process decodes its own shares only
            decoded = av_batches(dataset, [s.indices for s in shares if s.indices], cfg.data.num_workers)
            for k, share in enumerate(shares, start=step + 1):
                tokens = (
                    encode(next(decoded), audio, images, samples, cfg.precision) if share.indices else None
                )
                row = align_step(aligner, *(tokens or (None, None)), epoch, share)
                global_step = (epoch - 1) * per_epoch + k
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{row['loss']:.4f}")
                if journal is not None and global_step % cfg.log_every == 0:
                    journal.append({"stage": "align", "step": global_step, "epoch": epoch, "lr": lr, **row})
                if procs.main and (k == per_epoch or (cfg.save_every and k % cfg.save_every == 0)):
                    keep = cfg.keep_checkpoints
                    save_checkpoint(out, aligner, epoch=epoch, step=k, keep=keep, processes=procs.world)
            step = 0

    if procs.main:
        save_tensors(out / PART_FILES["audio"], audio.state_dict())
        if aligner.attention is not None:
            save_tensors(out / ATTENTION_FILE, aligner.attention.state_dict())
        copy_parts(stage.upstream, out, ["prefix"])
        info = {"stage": "align", "method": cfg.method, "epochs": cfg.epochs, "samples": len(samples)}
        finish_run(out, info)
    procs.barrier()  # every process returns a finished folder
    return out


def encode(
    batch: tuple, audio: AudioTokenizer, images: ImageTokens, samples: Sequence[AVSample], precision: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """A decoded batch's audio tokens (through the tokenizer that trains) and its frames' CLIP tokens, fp32."""
    indices, inputs, pixels = batch
    device = images.llava.device
    with autocast(precision, device):
        audio_tokens = audio(inputs.to(device))
    image_tokens = images([frame_of(samples[i]) for i in indices], pixels)
    return audio_tokens.float(), image_tokens.float()
