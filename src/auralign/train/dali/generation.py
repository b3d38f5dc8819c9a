"""Captions from DALI's captioner, shared by pseudo-captioning (distill) and zero-shot captioning (caption).

Generation is resumable: batches are fixed (batch k of `options.batch_size` clips, seeded `options.seed` + k),
each finished row goes to a journal (`OUT.partial`) as it comes, and `OUT` appears atomically, in sample
order, once every clip has its row. A rerun skips the batches whose clips are all in the journal; the journal
records what produced it (`origin`: the settings and inputs), and a rerun with another origin is refused
instead of mixing two runs' captions in one file.

Several processes (`accelerate launch`) share the batches: batch k goes to process k mod N, which journals
its rows in a file of its own (`OUT.partial` for the main process, `OUT.partial.R` for process R); the main
one publishes `OUT` from every journal, in sample order, once all have written. Each batch's seed is the
same whoever captions it, so `OUT` is the file one process writes, and a rerun under any number of
processes resumes from every journal left.
"""

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from auralign.data.audiovisual import AVSample
from auralign.errors import DataError
from auralign.fileio import Journal, differences
from auralign.models.base import GenerationOptions
from auralign.models.dali.captioner import DALICaptioner
from auralign.train.common import progress_bar
from auralign.train.dali.data import ImageTokens, frame_of
from auralign.train.dali.processes import Processes

Row = Callable[[AVSample, str], dict]


@torch.no_grad()
def generate_batch(
    captioner: DALICaptioner,
    samples: Sequence[AVSample],
    *,
    mode: str,
    images: ImageTokens,
    options: GenerationOptions,
    seed: int,
) -> list[str]:
    """Captions of a batch from its frames ("image"), audio ("audio") or both ("audio-visual"), decoded as
    `options` say with generator seed `seed`."""
    image_tokens = images([frame_of(s) for s in samples]) if mode != "audio" else None
    audio_tokens = captioner.audio.encode([s.audio for s in samples]) if mode != "image" else None
    return captioner.generate(image_tokens, audio_tokens, options=options.model_copy(update={"seed": seed}))


def journal_path(out: Path, rank: int) -> Path:
    """Where process `rank` journals its rows of `out`."""
    return out.with_name(f"{out.name}.partial" + (f".{rank}" if rank else ""))


def journals(out: Path) -> list[Journal]:
    """Every journal of `out` left by any process of any run, the main process's first."""
    ranks = sorted(
        int(p.suffix[1:]) for p in out.parent.glob(f"{out.name}.partial.*") if p.suffix[1:].isdigit()
    )
    return [Journal(journal_path(out, rank)) for rank in [0, *ranks]]


def check_origins(out: Path, origin: dict) -> None:
    """Refuse every journal of `out` holding work of another origin, as `Journal.claim` does, reading only:
    another process may be writing its own."""
    wanted = json.loads(json.dumps(origin))
    for journal in journals(out):
        saved = journal.origin()
        if saved == wanted or not any(True for _ in journal.lines()):
            continue
        why = (
            f"differs in: {', '.join(differences(saved, wanted))}"
            if saved
            else "no record of what produced it"
        )
        raise DataError(
            f"{journal.path}: holds unfinished work of another run ({why}); "
            "rerun with the same settings to resume it, or delete it to start again"
        )


def generate_jsonl(
    captioner: DALICaptioner,
    samples: Sequence[AVSample],
    *,
    mode: str,
    options: GenerationOptions,
    out: Path,
    row: Row,
    origin: dict,
    progress: bool,
    desc: str,
    procs: Processes | None = None,
) -> Path:
    """One JSON row per sample, `row(sample, text)`, into `out` (resumable, see the module docstring); every
    process of `procs` (default: this one alone) calls it, and it returns once `out` is written."""
    procs = procs or Processes()
    check_origins(out, origin)
    journal = Journal(journal_path(out, procs.rank), ensure_ascii=False)
    journal.claim(origin)
    done = {key for other in journals(out) for key in other.by("id")}
    images = ImageTokens(captioner.llava)
    captioner.eval()
    size = options.batch_size
    starts = [k for k in range(0, len(samples), size) if k // size % procs.world == procs.rank]
    total = sum(len(samples[k : k + size]) for k in starts)
    with journal, progress_bar(total, 0, desc, progress and procs.main) as bar:
        for k in starts:
            batch = samples[k : k + size]
            if not all(s.id in done for s in batch):
                texts = generate_batch(
                    captioner, batch, mode=mode, images=images, options=options, seed=options.seed + k // size
                )
                for s, text in zip(batch, texts, strict=True):
                    journal.append(row(s, text))
            bar.update(len(batch))
    procs.barrier()
    if procs.main:
        publish(out, samples)
    procs.barrier()
    return out


def publish(out: Path, samples: Sequence[AVSample]) -> None:
    """`out` from every process's journal, in sample order; the journals go."""
    found = journals(out)
    rows = {key: line for journal in found for key, line in journal.by("id").items()}
    missing = [s.id for s in samples if s.id not in rows]
    if missing:
        raise DataError(f"{journal_path(out, 0)}: no row for {missing[0]!r} in any process's journal")
    found[0].finish(out, [rows[s.id] for s in samples])
    for journal in found[1:]:
        journal.path.unlink(missing_ok=True)
