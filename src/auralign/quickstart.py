"""`auralign quickstart`: the main job on the offline default, phase by phase, each phase resumable.

Phases so far: (1) the offline mini corpus from packaged real sounds, (2) its AC / ADC / ACC and ability
manifests. A re-run skips what is finished.
"""

import argparse
import json
import os
import time
from pathlib import Path

from auralign.data.build import AbilitySpec, BuildConfig, CorpusSpec, SplitSpec

# Pairs per edit operation and split: small enough for a 2-core laptop, large enough to train on.
MINI_PAIRS = {"train": 150, "val": 20, "test": 30}


def mini_build_config(mini_dir: Path, out_dir: Path, seed: int) -> BuildConfig:
    """The data build of the mini corpus: AudioCaps-style scenes as bases, single-event clips as B/C."""
    splits = [
        SplitSpec(
            name=split,
            bases=CorpusSpec(
                format="audiocaps",
                csv=mini_dir / "scenes" / f"{split}.csv",
                audio_dir=mini_dir / "scenes" / "audio",
            ),
            events=CorpusSpec(format="labelled_csv", csv=mini_dir / "events" / f"{split}.csv"),
            pairs={op: count for op in ("add", "drop", "replace")},
            ac="per_caption" if split == "train" else "per_clip",
        )
        for split, count in MINI_PAIRS.items()
    ]
    abilities = [AbilitySpec(format="mini", path=mini_dir / "abilities", split=s) for s in ("train", "test")]
    return BuildConfig(seed=seed, out_dir=out_dir, splits=splits, abilities=abilities)


def run(run_dir: Path, seed: int = 0, workers: int | None = None, progress: bool = True) -> dict:
    from auralign.data.build import build, format_summary
    from auralign.data.mini import build_mini_corpus

    timings = {}
    start = time.perf_counter()
    print("[1/2] mini corpus: real packaged sounds -> scenes, events, ability sets")
    build_mini_corpus(run_dir / "mini", seed=seed, progress=progress)
    timings["mini_corpus_s"] = round(time.perf_counter() - start, 1)

    start = time.perf_counter()
    print("[2/2] AC / ADC / ACC pairs and manifests")
    config = mini_build_config(run_dir / "mini", run_dir / "data", seed)
    summary = build(config, workers=workers or os.cpu_count() or 1, progress=progress)
    timings["manifests_s"] = round(time.perf_counter() - start, 1)
    print(format_summary(summary))
    corpus = json.loads((run_dir / "mini" / "corpus.json").read_text(encoding="utf-8"))
    print(f"mini corpus: {json.dumps(corpus.get('counts', {}), sort_keys=True)}")
    print(f"timings: {timings}; outputs in {run_dir}")
    return {"timings": timings, "data": summary}


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("quickstart", help="run the main job on the offline default (mini corpus)")
    parser.add_argument("--out", type=Path, default=Path("runs/quickstart"), help="run folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(
        handler=lambda args: run(args.out, args.seed, args.workers, not args.no_progress) and 0
    )
