"""Instruction manifests: JSONL, one sample a line, readable by ms-swift and LLaMA-Factory.

A line looks like::

    {"id": "acc-add-000017", "task": "acc",
     "messages": [{"role": "user", "content": "<audio><audio>Tell me the similarities between the two audios."},
                  {"role": "assistant", "content": "A dog barks while a car passes by"}],
     "audios": ["audio/pair-000017-a.flac", "audio/pair-000017-b.flac"],
     "references": ["A dog barks while a car passes by"], "label": null, "meta": {"op": "add"}}

`messages` and `audios` are the ms-swift / LLaMA-Factory keys (one `<audio>` tag per audio, in order); `id`,
`task`, `references`, `label` and `meta` are ours. Relative audio paths are relative to the manifest's folder.
"""

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from auralign.errors import DataError
from auralign.fileio import atomic_write, read_jsonl

AUDIO_TAG = "<audio>"


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str


class Sample(BaseModel):
    """One training or evaluation sample."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    task: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    audios: list[str] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list)
    label: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("audios")
    @classmethod
    def _non_empty_paths(cls, audios: list[str]) -> list[str]:
        if any(not path for path in audios):
            raise ValueError("audio paths must be non-empty strings")
        return audios

    @model_validator(mode="after")
    def _tags_match_audios(self) -> "Sample":
        tags = sum(m.content.count(AUDIO_TAG) for m in self.messages)
        if tags != len(self.audios):
            raise ValueError(f"{tags} {AUDIO_TAG} tag(s) in messages but {len(self.audios)} audio path(s)")
        return self

    @property
    def prompt(self) -> str:
        """The last user message, audio tags removed: what the model is asked."""
        user = [m.content for m in self.messages if m.role == "user"]
        return user[-1].replace(AUDIO_TAG, "").strip() if user else ""

    @property
    def target(self) -> str | None:
        """The final assistant message: what the model should answer (None for evaluation-only samples)."""
        last = self.messages[-1]
        return last.content if last.role == "assistant" else None

    def audio_paths(self, base: str | os.PathLike) -> list[Path]:
        """Audio paths resolved against `base` (the manifest's folder)."""
        return [Path(base, path) for path in self.audios]


def make_sample(
    id: str,
    task: str,
    prompt: str,
    audios: list[str],
    answer: str | None = None,
    references: list[str] | None = None,
    label: str | None = None,
    meta: dict[str, Any] | None = None,
    system: str | None = None,
) -> Sample:
    """A single-turn sample: the audio tags go first in the user turn, then the prompt."""
    messages = [Message(role="system", content=system)] if system else []
    messages.append(Message(role="user", content=AUDIO_TAG * len(audios) + prompt))
    if answer is not None:
        messages.append(Message(role="assistant", content=answer))
    return Sample(
        id=id,
        task=task,
        messages=messages,
        audios=audios,
        references=references or [],
        label=label,
        meta=meta or {},
    )


def _problem(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        parts.append(f"{key}: {err['msg']}" if key else err["msg"])
    return "; ".join(parts)


def validate_sample(record: dict[str, Any], source: str, lineno: int) -> Sample:
    try:
        return Sample.model_validate(record)
    except ValidationError as exc:
        raise DataError(f"{source}:{lineno}: invalid sample: {_problem(exc)}") from None


def read_manifest(path: str | os.PathLike) -> Iterator[Sample]:
    """Stream samples; blank lines are skipped; any bad line raises DataError naming file and line."""
    for lineno, record in read_jsonl(path, "manifest"):
        yield validate_sample(record, str(path), lineno)


def load_manifest(path: str | os.PathLike) -> list[Sample]:
    return list(read_manifest(path))


def dump_sample(sample: Sample) -> str:
    # Fixed key order and no whitespace variation: same samples, byte-identical files.
    return json.dumps(sample.model_dump(mode="json"), ensure_ascii=False, separators=(", ", ": "))


def write_manifest(path: str | os.PathLike, samples: Iterable[Sample]) -> int:
    """Write samples atomically (temp file + rename); returns the count written."""
    count = 0
    with atomic_write(path, "w", encoding="utf-8") as handle:
        for sample in samples:
            handle.write(dump_sample(sample) + "\n")
            count += 1
    return count
