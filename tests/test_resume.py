"""Resume and re-run never mix two inputs or two configs into one output, and a kill -9 at any moment leaves
what an uninterrupted run leaves.

- journals record what produced them (`fileio.Journal.claim`) and refuse another origin, naming what differs;
- `data build` reuses a pair only under the same key (seed, clips, mix) and retries skipped pairs;
- a finished run folder of another config is refused by `train` and by every DALI stage, as an unfinished one;
- kill -9 tests: the real CLI in a subprocess, killed once its journal (or checkpoint) appears, rerun, and
  compared with an uninterrupted run: the same bytes, no torn line, no duplicate row.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from pydantic import BaseModel

from _models_fixtures import save_tiny_qwen, write_av_clips, write_corpus
from auralign.cli import main
from auralign.errors import ConfigError, DataError
from auralign.fileio import Journal, differences
from auralign.train.common import check_config, finish_run, start_run

# ---------------------------------------------------------------- helpers


def jsonl_rows(path: Path, key: str = "id") -> list[dict]:
    """Every line of a finished JSONL file, parsed (a torn line fails), with no duplicate `key`."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    keys = [row[key] for row in rows]
    assert len(set(keys)) == len(keys), f"{path}: duplicate rows"
    return rows


def kill_when(cmd: list[str], ready: Callable[[], bool], log: Path, timeout: float = 180) -> None:
    """Start `cmd` (the real CLI) and SIGKILL its process group as soon as `ready()`; fail if it ends first,
    since a test that never kills mid-way would test nothing."""
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if ready():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        time.sleep(0.01)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"{cmd}: nothing to kill on within {timeout} s\n{log.read_text()[-2000:]}")
    pytest.fail(f"{cmd}: ended (exit {proc.returncode}) before it was killed\n{log.read_text()[-2000:]}")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "auralign.cli", *args]


