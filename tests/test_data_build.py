import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from auralign.cli import main
from auralign.data import abilities, load_manifest, readers, tasks
from auralign.data.build import build, load_build_config, merge
from auralign.errors import ConfigError

CONFIG = """seed: 3
out_dir: {out}
splits:
  - name: train
    bases: {{format: audiocaps, csv: {root}/scenes.csv, audio_dir: {root}/scenes}}
    events: {{format: labelled_csv, csv: {root}/events.csv}}
    pairs: {{add: {n}, drop: {n}, replace: {n}}}
  - name: test
    bases: {{format: audiocaps, csv: {root}/scenes.csv, audio_dir: {root}/scenes}}
    events: {{format: labelled_csv, csv: {root}/events.csv}}
    pairs: {{add: 2, replace: 2}}
    ac: per_clip
mixes:
  ac_acc: {{split: train, weights: {{ac: 1, acc: 2}}, size: 12}}
"""


def make_corpus(root: Path, scenes: int = 4, seconds: float = 1.0) -> None:
    rng = np.random.default_rng(0)
    (root / "scenes").mkdir(parents=True)
    rows = ["audiocap_id,youtube_id,start_time,caption"]
    for i in range(scenes):
        audio = 0.1 * rng.standard_normal(int(16000 * seconds)).astype(np.float32)
        sf.write(root / "scenes" / f"s{i}.flac", audio, 16000)
        rows += [
            f'{2 * i},s{i},0,"A man speaks, and a car passes {i}"',
            f"{2 * i + 1},s{i},0,Someone talks {i}",
        ]
    (root / "scenes.csv").write_text("\n".join(rows) + "\n")
    events = ["file_name,label,phrase"]
    for i, label in enumerate(["bird", "siren", "bell", "bird"]):
        tone = 0.3 * np.sin(np.arange(8000) * 0.05 * (i + 1)).astype(np.float32)
        sf.write(root / f"e{i}.flac", tone, 16000)
        events.append(f"e{i}.flac,{label},a {label} sound")
    (root / "events.csv").write_text("\n".join(events) + "\n")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    make_corpus(tmp_path / "corpus")
    return tmp_path / "corpus"


def write_config(path: Path, root: Path, out: Path, n: int = 3) -> Path:
    path.write_text(CONFIG.format(root=root, out=out, n=n))
    return path


def manifests(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("[!.]*/*.jsonl"))}


def test_build_writes_paper_tasks(corpus: Path, tmp_path: Path) -> None:
    config = load_build_config(write_config(tmp_path / "b.yaml", corpus, tmp_path / "out"))
    summary = build(config, workers=1, progress=False)
    train = summary["splits"]["train"]
    assert train["pairs"] == {"add": 3, "drop": 3, "replace": 3}
    assert train["samples"] == {"ac": 8, "adc": 9, "acc": 9}
    assert summary["splits"]["test"]["samples"]["ac"] == 4  # one per clip, all captions as references
    acc = {s.meta["op"]: s for s in load_manifest(tmp_path / "out" / "train" / "acc.jsonl")}
    adc = {s.meta["op"]: s for s in load_manifest(tmp_path / "out" / "train" / "adc.jsonl")}
    add, drop, rep = acc["add"], acc["drop"], acc["replace"]
    assert add.target == add.meta["captions"][0]  # caption of the original
    assert drop.target == drop.meta["captions"][1]  # caption of the edited audio
    assert rep.target and rep.target in rep.meta["captions"][0] and rep.target in rep.meta["captions"][1]
    assert adc["add"].target.startswith("add a ") and " with a " in adc["replace"].target
    for sample in (add, drop, rep):
        paths = sample.audio_paths(tmp_path / "out" / "train")
        assert all(p.is_file() for p in paths) and paths[0].name.endswith("-1.flac")
        first, second = (sf.read(p)[0] for p in paths)
        assert len(first) == len(second) and np.abs(first).max() <= 1.0
    mix = load_manifest(tmp_path / "out" / "train" / "ac_acc.jsonl")
    assert len(mix) == 12 and {s.task for s in mix} == {"ac", "acc"}


def test_same_config_same_bytes_across_workers_and_shards(corpus: Path, tmp_path: Path) -> None:
    one = load_build_config(write_config(tmp_path / "a.yaml", corpus, tmp_path / "a"))
    build(one, workers=1, progress=False)
    two = load_build_config(write_config(tmp_path / "b.yaml", corpus, tmp_path / "b"))
    build(two, workers=2, progress=False)
    sharded = load_build_config(write_config(tmp_path / "c.yaml", corpus, tmp_path / "c"))
    for i in range(3):
        build(sharded, shard=(i, 3), progress=False)
    merge(sharded)
    assert manifests(tmp_path / "a") == manifests(tmp_path / "b") == manifests(tmp_path / "c")
    audio = sorted((tmp_path / "a" / "train" / "audio").iterdir())
    assert [p.read_bytes() for p in audio] == [
        (tmp_path / "c" / "train" / "audio" / p.name).read_bytes() for p in audio
    ]


