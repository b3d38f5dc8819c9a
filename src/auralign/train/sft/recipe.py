"""LoRA SFT recipe (AC / ADC / ACC and their sequences and mixes), in one readable file.

    setup   model -> LoRA on the language model -> accelerate (DDP / FSDP / DeepSpeed come from `accelerate launch`)
    loop    per stage: fresh AdamW + warm-up/cosine; micro-batches accumulate; loss on assistant tokens only
    ckpt    every `save_every` steps: trainable weights, optimizer, scheduler, RNG states, written to a temp
            folder then renamed, so a kill -9 at any moment leaves the last complete checkpoint intact
    folder  the run folder protocol of `auralign.train.common` (config.json, log.jsonl, done.json)

The sample order is a pure function of (seed, stage, epoch) and the RNG states are restored, so a run resumed
from a checkpoint reaches the same weights as an uninterrupted one (bit-exact on CPU; tested).
"""

import contextlib
import json
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from auralign.errors import ConfigError
from auralign.fileio import Journal
from auralign.models.base import AudioLLM
from auralign.models.factory import build_model
from auralign.models.lora import apply_lora, save_adapter
from auralign.train.common import (
    check_config,
    checkpoint_folder,
    finish_run,
    finished_run,
    latest_checkpoint,
    progress_bar,
    seed_everything,
    training_log,
    warmup_cosine,
)
from auralign.train.sft.config import TrainConfig
from auralign.train.sft.data import StageData, load_stage

if TYPE_CHECKING:
    from accelerate import Accelerator
    from torch.utils.tensorboard import SummaryWriter

log = logging.getLogger(__name__)
CKPT_PREFIX = "ckpt-"


@dataclass
class Position:
    stage: int = 0
    step: int = 0  # optimizer steps done within `stage`


# ---------------------------------------------------------------- setup


def make_optimizer(llm: AudioLLM, cfg: TrainConfig, total_steps: int):
    params = [p for p in llm.parameters() if p.requires_grad]
    o = cfg.optim
    optimizer = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay, betas=o.betas, eps=o.eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(total_steps, o.warmup_ratio, o.min_lr_ratio)
    )
    return optimizer, scheduler


def stage_steps(data: StageData, cfg: TrainConfig, stage_index: int, world: int) -> int:
    micro = math.ceil(len(data.order) / (cfg.batch_size * world))
    steps = math.ceil(micro / cfg.grad_accum)
    limit = cfg.stages[stage_index].max_steps
    return min(steps, limit) if limit else steps


# ---------------------------------------------------------------- checkpoints


def trainable_state(llm: AudioLLM) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in llm.named_parameters() if p.requires_grad}


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(out: Path, llm: AudioLLM, optimizer, scheduler, pos: Position, keep: int) -> Path:
    from safetensors.torch import save_file

    folder = out / "checkpoints" / f"{CKPT_PREFIX}{pos.stage:02d}-{pos.step:07d}"
    with checkpoint_folder(folder, prefix=CKPT_PREFIX, keep=keep, durable=True) as tmp:
        save_file(trainable_state(llm), str(tmp / "trainable.safetensors"))
        state = {
            "stage": pos.stage,
            "step": pos.step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng_state(),
        }
        torch.save(state, tmp / "state.pt")
        save_adapter(llm, tmp / "adapter")  # every checkpoint is also a usable PEFT adapter
    return folder


def load_checkpoint(folder: Path, llm: AudioLLM) -> dict:
    from safetensors.torch import load_file

    params = dict(llm.named_parameters())
    for name, value in load_file(str(folder / "trainable.safetensors")).items():
        params[name].data.copy_(value)
    return torch.load(folder / "state.pt", weights_only=False)


# ---------------------------------------------------------------- training


def train(cfg: TrainConfig, source: str = "config") -> Path:
    """Run (or resume, or skip if already finished) every stage; returns the final adapter folder."""
    from accelerate import Accelerator

    out = Path(cfg.output_dir)
    final = out / "adapter"
    # a finished run of this config is a no-op; one of another config is refused, as an unfinished one is
    if (final / "adapter_config.json").exists() and finished_run(cfg, out):
        log.info("%s: already trained (delete it to train again)", final)
        return final
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cuda = torch.cuda.is_available()
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and cuda)
    acc = Accelerator(mixed_precision="bf16" if bf16 else "no", cpu=not cuda)
    out.mkdir(parents=True, exist_ok=True)
    if acc.is_main_process:
        check_config(cfg, out)

    seed_everything(cfg.seed)
    llm = build_model(cfg.model, acc.device)
    apply_lora(llm, cfg.lora)
    if cfg.init_adapter:
        start_from_adapter(llm, Path(cfg.init_adapter), cfg.lora, source)
    if cfg.gradient_checkpointing:
        llm.enable_gradient_checkpointing()
    llm.train()
    trained = sum(p.numel() for p in llm.parameters() if p.requires_grad)
    log.info("trainable parameters: %d of %d", trained, sum(p.numel() for p in llm.parameters()))

    resume, state = Position(), None
    ckpt = latest_checkpoint(out / "checkpoints", CKPT_PREFIX)
    if ckpt is not None:
        state = load_checkpoint(ckpt, llm)
        resume = Position(state["stage"], state["step"])
        log.info("resuming from %s", ckpt)

    writer = tensorboard_writer(out) if cfg.tensorboard and acc.is_main_process else None

    # Steps after the checkpoint run again, so their rows are dropped; only the main process logs.
    def logged(row: dict) -> bool:
        return (row["stage_index"], row["stage_step"]) <= (resume.stage, resume.step)

    journal = training_log(out, keep=logged) if acc.is_main_process else None
    offset = 0  # steps of the stages before this one: the log's step runs on across stages
    for index, stage in enumerate(cfg.stages):
        data = load_stage(stage, cfg.seed, index, source)
        total = stage_steps(data, cfg, index, acc.num_processes)
        if index < resume.stage:
            offset += total
            continue
        optimizer, scheduler = make_optimizer(llm, cfg, total)
        # Model and optimizer go through accelerate together (DeepSpeed needs both at once); a new stage
        # gets a new optimizer, so it is prepared again. The scheduler is stepped by us, once per step.
        model, optimizer = acc.prepare(llm, optimizer)
        start = 0
        if state is not None and index == resume.stage:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            set_rng_state(state["rng"])
            start = resume.step
        run_stage(
            cfg,
            acc=acc,
            model=model,
            llm=llm,
            data=data,
            optimizer=optimizer,
            scheduler=scheduler,
            start=Position(index, start),
            total=total,
            out=out,
            journal=journal,
            writer=writer,
            offset=offset,
        )
        offset += total
        if acc.is_main_process:
            save_adapter(llm, out / "stages" / stage.name / "adapter")
        state = None
    if acc.is_main_process:
        save_adapter(llm, final)
        finish_run(out, {"stages": [s.name for s in cfg.stages]})
    if writer:
        writer.close()
    return final