def lines_in(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.is_file() else 0


def write_yaml(path: Path, body: dict) -> Path:
    path.write_text(yaml.safe_dump(body))
    return path


# ---------------------------------------------------------------- journals record their origin


def test_differences_name_dotted_keys() -> None:
    saved = {"optim": {"lr": 1e-4, "betas": [0.9, 0.95]}, "seed": 0}
    assert differences(saved, {"optim": {"lr": 5e-4, "betas": [0.9, 0.95]}, "seed": 0}) == ["optim.lr"]
    assert differences(saved, {"optim": saved["optim"], "seed": 0, "new": 1}) == ["new"]
    assert differences(saved, saved) == []


def test_a_journal_refuses_work_of_another_origin(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    origin = {"model": "m", "options": {"max_new_tokens": 4}, "prompts": ["a"]}
    journal.claim(origin)
    journal.append({"id": 1, "prediction": "x"})
    journal.claim(dict(origin))  # the same origin resumes
    assert journal.records() == [{"id": 1, "prediction": "x"}] and set(journal.by("id")) == {1}
    assert journal.origin() == origin
    before = journal.path.read_bytes()
    with pytest.raises(DataError, match=r"j\.jsonl: .*differs in: options\.max_new_tokens, prompts"):
        journal.claim(origin | {"options": {"max_new_tokens": 8}, "prompts": ["b"]})
    assert journal.path.read_bytes() == before  # refused: nothing already written is touched
    journal.keep(lambda record: False)
    assert journal.origin() == origin and journal.records() == []  # keep never drops the origin
    # work recorded with no origin cannot be told apart from another run's
    bare = Journal(tmp_path / "bare.jsonl")
    bare.append({"id": 1})
    with pytest.raises(DataError, match="no record of what produced it"):
        bare.claim(origin)
    # a journal holding only a line torn by a kill holds no work: it starts afresh under this origin
    torn = Journal(tmp_path / "torn.jsonl")
    torn.path.write_text('{"id": 1, "predic')
    torn.claim(origin)
    assert torn.origin() == origin and torn.records() == []


# ---------------------------------------------------------------- data build

BUILD = """seed: {seed}
out_dir: {out}
on_bad_audio: {policy}
splits:
  - name: train
    bases: {{format: audiocaps, csv: {root}/scenes.csv, audio_dir: {root}/scenes}}
    events: {{format: labelled_csv, csv: {root}/events.csv}}
    pairs: {{add: {n}, drop: {n}, replace: {n}}}
"""


def make_build_corpus(root: Path, scenes: int = 4, seconds: float = 1.0) -> None:
    rng = np.random.default_rng(0)
    (root / "scenes").mkdir(parents=True)
    rows = ["audiocap_id,youtube_id,start_time,caption"]
    for i in range(scenes):
        sf.write(root / "scenes" / f"s{i}.flac", 0.1 * rng.standard_normal(int(16000 * seconds)), 16000)
        rows.append(f"{i},s{i},0,a man speaks and a car passes {i}")
    (root / "scenes.csv").write_text("\n".join(rows) + "\n")
    events = ["file_name,label,phrase"]
    for i, label in enumerate(["bird", "siren", "bell", "bird"]):
        write_event(root, i)
        events.append(f"e{i}.flac,{label},a {label} sound")
    (root / "events.csv").write_text("\n".join(events) + "\n")


def write_event(root: Path, i: int) -> None:
    sf.write(root / f"e{i}.flac", 0.3 * np.sin(np.arange(8000) * 0.05 * (i + 1)), 16000)


def build_config(
    path: Path, root: Path, out: Path, *, seed: int = 3, policy: str = "error", n: int = 3
) -> Path:
    path.write_text(BUILD.format(seed=seed, out=out, root=root, policy=policy, n=n))
    return path


def built(out: Path) -> dict[str, bytes]:
    """Every manifest and pair audio file of a build, by path."""
    files = [*out.glob("[!.]*/*.jsonl"), *out.glob("[!.]*/audio/*.flac")]
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(files)}


def test_a_skipped_pair_is_rendered_once_its_input_is_fixed(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    make_build_corpus(root)
    (root / "e1.flac").write_bytes(b"fLaC not really")
    skip = build_config(tmp_path / "skip.yaml", root, tmp_path / "out", policy="skip")
    assert main(["data", "build", str(skip), "--no-progress"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["splits"]["train"]["skipped"]  # the pairs using e1
    write_event(root, 1)  # the bad clip fixed, and bad input now an error
    fixed = build_config(tmp_path / "fixed.yaml", root, tmp_path / "out", policy="error")
    assert main(["data", "build", str(fixed), "--no-progress"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["splits"]["train"]["skipped"] == []
    assert summary["splits"]["train"]["pairs"] == {"add": 3, "drop": 3, "replace": 3}
    reference = build_config(tmp_path / "ref.yaml", root, tmp_path / "ref")
    assert main(["data", "build", str(reference), "--no-progress"]) == 0
    assert built(tmp_path / "out") == built(tmp_path / "ref")


def test_a_skip_record_is_refused_by_a_merge_under_on_bad_audio_error(tmp_path: Path, capsys) -> None:
    root = tmp_path / "corpus"
    make_build_corpus(root)
    (root / "e1.flac").write_bytes(b"fLaC not really")
    skip = build_config(tmp_path / "skip.yaml", root, tmp_path / "out", policy="skip")
    for shard in ("0/2", "1/2"):
        assert main(["data", "build", str(skip), "--shard", shard, "--no-progress"]) == 0
    strict = build_config(tmp_path / "strict.yaml", root, tmp_path / "out", policy="error")
    assert main(["data", "merge", str(strict)]) == 2
    assert "e1.flac" in capsys.readouterr().err and not (tmp_path / "out" / "train" / "acc.jsonl").exists()


def test_another_seed_into_the_same_out_dir_renders_its_own_audio(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    make_build_corpus(root)
    first = build_config(tmp_path / "a.yaml", root, tmp_path / "out", seed=3)
    assert main(["data", "build", str(first), "--no-progress"]) == 0
    old = built(tmp_path / "out")
    second = build_config(tmp_path / "b.yaml", root, tmp_path / "out", seed=4)
    assert main(["data", "build", str(second), "--no-progress"]) == 0
    reference = build_config(tmp_path / "r.yaml", root, tmp_path / "ref", seed=4)
    assert main(["data", "build", str(reference), "--no-progress"]) == 0
    new = built(tmp_path / "out")
    assert new == built(tmp_path / "ref")  # manifests and audio agree: both the new seed's
    assert any(old[name] != new[name] for name in new if name.endswith(".flac"))  # the seed mattered


def test_data_build_killed_and_rerun_equals_an_uninterrupted_build(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    make_build_corpus(root, scenes=6, seconds=4.0)
    path = build_config(tmp_path / "b.yaml", root, tmp_path / "out", n=40)
    journal = tmp_path / "out" / ".journal" / "train-0of1.jsonl"
    kill_when(
        cli("data", "build", str(path), "--workers", "1", "--no-progress"),
        lambda: lines_in(journal) >= 5,
        tmp_path / "killed.log",
    )
    assert not (tmp_path / "out" / "summary.json").exists()  # killed mid-way
    assert main(["data", "build", str(path), "--workers", "1", "--no-progress"]) == 0
    reference = build_config(tmp_path / "r.yaml", root, tmp_path / "ref", n=40)
    assert main(["data", "build", str(reference), "--workers", "1", "--no-progress"]) == 0
    assert built(tmp_path / "out") == built(tmp_path / "ref")
    for manifest in (tmp_path / "out" / "train").glob("*.jsonl"):
        jsonl_rows(manifest)
    records = Journal(journal).records()  # the journal: each pair once, nothing rendered twice
    assert len({r["id"] for r in records}) == len(records) == 120
    assert not list((tmp_path / "out").rglob(".*.tmp"))


# ---------------------------------------------------------------- finished run folders


class Run(BaseModel):
    output_dir: str
    optim: dict = {"lr": 1e-4}
    device: str = "cpu"


def test_a_finished_run_of_another_config_is_refused_naming_the_keys(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = Run(output_dir=str(out))
    assert start_run(cfg, out, runtime_keys=("device",)) is False
    finish_run(out, {})
    assert start_run(cfg.model_copy(update={"device": "cuda"}), out, runtime_keys=("device",)) is True
    with pytest.raises(ConfigError, match=r"holds a finished run .*differs in: optim\.lr"):
        start_run(cfg.model_copy(update={"optim": {"lr": 5e-4}}), out, runtime_keys=("device",))
    (out / "config.json").unlink()  # run files, nothing saying which config made them
    with pytest.raises(ConfigError, match=r"done\.json.* but no config\.json"):
        check_config(cfg, out)


def test_train_refuses_a_finished_run_of_another_config(tmp_path: Path) -> None:
    from auralign.train.sft.config import TrainConfig
    from auralign.train.sft.recipe import train

    model = save_tiny_qwen(tmp_path / "tiny")
    manifest = write_corpus(tmp_path / "ac", n=2)
    body = {
        "output_dir": str(tmp_path / "run"),
        "model": {"backend": "qwen2audio", "path": str(model)},
        "stages": [{"name": "ac", "data": [{"manifest": str(manifest)}], "epochs": 1}],
        "batch_size": 2,
        "optim": {"lr": 1e-4},
        "tensorboard": False,
    }
    final = train(TrainConfig.model_validate(body))
    adapter = (final / "adapter_model.safetensors").read_bytes()
    assert train(TrainConfig.model_validate(body)) == final  # the same config: a no-op
    with pytest.raises(ConfigError, match=r"run: holds a finished run .*differs in: optim\.lr"):
        train(TrainConfig.model_validate(body | {"optim": {"lr": 5e-4}}))
    assert (final / "adapter_model.safetensors").read_bytes() == adapter


DALI_MODEL = {
    "llava": {"loader": "tiny"},
    "audio": {"kind": "cavmae", "sizes": {"dim": 32, "heads": 4, "depth_a": 2, "depth_u": 1}},
}


@pytest.mark.parametrize("stage", ["prefix", "align", "distill"])
def test_every_dali_stage_refuses_a_finished_folder_of_another_config(tmp_path: Path, stage: str) -> None:
    """Each stage's own entry point, on a finished folder: a no-op with its config, refused with another
    (before any model is built)."""
    from auralign.train import dali
    from auralign.train.dali.config import AlignConfig, DistillConfig, PrefixConfig

    upstream = tmp_path / "upstream"
    upstream.mkdir()
    (upstream / "config.json").write_text(json.dumps({"model": DALI_MODEL}))
    finish_run(upstream, {})
    common = {"output_dir": str(tmp_path / stage), "model": DALI_MODEL, "data": {"manifest": "unread.jsonl"}}
    config_class, run, extra = {
        "prefix": (PrefixConfig, dali.prefix_tune, {}),
        "align": (AlignConfig, dali.align, {"prefix_dir": str(upstream)}),
        "distill": (DistillConfig, dali.distill, {"align_dir": str(upstream)}),
    }[stage]
    cfg = config_class.model_validate(common | extra | {"epochs": 2})
    out = Path(cfg.output_dir)
    start_run(cfg, out)
    finish_run(out, {"stage": stage})
    assert run(cfg, progress=False) == out
    with pytest.raises(ConfigError, match=rf"{stage}: holds a finished run .*differs in: epochs"):
        run(config_class.model_validate(common | extra | {"epochs": 3}), progress=False)


# ---------------------------------------------------------------- kill -9: caption and evaluate


@pytest.fixture(scope="module")
def acc(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("acc")
    return save_tiny_qwen(root / "tiny"), write_corpus(root / "ac", n=24)


def test_caption_killed_and_rerun_equals_an_uninterrupted_run(acc, tmp_path: Path) -> None:
    model, manifest = acc
    args = ["caption", str(manifest), "--backend", "qwen2audio", "--model", str(model)]
    args += ["--max-new-tokens", "6", "--batch-size", "1"]
    out = tmp_path / "pred.jsonl"
    partial = tmp_path / "pred.jsonl.partial"
    kill_when(cli(*args, "-o", str(out)), lambda: lines_in(partial) >= 3, tmp_path / "killed.log")
    assert not out.exists() and lines_in(partial) < 1 + 24  # killed mid-way: origin + some predictions
    assert main([*args, "-o", str(out)]) == 0
    assert main([*args, "-o", str(tmp_path / "ref.jsonl")]) == 0
    assert out.read_bytes() == (tmp_path / "ref.jsonl").read_bytes()
    assert [r["id"] for r in jsonl_rows(out)] == [f"ac-{i}" for i in range(24)]
    assert not partial.exists()


def eval_config(path: Path, model: Path, manifest: Path, out: Path) -> Path:
    return write_yaml(
        path,
        {
            "output_dir": str(out),
            "model": {"backend": "qwen2audio", "path": str(model)},
            "rows": [{"name": "base"}],
            "captioning": [{"name": "Mini", "manifest": str(manifest)}],
            "metrics": ["bleu_1", "rouge_l"],
            "generation": {"max_new_tokens": 6, "batch_size": 1},
        },
    )


def test_evaluate_killed_and_rerun_equals_an_uninterrupted_run(acc, tmp_path: Path) -> None:
    model, manifest = acc
    config = eval_config(tmp_path / "e.yaml", model, manifest, tmp_path / "out")
    partial = tmp_path / "out" / "base" / "Mini.jsonl.partial"
    kill_when(cli("evaluate", str(config)), lambda: lines_in(partial) >= 3, tmp_path / "killed.log")
    assert not (tmp_path / "out" / "results.json").exists()
    assert main(["evaluate", str(config)]) == 0
    reference = eval_config(tmp_path / "r.yaml", model, manifest, tmp_path / "ref")
    assert main(["evaluate", str(reference)]) == 0
    for name in ("base/Mini.jsonl", "base/Mini.origin.json", "results.json", "tables.md"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name
    assert len(jsonl_rows(tmp_path / "out" / "base" / "Mini.jsonl")) == 24


# ---------------------------------------------------------------- kill -9: the DALI stages


def write_clips(folder: Path, n: int) -> Path:
    """n clips (1 s tones, 2 frames each) and their audio-visual manifest."""
    captions = [f"a dog barks while a car passes {i}" for i in range(n)]
    return write_av_clips(folder, captions, step_hz=90, shade=15, references=False)


CLIPS = 12


@pytest.fixture(scope="module")
def dali_chain(tmp_path_factory) -> dict[str, Path]:
    """A manifest and finished prefix, align and distill folders (short runs) for the stages downstream."""
    root = tmp_path_factory.mktemp("dali")
    data = {"manifest": str(write_clips(root / "clips", CLIPS))}
    folders = {"manifest": Path(data["manifest"])}
    chain = {
        "prefix": {"model": DALI_MODEL, "data": data, "epochs": 1, "num_pairs": 4, "batch_size": 4},
        "align": {"prefix_dir": str(root / "prefix"), "data": data, "method": "mmd", "epochs": 1},
        "distill": {"align_dir": str(root / "align"), "data": data, "pseudo": {"max_new_tokens": 3}},
    }
    for stage, body in chain.items():
        config = write_yaml(root / f"{stage}.yaml", {"output_dir": str(root / stage), **body})
        assert main(["dali", stage, str(config), "--no-progress"]) == 0, stage
        folders[stage] = root / stage
    return folders


def run_killed_and_whole(stage: str, body: dict, tmp_path: Path, ready: Callable[[Path], bool]) -> None:
    """`auralign dali STAGE` killed once `ready(cut)` and rerun into cut/, and uninterrupted into whole/."""
    key = "output" if stage == "caption" else "output_dir"
    name = "pred.jsonl" if stage == "caption" else ""
    cut, whole = tmp_path / "cut" / name, tmp_path / "whole" / name
    config = write_yaml(tmp_path / "cut.yaml", {key: str(cut), **body})
    kill_when(cli("dali", stage, str(config), "--no-progress"), lambda: ready(cut), tmp_path / "killed.log")
    finished = cut.is_file() if stage == "caption" else (cut / "done.json").exists()
    assert not finished, "killed mid-way"
    assert main(["dali", stage, str(config), "--no-progress"]) == 0
    reference = write_yaml(tmp_path / "whole.yaml", {key: str(whole), **body})
    assert main(["dali", stage, str(reference), "--no-progress"]) == 0


def same_files(cut: Path, whole: Path, names: list[str]) -> None:
    for name in names:
        assert (cut / name).read_bytes() == (whole / name).read_bytes(), name


def test_dali_prefix_killed_and_rerun_equals_an_uninterrupted_run(dali_chain, tmp_path: Path) -> None:
    data = {"manifest": str(dali_chain["manifest"])}
    body = {"model": DALI_MODEL, "data": data, "epochs": 40, "num_pairs": 4, "batch_size": 1}
    run_killed_and_whole("prefix", body, tmp_path, lambda out: lines_in(out / "log.jsonl") >= 3)
    cut, whole = tmp_path / "cut", tmp_path / "whole"
    same_files(cut, whole, ["prefix.safetensors", "log.jsonl", "done.json"])
    assert len(jsonl_rows(cut / "log.jsonl", key="step")) == 160


def test_dali_align_killed_and_rerun_equals_an_uninterrupted_run(dali_chain, tmp_path: Path) -> None:
    data = {"manifest": str(dali_chain["manifest"])}
    body = {"prefix_dir": str(dali_chain["prefix"]), "data": data, "method": "mmd", "epochs": 4}
    body |= {"batch_size": 2, "save_every": 2, "lr": 1e-3}
    run_killed_and_whole("align", body, tmp_path, lambda out: any((out / "checkpoints").glob("epoch-*")))
    cut, whole = tmp_path / "cut", tmp_path / "whole"
    same_files(cut, whole, ["audio.safetensors", "prefix.safetensors", "log.jsonl", "done.json"])
    assert len(jsonl_rows(cut / "log.jsonl", key="step")) == 4 * CLIPS // 2


def test_dali_distill_killed_and_rerun_equals_an_uninterrupted_run(dali_chain, tmp_path: Path) -> None:
    data = {"manifest": str(dali_chain["manifest"])}
    body = {"align_dir": str(dali_chain["align"]), "data": data, "batch_size": 4, "epochs": 2}
    body |= {"pseudo": {"max_new_tokens": 8, "batch_size": 1}}
    run_killed_and_whole(
        "distill", body, tmp_path, lambda out: lines_in(out / "pseudo_captions.jsonl.partial") >= 2
    )
    cut, whole = tmp_path / "cut", tmp_path / "whole"
    names = ["pseudo_captions.jsonl", "audio_projector.safetensors", "audio.safetensors", "log.jsonl"]
    same_files(cut, whole, [*names, "done.json"])
    assert len(jsonl_rows(cut / "pseudo_captions.jsonl")) == CLIPS


def test_dali_caption_killed_and_rerun_equals_an_uninterrupted_run(dali_chain, tmp_path: Path) -> None:
    data = {"manifest": str(dali_chain["manifest"])}
    body = {"distill_dir": str(dali_chain["distill"]), "data": data, "mode": "audio-visual"}
    body |= {"generation": {"max_new_tokens": 8, "batch_size": 1}}
    run_killed_and_whole("caption", body, tmp_path, lambda out: lines_in(Path(f"{out}.partial")) >= 2)
    cut, whole = tmp_path / "cut" / "pred.jsonl", tmp_path / "whole" / "pred.jsonl"
    assert cut.read_bytes() == whole.read_bytes()
    assert len(jsonl_rows(cut)) == CLIPS
