"""`auralign caption` on a tiny Qwen2-Audio: files, folders, manifests, several audios, resume of a partial run."""

import json

import pytest

from _models_fixtures import save_tiny_qwen, write_corpus
from auralign.cli import main
from auralign.errors import DataError
from auralign.infer.caption import caption, collect
from auralign.models.acc.qwen2audio import Qwen2AudioLLM
from auralign.models.base import GenerationOptions


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("caption")
    return root, save_tiny_qwen(root / "tiny"), write_corpus(root / "acc", n=3, pairs=True, task="acc")


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_caption_cli_on_a_manifest_and_a_folder(setup, tmp_path) -> None:
    root, model, manifest = setup
    out = tmp_path / "pred.jsonl"
    args = ["caption", str(manifest), str(root / "acc" / "audio"), "-o", str(out), "--backend", "qwen2audio"]
    assert main([*args, "--model", str(model), "--max-new-tokens", "4", "--batch-size", "2"]) == 0
    rows = read(out)
    assert [r["id"] for r in rows[:3]] == ["acc-0", "acc-1", "acc-2"]
    assert len(rows) == 3 + 6  # the manifest's 3 pairs, then the folder's 6 clips one by one
    assert (
        rows[0]["prompt"] == "tell me the similarities between the two audios."
        and len(rows[0]["audios"]) == 2
    )
    assert rows[0]["references"] == ["a dog barks."] and all(isinstance(r["prediction"], str) for r in rows)
    assert rows[3]["prompt"] == "Describe the audio in one sentence." and len(rows[3]["audios"]) == 1
    assert not out.with_name("pred.jsonl.partial").exists()


def test_grouped_files_custom_prompt_and_resume(setup, tmp_path) -> None:
    root, model, _ = setup
    items = list(collect([root / "acc" / "audio"], "tell me the difference.", audios_per_sample=2))
    assert len(items) == 3 and items[0].chat.messages[0]["content"].startswith("<audio><audio>tell me")
    with pytest.raises(DataError, match="groups of 4"):
        list(collect([root / "acc" / "audio"], None, audios_per_sample=4))
    llm = Qwen2AudioLLM.from_pretrained(model)
    options = GenerationOptions(max_new_tokens=4, batch_size=2)
    full = caption(llm, items, tmp_path / "a.jsonl", options=options, progress=False)
    # a run that died after its first batch: the partial file holds one prediction, the rest is generated
    partial = tmp_path / "b.jsonl.partial"
    partial.write_text(full.read_text().splitlines()[1] + "\n")
    resumed = caption(llm, items, tmp_path / "b.jsonl", options=options, progress=False)
    assert read(resumed) == read(full)
    # killed while writing its second line: the torn line is ignored and that sample generated again
    partial = tmp_path / "c.jsonl.partial"
    lines = full.read_text().splitlines()
    partial.write_text(lines[0] + "\n" + lines[1][:15])
    resumed = caption(llm, items, tmp_path / "c.jsonl", options=options, progress=False)
    assert read(resumed) == read(full)
    # killed while writing its very first line: the torn line is closed, not glued to the next prediction
    partial = tmp_path / "d.jsonl.partial"
    partial.write_text(lines[0][:15])
    resumed = caption(llm, items, tmp_path / "d.jsonl", options=options, progress=False)
    assert resumed.read_bytes() == full.read_bytes() and not partial.exists()
