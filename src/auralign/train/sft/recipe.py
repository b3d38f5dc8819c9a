"""LoRA SFT recipe (AC / ADC / ACC and their sequences and mixes), in one readable file.

    setup   model -> LoRA on the language model -> accelerate (DDP / FSDP / DeepSpeed come from `accelerate launch`)
    loop    per stage: fresh AdamW + warm-up/cosine; micro-batches accumulate; loss on assistant tokens only,
            summed and divided by the token count of the global batch (every micro-batch of the step on every
            process), so N processes x batch B/N train as one process x batch B (tested)
    ckpt    every `save_every` steps, through accelerate's `save_state` (`state.py`): trainable weights,
            optimizer, scheduler, every process's RNG states and an adapter, written to a temp folder then
            renamed, so a kill -9 at any moment leaves the last complete checkpoint intact
    folder  the run folder protocol of `auralign.train.common` (config.json, log.jsonl, done.json)

The sample order is a pure function of (seed, stage, epoch) and the RNG states are restored, so a run resumed
from a checkpoint reaches the same weights as an uninterrupted one (bit-exact on CPU, one process or two;
tested). Micro-batch m of a step is positions [m x B x N, (m + 1) x B x N) of that order, process r taking
its r-th slice of B: the global batch does not depend on N.
"""

import contextlib
import json
import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from auralign.errors import ConfigError
from auralign.fileio import Journal
from auralign.models.base import AudioLLM
from auralign.models.factory import build_model
from auralign.models.lora import apply_lora
from auralign.train.common import (
    check_config,
    die_with_launcher,
    finish_run,
    finished_run,
    latest_checkpoint,
    progress_bar,
    seed_everything,
    seed_process,
    training_log,
    warmup_cosine,
)
from auralign.train.sft.config import TrainConfig
from auralign.train.sft.data import StageData, load_stage
from auralign.train.sft.state import (
    CKPT_PREFIX,
    Position,
    Schedule,
    add_state_hooks,
    load_checkpoint,
    read_position,
    save_adapter,
    save_checkpoint,
)

if TYPE_CHECKING:
    from accelerate import Accelerator
    from torch.utils.tensorboard import SummaryWriter

log = logging.getLogger(__name__)
__all__ = ["CKPT_PREFIX", "save_checkpoint", "train"]  # save_checkpoint: looked up here, so tests can wrap it


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


# ---------------------------------------------------------------- training


def train(cfg: TrainConfig, source: str = "config", *, progress: bool = True) -> Path:
    """Run (or resume, or skip if already finished) every stage; returns the final adapter folder. Under
    `accelerate launch`, every process runs it: they write one run folder, logged by the main process."""
    from accelerate import Accelerator

    out = Path(cfg.output_dir)
    final = out / "adapter"
    # a finished run of this config is a no-op; one of another config is refused, as an unfinished one is
    if (final / "adapter_config.json").exists() and finished_run(cfg, out):
        log.info("%s: already trained (delete it to train again)", final)
        return final
    die_with_launcher()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cuda = torch.cuda.is_available()
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and cuda)
    acc = Accelerator(mixed_precision="bf16" if bf16 else "no", cpu=not cuda)
    check_run_folder(acc, cfg, out)
    configure_deepspeed(acc, cfg)

    seed_everything(cfg.seed)
    llm = build_model(cfg.model, acc.device)
    apply_lora(llm, cfg.lora)
    if cfg.init_adapter:
        start_from_adapter(llm, Path(cfg.init_adapter), cfg.lora, source)
    if cfg.gradient_checkpointing:
        llm.enable_gradient_checkpointing()
    llm.train()
    seed_process(cfg.seed, acc.process_index, acc.num_processes)
    trained = sum(p.numel() for p in llm.parameters() if p.requires_grad)
    log.info("trainable parameters: %d of %d", trained, sum(p.numel() for p in llm.parameters()))

    add_state_hooks(acc)
    schedule = Schedule()  # the stage's scheduler, checkpointed by accelerate beside the optimizer
    acc.register_for_checkpointing(schedule)
    ckpt = latest_checkpoint(out / "checkpoints", CKPT_PREFIX)
    resume = read_position(ckpt, acc.num_processes) if ckpt is not None else Position()
    if ckpt is not None:
        log.info("resuming from %s", ckpt)

    writer = tensorboard_writer(out) if cfg.tensorboard and acc.is_main_process else None

    # Steps after the checkpoint run again, so their rows are dropped; only the main process logs.
    def logged(row: dict) -> bool:
        return (row["stage_index"], row["stage_step"]) <= (resume.stage, resume.step)

    journal = training_log(out, keep=logged) if acc.is_main_process else None
    offset = 0  # steps of the stages before this one: the log's step runs on across stages
    model = None
    for index, stage in enumerate(cfg.stages):
        data = load_stage(stage, cfg.seed, index, source)
        total = stage_steps(data, cfg, index, acc.num_processes)
        if index < resume.stage:
            offset += total
            continue
        optimizer, schedule.scheduler = make_optimizer(llm, cfg, total)
        # Model and optimizer go through accelerate together (DeepSpeed needs both at once); a new stage
        # gets a new optimizer, so accelerate forgets the last stage's and prepares both again. The
        # scheduler is stepped by us, once per step.
        if model is not None:
            acc.free_memory()
        model, optimizer = acc.prepare(llm, optimizer)
        start = 0
        if ckpt is not None and index == resume.stage:
            load_checkpoint(acc, ckpt, llm, optimizer, schedule)
            start = resume.step
        run_stage(
            cfg,
            acc=acc,
            model=model,
            llm=llm,
            data=data,
            optimizer=optimizer,
            scheduler=schedule.scheduler,
            start=Position(index, start),
            total=total,
            out=out,
            journal=journal,
            writer=writer,
            offset=offset,
            progress=progress,
        )
        offset += total
        save_adapter(acc, model, llm, out / "stages" / stage.name / "adapter")
    save_adapter(acc, model, llm, final)
    if acc.is_main_process:
        finish_run(out, {"stages": [s.name for s in cfg.stages]})
    if writer:
        writer.close()
    acc.wait_for_everyone()
    return final


