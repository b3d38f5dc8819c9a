"""General-ability (classification) sets of a build config: `ABILITY_READERS`, one entry per `format:`.

An entry turns one `abilities:` item into (task, prompt, corpus) triples: the published layouts hold one task
each (`one_task`: the config's `task:` or the format's own, the config's `prompt:` or `ABILITY_PROMPTS`), the
mini corpus's `abilities/` folder holds every task listed in its tasks.json. A new layout is a reader in
`auralign.data.readers` plus one entry here.
"""

import json
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import field_validator

from auralign.config import StrictModel
from auralign.data import readers
from auralign.errors import ConfigError, DataError

ABILITY_PROMPTS = {
    "vsc": "What vocal sound is this? Answer with one of: laughter, sigh, cough, throatclearing, sneeze, sniff.",
    "ser": "What is the emotion of the speaker? Answer with one of: neu, hap, ang, sad.",
    "mic": "Which instrument family plays this note? Answer with one of: bass, brass, flute, guitar, keyboard, "
    "mallet, organ, reed, string, synth_lead, vocal.",
    "mgc": "What is the genre of this music? Answer with one of: blues, classical, country, disco, hiphop, jazz, "
    "metal, pop, reggae, rock.",
}


class AbilitySpec(StrictModel):
    """A general-ability set: a published layout (a key of ABILITY_READERS), or `mini` for the mini corpus."""

    format: str
    path: Path
    task: str | None = None
    split: str | None = None
    prompt: str | None = None

    @field_validator("format")
    @classmethod
    def _known(cls, value: str) -> str:
        return readers.known_format(value, ABILITY_READERS, "ability format")


AbilitySets = Iterator[tuple[str, str, readers.Corpus]]


def one_task(read: Callable[[AbilitySpec, str], readers.Corpus], task: str | None = None):
    """The entry of a layout holding one task: `read(spec, task)` gives its corpus; `task` is its default name."""

    def sets(spec: AbilitySpec) -> AbilitySets:
        name = spec.task or task
        if name is None:
            raise ConfigError(f"abilities: format {spec.format} needs a task name")
        prompt = spec.prompt or ABILITY_PROMPTS.get(name)
        if prompt is None:
            raise ConfigError(f"abilities: task {name} needs a prompt")
        yield name, prompt, read(spec, name)

    return sets


def mini_tasks(spec: AbilitySpec) -> AbilitySets:
    """Every task in the mini corpus's `<path>/tasks.json`, read from `<path>/<task>/<split or test>.csv`."""
    tasks_file = spec.path / "tasks.json"
    try:
        tasks = json.loads(tasks_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{tasks_file}: mini ability tasks file not found") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{tasks_file}: broken JSON ({exc.msg} at line {exc.lineno})") from None
    for task in tasks:
        csv_path = spec.path / task["task"] / f"{spec.split or 'test'}.csv"
        yield (
            task["task"],
            spec.prompt or task["prompt"],
            readers.read_labelled_csv(csv_path, name=task["task"]),
        )


ABILITY_READERS: dict[str, Callable[[AbilitySpec], AbilitySets]] = {
    "vocalsound": one_task(lambda spec, task: readers.read_vocalsound(spec.path, spec.split), "vsc"),
    "iemocap": one_task(lambda spec, task: readers.read_iemocap(spec.path), "ser"),
    "nsynth": one_task(lambda spec, task: readers.read_nsynth(spec.path), "mic"),
    "gtzan": one_task(lambda spec, task: readers.read_gtzan(spec.path), "mgc"),
    "labelled_csv": one_task(lambda spec, task: readers.read_labelled_csv(spec.path, name=task)),
    "mini": mini_tasks,
}


def ability_sets(spec: AbilitySpec) -> AbilitySets:
    """(task, prompt, corpus) for one `abilities:` item."""
    return ABILITY_READERS[spec.format](spec)
