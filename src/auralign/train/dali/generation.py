"""Captions from DALI's captioner, shared by pseudo-captioning (distill) and zero-shot captioning (caption).

Generation is resumable: batches are fixed (batch k of `options.batch_size` clips, seeded `options.seed` + k),
each finished row goes to a journal (`OUT.partial`) as it comes, and `OUT` appears atomically, in sample
order, once every clip has its row. A rerun skips the batches whose clips are all in the journal; the journal
records what produced it (`origin`: the settings and inputs), and a rerun with another origin is refused
instead of mixing two runs' captions in one file.
"""

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from auralign.data.audiovisual import AVSample
from auralign.fileio import Journal
from auralign.models.base import GenerationOptions
from auralign.models.dali.captioner import DALICaptioner
from auralign.train.common import progress_bar
from auralign.train.dali.data import ImageTokens, frame_of

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
) -> Path:
    """One JSON row per sample, `row(sample, text)`, into `out` (resumable, see the module docstring)."""
    journal = Journal(out.with_name(out.name + ".partial"), ensure_ascii=False)
    journal.claim(origin)
    done = set(journal.by("id"))
    images = ImageTokens(captioner.llava)
    captioner.eval()
    size = options.batch_size
    with journal, progress_bar(len(samples), 0, desc, progress) as bar:
        for k in range(0, len(samples), size):
            batch = samples[k : k + size]
            if not all(s.id in done for s in batch):
                texts = generate_batch(
                    captioner, batch, mode=mode, images=images, options=options, seed=options.seed + k // size
                )
                for s, text in zip(batch, texts, strict=True):
                    journal.append(row(s, text))
            bar.update(len(batch))
    rows = journal.by("id")
    journal.finish(out, [rows[s.id] for s in samples])
    return out