def test_merge_refuses_missing_shards(corpus: Path, tmp_path: Path) -> None:
    path = write_config(tmp_path / "b.yaml", corpus, tmp_path / "out")
    assert main(["data", "build", str(path), "--shard", "0/2", "--no-progress"]) == 0
    assert main(["data", "merge", str(path)]) == 2
    assert not (tmp_path / "out" / "train" / "acc.jsonl").exists()
    assert main(["data", "build", str(path), "--shard", "1/2", "--no-progress"]) == 0
    assert main(["data", "merge", str(path)]) == 0


def test_resume_after_torn_journal_line(corpus: Path, tmp_path: Path) -> None:
    reference = load_build_config(write_config(tmp_path / "r.yaml", corpus, tmp_path / "ref"))
    build(reference, progress=False)
    config = load_build_config(write_config(tmp_path / "b.yaml", corpus, tmp_path / "out"))
    build(config, shard=(0, 1), progress=False)
    journal = tmp_path / "out" / ".journal" / "train-0of1.jsonl"
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:4]) + "\n" + lines[4][:20])  # killed mid-write
    (tmp_path / "out" / "train" / "acc.jsonl").unlink()
    summary = build(config, progress=False)
    assert summary["this_run"] == {"rendered": len(lines) - 4, "resumed": 4 + 4}  # test split untouched
    assert manifests(tmp_path / "out") == manifests(tmp_path / "ref")


