"""General-ability (classification) sets of a build config: `ABILITY_READERS`, one entry per `format:`.

An entry turns one `abilities:` item into (task, prompt, corpus) triples: the published layouts hold one task
each (`one_task`: the config's `task:` or the format's own, the config's `prompt:` or `ABILITY_PROMPTS`), the
mini corpus's `abilities/` folder holds every task listed in its tasks.json. A `one_task` entry also says
which `split:` values its layout has (VocalSound's speaker lists, IEMOCAP's sessions, GTZAN's fault-filtered
lists; none for NSynth, whose split is its folder); another value is refused when the config is read. A new
layout is a reader in `auralign.data.readers` plus one entry here.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import field_validator, model_validator

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

    @model_validator(mode="after")
    def _split_known(self) -> "AbilitySpec":
        splits = getattr(ABILITY_READERS[self.format], "splits", None)
        if self.split is None or splits is None or self.split in splits:
            return self
        if not splits:
            raise ValueError(f"split: format {self.format} has no splits (its path names one set)")
        raise ValueError(f"split: format {self.format} has splits {', '.join(splits)}, not '{self.split}'")


AbilitySets = Iterator[tuple[str, str, readers.Corpus]]


@dataclass(frozen=True)
class OneTask:
    """The entry of a layout holding one task: `read(spec, task)` gives its corpus; `task` is its default
    name; `splits` the `split:` values it has (None: not checked, left to the reader; (): none)."""

    read: Callable[[AbilitySpec, str], readers.Corpus]
    task: str | None = None
    splits: tuple[str, ...] | None = None

    def __call__(self, spec: AbilitySpec) -> AbilitySets:
        name = spec.task or self.task
        if name is None:
            raise ConfigError(f"abilities: format {spec.format} needs a task name")
        prompt = spec.prompt or ABILITY_PROMPTS.get(name)
        if prompt is None:
            raise ConfigError(f"abilities: task {name} needs a prompt")
        yield name, prompt, self.read(spec, name)


def one_task(
    read: Callable[[AbilitySpec, str], readers.Corpus],
    task: str | None = None,
    *,
    splits: tuple[str, ...] | None = None,
) -> OneTask:
    return OneTask(read, task, splits)


def mini_tasks(spec: AbilitySpec) -> AbilitySets:
    """Every task in the mini corpus's `<path>/tasks.json` (a list of {"task", "prompt"} objects), read from
    `<path>/<task>/<split or test>.csv`."""
    tasks_file = spec.path / "tasks.json"
    if not tasks_file.is_file():
        raise DataError(f"{tasks_file}: mini ability tasks file not found")
    tasks = readers.load_json(tasks_file)
    if not isinstance(tasks, list):
        raise DataError(f"{tasks_file}: expected a list of tasks, found a JSON {readers.json_type(tasks)}")
    for index, task in enumerate(tasks):
        for key in ("task", "prompt") if spec.prompt is None else ("task",):
            if not isinstance(task, dict) or not isinstance(task.get(key), str) or not task[key]:
                raise DataError(f"{tasks_file}: task {index} has no '{key}' (a non-empty string)")
    for task in tasks:
        csv_path = spec.path / task["task"] / f"{spec.split or 'test'}.csv"
        yield (
            task["task"],
            spec.prompt or task["prompt"],
            readers.read_labelled_csv(csv_path, name=task["task"]),
        )


def _iemocap(spec: AbilitySpec, task: str) -> readers.Corpus:
    sessions = readers.IEMOCAP_SESSIONS[spec.split] if spec.split else (1, 2, 3, 4, 5)
    return readers.read_iemocap(spec.path, sessions=sessions)


ABILITY_READERS: dict[str, Callable[[AbilitySpec], AbilitySets]] = {
    "vocalsound": one_task(
        lambda spec, task: readers.read_vocalsound(spec.path, spec.split),
        "vsc",
        splits=tuple(readers.VOCALSOUND_SPLITS),
    ),
    "iemocap": one_task(_iemocap, "ser", splits=tuple(readers.IEMOCAP_SESSIONS)),
    "nsynth": one_task(lambda spec, task: readers.read_nsynth(spec.path), "mic", splits=()),
    "gtzan": one_task(
        lambda spec, task: readers.read_gtzan(spec.path, spec.split), "mgc", splits=tuple(readers.GTZAN_LISTS)
    ),
    "labelled_csv": one_task(lambda spec, task: readers.read_labelled_csv(spec.path, name=task), splits=()),
    "mini": mini_tasks,
}


def ability_sets(spec: AbilitySpec) -> AbilitySets:
    """(task, prompt, corpus) for one `abilities:` item."""
    return ABILITY_READERS[spec.format](spec)
