"""`auralign data build` writes LLaMA-Factory's `dataset_info.json` beside the manifests, and LLaMA-Factory's
reading of it (transcribed below: its parser is not importable without installing LLaMA-Factory and its
dependencies) finds every manifest, every turn and every audio file, also after the folder is moved."""

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from auralign.cli import main
from auralign.data import load_manifest
from auralign.data.llamafactory import DATASET_INFO, dataset_entry, write_dataset_info

CONFIG = """seed: 1
out_dir: {out}
splits:
  - name: train
    bases: {{format: audiocaps, csv: {root}/scenes.csv, audio_dir: {root}/scenes}}
    events: {{format: labelled_csv, csv: {root}/events.csv}}
    pairs: {{add: 2, drop: 2, replace: 2}}
  - name: test
    bases: {{format: audiocaps, csv: {root}/scenes.csv, audio_dir: {root}/scenes}}
    events: {{format: labelled_csv, csv: {root}/events.csv}}
    pairs: {{add: 1, replace: 1}}
    ac: per_clip
abilities:
  - {{format: labelled_csv, path: {root}/events.csv, task: beeps, prompt: Which sound is it}}
mixes:
  ac_acc: {{split: train, weights: {{ac: 1, acc: 1}}, size: 6}}
"""


def make_corpus(root: Path) -> None:
    rng = np.random.default_rng(0)
    (root / "scenes").mkdir(parents=True)
    rows = ["audiocap_id,youtube_id,start_time,caption"]
    for i in range(3):
        sf.write(root / "scenes" / f"s{i}.flac", 0.1 * rng.standard_normal(16000).astype(np.float32), 16000)
        rows += [f"{2 * i},s{i},0,A man speaks near road {i}", f"{2 * i + 1},s{i},0,Someone talks {i}"]
    (root / "scenes.csv").write_text("\n".join(rows) + "\n")
    events = ["file_name,label,phrase"]
    for i, label in enumerate(["bird", "siren", "bell"]):
        tone = 0.3 * np.sin(np.arange(8000) * 0.05 * (i + 1)).astype(np.float32)
        sf.write(root / f"e{i}.flac", tone, 16000)
        events.append(f"e{i}.flac,{label},a {label} sound")
    (root / "events.csv").write_text("\n".join(events) + "\n")


# ---- a transcription of what LLaMA-Factory reads (src/llamafactory/data/parser.py, converter.py) ----------


@dataclass
class LlamaFactoryAttr:
    """The DatasetAttr fields a local sharegpt dataset uses, with LLaMA-Factory's defaults."""

    file_name: str
    formatting: str = "alpaca"
    messages: str = "conversations"
    audios: str | None = None
    role_tag: str = "from"
    content_tag: str = "value"
    user_tag: str = "human"
    assistant_tag: str = "gpt"
    observation_tag: str = "observation"
    function_tag: str = "function_call"
    system_tag: str = "system"

    @classmethod
    def from_entry(cls, entry: dict) -> "LlamaFactoryAttr":
        # A local file entry: `file_name`; `formatting` at the top; `columns` and `tags` each set the keys they
        # name and leave the others at their defaults.
        attr = cls(file_name=entry["file_name"], formatting=entry.get("formatting", "alpaca"))
        for group, keys in (("columns", ("messages", "audios")), ("tags", TAGS)):
            for key in keys:
                if key in entry.get(group, {}):
                    setattr(attr, key, entry[group][key])
        return attr


ROLES = ("user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag")
TAGS = ("role_tag", "content_tag", *ROLES)


