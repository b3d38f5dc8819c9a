"""The bad-input campaign: every verb, fed what a hostile new user would feed it.

Each `Case` is one command line over a prepared world of inputs and earlier outputs. Run in-process through
`auralign.cli.main`, each must exit with its code (2: a user error), print one message naming the file, key or
option (`sees`: what it must contain), print no traceback (an exception escaping `main` fails the test), and
leave every earlier output under `out/` byte-identical. `docs/bad-inputs.md` is the table of these cases
(`render_table`); `python tests/test_bad_inputs.py` writes it again after the list changes.
"""

import json
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch

from _models_fixtures import write_corpus
from auralign.cli import main

SR = 16000
DOC = Path(__file__).parents[1] / "docs" / "bad-inputs.md"


@dataclass(frozen=True)
class Case:
    verb: str
    tried: str  # what was tried, in the user's words (the docs' first column)
    argv: Callable[[SimpleNamespace], list[str]]  # the command line, over the world's paths
    sees: tuple[str, ...]  # what the message must contain (the file / key / option, and what is wrong)
    code: int = 2

    @property
    def id(self) -> str:
        return f"{self.verb}: {self.tried}"


# --- the world: inputs, configs and earlier outputs ---------------------------------------------------------


def wav(path: Path, seconds: float, rate: int = SR) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate, subtype="PCM_16")
    return path


def sparse_long_wav(path: Path, seconds: int, rate: int = 8000) -> Path:
    """An 8-bit mono WAV whose header says `seconds` long, written sparse (no decoding happens to it)."""
    frames = rate * seconds
    header = b"RIFF" + struct.pack("<I", 36 + frames) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate, 1, 8)
    header += b"data" + struct.pack("<I", frames)
    with open(path, "wb") as handle:
        handle.write(header)
        handle.truncate(len(header) + frames)
    return path


