"""The offline mini corpus: layout the readers rely on, honest splits, captions that match the events, resumable."""

import csv
import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from auralign import cli
from auralign.audio import audio_info, load_audio
from auralign.data.mini import sounds as mini_sounds
from auralign.data.mini.corpus import build_mini_corpus
from auralign.data.mini.plan import SPLITS
from auralign.errors import DataError

SCALE = 0.1

pytestmark = pytest.mark.skipif(
    shutil.which("sox") is None or shutil.which("espeak-ng") is None or mini_sounds.ovos_dir() is None,
    reason="needs sox, espeak-ng and the packaged sounds (scripts/setup-system.sh)",
)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("mini") / "corpus"
    summary = build_mini_corpus(out, seed=0, progress=False, scale=SCALE, workers=2)
    return out, summary


def test_event_tables_and_audio(corpus):
    out, summary = corpus
    labels_per_split = {}
    for split in SPLITS:
        path = out / "events" / f"{split}.csv"
        assert path.read_text().splitlines()[0] == "file_name,label,phrase"
        rows = read_csv(path)
        assert rows, split
        for row in rows:
            assert row["file_name"].startswith("audio/") and row["file_name"].endswith(".flac")
            assert row["phrase"] and row["phrase"] == row["phrase"].strip() and row["phrase"][0].islower()
            rate, frames, channels = audio_info(out / "events" / row["file_name"])
            assert (rate, channels) == (16000, 1)
            assert 1.0 <= frames / rate <= 5.0, row
        labels_per_split[split] = {r["label"] for r in rows}
        assert summary["counts"]["events"][split] == len(rows)
    # Every label met in validation or test was also trained on.
    assert labels_per_split["val"] | labels_per_split["test"] <= labels_per_split["train"]
    assert len(labels_per_split["test"]) >= 10


def test_event_clips_are_loud_enough_and_not_clipped(corpus):
    out, _ = corpus
    for row in read_csv(out / "events" / "test.csv"):
        x = load_audio(out / "events" / row["file_name"])
        assert np.max(np.abs(x)) <= 0.951
        assert 20 * np.log10(np.sqrt(np.mean(x**2))) > -40, row


def test_scenes_are_in_audiocaps_format(corpus):
    out, summary = corpus
    ids = set()
    for split in SPLITS:
        path = out / "scenes" / f"{split}.csv"
        assert path.read_text().splitlines()[0] == "audiocap_id,youtube_id,start_time,caption"
        by_clip = defaultdict(list)
        for row in read_csv(path):
            assert row["audiocap_id"] not in ids
            ids.add(row["audiocap_id"])
            assert row["start_time"] == "0"
            assert row["caption"][0].isupper() and row["caption"] == row["caption"].strip()
            by_clip[row["youtube_id"]].append(row["caption"])
        assert len(by_clip) == summary["counts"]["scenes"][split]
        for stem, captions in by_clip.items():
            assert 2 <= len(captions) <= 5 and len(set(captions)) == len(captions), captions
            assert audio_info(out / "scenes" / "audio" / f"{stem}.flac") == (16000, 160000, 1)


def test_scene_captions_name_the_events_they_contain(corpus):
    out, _ = corpus
    captions = defaultdict(list)
    for split in SPLITS:
        for row in read_csv(out / "scenes" / f"{split}.csv"):
            captions[row["youtube_id"]].append(row["caption"].lower())
    events = {
        split: {r["file_name"]: r for r in read_csv(out / "events" / f"{split}.csv")} for split in SPLITS
    }
    scenes = read_jsonl(out / "scenes" / "composition.jsonl")
    assert len(scenes) == len(captions)
    for scene in scenes:
        stem = Path(scene["file"]).stem
        assert 1 <= len(scene["events"]) <= 3
        assert len({e["label"] for e in scene["events"]}) == len(scene["events"])
        for event in scene["events"]:
            row = events[scene["split"]][event["clip"].removeprefix("events/")]  # same split only
            assert row["label"] == event["label"]
            assert row["phrase"] in captions[stem][0]
            assert 0 <= event["onset"] <= 10.0 - event["seconds"] + 1e-6


