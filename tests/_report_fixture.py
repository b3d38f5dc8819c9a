"""A TEST FIXTURE run folder for the report: made-up but plausible numbers, not results of any run.

It follows the run-folder contract of docs/report.md as `auralign quickstart` writes it: results.json, one
training log per configuration (AC+ADC and AC+ACC in two stages), and example clips (FLAC and one large WAV
that the report must re-encode). `make_run(dali=True)` adds a DALI section as `auralign dali quickstart`
writes it; `make_run(full=True)` adds what a full-preset run adds (seeds, claims with verdicts, validity
checks, key differences, 95 % intervals, log-probabilities, event metrics, DALI baselines). Without either
it is the run folder the report was first written against. Run it as a script to build one for a look:
python tests/_report_fixture.py OUT [--dali] [--full]
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


DALI_METHODS = ("MMD", "OT", "attentive OT")
# (method, input) -> (bleu_1, meteor, rouge_l, cider_d): invented, shaped like DALI's Table 1
DALI_ROWS = {
    ("MMD", "audio"): (0.126, 0.061, 0.159, 0.020),
    ("MMD", "audio-visual"): (0.207, 0.078, 0.217, 0.043),
    ("OT", "audio"): (0.132, 0.073, 0.143, 0.015),
    ("OT", "audio-visual"): (0.156, 0.057, 0.140, 0.037),
    ("attentive OT", "audio"): (0.121, 0.060, 0.107, 0.010),
    ("attentive OT", "audio-visual"): (0.177, 0.048, 0.144, 0.035),
    ("image captioner", "image"): (0.223, 0.074, 0.189, 0.086),
}
DALI_METRICS = ("bleu_1", "meteor", "rouge_l", "cider_d")
SEEDS = [0, 1, 2]
# The full preset's claims, shaped like the papers' (verdicts and numbers invented for the fixture).
CLAIMS = [
    {
        "id": "A1",
        "claim": "Fine-tuning on ADC costs more general ability than fine-tuning on ACC",
        "measure": "mean ability accuracy change from the base (pp)",
        "comparisons": [
            {"name": "ACC - ADC", "mean": 8.3, "low": 3.1, "high": 13.9, "verdict": "reproduced"}
        ],
        "verdict": "reproduced",
        "rule": "reproduced if every comparison's 95 % interval lies above 0, contradicted if one lies below",
    },
    {
        "id": "A2",
        "claim": "ACC captions single clips at least as well as AC",
        "measure": "CIDEr-D",
        "comparisons": [
            {"name": "ACC - AC", "mean": 0.047, "low": -0.0214, "high": 0.1136, "verdict": "inconclusive"},
            {"name": "AC+ACC - AC", "mean": 0.086, "low": 0.012, "high": 0.158, "verdict": "reproduced"},
        ],
        "verdict": "inconclusive",
        "rule": "reproduced if every comparison's 95 % interval lies above 0, contradicted if one lies below",
    },
    {
        "id": "A3",
        "claim": "ADC captions single clips as well as AC",
        "measure": "CIDEr-D",
        "comparisons": [
            {"name": "ADC - AC", "mean": -0.597, "low": -0.661, "high": -0.532, "verdict": "contradicted"}
        ],
        "verdict": "contradicted",
        "rule": "reproduced if every comparison's 95 % interval lies above 0, contradicted if one lies below",
    },
    {
        "id": "D1",
        "claim": "DALI's SPICE improves with attentive OT",
        "measure": "SPICE",
        "comparisons": [],
        "verdict": "not tested (no SPICE scores)",
        "rule": "needs SPICE, which needs its jars",
    },
    {
        "id": "A4",
        "claim": "ACC keeps the base's voice-type ability",
        "measure": "voice_type accuracy",
        "comparisons": [
            {"name": "ACC - base", "mean": 0.042, "low": -0.05, "high": 0.13, "verdict": "reproduced"}
        ],
        "verdict": "inconclusive (check V2 failed)",
        "rule": "reproduced if every interval lies inside +-0.1",
    },
]
CHECKS = [
    {
        "id": "V1",
        "check": "fine-tuning taught the captioning task",
        "parts": [
            {
                "name": "AC - base",
                "measure": "cider_d",
                "mean": 0.513,
                "low": 0.42,
                "high": 0.61,
                "verdict": "reproduced",
            },
            {
                "name": "ACC - base",
                "measure": "cider_d",
                "mean": 0.56,
                "low": 0.47,
                "high": 0.65,
                "verdict": "reproduced",
            },
        ],
        "verdict": "passed",
    },
    {
        "id": "V2",
        "check": "the base answers the ability tasks above chance",
        "parts": [
            {
                "name": "base in [0.3, 1]",
                "measure": "voice_type accuracy",
                "mean": 0.25,
                "low": 0.13,
                "high": 0.38,
                "verdict": "failed",
            }
        ],
        "verdict": "failed",
    },
]
DIFFERENCES = [
    {"name": "ACC - ADC (abilities, mean accuracy)", "measure": "pp", "mean": 8.3, "low": 3.1, "high": 13.9},
    {"name": "AC+ACC - AC (captioning)", "measure": "CIDEr-D", "mean": 0.086, "low": 0.012, "high": 0.158},
]


def interval(mean: float, scale: float, bounds: tuple[float, float] | None = (0.0, 1.0)) -> list[float]:
    """An invented, slightly asymmetric 95 % interval around `mean` (bootstrap intervals seldom are not),
    kept within `bounds` (fractions by default; None for log-probabilities)."""
    half = scale * (0.05 + 0.1 * abs(mean))
    low, high = round(mean - half, 4), round(mean + 1.4 * half, 4)
    return [max(low, bounds[0]), min(high, bounds[1])] if bounds else [low, high]


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


def dali_section(run_dir: Path) -> dict:
    """The DALI section as `auralign dali quickstart` writes it: rows, the PCA per method, stage logs."""
    rng = np.random.default_rng(7)
    rows = [
        {"method": m, "input": i, "metrics": {**dict(zip(DALI_METRICS, v, strict=True)), "spice": None}}
        for (m, i), v in DALI_ROWS.items()
    ]
    pca, training = {}, {}
    for k, method in enumerate(("unaligned", *DALI_METHODS)):
        gap = 9.0 / (k + 1)
        pca[method] = {
            "audio": np.round(rng.normal(gap, 1.0, (6, 2)), 3).tolist(),
            "image": np.round(rng.normal(0.0, 1.0, (6, 2)), 3).tolist(),
            "explained_variance_ratio": [0.31, 0.17],
            "centroid_distance": round(gap * 1.4, 3),
            "centroid_distance_normalized": round(gap / 30, 3),
            "pair_cosine": round(1 - gap / 10, 3),
        }
    for k, stage in enumerate(("prefix", "align · MMD", "distill · MMD")):
        log = f"dali/{stage.replace(' · ', '-').lower()}/log.jsonl"
        write_log(run_dir / log, [(stage.split(" ")[0], 60)], seed=10 + k)
        training[stage] = {"log": log}
    return {"dataset": "mini test", "n_samples": 40, "rows": rows, "pca": pca, "training": training}


def add_full_preset(results: dict) -> None:
    """What a full-preset run adds: seeds, claims, key differences, intervals, log-probabilities, events."""
    results |= {
        "preset": "full",
        "seeds": SEEDS,
        "claims": CLAIMS,
        "checks": CHECKS,
        "differences": DIFFERENCES,
    }
    for row in results["captioning"]["rows"]:
        _add_intervals(row, 0.4 * row["metrics"]["cider_d"])
    for row in results["abilities"]["rows"]:
        acc = row["accuracy"]
        row["intervals"] = {t: interval(a, 1.0) for t, a in acc.items() if a is not None}
        row["logprob"] = {t: None if a is None else round(-2.5 * (1 - a) - 0.1, 4) for t, a in acc.items()}
        row["logprob_intervals"] = {
            t: interval(v, 0.5, None) for t, v in row["logprob"].items() if v is not None
        }
    if "dali" in results:
        dali = results["dali"]
        for row in dali["rows"]:
            _add_intervals(row, 0.5 + 4 * row["metrics"]["cider_d"])
        metrics = {"bleu_1": 0.181, "meteor": 0.052, "rouge_l": 0.150, "cider_d": 0.031}
        dali["baselines"] = [{"method": "prior caption", "input": "none", "metrics": metrics}]
        _add_intervals(dali["baselines"][0], 0.2)


def _add_intervals(row: dict, event: float) -> None:
    """Intervals for every metric with a value, and the three event metrics (values and intervals)."""
    row["metrics"] |= {
        "event_recall": round(min(0.95, 0.2 + event), 3),
        "event_precision": round(min(0.9, 0.3 + 0.5 * event), 3),
    }
    r, p = row["metrics"]["event_recall"], row["metrics"]["event_precision"]
    row["metrics"]["event_f1"] = round(2 * r * p / (r + p), 3)
    row["intervals"] = {
        k: interval(v, 1.0, (0.0, 10.0 if k == "cider_d" else 1.0))
        for k, v in row["metrics"].items()
        if v is not None
    }


def make_run(run_dir: Path, *, dali: bool = False, full: bool = False) -> Path:
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
    if dali:
        results["dali"] = dali_section(run_dir)
    if full:
        add_full_preset(results)
    (run_dir / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    return run_dir


if __name__ == "__main__":
    out = make_run(Path(sys.argv[1]), dali="--dali" in sys.argv, full="--full" in sys.argv)
    print(out / "results.json")
