"""CPU training step of the composed offline model (YAMNet features -> projector -> SmolLM2-135M + LoRA).

Side by side in one process, steps interleaved (plain, auralign, plain, ...), same model, batch and sequence:
  plain     a plain transformers + PEFT loop: LoRA r 8 on all linear layers (dropout 0.05), trainable
            projector, `model(inputs_embeds=..., attention_mask=..., labels=...).loss`, fp32
  auralign  what `auralign train` runs: `ComposedAudioLLM.loss` after `apply_lora` with the same LoRA settings
            (logits only where labels exist, causal fast path without a padding mask, fast CPU LoRA dropout)
  auralign-bf16  (with --bf16) the same under CPU bf16 autocast, what `precision: bf16` does on the CPU

Batch: 8 samples x (20 audio frames of 1024-d features + 40 text tokens, the last 12 of them the answer).
Peak memory: each variant again in a fresh process (ru_maxrss after warm-up and 2 steps).

    .venv/bin/python benchmarks/bench_train_cpu.py --threads 2 --steps 10
    .venv/bin/python benchmarks/bench_train_cpu.py --threads 2 --steps 10 --bf16
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from types import SimpleNamespace

BATCH, AUDIO, TEXT, ANSWER = 8, 20, 40, 12


def make_batch(vocab: int, seed: int = 0) -> dict:
    import torch

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(100, vocab, (BATCH, AUDIO + TEXT), generator=g)
    audio_mask = torch.zeros(BATCH, AUDIO + TEXT, dtype=torch.bool)
    audio_mask[:, 4 : 4 + AUDIO] = True  # after a few prompt tokens, like "Audio 1: ..."
    labels = torch.full_like(ids, -100)
    labels[:, -ANSWER:] = ids[:, -ANSWER:]
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "audio_mask": audio_mask,
        "audio_features": torch.randn(BATCH * AUDIO, 1024, generator=g),
        "labels": labels,
    }


def build(variant: str):
    """(step function, model) for one variant; each gets its own copy of the LM."""
    import torch

    from auralign.models.acc.composed import ComposedAudioLLM, load_smollm2
    from auralign.models.lora import LoraSettings, apply_lora

    lm, tok = load_smollm2()
    torch.manual_seed(0)
    llm = ComposedAudioLLM(lm, tok, encoder=SimpleNamespace(dim=1024))  # features come ready-made
    if variant == "plain":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            lm, LoraConfig(r=8, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear")
        )
        for p in llm.projector.parameters():
            p.requires_grad_(True)

        def loss_fn(batch):
            embeds = llm.embed(batch)
            return model(
                inputs_embeds=embeds, attention_mask=batch["attention_mask"], labels=batch["labels"]
            ).loss
    else:
        apply_lora(llm, LoraSettings(r=8, alpha=32, dropout=0.05, train_projector=True))
        loss_fn = llm.loss
    llm.train()
    params = [p for p in llm.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.1)

    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant.endswith("bf16"))

    def step(batch) -> float:
        with autocast:
            loss = loss_fn(batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    return step, llm, sum(p.numel() for p in params)


def memory(variant: str, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    step, llm, _ = build(variant)
    batch = make_batch(llm.lm.config.vocab_size)
    for _ in range(3):
        step(batch)
    print(json.dumps({"peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per variant (after one warm-up step)")
    ap.add_argument("--bf16", action="store_true", help="also time auralign under CPU bf16 autocast")
    ap.add_argument("--memory", choices=["plain", "auralign", "auralign-bf16"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory:
        memory(args.memory, args.threads)
        return
    import torch

    torch.set_num_threads(args.threads)
    names = ("plain", "auralign", "auralign-bf16") if args.bf16 else ("plain", "auralign")
    variants = {v: build(v) for v in names}
    batch = make_batch(variants["plain"][1].lm.config.vocab_size)
    times: dict[str, list[float]] = {v: [] for v in variants}
    for i in range(args.steps + 1):
        order = names if i % 2 == 0 else names[::-1]
        for v in order:
            t0 = time.perf_counter()
            loss = variants[v][0](batch)
            if i:  # step 0 warms up allocators and kernels
                times[v].append(time.perf_counter() - t0)
            print(f"step {i} {v:13s} {time.perf_counter() - t0:.2f} s  loss {loss:.4f}", flush=True)
    for v in variants:
        cmd = [sys.executable, __file__, "--memory", v, "--threads", str(args.threads)]
        peak = json.loads(
            subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1]
        )
        med = statistics.median(times[v])
        print(
            f"{v:13s} median {med:.3f} s/step  {BATCH / med:.2f} samples/s  peak RSS {peak['peak_rss_gb']:.2f} GB  "
            f"trainable {variants[v][2]:,}  (n={len(times[v])})"
        )
    print(
        f"speed-up auralign vs plain: {statistics.median(times['plain']) / statistics.median(times['auralign']):.2f}x"
    )
    if args.bf16:
        ratio = statistics.median(times["auralign"]) / statistics.median(times["auralign-bf16"])
        print(f"speed-up bf16 autocast vs fp32 (auralign): {ratio:.2f}x")


if __name__ == "__main__":
    main()