def truncated_wav(path: Path) -> Path:
    wav(path, 1.0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


def jsonl(path: Path, rows: list[dict]) -> Path:
    return write(path, "".join(json.dumps(r) + "\n" for r in rows))


TRAIN = """output_dir: {runs}/{name}
model: {{backend: qwen2audio, path: {tiny}}}
lora: {{r: 2, alpha: 4, dropout: 0.0}}
batch_size: 1
grad_accum: 1
tensorboard: false
stages:
  - {{name: ac, data: [{{manifest: {manifest}}}], epochs: 1}}
"""

BUILD = """out_dir: {out}/built
splits:
  - name: train
    bases: {{format: audiocaps, csv: {corpus}/scenes.csv, audio_dir: {corpus}/scenes}}
    pairs: {{}}
"""

ABILITIES = """out_dir: {out}/built
abilities:
  - {{format: {fmt}, path: {path}}}
"""

EVAL = """output_dir: {out}/eval
model: {{backend: qwen2audio, path: {tiny}}}
rows: [{{name: base}}]
captioning: [{{name: set, manifest: {manifest}}}]
metrics: [bleu_1]
"""


def make_world(root: Path) -> SimpleNamespace:
    w = SimpleNamespace(root=root, inp=root / "in", cfg=root / "cfg", out=root / "out", runs=root / "runs")
    for folder in (w.inp, w.cfg, w.out, w.runs):
        folder.mkdir(parents=True)
    # audio
    w.good = wav(w.inp / "good.wav", 1.0)
    w.long60 = wav(w.inp / "long60.wav", 60.0, rate=8000)
    w.hours2 = sparse_long_wav(w.inp / "two-hours.wav", 7200)
    w.text_wav = write(w.inp / "notes.wav", "these are my notes, not audio\n")
    w.empty_wav = write(w.inp / "empty.wav", "")
    w.trunc = truncated_wav(w.inp / "cut.wav")
    (w.inp / "folder.wav").mkdir()
    w.dir_wav = w.inp / "folder.wav"
    w.missing = w.inp / "no-such.wav"
    # manifests: 6 samples with their audio, an empty one, one whose audio is gone
    w.manifest = write_corpus(w.inp / "corpus6", n=6)
    w.empty_manifest = write(w.inp / "empty.jsonl", "")
    w.torn_manifest = write(w.inp / "torn.jsonl", w.manifest.read_text().splitlines()[0][:40] + "\n")
    gone = write_corpus(w.inp / "gone", n=2)
    (w.inp / "gone" / "audio" / "ac-1-0.wav").unlink()
    w.gone_manifest = gone
    # a corpus for data build
    corpus = w.inp / "scenes-corpus"
    (corpus / "scenes").mkdir(parents=True)
    wav(corpus / "scenes" / "s0.wav", 1.0)
    write(corpus / "scenes.csv", "audiocap_id,youtube_id,start_time,caption\n0,s0,0,a dog barks\n")
    wav(corpus / "e0.wav", 0.5)
    write(corpus / "events.csv", "file_name,label,phrase\ne0.wav,bird,a bird sound\n")
    w.corpus = corpus
    # audio-visual layout
    w.segments = write(w.inp / "segments.csv", "video_id,start,end\nvid1,0,10\n")
    w.latin1 = write(w.inp / "latin1.csv", "video_id,start,end\ncaf\u00e9,0,10\n", encoding="latin-1")
    w.bad_start = write(w.inp / "badstart.csv", "video_id,start,end\nvid1,zero,10\n")
    w.wrong_labels = write(w.inp / "labels.csv", "index,name\n0,Speech\n")
    (w.inp / "av-audio").mkdir()
    (w.inp / "av-frames").mkdir()
    (w.inp / "no-videos").mkdir()
    write(w.inp / "no-videos" / "readme.txt", "nothing here\n")
    # ability layouts of the wrong shape
    w.tasks_obj, w.tasks_row, w.nsynth = w.inp / "tasks-obj", w.inp / "tasks-row", w.inp / "nsynth"
    write(w.tasks_obj / "tasks.json", '{"task": "vsc", "prompt": "What is it?"}\n')
    write(w.tasks_row / "tasks.json", '[{"prompt": "What is it?"}]\n')
    write(w.nsynth / "examples.json", '["bass_synthetic_033-022-050"]\n')
    # predictions for `score`: 6 samples' worth, duplicates, a subset, foreign ids
    ids = [f"ac-{i}" for i in range(6)]
    w.preds = jsonl(w.inp / "preds.jsonl", [{"id": i, "prediction": "a dog barks."} for i in ids])
    w.dupes = jsonl(w.inp / "dupes.jsonl", [{"id": i, "prediction": "a dog."} for i in ids + ids[:2]])
    w.subset = jsonl(w.inp / "subset.jsonl", [{"id": i, "prediction": "a dog."} for i in ids[:2]])
    w.foreign = jsonl(w.inp / "foreign.jsonl", [{"id": "zz-9", "prediction": "a dog."}])
    w.no_id = jsonl(w.inp / "noid.jsonl", [{"prediction": "a dog."}])
    w.torn_preds = write(w.inp / "torn-preds.jsonl", '{"id": "ac-0", "prediction": "a do\n')
    w.empty_preds = write(w.inp / "empty-preds.jsonl", "\n")
    # report inputs
    (w.inp / "run-no-results").mkdir()
    w.bad_results = w.inp / "run-bad"
    write(w.bad_results / "results.json", "{not json")
    # earlier outputs: each must survive every failed command byte for byte
    w.pred_out = jsonl(w.out / "pred.jsonl", [{"id": f"old-{i}", "prediction": "kept"} for i in range(40)])
    w.scores_out = write(w.out / "scores.json", '{"earlier": true}\n')
    w.av_out = write(w.out / "av.jsonl", '{"id": "earlier"}\n')
    w.frames_out = w.out / "frames"
    write(w.frames_out / "frames" / "old" / "000.txt", "earlier frame\n")
    write(w.out / "built" / "train" / "ac.jsonl", '{"id": "earlier"}\n')
    write(w.out / "report" / "index.html", "<p>earlier report</p>\n")
    write(w.out / "eval" / "results.json", '{"earlier": true}\n')
    return w


def cfg(w: SimpleNamespace, name: str, text: str) -> str:
    return str(write(w.cfg / name, text))


def train_cfg(w: SimpleNamespace, name: str, manifest: Path, extra: str = "") -> str:
    text = TRAIN.format(runs=w.runs, name=name, tiny=w.tiny, manifest=manifest) + extra
    return cfg(w, f"train-{name}.yaml", text)


def build_cfg(w: SimpleNamespace, name: str, extra: str = "", *, body: str | None = None) -> str:
    text = body if body is not None else BUILD.format(out=w.out, corpus=w.corpus) + extra
    return cfg(w, f"build-{name}.yaml", text)


def eval_cfg(w: SimpleNamespace, name: str, extra: str = "") -> str:
    return cfg(w, f"eval-{name}.yaml", EVAL.format(out=w.out, tiny=w.tiny, manifest=w.manifest) + extra)


def dali(w: SimpleNamespace, stage: str, name: str, text: str) -> list[str]:
    return ["dali", stage, cfg(w, f"dali-{name}.yaml", text), "--no-progress"]


def caption(w: SimpleNamespace, *inputs: object, out: Path | None = None) -> list[str]:
    model = ["--backend", "qwen2audio", "--model", str(w.tiny), "--max-new-tokens", "2"]
    return ["caption", *map(str, inputs), "-o", str(out or w.pred_out), *model]


def busy_port(w: SimpleNamespace) -> list[str]:
    return ["demo", "--port", str(w.listener.getsockname()[1])]


S = str  # paths in argv

CASES = [
    # audio
    Case("audio check", "--sr 5", lambda w: ["audio", "check", S(w.good), "--sr", "5"], ("--sr 5", "1000")),
    Case(
        "audio check",
        "--max-seconds 0",
        lambda w: ["audio", "check", S(w.good), "--max-seconds", "0"],
        ("--max-seconds 0",),
    ),
    Case(
        "audio check",
        "a missing file",
        lambda w: ["audio", "check", S(w.missing)],
        ("no-such.wav: file not found",),
    ),
    Case(
        "audio check",
        "a text file named .wav",
        lambda w: ["audio", "check", S(w.text_wav)],
        ("notes.wav: unreadable audio",),
    ),
    Case(
        "audio check",
        "an empty file",
        lambda w: ["audio", "check", S(w.empty_wav)],
        ("empty.wav: empty file",),
    ),
    Case(
        "audio check", "a WAV cut in half", lambda w: ["audio", "check", S(w.trunc)], ("cut.wav: truncated",)
    ),
    Case(
        "audio check",
        "a folder named .wav",
        lambda w: ["audio", "check", S(w.dir_wav)],
        ("folder.wav: is a directory",),
    ),
    Case(
        "audio check",
        "a 2-hour clip with --max-seconds 30",
        lambda w: ["audio", "check", S(w.hours2), "--max-seconds", "30"],
        ("two-hours.wav: 7200.0 s long",),
    ),
    # data build / merge / mini / frames / av-manifest / mini-av
    Case(
        "data build",
        "a config file that does not exist",
        lambda w: ["data", "build", S(w.cfg / "nope.yaml")],
        ("nope.yaml: config file not found",),
    ),
    Case(
        "data build",
        "malformed YAML",
        lambda w: ["data", "build", build_cfg(w, "bad", body="seed: [1,\n")],
        ("build-bad.yaml (line", "malformed YAML"),
    ),
    Case(
        "data build",
        "a key given twice",
        lambda w: ["data", "build", build_cfg(w, "twice", "seed: 1\nseed: 2\n")],
        ("build-twice.yaml: key 'seed' given twice (lines 6 and 7)",),
    ),
    Case(
        "data build",
        "a key given twice inside a section",
        lambda w: ["data", "build", build_cfg(w, "twice2", "mix:\n  snr_db: 1\n  snr_db: 2\n")],
        ("key 'mix.snr_db' given twice (lines 7 and 8)",),
    ),
    Case(
        "data build",
        "a YAML list instead of a mapping",
        lambda w: ["data", "build", build_cfg(w, "list", body="- seed\n- 1\n")],
        ("build-list.yaml", "mapping"),
    ),
    Case(
        "data build",
        "a sample rate of 5 Hz",
        lambda w: ["data", "build", build_cfg(w, "rate", "sample_rate: 5\n")],
        ("build-rate.yaml", "sample_rate"),
    ),
    Case(
        "data build",
        "a misspelt key",
        lambda w: ["data", "build", build_cfg(w, "typo", "sead: 1\n")],
        ("build-typo.yaml", "sead: unknown key"),
    ),
    Case(
        "data build",
        "--set with a value that is not YAML",
        lambda w: ["data", "build", build_cfg(w, "ok"), "--set", "seed=[1,"],
        ("--set seed", "not YAML"),
    ),
    Case(
        "data build",
        "--set into a value as if a section",
        lambda w: ["data", "build", build_cfg(w, "ok"), "--set", "out_dir.x=1"],
        ("--set out_dir.x", "not a section"),
    ),
    Case(
        "data build",
        "a corpus CSV that does not exist",
        lambda w: [
            "data",
            "build",
            build_cfg(w, "nocsv", body=BUILD.format(out=w.out, corpus=w.inp / "nowhere")),
        ],
        ("scenes.csv",),
    ),
    Case(
        "data build",
        "--shard 3/2",
        lambda w: ["data", "build", build_cfg(w, "ok"), "--shard", "3/2"],
        ("--shard 3/2",),
    ),
    Case(
        "data build",
        "two splits with one name",
        lambda w: [
            "data",
            "build",
            build_cfg(
                w,
                "twosplits",
                body=BUILD.format(out=w.out, corpus=w.corpus)
                + BUILD.format(out=w.out, corpus=w.corpus).split("splits:\n")[1],
            ),
        ],
        ("split name 'train' given twice",),
    ),
    Case(
        "data build",
        "a mini tasks.json that is an object, not a list",
        lambda w: [
            "data",
            "build",
            build_cfg(w, "tasksobj", body=ABILITIES.format(out=w.out, fmt="mini", path=w.tasks_obj)),
        ],
        ("tasks.json", "expected a list of tasks"),
    ),
    Case(
        "data build",
        "a mini tasks.json row without 'task'",
        lambda w: [
            "data",
            "build",
            build_cfg(w, "notask", body=ABILITIES.format(out=w.out, fmt="mini", path=w.tasks_row)),
        ],
        ("tasks.json", "task 0 has no 'task'"),
    ),
    Case(
        "data build",
        "an NSynth examples.json that is a list",
        lambda w: [
            "data",
            "build",
            build_cfg(w, "nsynth", body=ABILITIES.format(out=w.out, fmt="nsynth", path=w.nsynth)),
        ],
        ("examples.json", "expected an object"),
    ),
    Case(
        "data merge",
        "merging before the pairs were rendered",
        lambda w: [
            "data",
            "merge",
            build_cfg(
                w,
                "pairs",
                body=BUILD.format(out=w.out, corpus=w.corpus).replace(
                    "pairs: {}",
                    f"events: {{format: labelled_csv, csv: {w.corpus}/events.csv}}\n    pairs: {{add: 1}}",
                ),
            ),
        ],
        ("split 'train' has 1 pair(s) not rendered yet", "run the missing shards"),
    ),
    Case(
        "data merge",
        "a config file that does not exist",
        lambda w: ["data", "merge", S(w.cfg / "gone.yaml")],
        ("gone.yaml: config file not found",),
    ),
    Case(
        "data frames",
        "a folder that does not exist",
        lambda w: ["data", "frames", S(w.inp / "no-such-videos"), S(w.frames_out)],
        ("no-such-videos: no such folder",),
    ),
    Case(
        "data frames",
        "a folder with no videos",
        lambda w: ["data", "frames", S(w.inp / "no-videos"), S(w.frames_out)],
        ("no-videos: no video files",),
    ),
    Case(
        "data av-manifest",
        "a segments file that does not exist",
        lambda w: [
            "data",
            "av-manifest",
            S(w.inp / "nosegs.csv"),
            S(w.inp / "av-audio"),
            S(w.inp / "av-frames"),
            S(w.av_out),
        ],
        ("nosegs.csv: segments file not found",),
    ),
    Case(
        "data av-manifest",
        "a Latin-1 segments CSV",
        lambda w: [
            "data",
            "av-manifest",
            S(w.latin1),
            S(w.inp / "av-audio"),
            S(w.inp / "av-frames"),
            S(w.av_out),
        ],
        ("latin1.csv:2", "not UTF-8"),
    ),
    Case(
        "data av-manifest",
        "a start time that is not a number",
        lambda w: [
            "data",
            "av-manifest",
            S(w.bad_start),
            S(w.inp / "av-audio"),
            S(w.inp / "av-frames"),
            S(w.av_out),
        ],
        ("badstart.csv:2", "start/end must be numbers"),
    ),
    Case(
        "data av-manifest",
        "a --class-labels file that does not exist",
        lambda w: [
            "data",
            "av-manifest",
            S(w.segments),
            S(w.inp / "av-audio"),
            S(w.inp / "av-frames"),
            S(w.av_out),
            "--class-labels",
            S(w.inp / "nolabels.csv"),
        ],
        ("nolabels.csv: class labels file not found",),
    ),
    Case(
        "data av-manifest",
        "a --class-labels CSV without mid / display_name",
        lambda w: [
            "data",
            "av-manifest",
            S(w.segments),
            S(w.inp / "av-audio"),
            S(w.inp / "av-frames"),
            S(w.av_out),
            "--class-labels",
            S(w.wrong_labels),
        ],
        ("labels.csv", "'mid' and 'display_name'"),
    ),
    Case(
        "data av-manifest",
        "a segment with no audio",
        lambda w: [
            "data",
            "av-manifest",
            S(w.segments),
            S(w.inp / "av-audio"),
            S(w.inp / "av-frames"),
            S(w.av_out),
        ],
        ("segment vid1: no audio",),
    ),
    Case(
        "data mini-av",
        "a mini corpus folder that does not exist",
        lambda w: ["data", "mini-av", S(w.inp / "no-mini"), S(w.out / "mini-av")],
        ("no-mini",),
    ),
    Case(
        "data av-manifest",
        "an output path that is a folder",
        lambda w: [
            "data",
            "av-manifest",
            S(w.segments),
            S(w.inp / "av-audio"),
            S(w.inp / "av-frames"),
            S(w.out),
        ],
        ("is a folder; name the manifest",),
    ),
    Case(
        "data mini", "an output folder that is a file", lambda w: ["data", "mini", S(w.good)], ("good.wav",)
    ),
    Case(
        "data mini",
        "a non-empty folder that holds no mini corpus",
        lambda w: ["data", "mini", S(w.out)],
        ("out: directory is not empty",),
    ),
    # train
    Case(
        "train",
        "a config file that does not exist",
        lambda w: ["train", S(w.cfg / "none.yaml")],
        ("none.yaml: config file not found",),
    ),
    Case(
        "train",
        "an empty manifest",
        lambda w: ["train", train_cfg(w, "empty", w.empty_manifest)],
        ("empty.jsonl: no samples to train on",),
    ),
    Case(
        "train",
        "a manifest whose audio file is missing",
        lambda w: ["train", train_cfg(w, "gone", w.gone_manifest)],
        ("sample 'ac-1'", "ac-1-0.wav"),
    ),
    Case(
        "train",
        "a manifest that does not exist",
        lambda w: ["train", train_cfg(w, "nomanifest", w.inp / "nowhere.jsonl")],
        ("stages.0.data.0.manifest", "nowhere.jsonl not found"),
    ),
    Case(
        "train",
        "a torn manifest line",
        lambda w: ["train", train_cfg(w, "torn", w.torn_manifest)],
        ("torn.jsonl:1",),
    ),
    Case(
        "train",
        "a key given twice",
        lambda w: ["train", train_cfg(w, "twice", w.manifest, "seed: 1\nseed: 2\n")],
        ("key 'seed' given twice",),
    ),
    Case(
        "train",
        "a misspelt key",
        lambda w: ["train", train_cfg(w, "typo", w.manifest, "batchsize: 2\n")],
        ("batchsize: unknown key",),
    ),
    Case(
        "train",
        "--set optim.lr=fast",
        lambda w: ["train", train_cfg(w, "ok", w.manifest), "--set", "optim.lr=fast"],
        ("--set optim.lr",),
    ),
    Case(
        "train",
        "--set batch_size=0",
        lambda w: ["train", train_cfg(w, "ok", w.manifest), "--set", "batch_size=0"],
        ("--set batch_size",),
    ),
    Case(
        "train",
        "a finished run of another config in output_dir (lr 1e-4, then 5e-4)",
        lambda w: ["train", w.finished, "--set", "optim.lr=5.0e-4"],
        ("finished: holds a finished run with a different config", "optim.lr"),
    ),
    # dali
    Case(
        "dali align",
        "a config that is a YAML list",
        lambda w: dali(w, "align", "list", "- epochs\n- 1\n"),
        ("dali-list.yaml", "mapping", "list"),
    ),
    Case(
        "dali align",
        "a config that is a scalar",
        lambda w: dali(w, "align", "scalar", "42\n"),
        ("dali-scalar.yaml", "mapping", "int"),
    ),
    Case(
        "dali align",
        "--set with a value that is not YAML",
        lambda w: [*dali(w, "align", "set", "epochs: 1\n"), "--set", "epochs={1"],
        ("--set epochs", "not YAML"),
    ),
    Case(
        "dali align",
        "an unknown alignment method",
        lambda w: dali(w, "align", "method", "method: telepathy\n"),
        ("telepathy", "mmd"),
    ),
    Case(
        "dali prefix",
        "a misspelt key",
        lambda w: dali(w, "prefix", "typo", "epochz: 1\n"),
        ("dali-typo.yaml", "epochz: unknown key"),
    ),
    Case(
        "dali distill",
        "a key given twice",
        lambda w: dali(w, "distill", "twice", "epochs: 1\nepochs: 2\n"),
        ("key 'epochs' given twice (lines 1 and 2)",),
    ),
    Case(
        "dali align",
        "a prefix_dir that is no finished stage",
        lambda w: dali(
            w,
            "align",
            "noprefix",
            f"output_dir: {w.runs}/al\nprefix_dir: {w.runs}/nowhere\ndata: {{manifest: m.jsonl}}\n",
        ),
        ("prefix_dir:", "nowhere is not a finished DALI stage folder"),
    ),
    Case(
        "dali caption",
        "a distill_dir that is no finished stage",
        lambda w: dali(
            w,
            "caption",
            "nodistill",
            f"distill_dir: {w.runs}/nowhere\noutput: {w.runs}/dali-pred.jsonl\ndata: {{manifest: m.jsonl}}\nmode: audio\n",
        ),
        ("distill_dir:", "nowhere is not a finished DALI stage folder"),
    ),
    Case(
        "dali prefix",
        "a config without its data section",
        lambda w: dali(w, "prefix", "nodata", f"output_dir: {w.runs}/pfx\n"),
        ("dali-nodata.yaml", "data: Field required"),
    ),
    Case(
        "dali caption",
        "a config file that does not exist",
        lambda w: ["dali", "caption", S(w.cfg / "nocap.yaml")],
        ("nocap.yaml: config file not found",),
    ),
    Case(
        "dali quickstart",
        "a config key given twice",
        lambda w: [
            "dali",
            "quickstart",
            "--out",
            S(w.runs / "dq"),
            "--config",
            cfg(w, "dq.yaml", "seed: 1\nseed: 2\n"),
        ],
        ("dq.yaml: key 'seed' given twice (lines 1 and 2)",),
    ),
    Case(
        "quickstart",
        "a config that is a YAML list",
        lambda w: ["quickstart", "--out", S(w.runs / "q"), "--config", cfg(w, "q.yaml", "- seed\n")],
        ("q.yaml", "mapping"),
    ),
    Case(
        "quickstart",
        "--set with a value that is not YAML",
        lambda w: ["quickstart", "--out", S(w.runs / "q"), "--set", "seed=[1"],
        ("--set seed", "not YAML"),
    ),
    # caption
    Case(
        "caption",
        "an audio file that does not exist",
        lambda w: caption(w, w.missing),
        ("no-such.wav: no such file or folder",),
    ),
    Case(
        "caption",
        "a manifest whose audio is missing",
        lambda w: caption(w, w.gone_manifest),
        ("ac-1-0.wav: file not found",),
    ),
    Case(
        "caption",
        "a text file named .wav",
        lambda w: caption(w, w.text_wav),
        ("notes.wav: unreadable audio",),
    ),
    Case(
        "caption",
        "--batch-size 0",
        lambda w: [*caption(w, w.good), "--batch-size", "0"],
        ("--batch-size", "at least 1"),
    ),
    Case(
        "caption",
        "--audios-per-sample 0",
        lambda w: [*caption(w, w.good), "--audios-per-sample", "0"],
        ("--audios-per-sample", "at least 1"),
    ),
    Case(
        "caption",
        "--max-new-tokens 0",
        lambda w: [*caption(w, w.good), "--max-new-tokens", "0"],
        ("--max-new-tokens", "at least 1"),
    ),
    Case("caption", "-o naming a folder", lambda w: caption(w, w.good, out=w.out), ("-o", "is a folder")),
    Case(
        "caption",
        "a 60-s clip under --long-audio error",
        lambda w: [*caption(w, w.long60), "--long-audio", "error"],
        ("long60.wav: 60.0 s long", "30 s window"),
    ),
    Case("caption", "a 2-hour clip", lambda w: caption(w, w.hours2), ("two-hours.wav: 7200.0 s long",)),
    Case(
        "caption",
        "3 files in groups of 2",
        lambda w: [*caption(w, w.good, w.long60, w.trunc), "--audios-per-sample", "2"],
        ("groups of 2",),
    ),
    Case("caption", "a torn manifest line", lambda w: caption(w, w.torn_manifest), ("torn.jsonl:1",)),
    Case(
        "caption",
        "--temperature -1 with --sample",
        lambda w: [*caption(w, w.good), "--sample", "--temperature", "-1"],
        ("--temperature -1.0", "greater than or equal to 0"),
    ),
    Case(
        "caption",
        "an --adapter folder without adapter_config.json",
        lambda w: [*caption(w, w.good), "--adapter", S(w.inp / "av-audio")],
        ("--adapter", "no adapter_config.json"),
    ),
    Case(
        "caption",
        "a --model folder that does not exist",
        lambda w: [
            "caption",
            S(w.good),
            "-o",
            S(w.pred_out),
            "--backend",
            "qwen2audio",
            "--model",
            S(w.inp / "no-model"),
        ],
        ("model.path", "no-model"),
    ),
    Case(
        "caption",
        "an empty folder over an earlier -o file",
        lambda w: caption(w, w.inp / "av-frames"),
        ("no audio files or manifest samples",),
    ),
    Case(
        "caption",
        "an empty manifest over an earlier -o file",
        lambda w: caption(w, w.empty_manifest),
        ("no audio files or manifest samples",),
    ),
    Case(
        "caption",
        "resuming a killed run with another prompt",
        lambda w: [
            *caption(w, w.manifest, out=w.out / "killed.jsonl"),
            "--prompt",
            "Prompt B.",
            "--batch-size",
            "2",
        ],
        ("killed.jsonl.partial: holds unfinished work of another run", "prompts"),
    ),
    # score
    Case(
        "score",
        "duplicate prediction ids",
        lambda w: ["score", S(w.dupes), "--manifest", S(w.manifest), "--out", S(w.scores_out)],
        ("dupes.jsonl:7: duplicate prediction id 'ac-0' (first on line 1)",),
    ),
    Case(
        "score",
        "predictions for 2 of 6 samples",
        lambda w: ["score", S(w.subset), "--manifest", S(w.manifest), "--out", S(w.scores_out)],
        ("predictions for 2 of the 6 samples", "--subset"),
    ),
    Case(
        "score",
        "an id the manifest does not have",
        lambda w: ["score", S(w.foreign), "--manifest", S(w.manifest), "--out", S(w.scores_out)],
        ("foreign.jsonl:1: id 'zz-9' is not in",),
    ),
    Case(
        "score",
        "a row without id, with --manifest",
        lambda w: ["score", S(w.no_id), "--manifest", S(w.manifest), "--out", S(w.scores_out)],
        ("noid.jsonl:1: no 'id' key",),
    ),
    Case(
        "score",
        "a predictions file that does not exist",
        lambda w: ["score", S(w.inp / "nopreds.jsonl")],
        ("nopreds.jsonl",),
    ),
    Case(
        "score",
        "a torn JSON line",
        lambda w: ["score", S(w.torn_preds), "--out", S(w.scores_out)],
        ("torn-preds.jsonl:1",),
    ),
    Case(
        "score",
        "an empty predictions file",
        lambda w: ["score", S(w.empty_preds), "--out", S(w.scores_out)],
        ("empty-preds.jsonl: no predictions",),
    ),
    Case(
        "score",
        "an unknown metric",
        lambda w: [
            "score",
            S(w.preds),
            "--manifest",
            S(w.manifest),
            "--metrics",
            "bleu_9",
            "--out",
            S(w.scores_out),
        ],
        ("bleu_9",),
    ),
    Case(
        "score",
        "--out naming a folder",
        lambda w: ["score", S(w.preds), "--manifest", S(w.manifest), "--out", S(w.out)],
        ("--out", "is a folder"),
    ),
    # evaluate
    Case(
        "evaluate",
        "a config file that does not exist",
        lambda w: ["evaluate", S(w.cfg / "noeval.yaml")],
        ("noeval.yaml: config file not found",),
    ),
    Case(
        "evaluate",
        "a misspelt key",
        lambda w: ["evaluate", eval_cfg(w, "typo", "metricz: [bleu_1]\n")],
        ("metricz: unknown key",),
    ),
    Case(
        "evaluate",
        "a key given twice",
        lambda w: ["evaluate", eval_cfg(w, "twice", "metrics: [cider_d]\n")],
        ("key 'metrics' given twice (lines 5 and 6)",),
    ),
    Case(
        "evaluate",
        "--set generation.batch_size=0",
        lambda w: ["evaluate", eval_cfg(w, "ok"), "--set", "generation.batch_size=0"],
        ("--set generation.batch_size",),
    ),
    Case(
        "evaluate",
        "a row whose adapter folder does not exist",
        lambda w: [
            "evaluate",
            cfg(
                w,
                "eval-noadapter.yaml",
                EVAL.format(out=w.out, tiny=w.tiny, manifest=w.manifest).replace(
                    "{name: base}", f"{{name: ft, adapter: {w.inp / 'no-adapter'}}}"
                ),
            ),
        ],
        ("no-adapter: no adapter_config.json",),
    ),
    Case(
        "evaluate",
        "a captioning manifest that does not exist",
        lambda w: [
            "evaluate",
            cfg(
                w,
                "eval-nomanifest.yaml",
                EVAL.format(out=w.out, tiny=w.tiny, manifest=w.inp / "nowhere.jsonl"),
            ),
        ],
        ("nowhere.jsonl: no such file or folder",),
    ),
    Case(
        "evaluate",
        "a manifest whose audio file is missing",
        lambda w: [
            "evaluate",
            cfg(w, "eval-gone.yaml", EVAL.format(out=w.out, tiny=w.tiny, manifest=w.gone_manifest)),
        ],
        ("ac-1-0.wav: file not found",),
    ),
    Case(
        "evaluate",
        "two rows whose names differ only in punctuation",
        lambda w: [
            "evaluate",
            cfg(
                w,
                "eval-rows.yaml",
                EVAL.format(out=w.out, tiny=w.tiny, manifest=w.manifest).replace(
                    "rows: [{name: base}]", "rows: [{name: AC+ADC}, {name: AC ADC}]"
                ),
            ),
        ],
        ("'AC+ADC' and 'AC ADC' would share one predictions",),
    ),
    # report
    Case(
        "report",
        "a run folder without results.json",
        lambda w: ["report", S(w.inp / "run-no-results"), "-o", S(w.out / "report")],
        ("results.json",),
    ),
    Case(
        "report",
        "a results.json that is not JSON",
        lambda w: ["report", S(w.bad_results), "-o", S(w.out / "report")],
        ("run-bad", "results.json"),
    ),
    Case(
        "report",
        "a run folder that does not exist",
        lambda w: ["report", S(w.inp / "no-run"), "-o", S(w.out / "report")],
        ("no-run",),
    ),
    # demo
    Case(
        "demo", "--port 70000", lambda w: ["demo", "--port", "70000"], ("--port", "70000 is not a TCP port")
    ),
    Case("demo", "a port already in use", busy_port, ("--port", "cannot serve there")),
    Case(
        "demo",
        "a --model path that does not exist",
        lambda w: ["demo", "--model", S(w.inp / "no-model")],
        ("no-model", "no such file or folder"),
    ),
    Case(
        "demo",
        "an --adapter folder without adapter_config.json",
        lambda w: ["demo", "--adapter", S(w.inp / "av-audio")],
        ("av-audio: no adapter_config.json",),
    ),
]


# --- running them -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> SimpleNamespace:
    from auralign.models.testing import tiny_qwen2audio

    w = make_world(tmp_path_factory.mktemp("bad-inputs"))
    w.tiny = w.root / "tiny-qwen"
    tiny_qwen2audio(w.tiny)
    killed_caption(w)
    w.finished = finished_training(w)
    w.listener = socket.socket()
    w.listener.bind(("127.0.0.1", 0))
    w.listener.listen()
    yield w
    w.listener.close()


class Killed(Exception):
    """Stands for a kill -9 after the first batch."""


def killed_caption(w: SimpleNamespace) -> None:
    """`out/killed.jsonl.partial`: a caption run under "Prompt A." that died after its first batch."""
    from auralign.infer.caption import caption as run_caption
    from auralign.infer.caption import collect
    from auralign.models.base import GenerationOptions
    from auralign.models.factory import ModelConfig, build_with_adapter

    llm = build_with_adapter(ModelConfig(backend="qwen2audio", path=str(w.tiny)), seed=0)
    real, batches = llm.generate, []

    def dies(chats, options):
        if batches:
            raise Killed
        batches.append(len(chats))
        return real(chats, options)

    llm.generate = dies
    items = list(collect([w.manifest], "Prompt A."))
    with pytest.raises(Killed):
        run_caption(
            llm,
            items,
            w.out / "killed.jsonl",
            options=GenerationOptions(max_new_tokens=2, batch_size=2),
            progress=False,
        )
    assert (w.out / "killed.jsonl.partial").is_file()


def finished_training(w: SimpleNamespace) -> str:
    """A finished `train` run (lr 1e-4) under runs/finished; returns its config."""
    config = train_cfg(w, "finished", w.manifest, "optim: {lr: 1.0e-4}\n")
    assert main(["train", config]) == 0
    return config


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `auralign ARGV` in this process; argparse's exits are caught too."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_input_is_one_line_naming_it_and_loses_nothing(world, case: Case, capsys) -> None:
    argv = case.argv(world)
    before = snapshot(world.out)
    code, out, err = run_cli(argv, capsys)
    assert code == case.code, (code, out, err)
    assert "Traceback" not in out + err
    error_lines = [line for line in err.splitlines() if "error:" in line]
    assert error_lines, err
    for expected in case.sees:
        assert expected in err, (expected, err)
    after = snapshot(world.out)
    assert {name: after.get(name) for name in before} == before, "an earlier output changed or went"


def test_the_campaign_covers_every_verb_with_sixty_cases() -> None:
    verbs = {c.verb.split()[0] for c in CASES} | {" ".join(c.verb.split()[:2]) for c in CASES}
    wanted = {
        "audio",
        "data build",
        "data merge",
        "data mini-av",
        "data frames",
        "data av-manifest",
        "train",
        "dali",
        "caption",
        "score",
        "evaluate",
        "report",
        "demo",
    }
    assert wanted <= verbs, wanted - verbs
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


# --- what used to be silently wrong ------------------------------------------------------------------------


def test_score_with_subset_scores_the_part_and_says_so(world, tmp_path, capsys) -> None:
    out = tmp_path / "subset.scores.json"
    argv = ["score", str(world.subset), "--manifest", str(world.manifest), "--metrics", "bleu_1"]
    code, stdout, _ = run_cli([*argv, "--subset", "--out", str(out)], capsys)
    assert code == 0 and "subset: 2 of the 6 samples" in stdout
    report = json.loads(out.read_text())
    assert report["n"] == 2 and report["subset"] == {"scored": 2, "of": 6}
    full = tmp_path / "full.scores.json"
    argv = ["score", str(world.preds), "--manifest", str(world.manifest), "--metrics", "bleu_1"]
    assert run_cli([*argv, "--out", str(full)], capsys)[0] == 0
    assert json.loads(full.read_text())["n"] == 6 and "subset" not in json.loads(full.read_text())


class StubLM(torch.nn.Module):
    """Just what the composed backend reads of its LM at construction: the embedding width."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(4, 8)

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.embed


class StubBackbone:
    """Records what it was asked to encode: a path (whole, through the cache) or a waveform's length."""

    dim = 4

    def __init__(self) -> None:
        self.seen: list[object] = []

    def prepare(self, waves) -> torch.Tensor:
        wave = waves[0]
        self.seen.append(str(wave) if isinstance(wave, str | Path) else len(wave))
        return torch.zeros(1, 3, self.dim)

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs


def composed(policy: str):
    from auralign.models.acc.composed import ComposedAudioLLM

    return ComposedAudioLLM(StubLM(), SimpleNamespace(pad_token_id=0), StubBackbone(), long_audio=policy)


def no_decoding(monkeypatch) -> None:
    from auralign.audio import io as audio_io

    def refuse(*args, **kwargs):
        raise AssertionError("the whole file was decoded")

    monkeypatch.setattr(audio_io, "_decode", refuse)


def test_the_composed_backend_applies_the_length_policy_from_the_header(world, monkeypatch) -> None:
    from auralign.audio import AudioError
    from auralign.models.base import ModelWarning

    llm = composed("error")
    assert llm.frames(str(world.good)).shape == (3, 4) and llm.encoder.seen == [str(world.good)]
    no_decoding(monkeypatch)
    with pytest.raises(AudioError, match=r"long60.wav: 60.0 s long, over the model's 30 s window"):
        llm.frames(str(world.long60))
    with pytest.raises(AudioError, match=r"two-hours.wav: 7200.0 s long"):
        llm.frames(str(world.hours2))
    monkeypatch.undo()
    llm = composed("truncate")
    with pytest.warns(UserWarning, match=r"two-hours.wav: 7200.0 s long; truncated to the first 30 s"):
        llm.frames(str(world.hours2))
    assert llm.encoder.seen == [30 * SR]
    llm = composed("split")
    with pytest.warns(ModelWarning, match=r"long60.wav: 60.0 s long; split into 2 windows of 30 s"):
        frames = llm.frames(str(world.long60))
    assert llm.encoder.seen == [30 * SR, 30 * SR] and frames.shape == (6, 4)


def test_an_adapter_trained_with_a_frozen_projector_still_names_it_untrained(tmp_path) -> None:
    frozen, trained = composed("error"), composed("error")
    frozen.train_extras(False)
    trained.train_extras(True)
    assert frozen.untrained_parts() == ("projector",) and trained.untrained_parts() == ()
    for name, llm in (("frozen", frozen), ("trained", trained)):
        (tmp_path / name).mkdir()
        llm.save_extras(tmp_path / name)
    for name, expected in (("frozen", ("projector",)), ("trained", ())):
        loaded = composed("error")
        loaded.load_extras(tmp_path / name)
        assert loaded.untrained_parts() == expected, name
    shipped = composed("error")
    from auralign.models.factory import SHIPPED_BASE

    shipped.projector = torch.nn.Sequential(
        torch.nn.Linear(1024, 576), torch.nn.GELU(), torch.nn.Linear(576, 576)
    )
    shipped.load_extras(SHIPPED_BASE)  # written before the flag existed: a trained projector
    assert shipped.untrained_parts() == ()


def test_load_windows_refuses_or_cuts_before_decoding(world, monkeypatch) -> None:
    from auralign.audio import AudioError
    from auralign.models.base import ModelWarning, load_windows

    no_decoding(monkeypatch)
    with pytest.raises(AudioError, match=r"7200\.0 s long"):
        load_windows(str(world.hours2), 30.0, "error", str(world.hours2))
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="truncated to the first 30 s"):
        (cut,) = load_windows(str(world.hours2), 30.0, "truncate", "clip")
    assert len(cut) == 30 * SR
    with pytest.warns(ModelWarning, match="split into 3 windows"):
        parts = load_windows(np.zeros(70 * SR, np.float32), 30.0, "split", "waveform")
    assert [len(p) for p in parts] == [30 * SR, 30 * SR, 10 * SR]


