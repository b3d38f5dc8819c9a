"""`auralign data build`: render edit pairs and write AC / ADC / ACC (and ability) manifests from one config.

Rendering is parallel over worker processes and resumable: each finished pair is appended to a journal
(`OUT/.journal/<split>-<shard>.jsonl`) after its two FLAC files are in place (written atomically), so a
killed build picks up where it stopped. Each journal record carries the pair's key, a digest of everything
that decides its audio (the planned clips, op and seed; sample rate, length policy, mix settings), and is
reused only under the same key: a rebuild with another seed, corpus or mix into the same `out_dir` renders
the pairs again instead of pairing new manifests with old audio. A pair skipped for a bad input is tried
again by every run (the input may have been fixed, or the policy changed to `on_bad_audio: error`).
Manifests are written from the plan plus the journal, sorted by pair index, so the same config and seed give
byte-identical manifests whatever the worker count, the interruptions or the sharding (`--shard i/N` on N
machines, then `auralign data merge`).

What a config may name comes from three tables: corpus formats (`readers.READERS`), ability formats
(`abilities.ABILITY_READERS`) and the tasks asked of each pair (`tasks.PAIR_TASKS`, one manifest each).
"""

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache, partial
from multiprocessing import get_context
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator
from tqdm.auto import tqdm

