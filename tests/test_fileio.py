import os
import stat
from pathlib import Path

import pytest

from auralign.fileio import atomic_write, atomic_write_text


def test_atomic_write_gives_a_normal_file_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644


def test_atomic_write_leaves_old_file_on_error(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_write(path) as handle:
        handle.write("new")
        raise RuntimeError("crash")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_journal_skips_a_torn_line_and_closes_it_before_appending(tmp_path):
    from auralign.fileio import Journal

    path = tmp_path / "j.jsonl"
    journal = Journal(path, sort_keys=True)
    with journal:
        journal.append({"id": "a", "v": 1})
        journal.append({"v": 2, "id": "b"})
    with path.open("a") as handle:
        handle.write('{"id": "c", "v"')  # a kill -9 mid-write
    assert [r["id"] for r in journal.records()] == ["a", "b"]
    journal.append({"id": "c", "v": 3})
    assert path.read_text().splitlines()[1] == '{"id": "b", "v": 2}'
    assert list(journal.by("id")) == ["a", "b", "c"]
    journal.keep(lambda r: r["v"] != 2)
    assert path.read_text() == '{"id": "a", "v": 1}\n{"id": "c", "v": 3}\n'
    journal.finish(tmp_path / "out.jsonl", ["x", "y"])
    assert (tmp_path / "out.jsonl").read_text() == "x\ny\n" and not path.exists()


def test_atomic_dir_publishes_on_success_and_keeps_the_old_folder_on_error(tmp_path):
    from auralign.fileio import atomic_dir

    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "w.bin").write_bytes(b"1")
    assert (target / "w.bin").read_bytes() == b"1"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "w.bin").write_bytes(b"2")
        raise RuntimeError("killed")
    assert (target / "w.bin").read_bytes() == b"1"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_file_cache_recomputes_an_edited_file(tmp_path):
    import os

    from auralign.fileio import FileCache

    src = tmp_path / "clip.txt"
    src.write_text("one")
    cache = FileCache(
        tmp_path / "cache", ".txt", lambda v, h: h.write(v.encode()), lambda h: h.read().decode()
    )
    assert cache.get(src, lambda: "computed") == "computed" and cache.misses == 1
    assert cache.get(src, lambda: "again") == "computed" and cache.hits == 1
    src.write_text("two!")
    os.utime(src, ns=(1, 1))
    assert not cache.has(src) and cache.get(src, lambda: "new") == "new"
