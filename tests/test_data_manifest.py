import json
from pathlib import Path

import pytest

from auralign.data import load_manifest, make_sample, read_manifest, write_manifest
from auralign.errors import DataError


def _sample(i: int):
    return make_sample(
        f"s{i}", "acc", "Tell me the similarities.", ["a.flac", "b.flac"], "a dog barks", ["a dog barks"]
    )


def test_round_trip_is_swift_compatible(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    assert write_manifest(path, (_sample(i) for i in range(3))) == 3
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows[0]["messages"][0] == {"role": "user", "content": "<audio><audio>Tell me the similarities."}
    assert rows[0]["audios"] == ["a.flac", "b.flac"]
    samples = load_manifest(path)
    assert [s.id for s in samples] == ["s0", "s1", "s2"]
    assert samples[0].target == "a dog barks" and samples[0].prompt == "Tell me the similarities."
    assert samples[0].audio_paths(tmp_path) == [tmp_path / "a.flac", tmp_path / "b.flac"]


def test_write_is_byte_identical(tmp_path: Path) -> None:
    write_manifest(tmp_path / "a.jsonl", [_sample(0)])
    write_manifest(tmp_path / "b.jsonl", [_sample(0)])
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"id": "x", "task": "ac", "messages": [', "broken JSON"),
        ("[1, 2]", "expected a JSON object"),
        (
            '{"id": "x", "task": "ac", "messages": [{"role": "user", "content": "<audio>hi"}], "audios": []}',
            "tag",
        ),
        ('{"id": "x", "task": "ac", "messages": [{"role": "bot", "content": "hi"}]}', "messages.0.role"),
        ('{"id": "x", "task": "ac", "messages": [{"role": "user", "content": "hi"}], "extra": 1}', "extra"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "m.jsonl"
    good = json.dumps(_sample(0).model_dump())
    path.write_text(f"{good}\n\n{line}\n")
    with pytest.raises(DataError) as err:
        list(read_manifest(path))
    assert f"{path}:3:" in str(err.value) and problem in str(err.value)


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    write_manifest(path, [_sample(0)])
    before = path.read_bytes()

    def broken():
        yield _sample(1)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_manifest(path, broken())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.jsonl"]  # no temp file left behind


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="manifest not found"):
        list(read_manifest(tmp_path / "none.jsonl"))