def run_stage(
    cfg: TrainConfig,
    *,
    acc: "Accelerator",
    model: torch.nn.Module,
    llm: AudioLLM,
    data: StageData,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    start: Position,
    total: int,
    out: Path,
    journal: Journal | None,
    writer: "SummaryWriter | None",
    offset: int = 0,
) -> None:
    """Steps `start.step` .. `total` of stage `start.stage`; `model` is `llm` as accelerate prepared it,
    `offset` the steps of the stages before (the log's step runs on across stages)."""
    pos = start
    bs, world, rank = cfg.batch_size, acc.num_processes, acc.process_index
    n_micro = math.ceil(len(data.order) / (bs * world))
    name = cfg.stages[pos.stage].name
    bar = progress_bar(total, pos.step, f"stage {name}", acc.is_main_process)
    for step in range(pos.step, total):
        t0, seen, losses = time.perf_counter(), 0, []
        micros = range(step * cfg.grad_accum, min((step + 1) * cfg.grad_accum, n_micro))
        for k, m in enumerate(micros):
            first = m * bs * world + rank * bs
            positions = range(min(first, len(data.order)), min(first + bs, len(data.order)))
            if not positions:  # the last global micro-batch may not reach every rank
                continue
            batch = {key: v.to(acc.device) for key, v in llm.collate(data.chats(positions)).items()}
            sync = k == len(micros) - 1
            with acc.no_sync(model) if not sync else contextlib.nullcontext():
                loss = model(batch) / len(micros)
                acc.backward(loss)
            losses.append(loss.item() * len(micros))
            seen += len(positions)
        if cfg.optim.max_grad_norm:
            acc.clip_grad_norm_([p for p in llm.parameters() if p.requires_grad], cfg.optim.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        done = Position(pos.stage, step + 1)
        rate = seen * world / (time.perf_counter() - t0)
        mean = float(np.mean(losses)) if losses else float("nan")
        bar.update(1)
        bar.set_postfix(loss=f"{mean:.4f}", samples_s=f"{rate:.2f}")
        if journal is not None and (step + 1) % cfg.log_every == 0:
            journal.append(
                {
                    "step": offset + step + 1,
                    "stage": name,
                    "stage_index": pos.stage,
                    "stage_step": step + 1,
                    "loss": mean,
                    "lr": scheduler.get_last_lr()[0],
                    "samples_per_s": round(rate, 4),
                }
            )
        if writer and (step + 1) % cfg.log_every == 0:
            glob = f"{name}/"
            writer.add_scalar(glob + "loss", mean, step + 1)
            writer.add_scalar(glob + "lr", scheduler.get_last_lr()[0], step + 1)
            writer.add_scalar(glob + "samples_per_s", rate, step + 1)
        if acc.is_main_process and ((step + 1) % cfg.save_every == 0 or step + 1 == total):
            save_checkpoint(out, llm, optimizer, scheduler, done, cfg.keep_checkpoints)
        acc.wait_for_everyone()
    bar.close()


def start_from_adapter(llm: AudioLLM, folder: Path, settings, source: str) -> None:
    """Load a trained adapter's LoRA weights (and the composed model's projector) into the fresh LoRA."""
    from peft import set_peft_model_state_dict
    from peft.utils import load_peft_weights

    config_file = folder / "adapter_config.json"
    if not config_file.is_file():
        raise ConfigError(f"{source}: init_adapter: {folder} has no adapter_config.json (not a PEFT adapter)")
    saved = json.loads(config_file.read_text(encoding="utf-8"))
    if (saved.get("r"), saved.get("lora_alpha")) != (settings.r, settings.alpha):
        raise ConfigError(
            f"{source}: init_adapter: {folder} has r={saved.get('r')}, alpha={saved.get('lora_alpha')}; "
            f"the config's lora has r={settings.r}, alpha={settings.alpha}: make them equal"
        )
    result = set_peft_model_state_dict(llm.peft, load_peft_weights(str(folder)))
    if result.unexpected_keys:
        raise ConfigError(
            f"{source}: init_adapter: {folder} holds weights this model lacks, e.g. "
            f"{result.unexpected_keys[0]}"
        )
    llm.load_extras(folder)


def tensorboard_writer(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.warning("tensorboard is not installed: no TensorBoard logs (pip install tensorboard)")
        return None
    return SummaryWriter(str(out / "tensorboard"))
