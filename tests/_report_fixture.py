"""A TEST FIXTURE run folder for the report: made-up but plausible numbers, not results of any run.

It follows the run-folder contract of docs/report.md as `auralign quickstart` writes it: results.json, one
training log per configuration (AC+ADC and AC+ACC in two stages), and example clips (FLAC and one large WAV
that the report must re-encode). Run it as a script to build one for a look: python tests/_report_fixture.py OUT
"""

import json
import math
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

CONFIGS = ("AC", "ADC", "ACC", "AC+ADC", "AC+ACC")
TASKS = {"voice_type": "VSC", "speech_style": "SER", "instrument": "MIC", "rhythm": "MGC"}

# Shaped like the paper's findings (ADC forgets, ACC does not), values invented for the fixture.
CAPTIONING = {
    "base": (0.412, 0.231, 0.128, 0.067, 0.118, 0.301, 0.142, 0.402),
    "AC": (0.611, 0.452, 0.321, 0.228, 0.204, 0.472, 0.655, 0.681),
    "ADC": (0.244, 0.102, 0.041, 0.013, 0.077, 0.198, 0.058, 0.311),
    "ACC": (0.634, 0.471, 0.335, 0.241, 0.211, 0.486, 0.702, 0.694),
    "AC+ADC": (0.575, 0.410, 0.288, 0.197, 0.191, 0.447, 0.561, 0.652),
    "AC+ACC": (0.648, 0.486, 0.352, 0.259, 0.219, 0.497, 0.741, 0.702),
}
METRICS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d", "sbert_sim")
ACCURACY = {
    "base": (0.750, 0.531, 0.469, 0.563),
    "AC": (0.750, 0.563, 0.406, 0.594),
    "ADC": (0.625, 0.438, 0.375, 0.500),
    "ACC": (0.792, 0.531, 0.438, 0.625),
    "AC+ADC": (0.667, 0.469, 0.406, 0.531),
    "AC+ACC": (0.750, 0.500, None, 0.594),  # one task not measured: must show n/a, not 0
}
EXAMPLES = [
    ("test-scene-000", ["A dog barks while rain falls on a roof", "Rain falling with a dog barking"],
     {"AC": "A dog barks as rain falls", "ADC": "add a burst of rain", "ACC": "A dog barks while rain falls",
      "AC+ACC": "A dog barks while rain falls steadily"}),
    ("test-scene-001", ["A man speaks, then a door closes"],
     {"AC": "A man is speaking and a door shuts", "ADC": "drop a door closing", "ACC": "A man speaks",
      "AC+ACC": "A man speaks and a door closes"}),
    ("test-scene-002", ["Birds chirp as a clock ticks <loudly> & steadily"],
     {"AC": "Birds chirp with a clock ticking", "ADC": "replace birds with a clock",
      "ACC": "A clock ticks while birds chirp", "AC+ACC": "Birds chirp as a clock ticks"}),
]  # fmt: skip


def tone(seconds: float, freq: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(int(freq))
    return (0.3 * np.sin(2 * math.pi * freq * t) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def write_log(path: Path, stages: list[tuple[str, int]], seed: int) -> None:
    rng = np.random.default_rng(seed)
    step, lines = 0, []
    for k, (stage, steps) in enumerate(stages):
        start = 3.2 - 0.8 * k
        for i in range(steps):
            loss = 0.9 + (start - 0.9) * math.exp(-i / 25) + 0.15 * rng.standard_normal()
            lr = 1e-4 * 0.5 * (1 + math.cos(math.pi * i / steps))
            lines.append(json.dumps({"step": step, "loss": round(loss, 4), "lr": lr, "stage": stage}))
            step += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_run(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    training = {}
    for i, name in enumerate(CONFIGS):
        stages = [(s.lower(), 120) for s in name.split("+")]
        write_log(run_dir / "train" / name / "log.jsonl", stages, seed=i)
        training[name] = {"log": f"train/{name}/log.jsonl"}
    examples = []
    for i, (clip_id, refs, preds) in enumerate(EXAMPLES):
        # the last clip is a 30 s WAV (~1 MB): over the as-is limit, so the report re-encodes a short clip
        audio = f"audio/{clip_id}." + ("wav" if i == 2 else "flac")
        (run_dir / "audio").mkdir(parents=True, exist_ok=True)
        sf.write(run_dir / audio, tone(30.0 if i == 2 else 4.0, 220.0 * (i + 1)), 16000)
        examples.append({"id": clip_id, "audio": audio, "references": refs, "predictions": preds})
    results = {
        "title": "auralign quickstart (TEST FIXTURE: invented numbers)",
        "seed": 0,
        "created": "2026-11-22T05:00:00+00:00",
        "environment": {
            "python": "3.11.2",
            "torch": "2.13.0+cpu",
            "transformers": "5.23.0",
            "platform": "Linux-x86_64",
            "cpu": "2 cores",
        },
        "config": {
            "model": {"backend": "composed", "path": "smollm2", "encoder": "yamnet"},
            "lora": {"r": 8, "alpha": 32, "dropout": 0.05},
            "epochs": 1,
            "seed": 0,
        },
        "captioning": {
            "dataset": "mini test",
            "n_samples": 90,
            "rows": [
                {
                    "config": c,
                    "metrics": {**dict(zip(METRICS, v, strict=True)), "spice": None, "spider": None},
                }
                for c, v in CAPTIONING.items()
            ],
        },
        "abilities": {
            "tasks": list(TASKS),
            "mirrors": TASKS,
            "n_samples": {"voice_type": 24, "speech_style": 32, "instrument": 32, "rhythm": 32},
            "rows": [
                {"config": c, "accuracy": dict(zip(TASKS, v, strict=True))} for c, v in ACCURACY.items()
            ],
        },
        "examples": examples,
        "training": training,
        "timings": {"mini_corpus": 41.2, "manifests": 12.9, "training": 1534.0, "evaluation": 212.5},
        "notes": ["SPICE and SPIDEr: n/a (no SPICE jars on this machine)."],
    }
    (run_dir / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    return run_dir


if __name__ == "__main__":
    print(make_run(Path(sys.argv[1])) / "results.json")