def test_resume_after_kill_9(tmp_path: Path) -> None:
    make_corpus(tmp_path / "corpus", scenes=6, seconds=4.0)
    path = write_config(tmp_path / "b.yaml", tmp_path / "corpus", tmp_path / "out", n=60)
    cmd = [
        sys.executable,
        "-m",
        "auralign.cli",
        "data",
        "build",
        str(path),
        "--workers",
        "1",
        "--no-progress",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    journal = tmp_path / "out" / ".journal" / "train-0of1.jsonl"
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if journal.is_file() and journal.read_text().count("\n") >= 5:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    assert main(["data", "build", str(path), "--workers", "2", "--no-progress"]) == 0
    reference = write_config(tmp_path / "r.yaml", tmp_path / "corpus", tmp_path / "ref", n=60)
    assert main(["data", "build", str(reference), "--workers", "2", "--no-progress"]) == 0
    assert manifests(tmp_path / "out") == manifests(tmp_path / "ref")
    assert not list((tmp_path / "out").rglob(".*.tmp"))  # no half-written file left visible


def test_bad_audio_stops_the_build_naming_the_file(corpus: Path, tmp_path: Path, capsys) -> None:
    (corpus / "e1.flac").write_bytes(b"fLaC not really")
    path = write_config(tmp_path / "b.yaml", corpus, tmp_path / "out")
    assert main(["data", "build", str(path), "--workers", "1", "--no-progress"]) == 2
    assert "e1.flac" in capsys.readouterr().err
    text = path.read_text() + "on_bad_audio: skip\n"
    path.write_text(text)
    assert main(["data", "build", str(path), "--workers", "1", "--no-progress"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["splits"]["train"]["skipped"] and "e1.flac" in summary["splits"]["train"]["skipped"][0]


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("sead: 1\n", "sead: unknown key"),
        ("seed: many\n", "seed: Input should be a valid integer"),
        ("mix: {snr_db: loud}\n", "mix.snr_db"),
        ("splits: [{name: x}]\n", "splits.0.bases: Field required"),
        ("seed: [1,\n", "malformed YAML"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, extra: str, problem: str, capsys) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"out_dir: {tmp_path / 'out'}\nsplits: []\n" if "splits" not in extra else "")
    path.write_text(
        path.read_text() + extra.replace("seed: [1,\n", "seed: [1,\n") if extra else path.read_text()
    )
    assert main(["data", "build", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and problem in err and "Traceback" not in err


@pytest.mark.parametrize(
    "path", sorted(Path(__file__).parents[1].glob("configs/data/*.yaml")), ids=lambda p: p.name
)
def test_shipped_data_configs_validate(path: Path) -> None:
    config = load_build_config(path)
    assert config.splits and all(split.bases for split in config.splits)


def test_resume_removes_only_its_own_stale_temp_files(corpus: Path, tmp_path: Path) -> None:
    config = load_build_config(write_config(tmp_path / "b.yaml", corpus, tmp_path / "out"))
    audio = tmp_path / "out" / "train" / "audio"
    audio.mkdir(parents=True)
    mine = audio / ".train-add-000000-2.flac.abcdefgh.tmp"  # pair index 0: shard 0/2
    theirs = audio / ".train-add-000001-1.flac.abcdefgh.tmp"  # pair index 1: shard 1/2, maybe still writing
    mine.write_bytes(b"half")
    theirs.write_bytes(b"half")
    build(config, shard=(0, 2), progress=False)
    assert not mine.exists() and theirs.exists()


# --- the extension points: a table entry is all a new corpus format, ability format or pair task needs ---


def read_tsv(*, csv: Path, audio_dir: Path, name: str) -> readers.Corpus:
    """A layout the build does not know: `clip<TAB>caption` lines, audio `<audio_dir>/<clip>.flac`."""
    rows = [line.split("\t") for line in csv.read_text().splitlines()]
    clips = [readers.Clip(clip, audio_dir / f"{clip}.flac", (caption,)) for clip, caption in rows]
    return readers.Corpus(name, clips)


def test_a_registered_corpus_reader_is_usable_from_a_build_config(
    corpus: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setitem(readers.READERS, "tsv", readers.CorpusFormat(("csv", "audio_dir"), read_tsv))
    (corpus / "scenes.tsv").write_text("s0\tA dog barks near a road\ns1\tRain falls on a tin roof\n")
    text = CONFIG.format(root=corpus, out=tmp_path / "out", n=2)
    text = text.replace(
        f"format: audiocaps, csv: {corpus}/scenes.csv", f"format: tsv, csv: {corpus}/scenes.tsv"
    )
    path = tmp_path / "b.yaml"
    path.write_text(text)
    assert main(["data", "build", str(path), "--workers", "1", "--no-progress"]) == 0
    ac = load_manifest(tmp_path / "out" / "train" / "ac.jsonl")
    assert [s.target for s in ac] == ["A dog barks near a road", "Rain falls on a tin roof"]
    acc = load_manifest(tmp_path / "out" / "train" / "acc.jsonl")
    assert len(acc) == 6 and {s.meta["base"] for s in acc} <= {"s0", "s1"}


def test_a_registered_ability_format_is_usable_from_a_build_config(
    corpus: Path, tmp_path: Path, monkeypatch
) -> None:
    read = abilities.one_task(lambda spec, task: readers.read_labelled_csv(spec.path, name=task), "beeps")
    monkeypatch.setitem(abilities.ABILITY_READERS, "beep_csv", read)
    path = write_config(tmp_path / "b.yaml", corpus, tmp_path / "out")
    path.write_text(
        path.read_text()
        + f"abilities:\n  - {{format: beep_csv, path: {corpus}/events.csv, prompt: Which one}}\n"
    )
    assert main(["data", "build", str(path), "--workers", "1", "--no-progress"]) == 0
    samples = load_manifest(tmp_path / "out" / "abilities" / "beeps.jsonl")
    assert [(s.task, s.prompt, s.label) for s in samples] == [
        ("beeps", "Which one", label) for label in ("bird", "siren", "bell", "bird")
    ]


def test_a_registered_pair_task_yields_a_manifest(corpus: Path, tmp_path: Path, monkeypatch) -> None:
    louder = tasks.PairTask(
        prompt=lambda prompts: "Which audio has more in it?",
        target=lambda plan, templates: {"add": "the second", "drop": "the first"}.get(plan.op, "neither"),
    )
    monkeypatch.setitem(tasks.PAIR_TASKS, "more", louder)
    path = write_config(tmp_path / "b.yaml", corpus, tmp_path / "out")
    assert main(["data", "build", str(path), "--workers", "1", "--no-progress"]) == 0
    samples = load_manifest(tmp_path / "out" / "train" / "more.jsonl")
    assert {s.meta["op"]: s.target for s in samples} == {
        "add": "the second",
        "drop": "the first",
        "replace": "neither",
    }
    assert len(samples) == 9 and {(s.task, s.prompt) for s in samples} == {
        ("more", "Which audio has more in it?")
    }
    assert samples[0].id == "more-" + samples[0].meta["pair"] and len(samples[0].audios) == 2
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["splits"]["train"]["samples"] == {"ac": 8, "adc": 9, "acc": 9, "more": 9}


def test_unknown_formats_are_named_when_the_config_is_read(corpus: Path, tmp_path: Path) -> None:
    path = write_config(tmp_path / "b.yaml", corpus, tmp_path / "out")
    path.write_text(path.read_text().replace("format: labelled_csv", "format: tsv", 1))
    with pytest.raises(ConfigError) as error:
        load_build_config(path)
    assert (
        "unknown corpus format 'tsv' (known: audiocaps, clotho, labelled_csv, label_folders, audiodiffcaps)"
        in str(error.value)
    )
    assert not (tmp_path / "out").exists()
