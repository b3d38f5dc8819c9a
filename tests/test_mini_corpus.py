"""The offline mini corpus: layout the readers rely on, honest splits, captions that match the events, resumable."""

import csv
import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import yaml

from auralign import cli
from auralign.audio import audio_info, load_audio
from auralign.data.mini import render as mini_render
from auralign.data.mini import scenes as mini_scenes
from auralign.data.mini import sounds as mini_sounds
from auralign.data.mini.corpus import build_mini_corpus
from auralign.data.mini.plan import SPLITS, plan_abilities, plan_events
from auralign.errors import DataError

SCALE = 0.1
CATALOGUE = yaml.safe_load(
    (Path(mini_sounds.__file__).with_name("catalogue.yaml")).read_text(encoding="utf-8")
)

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
        assert len(by_clip) == {"train": 20, "val": 4, "test": 16}[split]  # 200 / 40 / 160 at scale 1
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
    conditions = {t["task"]: t["conditions"] for t in CATALOGUE["tasks"]}
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
            shortest, longest = conditions[task["task"]]["seconds"]
            for row in rows:
                rate, frames, channels = audio_info(out / "abilities" / task["task"] / row["file_name"])
                assert (rate, channels) == (16000, 1) and shortest - 0.02 <= frames / rate <= longest + 0.01
            assert summary["counts"]["abilities"][task["task"]][split] == len(rows)
            # At the tests' scale 0.1: 2 train and 3 test clips per label (24 and 34 at scale 1).
            assert len(rows) == {"train": 2, "test": 3}[split] * len(task["labels"])
        assert not names["train"] & names["test"]


def test_ability_clips_are_heard_in_the_tasks_listening_conditions(corpus):
    out, _ = corpus
    conditions = {t["task"]: t["conditions"] for t in CATALOGUE["tasks"]}
    rows = [r for r in read_jsonl(out / "sources.jsonl") if r["file"].startswith("abilities/")]
    assert rows
    for row in rows:
        task = row["file"].split("/")[1]
        noise = row["recipe"]["noise"]
        low, high = conditions[task]["snr_db"]
        assert low <= noise["snr_db"] <= high and noise["colour"] in conditions[task]["noises"], row
        if "lowpass_hz" in row["recipe"]:
            assert task == "instrument"
    # Tempi of the beat patterns overlap: every pattern's range meets every other's.
    bpm = [p["bpm"] for label, p in CATALOGUE["tasks"][3]["params"].items() if label != "ambient"]
    assert max(lo for lo, _ in bpm) < min(hi for _, hi in bpm)


def test_noise_is_added_at_the_recipe_snr_and_colour():
    rng = np.random.default_rng(3)
    x = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32)
    for snr in (-10.0, 0.0, 7.5):
        y = mini_render._with_noise(x, {"colour": "pink", "snr_db": snr, "seed": 1})
        measured = 10 * np.log10(
            np.mean(x.astype(np.float64) ** 2) / np.mean((y - x).astype(np.float64) ** 2)
        )
        assert measured == pytest.approx(snr, abs=0.01)
    # Power spectral slope in log-log: white 0, pink -1, brown -2 (fitted over 100 Hz - 6 kHz).
    for colour, slope in (("white", 0.0), ("pink", -1.0), ("brown", -2.0)):
        noise = mini_render.coloured_noise(2**17, colour, rng)
        power = np.abs(np.fft.rfft(noise)) ** 2
        freqs = np.fft.rfftfreq(noise.size, 1 / 16000)
        band = (freqs > 100) & (freqs < 6000)
        fitted = np.polyfit(np.log10(freqs[band]), np.log10(power[band]), 1)[0]
        assert fitted == pytest.approx(slope, abs=0.1), colour


def test_ability_test_sets_hold_at_least_100_items_at_scale_1():
    _, file_split = plan_events(0, 1.0)
    test = defaultdict(int)
    for _, clips in plan_abilities(0, 1.0, file_split):
        for clip in clips:
            test[clip.path.split("/")[1]] += clip.split == "test"
    assert set(test) == {t["task"] for t in CATALOGUE["tasks"]}
    assert min(test.values()) >= 100, dict(test)


def test_tag_captions_list_each_scenes_events_in_onset_order(corpus):
    out, summary = corpus
    tag_of = {label: entry["tag"] for label, entry in CATALOGUE["events"].items()}
    assert len(set(tag_of.values())) == len(tag_of)  # one AudioSet name per label
    composition = {Path(s["file"]).stem: s for s in read_jsonl(out / "scenes" / "composition.jsonl")}
    ids = set()
    for split in SPLITS:
        path = out / "scenes" / "tags" / f"{split}.csv"
        assert path.read_text().splitlines()[0] == "audiocap_id,youtube_id,start_time,caption"
        rows = read_csv(path)
        assert len(rows) == len({r["youtube_id"] for r in rows}) == summary["counts"]["scenes"][split]
        for row in rows:
            assert row["audiocap_id"] not in ids and row["start_time"] == "0"
            ids.add(row["audiocap_id"])
            scene = composition[row["youtube_id"]]
            assert scene["split"] == split
            onsets = [e["onset"] for e in scene["events"]]
            assert onsets == sorted(onsets)
            assert row["caption"] == ", ".join(tag_of[e["label"]] for e in scene["events"])
            assert (out / "scenes" / "audio" / f"{row['youtube_id']}.flac").is_file()


def test_more_test_scenes_keep_the_first_ones(corpus, monkeypatch):
    out, _ = corpus
    clips = [c for _, cs in plan_events(0, SCALE)[0] for c in cs]
    durations = {c.path: audio_info(out / c.path)[1] / 16000 for c in clips}
    full = mini_scenes.plan_scenes(0, SCALE, clips, durations)
    monkeypatch.setattr(mini_scenes, "SCENES", {**mini_scenes.SCENES, "test": 40})
    fewer = mini_scenes.plan_scenes(0, SCALE, clips, durations)
    head = [s for s in full if s.split == "test"][:4]
    assert [(s.path, s.events, s.captions) for s in head] == [
        (s.path, s.events, s.captions) for s in fewer if s.split == "test"
    ]
    assert len([s for s in full if s.split == "test"]) == 16


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
    # A folder of the first version of the corpus (easier ability tasks, 40 test scenes) is refused.
    old = tmp_path / "old"
    old.mkdir()
    (old / ".mini-build.json").write_text(json.dumps({"version": 1, "seed": 0, "scale": SCALE}) + "\n")
    with pytest.raises(DataError, match=r"'version': 1"):
        build_mini_corpus(old, seed=0, progress=False, scale=SCALE)
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
    assert summary["counts"]["scenes"] == {"train": 200, "val": 40, "test": 160}
    assert summary["counts"]["abilities"] == {
        "voice_type": {"train": 72, "test": 102},
        "speech_style": {"train": 96, "test": 136},
        "instrument": {"train": 96, "test": 136},
        "rhythm": {"train": 96, "test": 136},
    }
    assert summary["audio_megabytes"] < 110
