"""Batched captioning: audio files, folders or manifests in, one JSON line per sample out.

Predictions are appended to the journal `<out>.partial` as they are generated, so an interrupted run resumes
where it stopped (a line torn by a kill is generated again); the finished file appears atomically, in input
order, and the journal goes. Greedy decoding by default; beam search and seeded sampling on request.

The journal's first line is its origin (`origin`): the model (a digest of its weights, adapter included, or
what the caller names), the decoding options, the prompts and the inputs (ids, audio files with their sizes
and times, references). A rerun with any of them changed is refused, naming what differs, instead of
resuming into one file of predictions made two ways. No inputs is an error, and `out` is only ever replaced
by a finished run, so an existing file is never emptied.
"""

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

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
    """Manifests give their own chats (prompt overridable); audio files are grouped `audios_per_sample` at a
    time. Inputs that hold nothing to caption (an empty folder or manifest) are an error."""
    loose: list[Path] = []
    found = 0
    for path in inputs:
        if not path.exists():
            raise DataError(f"{path}: no such file or folder")
        if path.suffix == ".jsonl":
            for sample in read_manifest(path):
                found += 1
                chat = chat_from_sample(sample, path.parent, with_answer=False)
                if prompt is not None:
                    user = chat.messages[-1]
                    user["content"] = AUDIO_TAG * user["content"].count(AUDIO_TAG) + prompt
                refs = sample.references or ([sample.target] if sample.target else [])
                yield Item(chat, refs, sample.label, sample.task)
        else:
            loose += audio_files(path)
    if not found and not loose:
        names = ", ".join(str(path) for path in inputs)
        raise DataError(f"{names}: no audio files or manifest samples to caption")
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
    model: Any = None,
    progress: bool = True,
) -> Path:
    """Caption `items` in batches of `options.batch_size` into `out` (one `record` per line, input order).
    `model` names the model in the journal's origin (default: `model_digest(llm)`)."""
    from tqdm import tqdm

    out = Path(out)
    if not items:
        raise DataError(f"{out}: no samples to caption (nothing written)")
    ids = [it.chat.id for it in items]
    if len(set(ids)) != len(ids):
        raise DataError("sample ids are not unique: predictions could not be matched to samples")
    journal = Journal(out.with_name(out.name + ".partial"), ensure_ascii=False)
    journal.claim(origin(items, options, model if model is not None else model_digest(llm)))
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


# ---------------------------------------------------------------- what produced a run's predictions


def origin(items: list[Item], options: GenerationOptions, model: Any) -> dict[str, Any]:
    """What decides a run's predictions, as JSON: `model` as given, the decoding options (the batch size only
    when sampling, where it decides which samples share a seed), the prompts, and a digest of the inputs."""
    decoding = options.model_dump(mode="json", exclude=set() if options.do_sample else {"batch_size"})
    prompts = list(dict.fromkeys(_prompt(it) for it in items))
    return {
        "model": model,
        "options": decoding,
        "prompts": prompts if len(prompts) <= 8 else _digest(prompts),
        "inputs": _digest([_input(it) for it in items]),
    }


def model_digest(llm: Any) -> dict[str, Any]:
    """A model's identity without reading all of it: a digest of every tensor's name, shape, dtype and 256
    evenly spaced values (any checkpoint or adapter differs there), with its long-audio policy. A model that
    is not a torch module (an external engine) is named by its `origin` attribute."""
    if not isinstance(llm, torch.nn.Module):
        return {"engine": type(llm).__name__, "origin": getattr(llm, "origin", None)}
    digest = hashlib.sha1()
    with torch.no_grad():
        for name, tensor in llm.state_dict().items():
            flat = tensor.detach().reshape(-1)
            values = flat[:: max(1, flat.numel() // 256)][:256].float().cpu().numpy()
            digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}|".encode())
            digest.update(values.tobytes())
    return {"weights": digest.hexdigest(), "long_audio": getattr(llm, "long_audio", None)}


def _prompt(item: Item) -> str:
    user = [m["content"] for m in item.chat.messages if m["role"] == "user"][-1]
    return user.replace(AUDIO_TAG, "").strip()


def _input(item: Item) -> dict[str, Any]:
    """An item with its prompt left out (`origin` names prompts apart) and its audio files' size and time."""
    messages = [dict(m) for m in item.chat.messages]
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    messages[last_user]["content"] = messages[last_user]["content"].count(AUDIO_TAG)
    return {
        "id": item.chat.id,
        "task": item.task,
        "messages": messages,
        "audios": [_file_stamp(a) for a in item.chat.audios],
        "references": item.references,
        "label": item.label,
    }


def _file_stamp(audio: Any) -> Any:
    if isinstance(audio, str | os.PathLike) and Path(audio).is_file():
        st = Path(audio).stat()
        return [str(audio), st.st_size, st.st_mtime_ns]
    return str(audio) if isinstance(audio, str | os.PathLike) else type(audio).__name__


def _digest(value: Any) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def record(item: Item, prediction: str) -> dict:
    return {
        "id": item.chat.id,
        "task": item.task,
        "audios": [str(a) for a in item.chat.audios],
        "prompt": _prompt(item),
        "prediction": prediction,
        "references": item.references,
        "label": item.label,
    }