def check_run_folder(acc: "Accelerator", cfg: TrainConfig, out: Path) -> None:
    """The main process writes config.json (or refuses the folder), then the others check it too: on a
    refused folder every process stops with the same error, none is left waiting for the others."""
    refused = None
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        try:
            check_config(cfg, out)
        except ConfigError as error:
            refused = error
    acc.wait_for_everyone()
    if refused is not None:
        raise refused
    if not acc.is_main_process:
        check_config(cfg, out)


def configure_deepspeed(acc: "Accelerator", cfg: TrainConfig) -> None:
    """Under DeepSpeed, its config takes the batch and the clipping from the training config: the recipe feeds
    no dataloader for DeepSpeed to read a batch size from, accumulates micro-batches itself (telling the
    engine where a step ends), and DeepSpeed clips inside its step, where `clip_grad_norm_` does nothing."""
    from accelerate.utils import DistributedType

    if acc.distributed_type != DistributedType.DEEPSPEED:
        return
    ds = acc.state.deepspeed_plugin.deepspeed_config
    if ds.get("gradient_accumulation_steps", "auto") not in (1, "auto"):
        raise ConfigError(
            f"accelerate config: deepspeed_config.gradient_accumulation_steps is "
            f"{ds['gradient_accumulation_steps']}; auralign accumulates micro-batches itself (grad_accum in "
            "the training config): set it to 1"
        )
    ds["gradient_accumulation_steps"] = 1
    ds["train_micro_batch_size_per_gpu"] = cfg.batch_size
    ds["train_batch_size"] = cfg.batch_size * acc.num_processes
    ds["gradient_clipping"] = cfg.optim.max_grad_norm or 0.0


def micro_batches(
    llm: AudioLLM, data: StageData, micros: range, bs: int, world: int, rank: int
) -> list[tuple[dict[str, torch.Tensor], int]]:
    """This process's slice of each global micro-batch of a step, collated, with its sample count. The
    last global micro-batch may not reach every process: that one gets a filler sample it weighs by 0,
    since a process that skipped the backward would leave the others waiting in the gradient all-reduce."""
    out = []
    for m in micros:
        first = m * bs * world + rank * bs
        positions = range(min(first, len(data.order)), min(first + bs, len(data.order)))
        count = len(positions)
        out.append((llm.collate(data.chats(positions if count else range(1))), count))
    return out


def global_sum(acc: "Accelerator", value: float) -> float:
    """`value` summed over the processes (float64: token counts stay exact)."""
    total = acc.reduce(torch.tensor([value], dtype=torch.float64, device=acc.device), reduction="sum")
    return float(total[0])


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
    progress: bool = True,
) -> None:
    """Steps `start.step` .. `total` of stage `start.stage`; `model` is `llm` as accelerate prepared it,
    `offset` the steps of the stages before (the log's step runs on across stages).

    Each micro-batch's loss is the sum over its answer tokens, scaled by N / (the global batch's answer
    tokens): DDP / FSDP / DeepSpeed average the N processes' gradients, so the step's gradient is the mean
    over every token of the global batch, however it is split into micro-batches and processes."""
    pos = start
    bs, world, rank = cfg.batch_size, acc.num_processes, acc.process_index
    n_micro = math.ceil(len(data.order) / (bs * world))
    name = cfg.stages[pos.stage].name
    bar = progress_bar(total, pos.step, f"stage {name}", progress and acc.is_main_process)
    for step in range(pos.step, total):
        t0 = time.perf_counter()
        micros = range(step * cfg.grad_accum, min((step + 1) * cfg.grad_accum, n_micro))
        batches = micro_batches(llm, data, micros, bs, world, rank)
        local = sum(llm.label_token_count(batch) for batch, count in batches if count)
        scale = world / global_sum(acc, local)
        summed = 0.0
        for k, (batch, count) in enumerate(batches):
            sync = k == len(batches) - 1
            acc.sync_gradients = sync  # DeepSpeed steps at the boundary accelerate says; DDP syncs below
            with acc.no_sync(model) if not sync else contextlib.nullcontext():
                loss = model({key: v.to(acc.device) for key, v in batch.items()}, reduction="sum")
                if not count:
                    loss = loss * 0.0
                acc.backward(loss * scale)
            summed += loss.item()
        if cfg.optim.max_grad_norm:
            # all the prepared model's parameters (frozen ones have no gradient): only then does accelerate
            # clip under FSDP with FSDP's own norm over every shard, not each process's shard alone
            acc.clip_grad_norm_(model.parameters(), cfg.optim.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        done = Position(pos.stage, step + 1)
        mean = global_sum(acc, summed) * scale / world  # the step's mean loss over the global batch's tokens
        rate = sum(count for _, count in batches) * world / (time.perf_counter() - t0)
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
        if (step + 1) % cfg.save_every == 0 or step + 1 == total:
            save_checkpoint(acc, model, llm, done, out, cfg.keep_checkpoints)
    acc.sync_gradients = True
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