class RandomToy(torch.nn.Module):
    """A backend whose projector is random until loaded (the composed backend's situation)."""

    def __init__(self) -> None:
        super().__init__()
        self.projector = torch.nn.Linear(4, 4)

    def untrained_parts(self) -> tuple[str, ...]:
        return ("projector",)


def test_random_initialisation_takes_the_seed_and_an_untrained_part_is_named(monkeypatch) -> None:
    from auralign.models import factory
    from auralign.models.base import ModelWarning

    monkeypatch.setitem(factory.BACKENDS, "toy", factory.Backend(lambda cfg, dtype: RandomToy()))
    cfg = factory.ModelConfig(backend="toy")
    state = torch.get_rng_state()
    with pytest.warns(ModelWarning, match=r"projector untrained \(random, seed 3\) and no adapter given"):
        first = factory.build_with_adapter(cfg, seed=3)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's generator is left as it was
    torch.rand(5)  # whatever happened to the global generator in between
    with pytest.warns(ModelWarning):
        again = factory.build_with_adapter(cfg, seed=3)
    with pytest.warns(ModelWarning):
        other = factory.build_with_adapter(cfg, seed=4)
    assert torch.equal(first.projector.weight, again.projector.weight)
    assert not torch.equal(first.projector.weight, other.projector.weight)


