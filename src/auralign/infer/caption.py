"""Batched captioning: audio files, folders or manifests in, one JSON line per sample out.

Predictions are appended to the journal `<out>.partial` as they are generated, so an interrupted run resumes
where it stopped (a line torn by a kill is generated again); the finished file appears atomically, in input
order, and the journal goes. Greedy decoding by default; beam search and seeded sampling on request.
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from auralign.data.manifest import AUDIO_TAG, read_manifest
from auralign.errors import DataError
from auralign.fileio import Journal
from auralign.models.base import DEFAULT_GENERATION, AudioLLM, Chat, GenerationOptions, chat_from_sample

AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aiff", ".aif"}
DEFAULT_PROMPT = "Describe the audio in one sentence."


@dataclass
class Item:
    chat: Chat
    references: list[str]
    label: str | None = None
    task: str = "caption"


def audio_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    return [path]


def collect(inputs: list[Path], prompt: str | None, audios_per_sample: int = 1) -> Iterator[Item]:
    """Manifests give their own chats (prompt overridable); audio files are grouped `audios_per_sample` at a time."""
    loose: list[Path] = []
    for path in inputs:
        if not path.exists():
            raise DataError(f"{path}: no such file or folder")
        if path.suffix == ".jsonl":
            for sample in read_manifest(path):
                chat = chat_from_sample(sample, path.parent, with_answer=False)
                if prompt is not None:
                    user = chat.messages[-1]
                    user["content"] = AUDIO_TAG * user["content"].count(AUDIO_TAG) + prompt
                refs = sample.references or ([sample.target] if sample.target else [])
                yield Item(chat, refs, sample.label, sample.task)
        else:
            loose += audio_files(path)
    if len(loose) % audios_per_sample:
        raise DataError(f"{len(loose)} audio files do not split into groups of {audios_per_sample}")
    for i in range(0, len(loose), audios_per_sample):
        group = loose[i : i + audios_per_sample]
        content = AUDIO_TAG * len(group) + (prompt or DEFAULT_PROMPT)
        sample_id = "+".join(p.stem for p in group)
        yield Item(Chat([{"role": "user", "content": content}], [str(p) for p in group], sample_id), [])


def caption(
    llm: AudioLLM,
    items: list[Item],
    out: str | os.PathLike,
    *,
    options: GenerationOptions = DEFAULT_GENERATION,
    progress: bool = True,
) -> Path:
    """Caption `items` in batches of `options.batch_size` into `out` (one `record` per line, input order)."""
    from tqdm import tqdm

    out = Path(out)
    ids = [it.chat.id for it in items]
    if len(set(ids)) != len(ids):
        raise DataError("sample ids are not unique: predictions could not be matched to samples")
    journal = Journal(out.with_name(out.name + ".partial"), ensure_ascii=False)
    done = journal.by("id")
    todo = [it for it in items if it.chat.id not in done]
    llm.eval()
    with journal, tqdm(total=len(items), initial=len(done), disable=not progress, desc="caption") as bar:
        for i in range(0, len(todo), options.batch_size):
            batch = todo[i : i + options.batch_size]
            for it, text in zip(batch, llm.generate([it.chat for it in batch], options), strict=True):
                journal.append(record(it, text))
            bar.update(len(batch))
    rows = journal.by("id")
    journal.finish(out, (rows[sample_id] for sample_id in ids))
    return out


def record(item: Item, prediction: str) -> dict:
    user = [m["content"] for m in item.chat.messages if m["role"] == "user"][-1]
    return {
        "id": item.chat.id,
        "task": item.task,
        "audios": [str(a) for a in item.chat.audios],
        "prompt": user.replace(AUDIO_TAG, "").strip(),
        "prediction": prediction,
        "references": item.references,
        "label": item.label,
    }
