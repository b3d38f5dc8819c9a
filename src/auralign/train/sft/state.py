"""The SFT recipe's checkpoints and adapters through accelerate's state handling, so that every engine
`accelerate launch` brings (one process, DDP, FSDP, DeepSpeed ZeRO) writes full, loadable files.

    adapter     `accelerator.get_state_dict` gathers the model on the main process (FSDP: a full state dict;
                ZeRO-3: the consolidated 16-bit weights; DDP: the weights it holds), and the PEFT files are
                written from that, never from the main process's own shards, over the module tree with
                FSDP's wrapper units swapped out (PEFT finds an adapter's entries by module name); the
                backend's extras (`save_extras`) are written with the gathered values put in place
    checkpoint  `accelerator.save_state` into one temporary folder that every process writes (its RNG states;
                under FSDP / DeepSpeed its shards of the weights and optimizer), published by the main
                process with `position.json` (stage, step, processes) and an adapter. Without a sharding
                engine, a hook keeps the model file to the trainable weights (`trainable.safetensors`)
                instead of the frozen billions accelerate would write
    resume      `accelerator.load_state` (the same hooks) once the position has been read

A checkpoint of the format before this one (`trainable.safetensors` + `state.pt`, written by one process)
still resumes, with one process.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from auralign.errors import ConfigError, DataError
from auralign.fileio import atomic_dir, atomic_write_text
from auralign.models.base import AudioLLM
from auralign.train.common import checkpoint_folder

if TYPE_CHECKING:
    from accelerate import Accelerator

CKPT_PREFIX = "ckpt-"
TRAINABLE = "trainable.safetensors"
POSITION = "position.json"
LEGACY_STATE = "state.pt"
PEFT_ROOT = "base_model.model."  # where a PeftModel's state dict puts the module it wraps


@dataclass
class Position:
    stage: int = 0
    step: int = 0  # optimizer steps done within `stage`


class Schedule:
    """The current stage's LR scheduler as one object accelerate checkpoints (each stage builds its own, and
    accelerate keeps every object registered, so the recipe registers this holder once)."""

    def __init__(self) -> None:
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict() if self.scheduler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scheduler is None:
            raise ValueError("Schedule.load_state_dict: no scheduler set for the stage being resumed")
        self.scheduler.load_state_dict(state)


# ---------------------------------------------------------------- trainable weights


def trainable_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in module.named_parameters() if p.requires_grad}


def load_trainable(module: nn.Module, path: Path) -> None:
    """Copy `path`'s weights into `module`'s trainable parameters; the names must match exactly."""
    from safetensors.torch import load_file

    saved = load_file(str(path))
    params = {n: p for n, p in module.named_parameters() if p.requires_grad}
    missing, extra = sorted(set(params) - set(saved)), sorted(set(saved) - set(params))
    if missing or extra:
        what = f"lacks {missing[0]}" if missing else f"holds {extra[0]}, which this model does not train"
        raise DataError(f"{path}: {what} (a checkpoint of another model or LoRA config?)")
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(saved[name])


def add_state_hooks(acc: "Accelerator") -> None:
    """Without a sharding engine, checkpoints hold the trainable weights only (`trainable.safetensors`)."""
    from accelerate.utils import extract_model_from_parallel
    from safetensors.torch import save_file

    def save(models: list[nn.Module], weights: list[dict], output_dir: str) -> None:
        if len(weights) != len(models):  # FSDP / DeepSpeed saved the models themselves
            return
        if len(models) != 1:
            raise ValueError(f"one prepared model expected, found {len(models)}")
        if acc.is_main_process:
            save_file(
                trainable_state(extract_model_from_parallel(models[0])), str(Path(output_dir) / TRAINABLE)
            )
        weights.clear()

    def load(models: list[nn.Module], input_dir: str) -> None:
        for model in models:
            load_trainable(extract_model_from_parallel(model), Path(input_dir) / TRAINABLE)
        models.clear()

    acc.register_save_state_pre_hook(save)
    acc.register_load_state_pre_hook(load)


# ---------------------------------------------------------------- adapters


def lora_prefix(llm: AudioLLM) -> str:
    """The name of `llm.lora_module()` inside `llm` ("" when it is `llm` itself), ending in a dot."""
    target = llm.lora_module()
    for name, module in llm.named_modules():
        if module is target:
            return f"{name}." if name else ""
    raise ValueError("lora_module() is not a submodule of the backend")


def peft_state(llm: AudioLLM, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The part of `llm`'s state dict under its PEFT-wrapped module, named as the PeftModel names it."""
    prefix = lora_prefix(llm)
    return {PEFT_ROOT + k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


@contextmanager
def gathered_values(module: nn.Module, state: dict[str, torch.Tensor], names: list[str]) -> Iterator[None]:
    """`module`'s parameters and buffers `names` hold `state`'s (full) values inside the block, their own
    (possibly a shard) again after."""
    tensors = dict(module.named_parameters()) | dict(module.named_buffers())
    kept = {name: tensors[name].data for name in names}
    try:
        for name in names:
            tensors[name].data = state[name].to(kept[name].device)
        yield
    finally:
        for name, data in kept.items():
            tensors[name].data = data


#: attributes by which a wrapper module holds the module it wraps: FSDP units, activation checkpointing
WRAPPED = ("_fsdp_wrapped_module", "_checkpoint_wrapped_module")


@contextmanager
def plain_module_tree(root: nn.Module) -> Iterator[None]:
    """Inside the block, each wrapper under `root` (an FSDP unit, an activation-checkpoint wrapper) is replaced
    by the module it wraps, so modules are named as in the plain model, as a gathered state dict names
    them: PEFT picks an adapter's entries by walking the module names."""
    swaps: list[tuple[nn.Module, str, nn.Module]] = []
    try:
        found = True
        while found:
            found = False
            for parent in list(root.modules()):
                for name, child in list(parent.named_children()):
                    inner = next((getattr(child, a) for a in WRAPPED if a in child._modules), None)
                    if inner is not None:
                        swaps.append((parent, name, child))
                        parent._modules[name] = inner
                        found = True
        yield
    finally:
        for parent, name, child in reversed(swaps):
            parent._modules[name] = child


def write_adapter(llm: AudioLLM, state: dict[str, torch.Tensor], folder: Path) -> None:
    """Publish the PEFT adapter and the backend's extras from `state`, `llm`'s full state dict (keys as
    `llm.state_dict()` names them in the plain model), not from what `llm` holds itself (a shard under FSDP
    / ZeRO-3)."""
    if llm.peft is None:
        raise ValueError("no LoRA to save: apply_lora or load_adapter first")
    prefix = lora_prefix(llm)
    outside = [k for k in state if not k.startswith(prefix)]  # what save_extras may read
    with atomic_dir(folder) as tmp, plain_module_tree(llm):
        llm.peft.save_pretrained(str(tmp), state_dict=peft_state(llm, state))
        with gathered_values(llm, state, outside):
            llm.save_extras(tmp)


def save_adapter(acc: "Accelerator", model: nn.Module, llm: AudioLLM, folder: Path) -> None:
    """The adapter of the prepared `model` (`llm` unwrapped), gathered by every process, written by the main."""
    state = acc.get_state_dict(model)  # a collective under FSDP / ZeRO-3: every process calls it
    if acc.is_main_process:
        write_adapter(llm, state, folder)
    acc.wait_for_everyone()


# ---------------------------------------------------------------- checkpoints


def checkpoint_name(pos: Position) -> str:
    return f"{CKPT_PREFIX}{pos.stage:02d}-{pos.step:07d}"


def save_checkpoint(
    acc: "Accelerator", model: nn.Module, llm: AudioLLM, pos: Position, out: Path, keep: int
) -> Path:
    """Every process writes its part of the checkpoint of `pos` (after its step) into one folder, published
    whole by the main process: a kill -9 at any moment leaves the last complete checkpoint intact."""
    folder = out / "checkpoints" / checkpoint_name(pos)
    main = acc.is_main_process
    with checkpoint_folder(
        folder, prefix=CKPT_PREFIX, keep=keep, durable=True, main=main, barrier=acc.wait_for_everyone
    ) as tmp:
        acc.save_state(str(tmp))
        save_adapter(acc, model, llm, tmp / "adapter")  # every checkpoint is also a usable PEFT adapter
        if main:
            position = {"stage": pos.stage, "step": pos.step, "processes": acc.num_processes}
            atomic_write_text(tmp / POSITION, json.dumps(position) + "\n")
    return folder


def read_position(folder: Path, processes: int) -> Position:
    """Where the checkpoint `folder` stands; refused if another number of processes wrote it, since the
    global batch (batch_size x grad_accum x processes) and so the run would differ."""
    legacy = folder / LEGACY_STATE
    if not (folder / POSITION).is_file() and legacy.is_file():
        if processes != 1:
            raise ConfigError(
                f"{folder}: a checkpoint of an earlier auralign, written by one process; resume it "
                f"with one process (this run has {processes})"
            )
        state = torch.load(legacy, weights_only=False)
        return Position(state["stage"], state["step"])
    try:
        saved = json.loads((folder / POSITION).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"{folder / POSITION}: unreadable checkpoint position ({error})") from error
    if saved["processes"] != processes:
        raise ConfigError(
            f"{folder}: written by {saved['processes']} processes, this run has {processes}: the global batch "
            f"(batch_size x grad_accum x processes) would change mid-run; launch {saved['processes']} processes "
            "or use a new output_dir"
        )
    return Position(saved["stage"], saved["step"])


def load_checkpoint(
    acc: "Accelerator", folder: Path, llm: AudioLLM, optimizer: torch.optim.Optimizer, schedule: Schedule
) -> None:
    """Restore the weights, optimizer, scheduler and every process's RNG states from `folder` into the model
    and optimizer of the stage it belongs to, both prepared (`llm`: the model unwrapped)."""
    if (folder / LEGACY_STATE).is_file() and not (folder / POSITION).is_file():
        load_legacy(folder, llm, optimizer, schedule)
        return
    acc.load_state(str(folder))


def load_legacy(folder: Path, llm: AudioLLM, optimizer: torch.optim.Optimizer, schedule: Schedule) -> None:
    """A checkpoint of the earlier format, written by one process (`read_position` checked)."""
    import random

    import numpy as np

    state = torch.load(folder / LEGACY_STATE, weights_only=False)
    load_trainable(llm, folder / TRAINABLE)
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["scheduler"])
    rng = state["rng"]
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