def test_caption_with_the_default_model_and_no_adapter_is_repeatable_and_warns(
    world, tmp_path, capsys
) -> None:
    pytest.importorskip("onnx")
    clips = [wav(tmp_path / f"c{i}.wav", 1.0 + i) for i in range(2)]
    outputs, warnings_seen = [], []
    for k in range(2):
        out = tmp_path / f"run{k}.jsonl"
        code, _, err = run_cli(["caption", *map(str, clips), "-o", str(out), "--max-new-tokens", "6"], capsys)
        assert code == 0, err
        outputs.append([row["prediction"] for row in map(json.loads, out.read_text().splitlines())])
        warnings_seen.append([line for line in err.splitlines() if line.startswith("auralign: warning:")])
    assert outputs[0] == outputs[1] and len(outputs[0]) == 2
    assert all(any("projector untrained" in line for line in lines) for lines in warnings_seen), warnings_seen


def test_a_clip_truncated_for_the_model_is_said_in_one_line(world, tmp_path, capsys) -> None:
    out = tmp_path / "cut.jsonl"
    code, _, err = run_cli([*caption(world, world.long60, out=out), "--long-audio", "truncate"], capsys)
    assert code == 0, err
    assert "auralign: warning: " in err and "long60.wav: 60.0 s long; truncated to the first 30 s" in err
    assert len(out.read_text().splitlines()) == 1


