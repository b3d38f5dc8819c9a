"""`auralign data build`: render edit pairs and write AC / ADC / ACC (and ability) manifests from one config.

Rendering is parallel over worker processes and resumable: each finished pair is appended to a journal
(`OUT/.journal/<split>-<shard>.jsonl`) after its two FLAC files are in place (written atomically), so a
killed build picks up where it stopped. Manifests are written from the plan plus the journal, sorted by
pair index, so the same config and seed give byte-identical manifests whatever the worker count, the
interruptions or the sharding (`--shard i/N` on N machines, then `auralign data merge`).
"""

import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache, partial
from multiprocessing import get_context
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field
from tqdm.auto import tqdm

from auralign.audio import AudioError, MixConfig, edit_pair, load_audio, write_audio
from auralign.config import StrictModel, load_config
from auralign.data import readers
from auralign.data.manifest import load_manifest, write_manifest
from auralign.data.tasks import (
    OPS,
    PairPlan,
    Prompts,
    Templates,
    ac_samples,
    label_samples,
    pair_samples,
    plan_pairs,
    ratio_mix,
)
from auralign.errors import ConfigError, DataError
from auralign.fileio import atomic_write_text

log = logging.getLogger(__name__)


class CorpusSpec(StrictModel):
    """Where a corpus lives and in which published layout."""

    format: Literal["audiocaps", "clotho", "labelled_csv", "label_folders"]
    csv: Path | None = None
    audio_dir: Path | None = None


class SplitSpec(StrictModel):
    name: str = Field(pattern=r"^[\w.-]+$")
    bases: CorpusSpec
    events: CorpusSpec | None = None
    pairs: dict[Literal["add", "drop", "replace"], int] = Field(default_factory=dict)
    ac: Literal["per_caption", "per_clip", "none"] = "per_caption"


ABILITY_PROMPTS = {
    "vsc": "What vocal sound is this? Answer with one of: laughter, sigh, cough, throatclearing, sneeze, sniff.",
    "ser": "What is the emotion of the speaker? Answer with one of: neu, hap, ang, sad.",
    "mic": "Which instrument family plays this note? Answer with one of: bass, brass, flute, guitar, keyboard, "
    "mallet, organ, reed, string, synth_lead, vocal.",
    "mgc": "What is the genre of this music? Answer with one of: blues, classical, country, disco, hiphop, jazz, "
    "metal, pop, reggae, rock.",
}


class AbilitySpec(StrictModel):
    """A general-ability (classification) set: a published layout, or `mini` for the mini corpus's tasks.json."""

    format: Literal["vocalsound", "iemocap", "nsynth", "gtzan", "labelled_csv", "mini"]
    path: Path
    task: str | None = None
    split: str | None = None
    prompt: str | None = None


class MixSpec(StrictModel):
    """A ratio mix of the built manifests of one split, e.g. {ac: 1, acc: 1}."""

    split: str
    weights: dict[str, float]
    size: int = Field(gt=0)


class BuildConfig(StrictModel):
    seed: int = 0
    out_dir: Path
    sample_rate: int = Field(default=16000, gt=0)
    max_seconds: float = Field(default=30.0, gt=0)
    on_too_long: Literal["error", "truncate"] = "error"
    # A corrupt or unreadable input stops the build (naming the file) unless told to skip and report it.
    on_bad_audio: Literal["error", "skip"] = "error"
    prompts: Prompts = Prompts()
    templates: Templates = Templates()
    mix: MixConfig = MixConfig()
    splits: list[SplitSpec] = Field(min_length=1)
    abilities: list[AbilitySpec] = Field(default_factory=list)
    mixes: dict[str, MixSpec] = Field(default_factory=dict)


@dataclass
class SplitData:
    spec: SplitSpec
    bases: readers.Corpus
    events: readers.Corpus | None
    plans: list[PairPlan]


# --- reading and planning ------------------------------------------------------------------------------


def read_corpus(spec: CorpusSpec, name: str) -> readers.Corpus:
    if spec.format == "label_folders":
        if spec.audio_dir is None:
            raise ConfigError(f"{name}: format label_folders needs audio_dir")
        return readers.read_label_folders(spec.audio_dir, name=name)
    if spec.csv is None:
        raise ConfigError(f"{name}: format {spec.format} needs csv")
    if spec.format == "labelled_csv":
        return readers.read_labelled_csv(spec.csv, spec.audio_dir, name=name)
    if spec.audio_dir is None:
        raise ConfigError(f"{name}: format {spec.format} needs audio_dir")
    read = readers.read_audiocaps if spec.format == "audiocaps" else readers.read_clotho
    return read(spec.csv, spec.audio_dir, name=name)


