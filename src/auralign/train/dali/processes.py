"""The processes a DALI stage runs on: this one alone, or the N that `accelerate launch` (or torchrun) started,
one per device.

A stage's `batch_size` is its global batch whatever N: process r takes the r-th contiguous share of every
batch (`split`), computes its own samples' losses (solving its own transport problems) weighed by its share
of the batch, and every optimiser step follows the sum of the N processes' gradients (`sum_grads`), so N
processes train the weights one process trains, to float rounding (tests/test_dali_distributed.py). What
trains is small (the audio tokenizer, the prefix, a projector copy) and LLaVA is frozen, so every process
holds all of it: data parallelism, no sharding engine.

Why gradients are summed after the backward passes rather than by DDP's wrapper: attentive OT backpropagates
two losses into two modules (`inputs=`), the second optimiser's module untouched while its heads are frozen,
and DDP's reducer expects one backward per forward over every parameter it wraps. One explicit sum serves
both modules, both optimisers and every stage; the processes start from the main process's weights
(`broadcast`), as under DDP, and then step alike. The price is that the sum does not overlap the backward
pass as DDP's buckets do: one all-reduce of the trained weights' size a step (CAV-MAE's 86M: ~350 MB),
small beside a batch of transport problems.
"""

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn

from auralign.errors import AuralignError, ConfigError
from auralign.train.common import die_with_launcher
from auralign.train.dali.build import resolve_device

log = logging.getLogger(__name__)

T = TypeVar("T")
#: elements per gradient all-reduce (64 MiB of float32): bounds the memory the flat buffers take
BUCKET = 1 << 24
CPU = torch.device("cpu")


def launched() -> bool:
    """True in a process of a launch of several (`accelerate launch`, torchrun set WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@dataclass(frozen=True)
class Processes:
    """This process's place among the stage's processes (rank 0 of 1 when nothing launched it)."""

    rank: int = 0
    world: int = 1
    device: torch.device = CPU

    @property
    def main(self) -> bool:
        """The process that writes the stage folder (logs, checkpoints, outputs)."""
        return self.rank == 0

    @property
    def several(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.several:
            torch.distributed.barrier()

    def split(self, batch: Sequence[int]) -> "Share":
        """This process's contiguous share of a global batch; shares differ in size by one at most, and one is
        empty when the batch has fewer samples than there are processes."""
        base, extra = divmod(len(batch), self.world)
        sizes = tuple(base + (r < extra) for r in range(self.world))
        start = sum(sizes[: self.rank])
        return Share(self, list(batch[start : start + sizes[self.rank]]), sizes)

    def sum(self, values: Sequence[float]) -> list[float]:
        """`values` summed over the processes, in float64."""
        if not self.several:
            return list(values)
        total = torch.tensor(list(values), dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(total)
        return total.tolist()

    def sum_grads(self, params: Iterable[nn.Parameter]) -> None:
        """Replace each parameter's gradient by its sum over the processes (a process without one adds zeros);
        a parameter no process has a gradient for keeps None, so its optimiser skips it as it would alone."""
        if not self.several:
            return
        params = list(params)
        held = torch.tensor([p.grad is not None for p in params], dtype=torch.int32, device=self.device)
        torch.distributed.all_reduce(held)
        live = [p for p, count in zip(params, held.tolist(), strict=True) if count]
        for p in live:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        for bucket in buckets(live):
            flat = torch.cat([p.grad.reshape(-1) for p in bucket])
            torch.distributed.all_reduce(flat)
            for p, value in zip(bucket, flat.split([p.numel() for p in bucket]), strict=True):
                p.grad.copy_(value.view_as(p.grad))

    def broadcast(self, tensors: Iterable[torch.Tensor]) -> None:
        """The main process's values into every process's `tensors` (one starting point, as DDP's)."""
        if not self.several:
            return
        with torch.no_grad():
            for tensor in tensors:
                torch.distributed.broadcast(tensor.data, src=0)

    def gather_rows(self, local: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
        """Every process's rows in rank order (process r holds `sizes[r]`); this process's own rows are `local`
        itself, so gradients reach them, the others' are values. Every process then computes the same loss
        over all the rows and backpropagates into its own: their gradients sum to that of one process."""
        if not self.several:
            return local
        padded = local.new_zeros((max(sizes), *local.shape[1:]))
        padded[: len(local)] = local.detach()
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        torch.distributed.all_gather(parts, padded)
        return torch.cat([local if r == self.rank else parts[r][:n] for r, n in enumerate(sizes)])

    def first(self, check: Callable[[], T]) -> T:
        """`check()` in the main process, then, once it has passed or failed, in the others: a refused run
        stops every process with the same error, and none is left waiting for the others."""
        refused, result = None, None
        if self.main:
            try:
                result = check()
            except AuralignError as error:
                refused = error
        self.barrier()
        if refused is not None:
            raise refused
        return result if self.main else check()


@dataclass(frozen=True)
class Share:
    """This process's samples (`indices`) of a global batch split `sizes` over the processes."""

    procs: Processes
    indices: list[int]
    sizes: tuple[int, ...]

    @property
    def weight(self) -> float:
        """This share's part of the batch: a batch-mean loss weighed by it sums over the processes to the
        global batch's mean."""
        return len(self.indices) / sum(self.sizes)

    def gather(self, local: torch.Tensor) -> torch.Tensor:
        """The rows of the whole global batch, in its order (`Processes.gather_rows`)."""
        return self.procs.gather_rows(local, self.sizes)


def buckets(params: Sequence[nn.Parameter], size: int = BUCKET) -> list[list[nn.Parameter]]:
    """Consecutive parameters of one dtype, about `size` elements a group."""
    out: list[list[nn.Parameter]] = []
    count = 0
    for p in params:
        if not out or count + p.numel() > size or out[-1][0].grad.dtype != p.grad.dtype:
            out.append([])
            count = 0
        out[-1].append(p)
        count += p.numel()
    return out


def processes(device: str) -> Processes:
    """This process alone on `device` (`auto`: cuda when available), or its place in a launch of several,
    where each takes its own device (`auto`) or all run on the CPU (`cpu`)."""
    if not launched():
        return Processes(device=resolve_device(device))
    if device not in ("auto", "cpu"):
        raise ConfigError(
            f"device: {device!r} under a launch of several processes, where each takes its own device; "
            "leave device: auto (or cpu)"
        )
    die_with_launcher()
    from accelerate import PartialState

    if any(os.environ.get(f"ACCELERATE_USE_{kind}", "").lower() == "true" for kind in ("FSDP", "DEEPSPEED")):
        log.warning(
            "DALI stages run data-parallel: the launch's FSDP / DeepSpeed settings are not used (what trains "
            "is small and every process holds it whole)"
        )
    state = PartialState(cpu=device == "cpu" or not torch.cuda.is_available())
    return Processes(state.process_index, state.num_processes, state.device)
