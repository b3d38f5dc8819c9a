"""What every training recipe (LoRA SFT, the DALI stages) shares: seeding, the learning-rate schedule, the run
folder protocol, the training log and checkpoint folders.

A run folder holds:

    config.json   the resolved config, written when the run starts; a later run into the folder, finished or
                  not, must have the same config except `runtime_keys` (how it runs, not what it computes), or
                  it is refused with the differing keys named (a folder holding run files but no config.json
                  is refused too: nothing says what produced them)
    log.jsonl     one JSON row per logged step; on resume the rows after the checkpoint are dropped (those
                  steps run again), so the log reads as one uninterrupted run
    checkpoints/  `PREFIX...` folders, each published by a rename (a kill leaves the last complete one), the
                  newest `keep` kept; names sort in training order
    done.json     written last: a finished run of the same config is a no-op
"""

import json
import logging
import math
import os
import random
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel

from auralign.errors import ConfigError
from auralign.fileio import Journal, atomic_dir, atomic_write_text, differences

log = logging.getLogger(__name__)

CONFIG, LOG, DONE = "config.json", "log.jsonl", "done.json"
CHECKPOINTS = "checkpoints"


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def seed_process(seed: int, rank: int, world: int) -> None:
    """Under several processes, reseed torch with `seed + rank` once the weights are built (alike on every
    process), so that each process draws its own dropout masks; a single process keeps its stream."""
    if world > 1:
        torch.manual_seed(seed + rank)


def warmup_cosine(total: int, warmup_ratio: float, min_ratio: float = 0.0) -> Callable[[int], float]:
    """lr factor of step k (for LambdaLR): linear warm-up over `warmup_ratio` of the `total` steps, then a
    cosine from 1 to `min_ratio`."""
    warmup = int(total * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, total - warmup)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def die_with_launcher() -> None:
    """Have Linux SIGKILL this process when its parent dies, if a launcher (torchrun, `accelerate launch`)
    started it: those start each worker in a session of its own, so a kill -9 of the launcher would
    otherwise leave its workers training on, writing into the run folder a rerun resumes from."""
    if "TORCHELASTIC_RUN_ID" not in os.environ or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1  # <linux/prctl.h>
    if ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL) != 0:
        log.warning(
            "prctl(PR_SET_PDEATHSIG) failed (errno %d): workers may outlive a killed launcher",
            ctypes.get_errno(),
        )
    if os.getppid() == 1:  # the launcher died before the request was made
        os.kill(os.getpid(), signal.SIGKILL)


def progress_bar(total: int, initial: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled)


# ---------------------------------------------------------------- the run folder


def _without(dump: Any, keys: Sequence[str]) -> Any:
    if isinstance(dump, dict):
        return {k: _without(v, keys) for k, v in dump.items() if k not in keys}
    return dump


def check_config(cfg: BaseModel, out: Path, runtime_keys: Sequence[str] = ()) -> None:
    """Write `out/config.json`, or refuse a folder whose config.json differs from `cfg` (ignoring
    `runtime_keys` at any depth), or that holds run files without one: resuming it would mix two runs."""
    current = cfg.model_dump(mode="json")
    path = out / CONFIG
    if not path.exists():
        held = [name for name in (DONE, LOG, CHECKPOINTS) if (out / name).exists()]
        if held:
            raise ConfigError(
                f"{out}: holds a run ({', '.join(held)}) but no {CONFIG}, so nothing says which config "
                "produced it; use a new output_dir or delete it"
            )
        atomic_write_text(path, json.dumps(current, indent=2) + "\n")
        return
    saved = json.loads(path.read_text(encoding="utf-8"))
    keys = differences(_without(saved, runtime_keys), _without(current, runtime_keys))
    if keys:
        state = "a finished" if is_finished(out) else "an unfinished"
        raise ConfigError(
            f"{out}: holds {state} run with a different config (differs in: {', '.join(keys)}); "
            "use a new output_dir or delete it"
        )


def is_finished(out: Path) -> bool:
    return (out / DONE).is_file()


def finished_run(cfg: BaseModel, out: Path, runtime_keys: Sequence[str] = ()) -> bool:
    """True when `out` holds a finished run of this config; a finished run of another config is refused
    (`check_config`), never returned as if it were this one."""
    if not is_finished(out):
        return False
    check_config(cfg, out, runtime_keys)
    return True


def start_run(cfg: BaseModel, out: Path, runtime_keys: Sequence[str] = ()) -> bool:
    """Create the run folder and check its config (`check_config`); True when the run has finished already."""
    out.mkdir(parents=True, exist_ok=True)
    check_config(cfg, out, runtime_keys)
    if is_finished(out):
        log.info("%s: already finished (delete it to run again)", out)
        return True
    return False


def finish_run(out: Path, info: dict[str, Any]) -> Path:
    """Write done.json (last: it marks the folder finished); returns the folder."""
    atomic_write_text(out / DONE, json.dumps(info) + "\n")
    return out


def training_log(out: Path, keep: Callable[[dict[str, Any]], bool] = lambda row: False) -> Journal:
    """`out/log.jsonl`, rewritten with only the rows `keep` accepts (those of steps a resumed run will not
    repeat; by default none), ready for `.append(row)`."""
    journal = Journal(out / LOG)
    journal.keep(keep)
    return journal


# ---------------------------------------------------------------- checkpoints


def pending_folder(folder: Path) -> Path:
    """Where `atomic_dir` (not shared) writes `folder` before publishing it: one name every process can find."""
    return folder.with_name(f".{folder.name}.tmp")


@contextmanager
def checkpoint_folder(
    folder: Path,
    *,
    prefix: str,
    keep: int,
    durable: bool,
    main: bool = True,
    barrier: Callable[[], None] | None = None,
) -> Iterator[Path]:
    """Yield an empty folder to write a checkpoint into; on success it is published as `folder` (named
    `prefix...`) and only the newest `keep` of its `prefix*` siblings remain. `durable`: fsync first.

    With several processes (`barrier` given, every process entering with the same `folder`), all write into
    one temporary folder: the `main` process creates it and publishes it, and every process waits at
    `barrier` once it exists and once all have written."""
    if not main:
        if barrier is None:
            raise ValueError("checkpoint_folder: a process other than the main one needs a barrier")
        barrier()
        yield pending_folder(folder)
        barrier()
        return
    with atomic_dir(folder, durable=durable) as tmp:
        if tmp != pending_folder(folder):
            raise RuntimeError(f"atomic_dir writes {folder} at {tmp}, not where other processes look")
        if barrier is not None:
            barrier()
        yield tmp
        if barrier is not None:
            barrier()
    for old in sorted(folder.parent.glob(f"{prefix}*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(folder: Path, prefix: str) -> Path | None:
    """The newest `prefix*` checkpoint in `folder`, if any."""
    found = sorted(folder.glob(f"{prefix}*")) if folder.is_dir() else []
    return found[-1] if found else None
