"""Shared helpers for the models/train/infer tests: synthetic audio, small manifests, a saved tiny Qwen2-Audio."""

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from auralign.data.manifest import make_sample, write_manifest

# One thread: on a shared 2-core machine, two OpenMP threads wait on each other at every op (a 135M-model
# step measured 50 s with 2 threads and 3 s with 1 while other jobs ran). Tests check results, not speed.
torch.set_num_threads(1)

SR = 16000
CAPTIONS = ["a dog barks.", "a car passes.", "a bird sings.", "a dog barks and a car passes."]


def tone(seconds: float, freq: float, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    noise = np.random.default_rng(seed).standard_normal(len(t)) * 0.01
    return (0.3 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


def write_corpus(folder: Path, n: int = 4, pairs: bool = False, task: str = "ac") -> Path:
    """A manifest of `n` samples over synthetic clips (1-2 s tones); two audios per sample with `pairs`."""
    audio = folder / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    samples = []
    for i in range(n):
        names = []
        for j in range(2 if pairs else 1):
            name = f"audio/{task}-{i}-{j}.wav"
            sf.write(folder / name, tone(1.0 + 0.25 * j, 220 * (i + 1 + j), seed=i), SR)
            names.append(name)
        prompt = (
            "tell me the similarities between the two audios."
            if pairs
            else "describe the audio in one sentence."
        )
        caption = CAPTIONS[i % len(CAPTIONS)]
        samples.append(make_sample(f"{task}-{i}", task, prompt, names, answer=caption, references=[caption]))
    path = folder / f"{task}.jsonl"
    write_manifest(path, samples)
    return path


def save_tiny_qwen(folder: Path) -> Path:
    """A tiny Qwen2-Audio checkpoint folder (see `auralign.models.testing.tiny_qwen2audio`)."""
    from auralign.models.testing import tiny_qwen2audio

    tiny_qwen2audio(folder)
    return folder


def write_av_clips(
    folder: Path, captions: list[str], *, step_hz: float, shade: int, references: bool
) -> Path:
    """One clip per caption (a 1 s tone `step_hz` higher per clip, two random frames `shade` brighter per clip)
    and their audio-visual manifest, paths relative to it; `references` adds each caption and "a sound"."""
    import json

    from PIL import Image

    (folder / "audio").mkdir(parents=True)
    (folder / "frames").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i, caption in enumerate(captions):
        t = np.arange(16000) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (200 + step_hz * i) * t) + 0.01 * rng.normal(size=t.size)
        sf.write(folder / "audio" / f"c{i}.wav", wave.astype(np.float32), 16000)
        frames = []
        for j in range(2):
            pixels = (rng.random((42, 60, 3)) * 60 + shade * i).clip(0, 255).astype("uint8")
            Image.fromarray(pixels).save(folder / "frames" / f"c{i}-{j}.png")
            frames.append(f"frames/c{i}-{j}.png")
        row = {"id": f"c{i}", "audio": f"audio/c{i}.wav", "frames": frames, "caption": caption}
        rows.append(row | ({"references": [caption, "a sound"]} if references else {}))
    manifest = folder / "av.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest
