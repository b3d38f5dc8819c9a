from pathlib import Path

import pytest

from auralign.data import load_manifest
from auralign.quickstart import MINI_PAIRS, run


@pytest.mark.slow
def test_quickstart_builds_corpus_and_manifests_then_resumes(tmp_path: Path) -> None:
    first = run(tmp_path, seed=0, workers=2, progress=False)
    for split, count in MINI_PAIRS.items():
        pairs = first["data"]["splits"][split]["pairs"]
        assert pairs == {"add": count, "drop": count, "replace": count}
        acc = load_manifest(tmp_path / "data" / split / "acc.jsonl")
        assert len(acc) == 3 * count and all(s.target for s in acc)
        assert all(p.is_file() for s in acc[:5] for p in s.audio_paths(tmp_path / "data" / split))
    assert len(list((tmp_path / "data" / "abilities").glob("*.jsonl"))) == 8
    second = run(tmp_path, seed=0, workers=2, progress=False)
    assert second["data"]["this_run"].get("rendered", 0) == 0
