"""The audio-visual miniature: deterministic, one look per class, off-screen sounds and silent things, clean splits."""

from pathlib import Path

import numpy as np
import pytest

from auralign.data.audiovisual import read_av_manifest, read_image_captions
from auralign.data.mini.av import (
    DISTRACTORS,
    LOOKS,
    PREFIX_PAIRS,
    Frame,
    build_mini_av,
    render_frame,
    visual_caption,
)
from auralign.data.mini.catalogue import EVENTS
from auralign.data.mini.corpus import build_mini_corpus
from auralign.data.mini.plan import SPLITS
from auralign.errors import DataError

SCALE = 0.1


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("miniav")
    build_mini_corpus(root / "mini", seed=0, progress=False, scale=SCALE, workers=2)
    summary = build_mini_av(root / "mini", root / "a" / "av", seed=0, scale=SCALE)
    return root, root / "a" / "av", summary


def test_every_sound_label_has_a_look_and_all_looks_differ() -> None:
    assert set(LOOKS) == set(EVENTS)
    keys = [*LOOKS, *DISTRACTORS]
    assert len({look.noun for look in [*LOOKS.values(), *DISTRACTORS.values()]}) == len(keys)
    images = {
        k: np.asarray(render_frame(Frame([k], "in a garden", [(0.3, 0.4, 0.7, 0.9)], [0] * 6)), np.float32)
        for k in keys
    }
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            assert np.abs(images[a] - images[b]).mean() > 2.0, (a, b)


def test_visual_caption_is_a_function_of_what_is_seen() -> None:
    assert visual_caption(["tree", "dog_bark"], "in a garden") == "a dog and a tree in a garden"
    assert visual_caption(["dog_bark", "tree"], "in a garden") == "a dog and a tree in a garden"
    assert visual_caption(["lamp", "cat_meow", "man_speaking"], "in a living room") == (
        "a man, a cat and a lamp in a living room"
    )


def test_manifests_splits_and_captions(built) -> None:
    _root, out, summary = built
    sets = {s: read_av_manifest(out / "av" / f"{s}.jsonl", check_files=True) for s in SPLITS}
    assert {s: len(v) for s, v in sets.items()} == summary["scenes"]
    ids = [x.id for v in sets.values() for x in v]
    audios = [x.audio.resolve() for v in sets.values() for x in v]
    assert len(set(ids)) == len(ids) and len(set(audios)) == len(audios)
    assert all(x.meta["split"] == s and x.id.startswith(f"mini-{s}-") for s, v in sets.items() for x in v)
    train = sets["train"]
    assert all(not x.references for x in train)  # alignment needs no audio captions
    with_caption = [x for x in train if x.caption is not None]
    assert len(with_caption) == min(PREFIX_PAIRS, len(train)) == summary["prefix_pairs"]
    assert all(x.references and x.caption is None for s in ("val", "test") for x in sets[s])
    for x in [x for v in sets.values() for x in v]:
        assert len(x.frames) == 1 and x.frames[0].suffix == ".png"
        seen = visual_caption(x.meta["visible"] + x.meta["silent"], x.meta["setting"])
        assert x.meta["visual_caption"] == seen
        assert not set(x.meta["visible"]) & set(x.meta["offscreen"])
        assert all(LOOKS[label].noun not in seen for label in x.meta["offscreen"])
    assert summary["offscreen_sources"] > 0 and summary["silent_objects"] > 0


def test_captioner_pairs(built) -> None:
    _, out, summary = built
    for split in ("train", "val"):
        items = read_image_captions(out / "captioner" / f"{split}.jsonl")
        assert len(items) == summary["captioner_images"][split]
        for it in items:
            assert it.image.is_file()
            assert it.caption == visual_caption(it.meta["objects"], it.meta["setting"])
    train = {it.caption for it in read_image_captions(out / "captioner" / "train.jsonl")}
    assert len(train) > len(read_image_captions(out / "captioner" / "train.jsonl")) // 2


def test_deterministic_and_rerun_is_a_no_op(built) -> None:
    root, out, summary = built
    again = build_mini_av(root / "mini", root / "b" / "av", seed=0, scale=SCALE)
    other = root / "b" / "av"
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file() and p.name != "mini_av.json")
    assert files == sorted(
        p.relative_to(other) for p in other.rglob("*") if p.is_file() and p.name != "mini_av.json"
    )
    assert all((out / f).read_bytes() == (other / f).read_bytes() for f in files)
    assert {k: v for k, v in again.items() if k != "build_seconds"} == {
        k: v for k, v in summary.items() if k != "build_seconds"
    }
    stamp = (out / "frames").stat().st_mtime_ns
    assert build_mini_av(root / "mini", out, seed=0, scale=SCALE) == summary
    assert (out / "frames").stat().st_mtime_ns == stamp
    with pytest.raises(DataError, match="other settings"):
        build_mini_av(root / "mini", out, seed=1, scale=SCALE)


def test_a_missing_mini_corpus_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"train\.csv: not found; build the mini corpus first"):
        build_mini_av(tmp_path / "nothing", tmp_path / "out")
