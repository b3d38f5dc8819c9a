"""`auralign caption` on a tiny Qwen2-Audio: files, folders, manifests, several audios, resume of a partial run."""

import json

import pytest

from _models_fixtures import save_tiny_qwen, write_corpus
from auralign.cli import main
from auralign.errors import DataError
from auralign.infer.caption import caption, collect, model_digest, origin
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
    # a journal starts with its origin line (what produces the predictions), then one line per prediction
    head = json.dumps({"origin": origin(items, options, model_digest(llm))}, ensure_ascii=False) + "\n"
    # a run that died after its first batch: the partial file holds one prediction, the rest is generated
    partial = tmp_path / "b.jsonl.partial"
    partial.write_text(head + full.read_text().splitlines()[1] + "\n")
    resumed = caption(llm, items, tmp_path / "b.jsonl", options=options, progress=False)
    assert read(resumed) == read(full)
    # killed while writing its second line: the torn line is ignored and that sample generated again
    partial = tmp_path / "c.jsonl.partial"
    lines = full.read_text().splitlines()
    partial.write_text(head + lines[0] + "\n" + lines[1][:15])
    resumed = caption(llm, items, tmp_path / "c.jsonl", options=options, progress=False)
    assert read(resumed) == read(full)
    # killed while writing its first prediction: the torn line is closed, not glued to the next prediction
    partial = tmp_path / "d.jsonl.partial"
    partial.write_text(head + lines[0][:15])
    resumed = caption(llm, items, tmp_path / "d.jsonl", options=options, progress=False)
    assert resumed.read_bytes() == full.read_bytes() and not partial.exists()
    # a journal holding no whole line at all holds no work: the run starts afresh
    partial = tmp_path / "e.jsonl.partial"
    partial.write_text(head[:15])
    resumed = caption(llm, items, tmp_path / "e.jsonl", options=options, progress=False)
    assert resumed.read_bytes() == full.read_bytes() and not partial.exists()


def test_a_rerun_with_another_prompt_options_or_model_is_refused_not_mixed(
    setup, tmp_path, monkeypatch
) -> None:
    from auralign.models.testing import tiny_qwen2audio

    root, model, _ = setup
    llm = Qwen2AudioLLM.from_pretrained(model)
    options = GenerationOptions(max_new_tokens=4, batch_size=2)
    items = list(collect([root / "acc" / "audio"], "tell me the difference."))
    full = caption(llm, items, tmp_path / "full.jsonl", options=options, progress=False)
    out = tmp_path / "b.jsonl"
    generate, calls = llm.generate, []

    def killed_in_second_batch(chats, options):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return generate(chats, options)

    monkeypatch.setattr(llm, "generate", killed_in_second_batch)
    with pytest.raises(KeyboardInterrupt):
        caption(llm, items, out, options=options, progress=False)
    monkeypatch.setattr(llm, "generate", generate)
    partial = out.with_name("b.jsonl.partial")
    kept = partial.read_bytes()
    other_prompt = list(collect([root / "acc" / "audio"], "describe the audio in one sentence."))
    with pytest.raises(DataError, match=r"b\.jsonl\.partial: .*differs in: prompts"):
        caption(llm, other_prompt, out, options=options, progress=False)
    with pytest.raises(DataError, match=r"differs in: options\.max_new_tokens"):
        caption(llm, items, out, options=options.model_copy(update={"max_new_tokens": 6}), progress=False)
    with pytest.raises(DataError, match=r"differs in: model\.weights"):
        caption(tiny_qwen2audio(seed=1), items, out, options=options, progress=False)
    with pytest.raises(DataError, match=r"differs in: inputs"):
        caption(llm, items[:-1], out, options=options, progress=False)
    assert partial.read_bytes() == kept and not out.exists()  # refused: nothing touched
    resumed = caption(llm, items, out, options=options, progress=False)
    assert resumed.read_bytes() == full.read_bytes() and not partial.exists()
    # the batch size decides nothing when decoding greedily (a resume may change it), but does when sampling
    bigger = options.model_copy(update={"batch_size": 3})
    assert origin(items, options, "m") == origin(items, bigger, "m")
    sampled = options.model_copy(update={"do_sample": True})
    assert origin(items, sampled, "m") != origin(items, sampled.model_copy(update={"batch_size": 3}), "m")


@pytest.mark.parametrize("empty", ["folder", "manifest"])
def test_nothing_to_caption_is_an_error_and_keeps_the_existing_output(setup, tmp_path, empty, capsys) -> None:
    _, model, manifest = setup
    out = tmp_path / "pred.jsonl"
    args = ["--backend", "qwen2audio", "--model", str(model), "--max-new-tokens", "2"]
    assert main(["caption", str(manifest), "-o", str(out), *args]) == 0
    before = out.read_bytes()
    source = tmp_path / "empty"
    if empty == "folder":
        source.mkdir()
    else:
        source = tmp_path / "empty.jsonl"
        source.write_text("")
    assert main(["caption", str(source), "-o", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert f"{source}: no audio files or manifest samples to caption" in err
    assert "Traceback" not in err and out.read_bytes() == before
    with pytest.raises(DataError, match="no samples to caption"):
        caption(Qwen2AudioLLM.from_pretrained(model), [], out, progress=False)
    assert out.read_bytes() == before
