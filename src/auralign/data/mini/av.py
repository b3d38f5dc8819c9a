"""The offline audio-visual miniature: the mini corpus' scenes, each with one drawn video frame.

Every sound label of the mini corpus has its own look (a dog is a brown four-legged shape, a telephone a red
box with a black handset, speech a person, ...), drawn with Pillow at a random size and place over one of
four settings. As in real video, some sounding things are off screen (heard, not drawn) and some drawn things
make no sound (a tree, a table, a lamp, ...). The looks, silent things and settings are data (looks.yaml);
this module plans and draws the frames. Per scene the manifest keeps:

- the audio: the mini corpus' 10 s scene, unchanged (paths relative to the manifest);
- one frame (PNG, 64 x 64 by default);
- `meta.visual_caption`: what is seen ("a dog and a tree in a garden");
- `references`: what is heard, the scene's mini-corpus captions, on validation and test only.

The train split carries no audio captions, except `caption` on 16 scenes for DALI's prefix tuning.
`captioner/{train,val}.jsonl` are separate images with visual captions: the image captioner's own data, as
LLaVA learned from image-text data that are not the audio-visual clips.

Layout::

    OUT/av/{train,val,test}.jsonl       AVSample manifests (audio.py: read_av_manifest)
    OUT/frames/<scene>.png
    OUT/captioner/{train,val}.jsonl     {"id", "image", "caption", "meta": {"objects", "setting"}}
    OUT/captioner/images/<id>.png
    OUT/mini_av.json                    seed, scale, sizes, counts, the look of every class

Deterministic from the seed; a finished build with the same settings is a no-op.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from auralign.data.audiovisual import AVSample, ImageCaption, write_av_manifest, write_image_captions
from auralign.data.mini.catalogue import read_data_file
from auralign.data.mini.plan import SPLITS, planning_rng
from auralign.errors import DataError
from auralign.fileio import atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)

VERSION = 1
PREFIX_PAIRS = 16  # DALI's prefix tuning uses 16 (frame, audio caption) pairs
CAPTIONER_IMAGES = {"train": 3000, "val": 64}
MAX_OBJECTS = 4
P_ON_SCREEN = 0.7

Box = tuple[float, float, float, float]
Part = tuple[str, Any, tuple[int, int, int]]  # ("e"llipse | "r"ect | "p"olygon, box or points, colour)


@dataclass(frozen=True)
class Look:
    noun: str  # the visual caption's words: "a dog"
    aspect: float  # width / height
    parts: tuple[Part, ...]  # in a unit box, y down, drawn in order


def _read_drawings() -> tuple[dict[str, Look], dict[str, Look], dict[str, tuple]]:
    """LOOKS, DISTRACTORS and SETTINGS from looks.yaml, colour names resolved, as immutable tuples."""
    data = read_data_file("looks.yaml")

    def colour(value: str | list[int]) -> tuple[int, int, int]:
        r, g, b = data["colours"][value] if isinstance(value, str) else value
        return (r, g, b)

    def look(entry: dict[str, Any]) -> Look:
        parts = tuple(
            (kind, tuple(map(tuple, geometry)) if kind == "p" else tuple(geometry), colour(fill))
            for kind, geometry, fill in entry["parts"]
        )
        return Look(entry["noun"], entry["aspect"], parts)

    looks, distractors = ({k: look(v) for k, v in data[name].items()} for name in ("looks", "distractors"))
    settings = {k: (colour(v["sky"]), colour(v["ground"]), v["horizon"]) for k, v in data["settings"].items()}
    return looks, distractors, settings


# LOOKS: one per sound label; DISTRACTORS: visible things that make no sound; SETTINGS: sky, ground, horizon.
LOOKS, DISTRACTORS, SETTINGS = _read_drawings()


@dataclass
class Frame:
    """What one image shows: objects left to right (class keys), where and how big, and the setting."""

    objects: list[str]
    setting: str
    boxes: list[Box]
    jitter: list[int]  # background colour offsets (sky r, g, b, ground r, g, b)

    def caption(self) -> str:
        return visual_caption(self.objects, self.setting)


def _look(key: str) -> Look:
    return LOOKS[key] if key in LOOKS else DISTRACTORS[key]


def visual_caption(objects: list[str], setting: str) -> str:
    """What is seen, things in a fixed order (sound sources as in EVENTS, then silent things): the caption is
    a function of what is in the picture, not of where."""
    order = [*LOOKS, *DISTRACTORS]
    nouns = [_look(k).noun for k in sorted(set(objects), key=order.index)]
    things = nouns[0] if len(nouns) == 1 else ", ".join(nouns[:-1]) + " and " + nouns[-1]
    return f"{things} {setting}"


def plan_frame(rng: np.random.Generator, objects: list[str]) -> Frame:
    """Random setting, order, sizes and places: one slot per object, left to right, standing on the ground."""
    setting = str(rng.choice(list(SETTINGS)))
    horizon = SETTINGS[setting][2]
    order = [objects[i] for i in rng.permutation(len(objects))]
    slot = 1.0 / max(1, len(order))
    boxes = []
    for i, key in enumerate(order):
        h = float(rng.uniform(0.32, 0.55))
        w = h * _look(key).aspect
        if w > slot * 1.15:  # keep neighbours mostly apart
            w, h = slot * 1.15, slot * 1.15 / _look(key).aspect
        cx = (i + 0.5) * slot + float(rng.uniform(-0.12, 0.12)) * slot
        bottom = float(rng.uniform(horizon + 0.12, 0.98))
        x0 = min(max(cx - w / 2, 0.0), 1.0 - w)
        boxes.append((x0, bottom - h, x0 + w, bottom))
    jitter = [int(v) for v in rng.integers(-18, 19, size=6)]
    return Frame(order, setting, boxes, jitter)


def render_frame(frame: Frame, size: int = 64, supersample: int = 4) -> Any:
    """The frame as a PIL image, drawn large and downsampled so that edges are smooth."""
    from PIL import Image, ImageDraw

    big = size * supersample
    sky, ground, horizon = SETTINGS[frame.setting]
    image = Image.new("RGB", (big, big), _clip(sky, frame.jitter[:3]))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, int(horizon * big), big, big), fill=_clip(ground, frame.jitter[3:]))
    for key, (x0, y0, x1, y1) in zip(frame.objects, frame.boxes, strict=True):
        w, h = (x1 - x0) * big, (y1 - y0) * big

        def at(x: float, y: float, x0: float = x0, y0: float = y0, w: float = w, h: float = h) -> tuple:
            return (x0 * big + x * w, y0 * big + y * h)

        for kind, geometry, colour in _look(key).parts:
            if kind == "p":
                draw.polygon([at(x, y) for x, y in geometry], fill=colour)
            else:
                a, b = at(*geometry[:2]), at(*geometry[2:])
                (draw.ellipse if kind == "e" else draw.rectangle)((*a, *b), fill=colour)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def _clip(colour: tuple[int, int, int], offset: list[int]) -> tuple[int, int, int]:
    r, g, b = (min(255, max(0, c + o)) for c, o in zip(colour, offset, strict=True))
    return (r, g, b)


def _png(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=False)
    return buffer.getvalue()


# --- the audio-visual scenes --------------------------------------------------------------------------------


def _scene_captions(mini: Path) -> dict[str, list[str]]:
    captions: dict[str, list[str]] = {}
    for split in SPLITS:
        path = mini / "scenes" / f"{split}.csv"
        if not path.is_file():
            raise DataError(f"{path}: not found; build the mini corpus first (auralign data mini {mini})")
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                captions.setdefault(row["youtube_id"], []).append(row["caption"])
    return captions


def _scenes(mini: Path) -> list[dict[str, Any]]:
    path = mini / "scenes" / "composition.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: not found; build the mini corpus first (auralign data mini {mini})")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plan_scene(seed: int, scene: dict[str, Any]) -> tuple[Frame, list[str], list[str], list[str]]:
    """Frame, visible sound sources, off-screen sources and silent things for one mini-corpus scene."""
    rng = planning_rng(seed, "av-scene", scene["file"])
    labels = [e["label"] for e in scene["events"]]
    visible = [lab for lab in labels if rng.random() < P_ON_SCREEN]
    offscreen = [lab for lab in labels if lab not in visible]
    n_silent = int(rng.choice([0, 1, 2], p=[0.35, 0.45, 0.2]))
    n_silent = min(n_silent, MAX_OBJECTS - len(visible))
    if not visible and n_silent == 0:
        n_silent = 1  # a frame always shows something, even if what sounds is off screen
    silent = [str(k) for k in rng.choice(list(DISTRACTORS), size=n_silent, replace=False)]
    return plan_frame(rng, visible + silent), visible, offscreen, silent


def _av_samples(mini: Path, out: Path, seed: int, size: int, scale: float) -> dict[str, list[AVSample]]:
    captions = _scene_captions(mini)
    by_split: dict[str, list[AVSample]] = {s: [] for s in SPLITS}
    for scene in _scenes(mini):
        stem = Path(scene["file"]).stem
        frame, visible, offscreen, silent = plan_scene(seed, scene)
        png = out / "frames" / f"{stem}.png"
        if not png.is_file():
            atomic_write_bytes(png, _png(render_frame(frame, size)))
        split = scene["split"]
        meta = {
            "scene": stem,
            "split": split,
            "setting": frame.setting,
            "visible": visible,
            "offscreen": offscreen,
            "silent": silent,
            "visual_caption": frame.caption(),
        }
        refs = captions.get(stem, []) if split != "train" else []
        by_split[split].append(AVSample(stem, mini / scene["file"], [png], None, refs, meta))
    train = by_split["train"]
    if train:
        rng = planning_rng(seed, "prefix-pairs")
        for i in sorted(rng.choice(len(train), size=min(PREFIX_PAIRS, len(train)), replace=False)):
            train[i].caption = captions[train[i].id][0]  # the caption that uses each event's own phrase
            train[i].meta["prefix_tuning"] = True
    return by_split


def _captioner_items(out: Path, seed: int, size: int, scale: float) -> dict[str, list[ImageCaption]]:
    """Separate pictures of 1-3 sound sources (any class) and 0-2 silent things, with their visual captions."""
    items: dict[str, list[ImageCaption]] = {}
    for split, count in CAPTIONER_IMAGES.items():
        rng = planning_rng(seed, "captioner", split)
        items[split] = []
        for i in range(max(4, round(count * scale))):
            n = int(rng.choice([1, 2, 3], p=[0.35, 0.4, 0.25]))
            sources = [str(k) for k in rng.choice(list(LOOKS), size=n, replace=False)]
            n_silent = min(int(rng.choice([0, 1, 2], p=[0.4, 0.4, 0.2])), MAX_OBJECTS - n)
            silent = [str(k) for k in rng.choice(list(DISTRACTORS), size=n_silent, replace=False)]
            frame = plan_frame(rng, sources + silent)
            path = out / "captioner" / "images" / f"cap-{split}-{i:04d}.png"
            if not path.is_file():
                atomic_write_bytes(path, _png(render_frame(frame, size)))
            objects = sorted(frame.objects)
            meta = {"objects": objects, "nouns": [_look(k).noun for k in objects], "setting": frame.setting}
            items[split].append(ImageCaption(path.stem, path, frame.caption(), meta))
    return items


def build_mini_av(
    mini_dir: str | Path, out_dir: str | Path, seed: int = 0, scale: float = 1.0, image_size: int = 64
) -> dict[str, Any]:
    """Build (or confirm) the audio-visual miniature in `out_dir` from a built mini corpus in `mini_dir`.

    `scale` multiplies the captioner's image counts (the scenes are the mini corpus' own: build it at a small
    scale for a small miniature). Returns the mini_av.json summary.
    """
    mini, out = Path(mini_dir), Path(out_dir)
    state = {"version": VERSION, "seed": seed, "scale": scale, "image_size": image_size}
    summary_path = out / "mini_av.json"
    if summary_path.is_file():
        done = json.loads(summary_path.read_text(encoding="utf-8"))
        if {k: done.get(k) for k in state} == state:
            return done
        raise DataError(
            f"{out}: holds an audio-visual miniature built with other settings; use another folder"
        )
    start = time.perf_counter()
    av = _av_samples(mini, out, seed, image_size, scale)
    for split, samples in av.items():
        write_av_manifest(out / "av" / f"{split}.jsonl", samples)
    cap = _captioner_items(out, seed, image_size, scale)
    for split, items in cap.items():
        write_image_captions(out / "captioner" / f"{split}.jsonl", items)
    summary = {**state, "mini_corpus": str(mini.absolute()), **_counts(av, cap)}
    summary["looks"] = {k: v.noun for k, v in {**LOOKS, **DISTRACTORS}.items()}
    summary["build_seconds"] = round(time.perf_counter() - start, 1)
    atomic_write_text(summary_path, json.dumps(summary, indent=2) + "\n")
    log.info("%s: audio-visual miniature built in %.1f s", out, summary["build_seconds"])
    return summary


def _counts(av: dict[str, list[AVSample]], cap: dict[str, list[ImageCaption]]) -> dict[str, Any]:
    return {
        "scenes": {s: len(v) for s, v in av.items()},
        "prefix_pairs": sum(x.caption is not None for x in av["train"]),
        "offscreen_sources": sum(len(x.meta["offscreen"]) for v in av.values() for x in v),
        "silent_objects": sum(len(x.meta["silent"]) for v in av.values() for x in v),
        "captioner_images": {s: len(v) for s, v in cap.items()},
    }
