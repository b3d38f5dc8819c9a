"""Pair-building throughput and memory of `auralign data build` (10-second clips, FLAC out).

    .venv/bin/python benchmarks/bench_data.py [--pairs 300] [--bases 40 400]

For each corpus size it builds a synthetic corpus of 10 s bases and 1-5 s events (16 kHz), then times
`auralign data build` in a fresh process with 1 worker and with all cores, and reads the child's peak RSS.
Prints a Markdown table and the projected time for the paper's 148,500 pairs on 16 cores.
"""

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

PAPER_PAIRS = 148_500


def make_corpus(root: Path, bases: int, events: int = 60, sr: int = 16000) -> None:
    rng = np.random.default_rng(0)
    (root / "bases").mkdir(parents=True)
    t = np.arange(10 * sr) / sr
    rows = ["audiocap_id,youtube_id,start_time,caption"]
    for i in range(bases):
        tone = (
            0.2
            * np.sin(2 * np.pi * rng.uniform(100, 2000) * t)
            * (1 + np.sin(2 * np.pi * rng.uniform(0.1, 2) * t))
        )
        audio = (tone / 2 + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
        sf.write(root / "bases" / f"b{i:05d}.flac", audio, sr)
        rows.append(f"{i},b{i:05d},0,A machine hums while wind blows {i}")
    (root / "bases.csv").write_text("\n".join(rows) + "\n")
    lines = ["file_name,label,phrase"]
    for i in range(events):
        n = int(sr * rng.uniform(1, 5))
        audio = (0.3 * np.sin(2 * np.pi * rng.uniform(200, 4000) * np.arange(n) / sr)).astype(np.float32)
        sf.write(root / f"e{i:04d}.flac", audio, sr)
        lines.append(f"e{i:04d}.flac,event{i % 12},a sound of kind {i % 12}")
    (root / "events.csv").write_text("\n".join(lines) + "\n")


def run_build(root: Path, out: Path, pairs: int, workers: int) -> tuple[float, float]:
    """Seconds and peak RSS (MiB, the largest process) of one `auralign data build` run."""
    third = pairs // 3
    config = root / f"build-{out.name}.yaml"
    config.write_text(
        f"out_dir: {out}\nsplits:\n  - name: train\n"
        f"    bases: {{format: audiocaps, csv: {root}/bases.csv, audio_dir: {root}/bases}}\n"
        f"    events: {{format: labelled_csv, csv: {root}/events.csv}}\n"
        f"    pairs: {{add: {third}, drop: {third}, replace: {third}}}\n    ac: none\n"
    )
    cmd = [sys.executable, "-m", "auralign.cli", "data", "build", str(config), "--workers", str(workers)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run([*cmd, "--no-progress"], check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--bases", type=int, nargs="+", default=[40, 400])
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(
        f"machine: {platform.processor() or platform.machine()}, {cores} cores; pairs per run: {args.pairs}"
    )
    print("| bases | workers | seconds | pairs/s | pairs/s per core | peak RSS (MiB, one process) |")
    print("|---|---|---|---|---|---|")
    best_per_core = 0.0
    for bases in args.bases:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            make_corpus(root, bases)
            for workers in sorted({1, cores}):
                seconds, peak = run_build(root, root / f"out-{workers}", args.pairs, workers)
                rate = args.pairs / seconds
                best_per_core = max(best_per_core, rate / workers)
                print(
                    f"| {bases} | {workers} | {seconds:.1f} | {rate:.0f} | {rate / workers:.0f} | {peak:.0f} |"
                )
    hours = PAPER_PAIRS / (best_per_core * 16) / 3600
    print(
        f"\nprojected for {PAPER_PAIRS:,} pairs on 16 cores at {best_per_core:.0f} pairs/s per core: {hours:.2f} h"
    )


if __name__ == "__main__":
    main()