from auralign.audio import AudioError, MixConfig, SampleRate, edit_pair, load_audio, write_audio
from auralign.config import StrictModel, load_config
from auralign.data import readers
from auralign.data.abilities import ABILITY_READERS, AbilitySpec, ability_sets
from auralign.data.llamafactory import write_build_dataset_infos
from auralign.data.manifest import load_manifest, make_sample, write_manifest
from auralign.data.tasks import (
    OPS,
    PAIR_TASKS,
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
from auralign.fileio import Journal, atomic_write_text

log = logging.getLogger(__name__)


class CorpusSpec(StrictModel):
    """Where a corpus lives and in which published layout (a key of `readers.READERS`)."""

    format: str
    csv: Path | None = None
    audio_dir: Path | None = None

    @field_validator("format")
    @classmethod
    def _known(cls, value: str) -> str:
        return readers.known_format(value, readers.READERS, "corpus format")


class SplitSpec(StrictModel):
    """A split: edit pairs rendered from captioned bases and single-event clips, plus AC samples of the bases;
    or, when the bases are a pair corpus (AudioDiffCaps), ADC samples of its given pairs (`adc:` per caption
    for training, per pair with all captions as references for evaluation), nothing rendered."""

    name: str = Field(pattern=r"^[\w.-]+$")
    bases: CorpusSpec
    events: CorpusSpec | None = None
    pairs: dict[Literal["add", "drop", "replace"], int] = Field(default_factory=dict)
    ac: Literal["per_caption", "per_clip", "none"] = "per_caption"
    adc: Literal["per_caption", "per_pair"] | None = None

    @model_validator(mode="after")
    def _fits_the_corpus(self) -> "SplitSpec":
        given = readers.READERS[self.bases.format].holds == "pairs"
        wrong = ["events"] if given and self.events else []
        wrong += [key for key in ("pairs", "ac") if given and key in self.model_fields_set]
        if wrong:
            raise ValueError(
                f"{', '.join(wrong)}: bases of format {self.bases.format} are given pairs "
                "(nothing to render, no single-clip captions); say adc: per_caption or per_pair"
            )
        if not given and self.adc is not None:
            raise ValueError(
                f"adc: only for bases that are given pairs (e.g. audiodiffcaps), not {self.bases.format}"
            )
        return self


class MixSpec(StrictModel):
    """A ratio mix of the built manifests of one split, e.g. {ac: 1, acc: 1}."""

    split: str
    weights: dict[str, float]
    size: int = Field(gt=0)


class BuildConfig(StrictModel):
    seed: int = 0
    out_dir: Path
    sample_rate: SampleRate = 16000
    max_seconds: float = Field(default=30.0, gt=0)
    on_too_long: Literal["error", "truncate"] = "error"
    # A corrupt or unreadable input stops the build (naming the file) unless told to skip and report it.
    on_bad_audio: Literal["error", "skip"] = "error"
    prompts: Prompts = Prompts()
    templates: Templates = Templates()
    mix: MixConfig = MixConfig()
    splits: list[SplitSpec] = Field(default_factory=list)
    abilities: list[AbilitySpec] = Field(default_factory=list)
    mixes: dict[str, MixSpec] = Field(default_factory=dict)

    @field_validator("splits")
    @classmethod
    def _unique_names(cls, splits: list[SplitSpec]) -> list[SplitSpec]:
        first: dict[str, int] = {}
        for index, split in enumerate(splits):
            if split.name in first:
                raise ValueError(
                    f"split name '{split.name}' given twice (splits {first[split.name]} and {index}): "
                    "each split writes out_dir/<name>/"
                )
            first[split.name] = index
        return splits

    @model_validator(mode="after")
    def _something_to_build(self) -> "BuildConfig":
        if not self.splits and not self.abilities:
            raise ValueError("nothing to build: give splits, abilities or both")
        names = [ability_name(spec) for spec in self.abilities]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(
                f"abilities: two items write abilities/{twice[0]}.jsonl (give one a task: or split:)"
            )
        folders = {s.name for s in self.splits} | ({"abilities"} if self.abilities else set())
        unknown = sorted(m for m, spec in self.mixes.items() if spec.split not in folders)
        if unknown:
            raise ValueError(f"mixes.{unknown[0]}.split: no split named '{self.mixes[unknown[0]].split}'")
        return self


@dataclass
class SplitData:
    spec: SplitSpec
    bases: readers.Corpus
    events: readers.Corpus | None
    plans: list[PairPlan]


# --- reading and planning ------------------------------------------------------------------------------


def read_corpus(spec: CorpusSpec, name: str) -> readers.Corpus:
    corpus_format = readers.READERS[spec.format]
    for needed in corpus_format.needs:
        if getattr(spec, needed) is None:
            raise ConfigError(f"{name}: format {spec.format} needs {needed}")
    return corpus_format.read(csv=spec.csv, audio_dir=spec.audio_dir, name=name)


def prepare(config: BuildConfig) -> list[SplitData]:
    prepared = []
    for spec in config.splits:
        bases = read_corpus(spec.bases, f"{spec.name}.bases")
        if bases.pairs:  # a pair corpus: its pairs are given, nothing to plan or render
            prepared.append(SplitData(spec, bases, None, []))
            continue
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


def pair_key(plan: PairPlan, config: BuildConfig) -> str:
    """A digest of what decides a pair's audio: a journal record is reused only under the same key."""
    made_of = {
        "op": plan.op,
        "clips": [str(clip.path) for clip in (plan.base, plan.event, plan.replacement) if clip is not None],
        "seed": list(plan.seed),
        "sample_rate": config.sample_rate,
        "max_seconds": config.max_seconds,
        "on_too_long": config.on_too_long,
        "mix": config.mix.model_dump(mode="json"),
    }
    return hashlib.sha1(json.dumps(made_of, sort_keys=True).encode()).hexdigest()[:16]


def render_pair(plan: PairPlan, config: BuildConfig) -> dict:
    """Mix and write one pair; returns its journal record (a skip record if an input is bad)."""
    load = partial(
        _load_cached, sr=config.sample_rate, max_seconds=config.max_seconds, on_too_long=config.on_too_long
    )
    try:
        base, event = load(plan.base.path), load(plan.event.path)
        replacement = load(plan.replacement.path) if plan.replacement else None
    except AudioError as exc:
        return {"id": plan.id, "key": pair_key(plan, config), "skipped": str(exc)}
    pair = edit_pair(
        plan.op, base, event, np.random.default_rng(plan.seed), config.mix, replacement=replacement
    )
    first, second = pair_paths(config.out_dir, plan)
    # Not fsynced: the journal records a pair only after both renames, and a resume re-checks the files.
    write_audio(first, pair.first, config.sample_rate, durable=False)
    write_audio(second, pair.second, config.sample_rate, durable=False)
    seconds = round(2 * len(pair.first) / config.sample_rate, 6)
    return {"id": plan.id, "key": pair_key(plan, config), "info": pair.info, "seconds": seconds}


def journal_path(out_dir: Path, split: str, shard: tuple[int, int]) -> Path:
    return out_dir / ".journal" / f"{split}-{shard[0]}of{shard[1]}.jsonl"


def read_journals(config: BuildConfig, split: SplitData) -> dict[str, dict]:
    """The journal record of each pair of a split that was rendered (or skipped) as the config now plans it,
    from every shard's journal; a torn last line (kill -9) and records under another key are ignored."""
    keys = {plan.id: pair_key(plan, config) for plan in split.plans}
    done: dict[str, dict] = {}
    for path in sorted((config.out_dir / ".journal").glob(f"{split.spec.name}-*of*.jsonl")):
        for record in Journal(path).records():
            if record.get("key") == keys.get(record.get("id")):
                done[record["id"]] = record
    return done


def _finished(record: dict | None, out_dir: Path, plan: PairPlan) -> bool:
    """Rendered under the current key with both files in place (a skipped pair is never finished)."""
    if record is None or "skipped" in record:
        return False
    return all(p.is_file() for p in pair_paths(out_dir, plan))


def render(
    config: BuildConfig, splits: list[SplitData], shard: tuple[int, int], workers: int, progress: bool = True
) -> Counter:
    """Render this shard's unfinished pairs in `workers` processes; returns counts of rendered/skipped pairs."""
    counts: Counter = Counter()
    for split in splits:
        done = read_journals(config, split)
        todo = [p for p in split.plans if p.index % shard[1] == shard[0]]
        counts["resumed"] += sum(_finished(done.get(p.id), config.out_dir, p) for p in todo)
        todo = [p for p in todo if not _finished(done.get(p.id), config.out_dir, p)]
        if not todo:
            continue
        _remove_stale_temp_files(todo, config.out_dir)
        bar = tqdm(total=len(todo), desc=f"pairs {split.spec.name}", unit="pair", disable=not progress)
        with Journal(journal_path(config.out_dir, split.spec.name, shard), sort_keys=True) as journal:
            for record in _map(partial(render_pair, config=config), todo, workers):
                if "skipped" in record and config.on_bad_audio == "error":
                    raise AudioError(f"{record['skipped']} (set on_bad_audio: skip to leave such pairs out)")
                journal.append(record)
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
    """Write the AC manifest and one per pair task of one split; every planned pair must be in the journals."""
    if split.bases.pairs:
        return write_given_pairs(config, split)
    folder = config.out_dir / split.spec.name
    done = read_journals(config, split)
    absent = [p.id for p in split.plans if p.id not in done]
    if absent:
        raise DataError(
            f"{config.out_dir}: split '{split.spec.name}' has {len(absent)} pair(s) not rendered yet under "
            f"this config (e.g. {absent[0]}): run the missing shards with it, then merge again"
        )
    kept: dict[str, list] = {name: [] for name in PAIR_TASKS}
    skipped, seconds, ops = [], 0.0, Counter()
    for plan in split.plans:
        record = done[plan.id]
        if "skipped" in record:
            if config.on_bad_audio == "error":  # skipped by a shard run under `skip`
                raise AudioError(f"{record['skipped']} (set on_bad_audio: skip to leave such pairs out)")
            skipped.append(record["skipped"])
            continue
        audios = [relative(p, folder) for p in pair_paths(config.out_dir, plan)]
        samples = pair_samples(
            plan, audios=audios, prompts=config.prompts, templates=config.templates, info=record["info"]
        )
        unanswered = [name for name, sample in samples.items() if not sample.target]
        if unanswered:
            why = PAIR_TASKS[unanswered[0]].unanswerable.format(
                first=plan.captions[0], second=plan.captions[1]
            )
            skipped.append(f"{plan.id}: {why}")
            continue
        for name, sample in samples.items():
            kept[name].append(sample)
        seconds += record["seconds"]
        ops[plan.op] += 1
    counts = {name: write_manifest(folder / f"{name}.jsonl", samples) for name, samples in kept.items()}
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


def write_given_pairs(config: BuildConfig, split: SplitData) -> dict:
    """The ADC manifest of a pair corpus's split: its own audio pairs and difference captions, one sample per
    caption (training) or per pair with all captions as references (an AudioDiffCaps-style evaluation set)."""
    folder = config.out_dir / split.spec.name
    prompt = PAIR_TASKS["adc"].prompt(config.prompts)
    per_caption = (split.spec.adc or "per_caption") == "per_caption"
    samples = []
    for pair in split.bases.pairs:
        audios = [relative(pair.first, folder), relative(pair.second, folder)]
        targets = pair.captions if per_caption else pair.captions[:1]
        for k, caption in enumerate(targets):
            sample_id = f"adc-{pair.id}-{k}" if per_caption else f"adc-{pair.id}"
            meta = {"pair": pair.id, "source": split.spec.bases.format}
            samples.append(
                make_sample(
                    sample_id, "adc", prompt, audios, caption, references=list(pair.captions), meta=meta
                )
            )
    return {
        "samples": {"adc": write_manifest(folder / "adc.jsonl", samples)},
        "pairs": {},
        "pair_audio_hours": 0.0,
        "skipped": [],
        "missing_audio": split.bases.missing,
    }


def ability_name(spec: AbilitySpec, task: str | None = None) -> str:
    """The manifest name of an `abilities:` item (`abilities/<name>.jsonl`): its task, then `-<split>`."""
    task = task or spec.task or getattr(ABILITY_READERS[spec.format], "task", None) or spec.format
    return f"{task}-{spec.split}" if spec.split else task


def write_ability_manifests(config: BuildConfig) -> dict:
    """One manifest per ability task, of the clips that decode (checked as pair inputs are)."""
    folder, summary = config.out_dir / "abilities", {}
    for spec in config.abilities:
        for task, prompt, corpus in ability_sets(spec):
            name = ability_name(spec, task)
            clips, skipped = usable_clips(corpus, config)
            samples = label_samples(clips, task, prompt, lambda c: relative(c.path, folder))
            summary[name] = {
                "samples": write_manifest(folder / f"{name}.jsonl", samples),
                "missing_audio": corpus.missing,
                "skipped": skipped,
            }
    return summary


def usable_clips(corpus: readers.Corpus, config: BuildConfig) -> tuple[list[readers.Clip], list[str]]:
    """The clips that load as pair inputs do (the config's rate and length policy) and, under
    `on_bad_audio: skip`, the problem of each one left out; under `error` the first bad clip stops the build."""
    clips, skipped = [], []
    for clip in corpus.clips:
        try:
            load_audio(
                clip.path,
                sr=config.sample_rate,
                max_seconds=config.max_seconds,
                on_too_long=config.on_too_long,
            )
        except AudioError as exc:
            if config.on_bad_audio == "error":
                raise AudioError(f"{exc} (set on_bad_audio: skip to leave such clips out)") from None
            skipped.append(str(exc))
            continue
        clips.append(clip)
    if not clips:
        raise DataError(
            f"{corpus.name}: none of its {len(corpus.clips)} clip(s) is usable, e.g. {skipped[0]}"
        )
    return clips, skipped


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
    write_build_dataset_infos(config, summary)  # LLaMA-Factory's entries, beside the manifests
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
        if ability.get("skipped"):
            shown = "; ".join(ability["skipped"][:examples])
            lines.append(f"  skipped: {len(ability['skipped'])} (e.g. {shown})")
    for name, count in summary.get("mixes", {}).items():
        lines.append(f"mix {name}: {count} samples")
    if "this_run" in summary:
        lines.append("this run: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["this_run"].items())))
    return "\n".join(lines)
