"""The offline audio-visual miniature: the mini corpus' scenes, each with one drawn video frame.

Every sound label of the mini corpus has its own look (a dog is a brown four-legged shape, a telephone a red
box with a black handset, speech a person, ...), drawn with Pillow at a random size and place over one of
four settings. As in real video, some sounding things are off screen (heard, not drawn) and some drawn things
make no sound (a tree, a table, a lamp, ...). Per scene the manifest keeps:

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


BLACK, WHITE, GREY, SKIN = (25, 25, 25), (245, 245, 245), (128, 128, 128), (230, 190, 150)
BROWN, DARK, GOLD = (140, 90, 45), (70, 45, 20), (218, 165, 32)


def _legs(*xs: float, top: float = 0.7, width: float = 0.1, colour=DARK) -> tuple[Part, ...]:
    return tuple(("r", (x, top, x + width, 1.0), colour) for x in xs)


LOOKS: dict[str, Look] = {
    "man_speaking": Look("a man", 0.5, (("e", (0.3, 0, 0.7, 0.3), SKIN), ("r", (0.15, 0.3, 0.85, 0.7), (40, 80, 200)), ("r", (0.25, 0.7, 0.75, 1), (20, 20, 80)))),
    "woman_speaking": Look("a woman", 0.55, (("e", (0.25, -0.02, 0.75, 0.42), (90, 50, 20)), ("e", (0.3, 0, 0.7, 0.3), SKIN), ("p", [(0.5, 0.28), (0.05, 1), (0.95, 1)], (210, 40, 60)))),
    "siren": Look("an ambulance", 1.6, (("r", (0, 0.3, 1, 0.85), WHITE), ("r", (0, 0.55, 1, 0.65), (220, 20, 20)), ("r", (0.4, 0.12, 0.6, 0.3), (30, 90, 255)), ("e", (0.1, 0.72, 0.3, 0.98), BLACK), ("e", (0.7, 0.72, 0.9, 0.98), BLACK))),
    "beeping": Look("a microwave", 1.4, (("r", (0, 0.2, 1, 0.85), (190, 190, 195)), ("r", (0.07, 0.3, 0.65, 0.75), BLACK), ("r", (0.72, 0.3, 0.93, 0.45), (40, 220, 80)))),
    "telephone_ringing": Look("a telephone", 1.2, (("r", (0.12, 0.45, 0.88, 1), (200, 20, 20)), ("r", (0, 0.25, 1, 0.45), BLACK), ("e", (0.35, 0.55, 0.65, 0.9), WHITE))),
    "static_noise": Look("a radio", 1.3, (("r", (0.78, 0, 0.82, 0.35), GREY), ("r", (0, 0.3, 1, 1), (160, 100, 50)), ("e", (0.08, 0.42, 0.5, 0.9), (60, 40, 20)), ("r", (0.58, 0.5, 0.92, 0.62), (250, 220, 60)))),
    "notification_sound": Look("a laptop", 1.3, (("r", (0.1, 0, 0.9, 0.62), (60, 60, 65)), ("r", (0.15, 0.05, 0.85, 0.56), (120, 190, 250)), ("p", [(0.1, 0.62), (0.9, 0.62), (1, 0.8), (0, 0.8)], (200, 200, 205)))),
    "keyboard_music": Look("a piano", 1.5, (("r", (0, 0.15, 1, 0.75), BLACK), ("r", (0.03, 0.5, 0.97, 0.72), WHITE), *(("r", (x, 0.5, x + 0.05, 0.62), BLACK) for x in (0.12, 0.22, 0.42, 0.52, 0.62, 0.82)), *_legs(0.03, 0.87, top=0.75, width=0.08, colour=BLACK))),
    "plucked_string": Look("a guitar", 0.5, (("r", (0.44, 0, 0.56, 0.45), DARK), ("e", (0.2, 0.32, 0.8, 0.66), (235, 130, 30)), ("e", (0.08, 0.52, 0.92, 1), (235, 130, 30)), ("e", (0.4, 0.58, 0.6, 0.74), BLACK))),
    "ticking": Look("a clock", 1.0, (("e", (0, 0, 1, 1), BLACK), ("e", (0.08, 0.08, 0.92, 0.92), WHITE), ("r", (0.47, 0.15, 0.53, 0.52), BLACK), ("r", (0.47, 0.47, 0.8, 0.53), BLACK))),
    "low_hum": Look("a refrigerator", 0.6, (("r", (0, 0, 1, 1), (150, 155, 160)), ("r", (0.05, 0.02, 0.95, 0.98), (225, 235, 245)), ("r", (0.05, 0.36, 0.95, 0.4), (150, 155, 160)), ("r", (0.75, 0.1, 0.83, 0.3), GREY))),
    "trumpet": Look("a trumpet", 1.6, (("r", (0, 0.38, 0.66, 0.5), GOLD), ("p", [(0.6, 0.38), (1, 0.1), (1, 0.78), (0.6, 0.5)], GOLD), *(("r", (x, 0.2, x + 0.06, 0.38), (180, 130, 20)) for x in (0.22, 0.32, 0.42)))),
    "dog_bark": Look("a dog", 1.3, (("p", [(0.12, 0.45), (0, 0.2), (0.08, 0.2), (0.2, 0.42)], BROWN), ("e", (0.1, 0.35, 0.78, 0.75), BROWN), ("e", (0.6, 0.08, 0.98, 0.46), BROWN), ("e", (0.58, 0.1, 0.7, 0.4), DARK), ("e", (0.9, 0.22, 0.98, 0.3), BLACK), *_legs(0.18, 0.6, top=0.65, colour=BROWN))),
    "cat_meow": Look("a cat", 1.1, (("r", (0.02, 0.15, 0.1, 0.65), GREY), ("e", (0.05, 0.45, 0.7, 0.82), GREY), ("e", (0.52, 0.18, 0.92, 0.56), GREY), ("p", [(0.55, 0.3), (0.58, 0.02), (0.7, 0.22)], GREY), ("p", [(0.75, 0.22), (0.88, 0.02), (0.9, 0.3)], GREY), ("e", (0.6, 0.3, 0.68, 0.38), (120, 220, 60)), ("e", (0.76, 0.3, 0.84, 0.38), (120, 220, 60)), *_legs(0.12, 0.52, top=0.75, colour=GREY))),
    "cow_moo": Look("a cow", 1.5, (("e", (0.05, 0.28, 0.8, 0.72), WHITE), ("e", (0.2, 0.35, 0.4, 0.55), BLACK), ("e", (0.5, 0.45, 0.68, 0.65), BLACK), ("e", (0.7, 0.12, 1, 0.48), WHITE), ("e", (0.85, 0.32, 1, 0.48), (240, 170, 170)), *_legs(0.12, 0.62, top=0.62, colour=(60, 60, 60)))),
    "duck_quack": Look("a duck", 1.0, (("e", (0.05, 0.45, 0.8, 0.95), (150, 125, 95)), ("e", (0.5, 0.1, 0.85, 0.5), (10, 120, 50)), ("p", [(0.82, 0.25), (1, 0.32), (0.82, 0.4)], (255, 150, 0)), ("r", (0.5, 0.46, 0.7, 0.52), WHITE))),
    "frog_croak": Look("a frog", 1.3, (("e", (0.05, 0.35, 0.95, 0.95), (60, 170, 60)), ("e", (0.15, 0.15, 0.4, 0.45), (60, 170, 60)), ("e", (0.6, 0.15, 0.85, 0.45), (60, 170, 60)), ("e", (0.2, 0.2, 0.35, 0.38), WHITE), ("e", (0.65, 0.2, 0.8, 0.38), WHITE), ("e", (0.25, 0.25, 0.31, 0.33), BLACK), ("e", (0.7, 0.25, 0.76, 0.33), BLACK))),
    "horse_neigh": Look("a horse", 1.3, (("e", (0.05, 0.28, 0.75, 0.62), (95, 55, 25)), ("p", [(0.6, 0.35), (0.75, 0.05), (0.88, 0.1), (0.75, 0.45)], (95, 55, 25)), ("e", (0.72, 0.02, 1, 0.25), (95, 55, 25)), ("p", [(0.62, 0.3), (0.72, 0.0), (0.76, 0.05), (0.66, 0.35)], BLACK), *_legs(0.1, 0.22, 0.5, 0.62, top=0.55, width=0.07, colour=(95, 55, 25)))),
    "owl_hoot": Look("an owl", 0.8, (("e", (0.1, 0.05, 0.9, 1), (150, 100, 60)), ("e", (0.15, 0.12, 0.5, 0.45), WHITE), ("e", (0.5, 0.12, 0.85, 0.45), WHITE), ("e", (0.26, 0.22, 0.4, 0.36), BLACK), ("e", (0.6, 0.22, 0.74, 0.36), BLACK), ("p", [(0.44, 0.42), (0.56, 0.42), (0.5, 0.55)], (255, 150, 0)))),
    "pig_grunt": Look("a pig", 1.4, (("e", (0.05, 0.3, 0.8, 0.8), (245, 160, 175)), ("e", (0.65, 0.22, 1, 0.6), (245, 160, 175)), ("e", (0.87, 0.35, 1, 0.5), (220, 110, 130)), ("p", [(0.7, 0.28), (0.72, 0.1), (0.82, 0.25)], (220, 110, 130)), *_legs(0.15, 0.6, top=0.72, colour=(220, 110, 130)))),
    "rooster_crow": Look("a rooster", 1.0, (("p", [(0.2, 0.55), (0, 0.1), (0.15, 0.05), (0.35, 0.45)], (20, 70, 40)), ("e", (0.15, 0.35, 0.8, 0.82), (200, 80, 30)), ("e", (0.55, 0.1, 0.85, 0.42), (200, 80, 30)), ("p", [(0.58, 0.12), (0.65, 0.0), (0.72, 0.08), (0.8, 0.0), (0.82, 0.14)], (230, 0, 0)), ("p", [(0.84, 0.22), (0.98, 0.27), (0.84, 0.32)], (255, 200, 0)), *_legs(0.38, 0.55, top=0.8, width=0.05, colour=(255, 200, 0)))),
    "sheep_bleat": Look("a sheep", 1.3, (*_legs(0.2, 0.55, top=0.65, colour=BLACK), *(("e", b, WHITE) for b in ((0.05, 0.3, 0.45, 0.7), (0.3, 0.2, 0.7, 0.6), (0.3, 0.4, 0.7, 0.78), (0.45, 0.3, 0.8, 0.7))), ("e", (0.72, 0.22, 0.98, 0.55), BLACK))),
    "bird_chirp": Look("a canary", 1.0, (("p", [(0.25, 0.6), (0, 0.75), (0.05, 0.9), (0.3, 0.72)], (230, 200, 20)), ("e", (0.2, 0.4, 0.8, 0.85), (250, 225, 30)), ("e", (0.5, 0.15, 0.85, 0.5), (250, 225, 30)), ("p", [(0.84, 0.3), (1, 0.35), (0.84, 0.4)], (255, 140, 0)), ("e", (0.66, 0.25, 0.72, 0.31), BLACK))),
    "alarm_clock": Look("an alarm clock", 1.0, (("e", (0.02, 0.0, 0.35, 0.3), (210, 30, 30)), ("e", (0.65, 0.0, 0.98, 0.3), (210, 30, 30)), ("e", (0.08, 0.12, 0.92, 0.96), (210, 30, 30)), ("e", (0.2, 0.24, 0.8, 0.84), WHITE), ("r", (0.48, 0.32, 0.53, 0.56), BLACK), ("r", (0.48, 0.52, 0.7, 0.57), BLACK))),
    "camera_shutter": Look("a camera", 1.3, (("r", (0.1, 0.12, 0.35, 0.28), (60, 60, 60)), ("r", (0, 0.25, 1, 0.88), (30, 30, 30)), ("e", (0.28, 0.3, 0.72, 0.84), (110, 110, 115)), ("e", (0.38, 0.42, 0.62, 0.72), (40, 60, 140)))),
    "xylophone": Look("a xylophone", 1.4, (("r", (0, 0.55, 1, 0.65), DARK), *(("r", (0.03 + 0.16 * i, 0.2 + 0.05 * i, 0.16 + 0.16 * i, 0.85 - 0.03 * i), c) for i, c in enumerate([(230, 30, 30), (250, 140, 0), (250, 220, 0), (40, 180, 60), (30, 100, 230), (140, 50, 200)])))),
    "cello": Look("a cello", 0.55, (("r", (0.45, 0, 0.55, 0.35), BLACK), ("e", (0.15, 0.22, 0.85, 0.6), (125, 50, 20)), ("e", (0.05, 0.45, 0.95, 1), (125, 50, 20)), ("r", (0.47, 0.35, 0.53, 0.8), BLACK))),
}  # fmt: skip
# Visible things that make no sound.
DISTRACTORS: dict[str, Look] = {
    "tree": Look("a tree", 0.8, (("r", (0.4, 0.5, 0.6, 1), (100, 70, 40)), ("e", (0.02, 0, 0.98, 0.62), (35, 125, 40)))),
    "table": Look("a table", 1.5, (("r", (0, 0.4, 1, 0.52), (175, 125, 75)), ("r", (0.05, 0.52, 0.13, 1), (140, 95, 55)), ("r", (0.87, 0.52, 0.95, 1), (140, 95, 55)))),
    "lamp": Look("a lamp", 0.5, (("p", [(0.25, 0), (0.75, 0), (0.95, 0.35), (0.05, 0.35)], (250, 235, 170)), ("r", (0.45, 0.35, 0.55, 0.92), (50, 50, 50)), ("e", (0.2, 0.88, 0.8, 1), (50, 50, 50)))),
    "chair": Look("a chair", 0.6, (("r", (0.1, 0, 0.25, 0.6), (120, 60, 160)), ("r", (0.1, 0.5, 0.9, 0.62), (120, 60, 160)), ("r", (0.1, 0.62, 0.22, 1), (90, 40, 120)), ("r", (0.78, 0.62, 0.9, 1), (90, 40, 120)))),
    "plant": Look("a potted plant", 0.7, (("e", (0.1, 0, 0.55, 0.6), (90, 200, 90)), ("e", (0.45, 0.05, 0.9, 0.62), (90, 200, 90)), ("p", [(0.2, 0.58), (0.8, 0.58), (0.7, 1), (0.3, 1)], (200, 100, 50)))),
    "bookshelf": Look("a bookshelf", 0.8, (("r", (0, 0, 1, 1), (110, 70, 40)), *(("r", (0.06 + 0.15 * i, y, 0.18 + 0.15 * i, y + 0.28), c) for y in (0.06, 0.38, 0.7) for i, c in enumerate([(200, 40, 40), (40, 90, 200), (230, 200, 60), (40, 150, 80), (240, 240, 230), (150, 60, 150)])))),
}  # fmt: skip
SETTINGS = {  # sky/wall colour, ground colour, horizon (share of height)
    "in a garden": ((135, 200, 245), (80, 170, 60), 0.55),
    "in a living room": ((235, 220, 190), (150, 100, 60), 0.6),
    "on a street": ((200, 205, 215), (90, 90, 95), 0.6),
    "in a field": ((175, 215, 240), (200, 190, 90), 0.5),
}


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
        meta = {"scene": stem, "split": split, "setting": frame.setting, "visible": visible,
                "offscreen": offscreen, "silent": silent, "visual_caption": frame.caption()}  # fmt: skip
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