def llamafactory_examples(dataset_dir: Path, name: str) -> list[dict]:
    """LLaMA-Factory's sharegpt reading of dataset `name`: its prompt/response turns and resolved audios
    (relative media paths under media_dir, which defaults to dataset_dir); a broken example fails here where
    LLaMA-Factory would skip it with a warning."""
    info = json.loads((dataset_dir / DATASET_INFO).read_text())
    attr = LlamaFactoryAttr.from_entry(info[name])
    assert attr.formatting == "sharegpt"
    rows = [json.loads(line) for line in (dataset_dir / attr.file_name).read_text().splitlines() if line]
    examples = []
    for row in rows:
        messages = row[attr.messages]
        if messages and messages[0][attr.role_tag] == attr.system_tag:
            messages = messages[1:]
        accept = ((attr.user_tag, attr.observation_tag), (attr.assistant_tag, attr.function_tag))
        for turn, message in enumerate(messages):
            assert message[attr.role_tag] in accept[turn % 2], f"invalid role tag in {messages}"
        assert len(messages) % 2 == 0, f"invalid message count in {messages}"
        audios = [os.path.join(dataset_dir, a) for a in row[attr.audios]]
        assert all(os.path.isfile(a) for a in audios), audios
        contents = [m[attr.content_tag] for m in messages]
        assert sum(c.count("<audio>") for c in contents) == len(audios)  # mm_plugin's check
        examples.append({"prompt": contents[:-1], "response": contents[-1], "audios": audios})
    return examples


# ---- the tests ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tool-entries")
    make_corpus(root / "corpus")
    config = root / "b.yaml"
    config.write_text(CONFIG.format(root=root / "corpus", out=root / "out"))
    assert main(["data", "build", str(config), "--workers", "1", "--no-progress"]) == 0
    return root / "out"


def test_one_entry_per_written_manifest_in_each_folder(built: Path) -> None:
    folders = {p.parent for p in built.glob("[!.]*/*.jsonl")}
    assert folders == {built / "train", built / "test", built / "abilities"}
    assert {p.parent for p in built.glob(f"*/{DATASET_INFO}")} == folders
    for folder in folders:
        info = json.loads((folder / DATASET_INFO).read_text())
        assert sorted(info) == sorted(p.stem for p in folder.glob("*.jsonl"))
        for name, entry in info.items():
            assert entry == dataset_entry(f"{name}.jsonl")
    assert sorted(json.loads((built / "train" / DATASET_INFO).read_text())) == ["ac", "ac_acc", "acc", "adc"]
    assert list(json.loads((built / "abilities" / DATASET_INFO).read_text())) == ["beeps"]


def test_llamafactory_reads_every_sample_as_the_manifest_holds_it(built: Path) -> None:
    for info_path in built.glob(f"*/{DATASET_INFO}"):
        folder = info_path.parent
        for name in json.loads(info_path.read_text()):
            samples = load_manifest(folder / f"{name}.jsonl")
            examples = llamafactory_examples(folder, name)
            assert len(examples) == len(samples) > 0
            for sample, example in zip(samples, examples, strict=True):
                assert example["response"] == sample.target
                assert example["prompt"] == [m.content for m in sample.messages[:-1] if m.role != "system"]
                assert example["audios"] == [str(p) for p in sample.audio_paths(folder)]


def test_the_entries_are_needed_and_the_folder_moves(built: Path, tmp_path: Path) -> None:
    # LLaMA-Factory's defaults (alpaca; sharegpt's `conversations` / from / human / gpt) miss these manifests
    defaults = LlamaFactoryAttr(file_name="acc.jsonl", formatting="sharegpt")
    row = json.loads((built / "train" / "acc.jsonl").read_text().splitlines()[0])
    assert defaults.messages not in row and defaults.role_tag not in row["messages"][0]
    # the pair manifests' audio is in the output folder: a copy elsewhere reads its own files
    moved = tmp_path / "elsewhere" / "data"
    shutil.copytree(built, moved)
    for name in ("acc", "adc"):
        audios = [
            Path(a).resolve() for e in llamafactory_examples(moved / "train", name) for a in e["audios"]
        ]
        assert audios and all(a.is_relative_to(moved.resolve()) for a in audios)


def test_write_dataset_info_is_sorted_and_atomic(tmp_path: Path, monkeypatch) -> None:
    path = write_dataset_info(tmp_path, ["b", "a", "b"])
    assert list(json.loads(path.read_text())) == ["a", "b"]
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)  # the rename that publishes the new file never happens
    with pytest.raises(OSError):
        write_dataset_info(tmp_path, ["c"])
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [DATASET_INFO]