def prepare(config: BuildConfig) -> list[SplitData]:
    prepared = []
    for spec in config.splits:
        bases = read_corpus(spec.bases, f"{spec.name}.bases")
        events = read_corpus(spec.events, f"{spec.name}.events") if spec.events else None
        try:
            plans = plan_pairs(
                spec.name,
                bases.clips,
                events.clips if events else [],
                spec.pairs,
                config.seed,
                config.templates,
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        prepared.append(SplitData(spec, bases, events, plans))
    return prepared


# --- rendering -----------------------------------------------------------------------------------------


def pair_paths(out_dir: Path, plan: PairPlan) -> tuple[Path, Path]:
    folder = out_dir / plan.id.split("-", 1)[0] / "audio"
    return folder / f"{plan.id}-1.flac", folder / f"{plan.id}-2.flac"


@lru_cache(maxsize=32)
def _load_cached(path: Path, sr: int, max_seconds: float, on_too_long: str) -> np.ndarray:
    # Bases and events recur across pairs; a small bounded cache per worker keeps memory flat in corpus size.
    audio = load_audio(path, sr=sr, max_seconds=max_seconds, on_too_long=on_too_long)
    audio.flags.writeable = False
    return audio


def render_pair(plan: PairPlan, config: BuildConfig) -> dict:
    """Mix and write one pair; returns its journal record (a skip record if an input is bad)."""
    load = partial(
        _load_cached, sr=config.sample_rate, max_seconds=config.max_seconds, on_too_long=config.on_too_long
    )
    try:
        base, event = load(plan.base.path), load(plan.event.path)
        replacement = load(plan.replacement.path) if plan.replacement else None
    except AudioError as exc:
        return {"id": plan.id, "skipped": str(exc)}
    pair = edit_pair(
        plan.op, base, event, np.random.default_rng(plan.seed), config.mix, replacement=replacement
    )
    first, second = pair_paths(config.out_dir, plan)
    # Not fsynced: the journal records a pair only after both renames, and a resume re-checks the files.
    write_audio(first, pair.first, config.sample_rate, durable=False)
    write_audio(second, pair.second, config.sample_rate, durable=False)
    return {"id": plan.id, "info": pair.info, "seconds": round(2 * len(pair.first) / config.sample_rate, 6)}


def journal_path(out_dir: Path, split: str, shard: tuple[int, int]) -> Path:
    return out_dir / ".journal" / f"{split}-{shard[0]}of{shard[1]}.jsonl"


def read_journals(out_dir: Path, split: str) -> dict[str, dict]:
    """All finished pairs of a split, from every shard's journal; a torn last line (kill -9) is ignored."""
    done: dict[str, dict] = {}
    for path in sorted((out_dir / ".journal").glob(f"{split}-*of*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[record["id"]] = record
    return done


def _finished(record: dict | None, out_dir: Path, plan: PairPlan) -> bool:
    if record is None:
        return False
    return "skipped" in record or all(p.is_file() for p in pair_paths(out_dir, plan))


def render(
    config: BuildConfig, splits: list[SplitData], shard: tuple[int, int], workers: int, progress: bool = True
) -> Counter:
    """Render this shard's unfinished pairs in `workers` processes; returns counts of rendered/skipped pairs."""
    counts: Counter = Counter()
    for split in splits:
        done = read_journals(config.out_dir, split.spec.name)
        todo = [p for p in split.plans if p.index % shard[1] == shard[0]]
        counts["resumed"] += sum(_finished(done.get(p.id), config.out_dir, p) for p in todo)
        todo = [p for p in todo if not _finished(done.get(p.id), config.out_dir, p)]
        if not todo:
            continue
        _remove_stale_temp_files(todo, config.out_dir)
        journal = journal_path(config.out_dir, split.spec.name, shard)
        journal.parent.mkdir(parents=True, exist_ok=True)
        bar = tqdm(total=len(todo), desc=f"pairs {split.spec.name}", unit="pair", disable=not progress)
        with journal.open("a", encoding="utf-8") as log_file:
            if log_file.tell() and not _ends_with_newline(journal):
                log_file.write("\n")  # close a line torn by a kill, so the next record parses
            for record in _map(partial(render_pair, config=config), todo, workers):
                if "skipped" in record and config.on_bad_audio == "error":
                    raise AudioError(f"{record['skipped']} (set on_bad_audio: skip to leave such pairs out)")
                log_file.write(json.dumps(record, sort_keys=True) + "\n")
                log_file.flush()
                counts["skipped" if "skipped" in record else "rendered"] += 1
                bar.update()
        bar.close()
    return counts


def _remove_stale_temp_files(plans: list[PairPlan], out_dir: Path) -> None:
    """Delete temp files a killed run left for these pairs only: other shards may be writing beside us."""
    owned = {path.name: path.parent for plan in plans for path in pair_paths(out_dir, plan)}
    for folder in set(owned.values()):
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            # atomic_write names its temp files ".<target>.<random>.tmp"
            name = entry.name
            if name.startswith(".") and name.endswith(".tmp") and name[1:].rsplit(".", 2)[0] in owned:
                os.unlink(entry.path)


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def _map(function, items: list, workers: int) -> Iterator:
    if workers <= 1 or len(items) < 2:
        yield from map(function, items)
        return
    # spawn, not fork: the parent may hold threads (tqdm, torch) that fork would copy in a locked state.
    with get_context("spawn").Pool(workers) as pool:
        yield from pool.imap_unordered(
            function, items, chunksize=max(1, min(16, len(items) // (4 * workers)))
        )


# --- manifests -----------------------------------------------------------------------------------------


def relative(path: Path, folder: Path) -> str:
    return os.path.relpath(path, folder)


def write_split_manifests(config: BuildConfig, split: SplitData) -> dict:
    """Write ac/adc/acc manifests of one split; every planned pair must be in the journals."""
    folder = config.out_dir / split.spec.name
    done = read_journals(config.out_dir, split.spec.name)
    absent = [p.id for p in split.plans if p.id not in done]
    if absent:
        raise DataError(
            f"{config.out_dir}: split '{split.spec.name}' has {len(absent)} pair(s) not rendered yet "
            f"(e.g. {absent[0]}): run the missing shards, then merge again"
        )
    adc, acc, skipped, seconds, ops = [], [], [], 0.0, Counter()
    for plan in split.plans:
        record = done[plan.id]
        if "skipped" in record:
            skipped.append(record["skipped"])
            continue
        audios = [relative(p, folder) for p in pair_paths(config.out_dir, plan)]
        adc_sample, acc_sample = pair_samples(plan, audios, config.prompts, config.templates, record["info"])
        if not acc_sample.target:
            skipped.append(
                f"{plan.id}: the two captions share no phrase ({plan.captions[0]!r} / {plan.captions[1]!r})"
            )
            continue
        adc.append(adc_sample)
        acc.append(acc_sample)
        seconds += record["seconds"]
        ops[plan.op] += 1
    counts = {
        "adc": write_manifest(folder / "adc.jsonl", adc),
        "acc": write_manifest(folder / "acc.jsonl", acc),
    }
    if split.spec.ac != "none":
        ac = ac_samples(
            split.bases.clips,
            lambda c: relative(c.path, folder),
            config.prompts.ac,
            split.spec.ac == "per_caption",
        )
        counts["ac"] = write_manifest(folder / "ac.jsonl", ac)
    return {
        "samples": counts,
        "pairs": dict(ops),
        "pair_audio_hours": round(seconds / 3600, 4),
        "skipped": skipped,
        "missing_audio": split.bases.missing + (split.events.missing if split.events else []),
    }


def ability_corpora(spec: AbilitySpec) -> Iterable[tuple[str, str, readers.Corpus]]:
    """(task, prompt, corpus) for one ability spec; `mini` expands to every task in tasks.json."""
    if spec.format == "mini":
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
        return
    task = spec.task or {"vocalsound": "vsc", "iemocap": "ser", "nsynth": "mic", "gtzan": "mgc"}.get(
        spec.format
    )
    if task is None:
        raise ConfigError(f"abilities: format {spec.format} needs a task name")
    prompt = spec.prompt or ABILITY_PROMPTS.get(task)
    if prompt is None:
        raise ConfigError(f"abilities: task {task} needs a prompt")
    if spec.format == "vocalsound":
        corpus = readers.read_vocalsound(spec.path, spec.split)
    elif spec.format == "iemocap":
        corpus = readers.read_iemocap(spec.path)
    elif spec.format == "nsynth":
        corpus = readers.read_nsynth(spec.path)
    elif spec.format == "gtzan":
        corpus = readers.read_gtzan(spec.path)
    else:
        corpus = readers.read_labelled_csv(spec.path, name=task)
    yield task, prompt, corpus


def write_ability_manifests(config: BuildConfig) -> dict:
    folder, summary = config.out_dir / "abilities", {}
    for spec in config.abilities:
        for task, prompt, corpus in ability_corpora(spec):
            name = f"{task}-{spec.split}" if spec.split else task
            samples = label_samples(corpus.clips, task, prompt, lambda c: relative(c.path, folder))
            summary[name] = {
                "samples": write_manifest(folder / f"{name}.jsonl", samples),
                "missing_audio": corpus.missing,
            }
    return summary


def write_mixes(config: BuildConfig) -> dict:
    summary = {}
    for name, spec in config.mixes.items():
        folder = config.out_dir / spec.split
        sources = {task: load_manifest(folder / f"{task}.jsonl") for task in spec.weights}
        try:
            mixed = ratio_mix(sources, spec.weights, spec.size, config.seed)
        except ValueError as exc:
            raise ConfigError(f"mixes.{name}: {exc}") from None
        summary[name] = write_manifest(folder / f"{name}.jsonl", mixed)
    return summary


# --- entry points ----------------------------------------------------------------------------------------


def parse_shard(text: str | None) -> tuple[int, int]:
    if text is None:
        return (0, 1)
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard must look like i/N (e.g. 0/8), got '{text}'") from None
    if not 0 <= index < count:
        raise ConfigError(f"--shard {text}: need 0 <= i < N")
    return index, count


def build(
    config: BuildConfig, shard: tuple[int, int] = (0, 1), workers: int = 1, progress: bool = True
) -> dict:
    """Render this shard's pairs; when unsharded, also write every manifest. Returns the summary."""
    splits = prepare(config)
    counts = render(config, splits, shard, workers, progress)
    if shard[1] > 1:
        return {"shard": f"{shard[0]}/{shard[1]}", "pairs": dict(counts)}
    return merge(config, splits) | {"this_run": dict(counts)}


def merge(config: BuildConfig, splits: list[SplitData] | None = None) -> dict:
    """Write all manifests from the plan and the shards' journals, then the summary (summary.json)."""
    splits = splits if splits is not None else prepare(config)
    summary = {
        "seed": config.seed,
        "splits": {split.spec.name: write_split_manifests(config, split) for split in splits},
        "abilities": write_ability_manifests(config),
        "mixes": write_mixes(config),
    }
    atomic_write_text(config.out_dir / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def load_build_config(path: str | os.PathLike) -> BuildConfig:
    return load_config(path, BuildConfig)


def format_summary(summary: dict, examples: int = 3) -> str:
    """A short human-readable summary: pairs per op and samples per task, hours, skipped inputs and why."""
    lines = []
    for name, split in summary.get("splits", {}).items():
        pairs = ", ".join(f"{op} {split['pairs'].get(op, 0)}" for op in OPS)
        samples = ", ".join(f"{task} {n}" for task, n in sorted(split["samples"].items()))
        lines.append(
            f"{name}: pairs ({pairs}); samples ({samples}); {split['pair_audio_hours']:.3f} h of pair audio"
        )
        for kind in ("skipped", "missing_audio"):
            if split[kind]:
                shown = "; ".join(split[kind][:examples])
                lines.append(f"  {kind.replace('_', ' ')}: {len(split[kind])} (e.g. {shown})")
    for name, ability in summary.get("abilities", {}).items():
        missing = f", {len(ability['missing_audio'])} missing audio" if ability["missing_audio"] else ""
        lines.append(f"ability {name}: {ability['samples']} samples{missing}")
    for name, count in summary.get("mixes", {}).items():
        lines.append(f"mix {name}: {count} samples")
    if "this_run" in summary:
        lines.append("this run: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["this_run"].items())))
    return "\n".join(lines)
