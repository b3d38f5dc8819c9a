"""The mini corpus's scenes: 10 s mixtures of 1-3 event clips of one split, and their captions.

Each scene is planned from its split's clips (which events, where, how loud, over which room tone) and
captioned 2-5 ways; the wording follows the plan ("followed by" only for events that do not overlap, "in the
background" only for a clearly quieter one). Rendering the audio is `render.py`'s job.
"""

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from auralign.data.mini.catalogue import EVENTS
from auralign.data.mini.plan import SPLITS, Clip, planning_rng, scaled

SCENE_SECONDS = 10.0
SCENES = {"train": 200, "val": 40, "test": 160}


@dataclass
class Scene:
    """One planned scene: its file (relative to OUT), split, events, room tone and captions."""

    path: str
    split: str
    events: list[dict[str, Any]]  # clip path, label, phrase, onset, seconds, level_db
    background: dict[str, Any]
    captions: list[str] = field(default_factory=list)

    @property
    def tags(self) -> str:
        """The AudioSet-style caption: the events' tags in onset order ("Dog, Siren")."""
        return ", ".join(EVENTS[e["label"]].tag for e in self.events)


def plan_scenes(seed: int, scale: float, clips: list[Clip], durations: dict[str, float]) -> list[Scene]:
    """The scenes of every split from that split's event clips (`durations`: each clip's length in seconds)."""
    scenes: list[Scene] = []
    for split in SPLITS:
        rng = planning_rng(seed, "scenes", split)
        by_label: dict[str, list[Clip]] = defaultdict(list)
        for clip in clips:
            if clip.split == split:
                by_label[clip.label].append(clip)
        labels = sorted(by_label)
        for i in range(scaled(SCENES[split], scale, minimum=2)):
            n = int(rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25]))
            chosen = [labels[j] for j in rng.choice(len(labels), size=min(n, len(labels)), replace=False)]
            events = []
            for label in chosen:
                clip = by_label[label][int(rng.integers(len(by_label[label])))]
                seconds = durations[clip.path]
                onset = round(float(rng.uniform(0.0, max(0.0, SCENE_SECONDS - seconds))), 3)
                level = round(float(rng.uniform(-30.0, -18.0)), 2)
                events.append(
                    {
                        "clip": clip.path,
                        "label": label,
                        "phrase": clip.phrase,
                        "onset": onset,
                        "seconds": seconds,
                        "level_db": level,
                    }
                )
            events.sort(key=lambda e: e["onset"])
            background = {
                "cutoff": int(rng.integers(300, 1000)),
                "level_db": round(float(rng.uniform(-62, -56)), 2),
                "seed": int(rng.integers(2**31)),
            }
            scene = Scene(f"scenes/audio/mini-{split}-{i:04d}.flac", split, events, background)
            scene.captions = scene_captions(events, rng)
            scenes.append(scene)
    return scenes


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def _phrase(event: dict[str, Any], rng: np.random.Generator, exact: bool) -> str:
    return event["phrase"] if exact else str(rng.choice(EVENTS[event["label"]].phrases))


def scene_captions(events: list[dict[str, Any]], rng: np.random.Generator) -> list[str]:
    """2-5 differently worded captions; the first uses each event's own phrase word for word.

    Wording follows the plan: "followed by" only when one event ends before the next starts, "in the
    background" only for an event at least 6 dB quieter than the other.
    """
    wanted = int(rng.integers(2, 6))
    captions: list[str] = []
    for attempt in range(40):
        ps = [_phrase(e, rng, exact=attempt == 0) for e in events]
        options = _templates(events, ps)
        text = _cap(options[0] if attempt == 0 else str(rng.choice(options)))
        if text not in captions:
            captions.append(text)
        if len(captions) == wanted:
            break
    return captions


def _templates(events: list[dict[str, Any]], p: list[str]) -> list[str]:
    if len(events) == 1:
        options = [
            p[0],
            f"{p[0]} in a quiet room",
            f"{p[0]} nearby",
            f"you can hear {p[0]}",
            f"{p[0]} against faint background noise",
        ]
        if events[0]["level_db"] < -26:
            options.append(f"{p[0]} at a distance")
        return options
    sequential = all(a["onset"] + a["seconds"] <= b["onset"] for a, b in itertools.pairwise(events))
    if len(events) == 2:
        options = [f"{p[0]} and {p[1]}", f"{p[0]} together with {p[1]}", f"{p[0]} as well as {p[1]}"]
        if sequential:
            options += [
                f"{p[0]}, followed by {p[1]}",
                f"{p[0]} and then {p[1]}",
                f"first {p[0]}, then {p[1]}",
            ]
        else:
            options += [f"{p[0]} with {p[1]} at the same time", f"{p[0]} alongside {p[1]}"]
        loud, quiet = (0, 1) if events[0]["level_db"] >= events[1]["level_db"] else (1, 0)
        if events[loud]["level_db"] - events[quiet]["level_db"] >= 6:
            options.append(f"{p[loud]} with {p[quiet]} in the background")
        return options
    options = [
        f"{p[0]}, {p[1]} and {p[2]}",
        f"{p[0]} along with {p[1]} and {p[2]}",
        f"{p[0]} with {p[1]} and {p[2]}",
    ]
    if events[0]["onset"] + events[0]["seconds"] <= events[1]["onset"]:
        options.append(f"{p[0]}, followed by {p[1]} and {p[2]}")
    return options