def test_scene_audio_holds_the_events(corpus):
    out, _ = corpus
    scene = read_jsonl(out / "scenes" / "composition.jsonl")[0]
    x = load_audio(out / scene["file"])
    assert np.max(np.abs(x)) <= 0.951
    frame = 1600
    level = 20 * np.log10(
        np.sqrt(np.mean(x[: x.size // frame * frame].reshape(-1, frame) ** 2, axis=1)) + 1e-9
    )
    first = scene["events"][0]
    inside = level[int(first["onset"] * 10) : int((first["onset"] + first["seconds"]) * 10)]
    assert inside.max() > -40  # the event is there ...
    assert level.min() < -45  # ... over a quiet background, not wall-to-wall sound


def test_no_source_is_shared_across_splits(corpus):
    out, summary = corpus
    rows = read_jsonl(out / "sources.jsonl")
    event_splits, sides, sentence_sides = defaultdict(set), defaultdict(set), defaultdict(set)
    for row in rows:
        # Abilities have train and test only; their test side takes the validation and test sources.
        side = "train" if row["split"] == "train" else "held-out"
        sides[row["source"]].add(side)
        if row["file"].startswith("events/"):
            event_splits[row["source"]].add(row["split"])
        if row["kind"] == "espeak":
            sentence_sides[row["params"]["text"]].add(side)
    assert all(len(s) == 1 for s in sides.values())
    assert all(len(s) == 1 for s in event_splits.values())
    assert all(len(s) == 1 for s in sentence_sides.values())  # no sentence is spoken on both sides
    assert len({r["source"] for r in rows if r["kind"] == "file"}) >= 30
    for recording in summary["recordings"]:
        assert recording["licence"] and recording["package"]
        assert recording["split"] in SPLITS
    files = [row["file"] for row in rows]
    assert len(files) == len(set(files))


def test_ability_tasks(corpus):
    out, summary = corpus
    tasks = json.loads((out / "abilities" / "tasks.json").read_text())
    assert [t["mirrors"] for t in tasks] == ["VSC", "SER", "MIC", "MGC"]
    for task in tasks:
        assert set(task) == {"task", "mirrors", "prompt", "labels", "description"}
        for label in task["labels"]:
            assert label in task["prompt"]
        names = {}
        for split in ("train", "test"):
            path = out / "abilities" / task["task"] / f"{split}.csv"
            assert path.read_text().splitlines()[0] == "file_name,label"
            rows = read_csv(path)
            assert {r["label"] for r in rows} == set(task["labels"]), (task["task"], split)
            names[split] = {r["file_name"] for r in rows}
            for row in rows[:5]:
                rate, frames, channels = audio_info(out / "abilities" / task["task"] / row["file_name"])
                assert (rate, channels) == (16000, 1) and 1.0 <= frames / rate <= 5.0
            assert summary["counts"]["abilities"][task["task"]][split] == len(rows)
        assert not names["train"] & names["test"]


def test_rerun_is_a_no_op_and_resume_rebuilds_identical_files(corpus, tmp_path):
    out, summary = corpus
    before = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert build_mini_corpus(out, seed=0, progress=False, scale=SCALE) == summary
    assert {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == before
    # An interrupted build: a copy missing some audio, tables and the summary finishes to the same bytes.
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    removed = [
        *sorted((copy / "events" / "audio").iterdir())[:5],
        *sorted((copy / "scenes" / "audio").iterdir())[:3],
    ]
    removed += [copy / "corpus.json", copy / "events" / "train.csv", copy / "sources.jsonl"]
    for path in removed:
        path.unlink()
    build_mini_corpus(copy, seed=0, progress=False, scale=SCALE, workers=1)
    for path in removed:
        if path.name != "corpus.json":  # holds the build time
            assert path.read_bytes() == before[out / path.relative_to(copy)], path


def test_other_seed_or_foreign_directory_is_refused(corpus, tmp_path):
    out, _ = corpus
    with pytest.raises(DataError, match="seed"):
        build_mini_corpus(out, seed=1, progress=False, scale=SCALE)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        build_mini_corpus(foreign, seed=0, progress=False, scale=SCALE)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_cli_reports_bad_output_path_without_traceback(tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("keep me")
    assert cli.main(["data", "mini", str(target)]) == 2
    err = capsys.readouterr().err
    assert str(target) in err and "Traceback" not in err
    assert target.read_text() == "keep me"


def test_missing_tools_give_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(mini_sounds.shutil, "which", lambda name: None)
    with pytest.raises(DataError, match=r"setup-system\.sh"):
        build_mini_corpus(tmp_path / "out", progress=False, scale=SCALE)
    assert not (tmp_path / "out").exists()  # nothing written before the check


@pytest.mark.slow
def test_full_build(tmp_path):
    summary = build_mini_corpus(tmp_path / "mini", seed=0, progress=False)
    assert summary["counts"]["scenes"] == {"train": 200, "val": 40, "test": 40}
    assert summary["audio_megabytes"] < 100
