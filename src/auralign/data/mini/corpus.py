"""The offline mini corpus: real packaged sounds, espeak-ng speech and sox/numpy synthesis, built in about a minute.

Layout (docs/mini-corpus.md describes the content):

    OUT/events/{train,val,test}.csv      file_name,label,phrase   single-event clips, 1-5 s
    OUT/scenes/{train,val,test}.csv      AudioCaps format         10 s scenes of 1-3 events, 2-5 captions each
    OUT/scenes/tags/{train,val,test}.csv AudioCaps format         the same scenes, one AudioSet-tag caption each
    OUT/abilities/<task>/{train,test}.csv  file_name,label        four general-ability tasks
    OUT/abilities/tasks.json             task, mirrors, prompt, labels, description
    OUT/corpus.json                      seed, counts, sources with packages and licences, build time

Every split decision is made per source recording before augmentation, so no recording reaches two splits.
The plan is a pure function of the seed; each file is written atomically and skipped when present, so an
interrupted build resumes and a finished one is a no-op.

What the corpus is made of is data (catalogue.yaml, read by catalogue.py); the build reads top to bottom in
`build_mini_corpus`: plan the clips (plan.py), render them (render.py), plan and render the scenes
(scenes.py), then write the tables, the provenance and the summary (here).
"""

import csv
import io
import json
import logging
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from auralign.data.mini import sounds as snd
from auralign.data.mini.catalogue import EVENTS, FREEDESKTOP_LICENCES, ORIGINS, TASKS
from auralign.data.mini.plan import SPLITS, Clip, plan_abilities, plan_events
from auralign.data.mini.render import render_all
from auralign.data.mini.scenes import Scene, plan_scenes
from auralign.data.mini.sounds import SR, Source
from auralign.errors import DataError
from auralign.fileio import atomic_write_text

log = logging.getLogger(__name__)

VERSION = 2  # 2: harder ability tasks with 34 test clips per label, 160 test scenes, tag captions


# --- outputs ------------------------------------------------------------------------------------------------

AUDIOCAPS_HEADER = ["audiocap_id", "youtube_id", "start_time", "caption"]


