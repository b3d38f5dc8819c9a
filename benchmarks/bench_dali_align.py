"""Benchmark one DALI alignment step per method: samples/s at batch 8 on CPU, or any batch on a GPU (`--device cuda`).

A step is what `auralign.train.dali.align` does per batch after decoding: the audio adapter's forward on the
backbone's tokens, the loss, backward, the Adam step (and, for attentive OT, its heads' own step, with the
entropy bonus active: epoch 2). The backbone's output is precomputed (its cost depends on the backbone, not on
the loss), so the numbers compare the five objectives at two shapes:

  mini   the offline miniature (`auralign dali quickstart`): 20 YAMNet tokens x 1024 -> Linear -> 256,
         16 image tokens x 256
  dali   the paper's: 512 CAV-MAE tokens x 768 -> Linear -> 1024, 576 CLIP tokens x 1024

Synthetic tokens (seeded, a modality offset on the image side); repetitions interleaved across methods
(order rotated) and medians reported, with the load average before and after (the machine may be shared).

    python benchmarks/bench_dali_align.py                      # both shapes, batch 8, 5 reps
    python benchmarks/bench_dali_align.py --shapes mini --reps 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Sequence

import torch
from torch import nn

from auralign.models.encoders.base import AudioTokenizer
from auralign.train.dali import align_step, make_aligner
from auralign.train.dali.config import AlignConfig

METHODS = ("contrastive", "mmd", "ot_exact", "sinkhorn", "attentive_ot")
#: shape name -> (audio tokens, backbone width, image tokens, token width)
SHAPES = {"mini": (20, 1024, 16, 256), "dali": (512, 768, 576, 1024)}


class Precomputed(nn.Module):
    """A backbone whose output is given: `prepare` stacks the tokens, `forward` passes them on."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def prepare(self, waves: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.stack(list(waves))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs


def make_step(method: str, shape: str, batch: int, seed: int = 0, device: str = "cpu"):
    """A closure running one alignment step on fixed synthetic tokens (on `device`; exact OT still solves its
    transport problems on the CPU threads, as in training)."""
    n, dim, m, width = SHAPES[shape]
    gen = torch.Generator().manual_seed(seed)
    backbone_tokens = torch.randn(batch, n, dim, generator=gen).to(device)
    image_tokens = (torch.randn(batch, m, width, generator=gen) + 0.5).to(device)
    torch.manual_seed(seed)
    audio = AudioTokenizer(Precomputed(dim), width).to(device)
    cfg = AlignConfig(
        output_dir="unused",
        prefix_dir="unused",
        data={"manifest": "unused"},
        method=method,
        train_backbone=False,
        batch_size=batch,
        augment=False,
        device=device,
    )
    aligner = make_aligner(cfg, audio, torch.device(device))

    def step() -> float:
        sync(device)
        start = time.perf_counter()
        align_step(aligner, audio(backbone_tokens), image_tokens, epoch=2)
        sync(device)
        return time.perf_counter() - start

    return step


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run(
    shape: str, batch: int, reps: int, methods: Sequence[str], device: str = "cpu"
) -> dict[str, dict[str, float]]:
    steps = {m: make_step(m, shape, batch, device=device) for m in methods}
    for step in steps.values():  # warm-up: first-call allocations, thread pools
        step()
    times: dict[str, list[float]] = {m: [] for m in methods}
    for r in range(reps):
        order = list(methods[r % len(methods) :]) + list(methods[: r % len(methods)])
        for m in order:
            times[m].append(steps[m]())
    out = {}
    for m in methods:
        median = statistics.median(times[m])
        out[m] = {
            "ms": round(1000 * median, 2),
            "samples_per_s": round(batch / median, 1),
            "spread": round((max(times[m]) - min(times[m])) / median, 2),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shapes", default="mini,dali")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--device", default="cpu", help="cpu or cuda (exact OT's solver stays on CPU threads)"
    )
    parser.add_argument("--out", help="write the figures as JSON here too")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    results = {
        s: run(s, args.batch, args.reps, args.methods.split(","), device=args.device)
        for s in args.shapes.split(",")
    }
    info = {
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "batch": args.batch,
        "reps": args.reps,
        "threads": args.threads,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(info))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump({"info": info, "results": results}, handle, indent=2)
    for shape, rows in results.items():
        print(f"\n{shape} ({SHAPES[shape]}): | method | ms/step | samples/s | spread |")
        for m, r in rows.items():
            print(f"| {m} | {r['ms']} | {r['samples_per_s']} | {r['spread']} |")


if __name__ == "__main__":
    main()