def test_an_os_error_on_a_named_path_is_one_line_and_one_without_a_path_is_a_bug(monkeypatch, capsys) -> None:
    import auralign.report

    def denied(run_dir, out):
        raise PermissionError(13, "Permission denied", str(out))

    monkeypatch.setattr(auralign.report, "write_report", denied)
    assert run_cli(["report", "run", "-o", "/root/locked"], capsys) == (
        2,
        "",
        "auralign: error: /root/locked: Permission denied\n",
    )

    def bug(run_dir, out):
        raise FileNotFoundError("no filename: a programming error, not the user's")

    monkeypatch.setattr(auralign.report, "write_report", bug)
    with pytest.raises(FileNotFoundError):
        main(["report", "run"])


# --- the docs table -----------------------------------------------------------------------------------------


def render_table(cases: list[Case]) -> str:
    lines = [
        "# Bad inputs: what was tried, what the user sees",
        "",
        "Every row is a case of `tests/test_bad_inputs.py`, run on each test run: the command exits 2 with one",
        "`auralign: error: ...` line (argparse's usage line first for a bad option) that contains the quoted",
        "text, prints no traceback, and leaves every earlier output byte-identical. Regenerate this page with",
        "`python tests/test_bad_inputs.py` after changing the cases; a test keeps the two equal.",
        "",
        "| verb | what was tried | the message contains |",
        "|---|---|---|",
    ]
    for c in cases:
        sees = " ... ".join(f"`{s}`" for s in c.sees)
        lines.append(f"| `{c.verb}` | {c.tried} | {sees} |".replace("\n", " "))
    return "\n".join(lines) + "\n"


def test_the_docs_table_is_the_case_list() -> None:
    assert DOC.read_text(encoding="utf-8") == render_table(CASES)


if __name__ == "__main__":
    DOC.write_text(render_table(CASES), encoding="utf-8")
    print(f"wrote {DOC} ({len(CASES)} cases)")