def _csv(rows: list[list[Any]], header: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _write_tables(out: Path, event_clips: list[Clip], ability_clips: list[Clip], scenes: list[Scene]) -> None:
    for split in SPLITS:
        rows = [[c.path.removeprefix("events/"), c.label, c.phrase] for c in event_clips if c.split == split]
        atomic_write_text(out / "events" / f"{split}.csv", _csv(rows, ["file_name", "label", "phrase"]))
    cap_id = 0
    for split in SPLITS:
        rows = []
        for scene in (s for s in scenes if s.split == split):
            for caption in scene.captions:
                cap_id += 1
                rows.append([cap_id, Path(scene.path).stem, 0, caption])
        atomic_write_text(out / "scenes" / f"{split}.csv", _csv(rows, AUDIOCAPS_HEADER))
    _write_tag_tables(out, scenes)
    for spec in TASKS:
        for split in ("train", "test"):
            prefix = f"abilities/{spec.task}/"
            rows = [
                [c.path.removeprefix(prefix), c.label]
                for c in ability_clips
                if c.path.startswith(prefix) and c.split == split
            ]
            atomic_write_text(out / prefix / f"{split}.csv", _csv(rows, ["file_name", "label"]))
    tasks = [
        {
            "task": t.task,
            "mirrors": t.mirrors,
            "prompt": t.prompt,
            "labels": t.labels,
            "description": t.description,
        }
        for t in TASKS
    ]
    atomic_write_text(out / "abilities" / "tasks.json", json.dumps(tasks, indent=2) + "\n")


def _write_tag_tables(out: Path, scenes: list[Scene]) -> None:
    """scenes/tags/<split>.csv: one AudioSet-style caption per scene, a second caption style for the base."""
    ids = iter(range(1, len(scenes) + 1))  # unique over the three splits, as the captions' ids are
    for split in SPLITS:
        rows = [[next(ids), Path(sc.path).stem, 0, sc.tags] for sc in scenes if sc.split == split]
        atomic_write_text(out / "scenes" / "tags" / f"{split}.csv", _csv(rows, AUDIOCAPS_HEADER))


def _write_provenance(out: Path, jobs: list[tuple[Source, list[Clip]]], scenes: list[Scene]) -> None:
    """sources.jsonl: every clip's source and recipe; scenes/composition.jsonl: what each scene contains."""
    lines = [
        json.dumps(
            {
                "file": c.path,
                "split": c.split,
                "label": c.label,
                "source": s.id,
                "kind": s.kind,
                "origin": s.origin,
                "params": s.params,
                "recipe": c.recipe,
            }
        )
        for s, clips in jobs
        for c in clips
    ]
    atomic_write_text(out / "sources.jsonl", "\n".join(sorted(lines)) + "\n")
    lines = [
        json.dumps({"file": sc.path, "split": sc.split, "events": sc.events, "background": sc.background})
        for sc in scenes
    ]
    atomic_write_text(out / "scenes" / "composition.jsonl", "\n".join(lines) + "\n")


def _check_out_dir(out: Path, seed: int, scale: float) -> dict[str, Any] | None:
    """The finished summary when OUT already holds this exact build; an error when it holds another."""
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a directory")
    state = {"version": VERSION, "seed": seed, "scale": scale}
    marker = out / ".mini-build.json"
    if marker.is_file():
        try:
            previous = json.loads(marker.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise DataError(f"{marker}: unreadable build marker; delete {out} and build again") from None
        if previous != state:
            raise DataError(
                f"{out}: holds a mini corpus built with {previous}, not {state}; use another directory or delete it"
            )
        summary = out / "corpus.json"
        if summary.is_file():
            return json.loads(summary.read_text(encoding="utf-8"))
    elif out.is_dir() and any(out.iterdir()):
        raise DataError(
            f"{out}: directory is not empty and holds no mini corpus; choose an empty or new directory"
        )
    return None


def build_mini_corpus(
    out_dir: Path, seed: int = 0, progress: bool = True, scale: float = 1.0, workers: int = 2
) -> dict[str, Any]:
    """Build (or finish, or confirm) the mini corpus in `out_dir`; returns the corpus.json summary.

    `scale` multiplies every count (tests use a small one); `workers` processes render in parallel.
    """
    out = Path(out_dir)
    if not 0 < scale <= 10:
        raise DataError(f"scale must be in (0, 10], got {scale}")
    done = _check_out_dir(out, seed, scale)
    if done is not None:
        log.info("%s: mini corpus already complete (seed %d)", out, seed)
        return done
    start = time.perf_counter()
    snd.check_tools()
    state = {"version": VERSION, "seed": seed, "scale": scale}
    atomic_write_text(out / ".mini-build.json", json.dumps(state) + "\n")
    event_jobs, file_split = plan_events(seed, scale)
    ability_jobs = plan_abilities(seed, scale, file_split)
    durations = render_all(
        out, event_jobs + ability_jobs, workers=workers, progress=progress, desc="mini corpus: clips"
    )
    event_clips = [c for _, clips in event_jobs for c in clips]
    ability_clips = [c for _, clips in ability_jobs for c in clips]
    scenes = plan_scenes(seed, scale, event_clips, durations)
    render_all(out, [(s,) for s in scenes], workers=workers, progress=progress, desc="mini corpus: scenes")
    _write_tables(out, event_clips, ability_clips, scenes)
    _write_provenance(out, event_jobs + ability_jobs, scenes)
    summary = _summary(
        out,
        seed=seed,
        scale=scale,
        jobs=event_jobs + ability_jobs,
        file_split=file_split,
        event_clips=event_clips,
        ability_clips=ability_clips,
        scenes=scenes,
    )
    summary["build_seconds"] = round(time.perf_counter() - start, 1)
    atomic_write_text(out / "corpus.json", json.dumps(summary, indent=2) + "\n")
    log.info("%s: mini corpus built in %.1f s", out, summary["build_seconds"])
    return summary


def _summary(
    out: Path,
    *,
    seed: int,
    scale: float,
    jobs: list[tuple[Source, list[Clip]]],
    file_split: dict[str, str],
    event_clips: list[Clip],
    ability_clips: list[Clip],
    scenes: list[Scene],
) -> dict[str, Any]:
    counts: dict[str, Any] = {
        "events": {s: sum(c.split == s for c in event_clips) for s in SPLITS},
        "event_labels": {s: len({c.label for c in event_clips if c.split == s}) for s in SPLITS},
        "scenes": {s: sum(sc.split == s for sc in scenes) for s in SPLITS},
        "captions": {s: sum(len(sc.captions) for sc in scenes if sc.split == s) for s in SPLITS},
        "abilities": {
            t.task: {
                s: sum(c.split == s and c.path.startswith(f"abilities/{t.task}/") for c in ability_clips)
                for s in ("train", "test")
            }
            for t in TASKS
        },
    }
    synthesised = defaultdict(int)
    for source, _ in jobs:
        if source.kind != "file":
            synthesised[source.origin] += 1
    size = sum(p.stat().st_size for p in out.rglob("*.flac"))
    return {
        "name": "auralign mini corpus",
        "version": VERSION,
        "seed": seed,
        "scale": scale,
        "sample_rate": SR,
        "counts": counts,
        "event_labels": {e.label: list(e.phrases) for e in EVENTS.values()},
        "tasks": [asdict(t) for t in TASKS],
        "origins": ORIGINS,
        "recordings": _recordings(jobs, file_split),
        "synthesised_sources": dict(synthesised),
        "audio_megabytes": round(size / 1e6, 1),
    }


def _recordings(jobs: list[tuple[Source, list[Clip]]], file_split: dict[str, str]) -> list[dict[str, str]]:
    """Every packaged recording used, with its split, package and licence, sorted by id."""
    recordings = []
    seen = set()
    for source, _ in jobs:
        if source.kind == "file" and source.id not in seen:
            seen.add(source.id)
            name = Path(source.params["path"]).stem
            licence = FREEDESKTOP_LICENCES.get(name) if source.origin == "freedesktop" else None
            origin = ORIGINS[source.origin]
            recordings.append(
                {
                    "id": source.id,
                    "label": source.label,
                    "path": source.params["path"],
                    "split": file_split[source.id],
                    "package": origin["package"],
                    "licence": licence or origin["licence"],
                }
            )
    return sorted(recordings, key=lambda r: r["id"])
