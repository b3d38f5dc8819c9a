"""Where the ACC miniature's evaluation time goes: seconds per item of each kind of work, on the shipped base.

On the composed offline model (YAMNet features from the cache, projector, SmolLM2-135M-Instruct with the
shipped base adapter), in one process and with the same decoding options as the quickstart (batch 16, at
most 32 new tokens, greedy):

  caption     a test scene captioned (`auralign.infer.caption.caption`)
  answer      an ability item answered
  logprob     the teacher-forced log-probability of an ability item's correct label (`answer_logprobs`)
  own-task    a held-out ACC pair (two clips) answered

Each kind runs --items items, --repeats times, interleaved; medians are reported. The run folder is a
finished `auralign quickstart` (any preset): its manifests and feature cache are read, nothing is written
there.

    python benchmarks/bench_acc_eval.py runs/quickstart
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from auralign.eval.benchmark import answer_chat
from auralign.infer.caption import caption, collect
from auralign.models.base import GenerationOptions
from auralign.models.factory import SHIPPED_BASE, ModelConfig, build_with_adapter


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path, help="a finished quickstart run folder")
    parser.add_argument("--items", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = args.run / "data"
    model = ModelConfig(backend="composed", path="smollm2", feature_cache=str(args.run / "features"))
    llm = build_with_adapter(model, str(SHIPPED_BASE))
    options = GenerationOptions(batch_size=16, max_new_tokens=32)
    items = {
        "caption": list(collect([data / "test" / "ac.jsonl"], None)),
        "answer": list(collect([data / "abilities" / "instrument-test.jsonl"], None)),
        "own-task": list(collect([data / "test" / "acc.jsonl"], None, audios_per_sample=2)),
    }
    items = {kind: found[: args.items] for kind, found in items.items()}
    scratch = Path(tempfile.mkdtemp())

    def generate(kind: str, k: int) -> None:
        caption(llm, items[kind], scratch / f"{kind}-{k}.jsonl", options=options, model={}, progress=False)

    work = {
        "caption": lambda k: generate("caption", k),
        "answer": lambda k: generate("answer", k),
        "logprob": lambda k: llm.answer_logprobs([answer_chat(it) for it in items["answer"]], batch_size=16),
        "own-task": lambda k: generate("own-task", k),
    }
    seconds: dict[str, list[float]] = {kind: [] for kind in work}
    for k in range(args.repeats):
        for kind, fn in work.items():
            start = time.perf_counter()
            fn(k)
            seconds[kind].append(time.perf_counter() - start)
    n = {kind: len(items["answer" if kind == "logprob" else kind]) for kind in work}
    print(
        json.dumps(
            {
                "machine": platform.processor() or platform.machine(),
                "cpus": os.cpu_count(),
                "threads": args.threads,
                "load_average": os.getloadavg(),
                "torch": torch.__version__,
                "items": n,
                "s_per_item": {k: round(statistics.median(v) / n[k], 4) for k, v in seconds.items()},
                "runs_s": {k: [round(x, 2) for x in v] for k, v in seconds.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
