"""GPU benchmark of the Qwen2-Audio-7B architecture (random weights, bf16): LoRA training step and generation.

No hub here, so the real Qwen2-Audio-7B config is written out below and the weights are random: speed and
memory do not depend on the values. The training step is auralign's (`Qwen2AudioLLM.loss` after
`apply_lora`, LoRA r 8 / alpha 32 / dropout 0.05 on the language model's linear layers, AdamW on the
adapter, bf16 autocast), on ACC-shaped samples: two 10 s audios (2 x 250 audio tokens) + prompt + answer.

  paper settings   batch 1 (the paper's micro-batch; grad-accum only repeats it), with and without
                   gradient checkpointing: peak memory must fit the paper's 24 GB RTX 4090
  throughput       batch doubled until out of memory, without and with gradient checkpointing:
                   tokens/s, MFU, peak memory
  generation       batched greedy generation of fixed-length captions: captions/s

MFU = model FLOPs per second / peak bf16 FLOPs of the GPU (dense; H100/H200 SXM 989 TFLOPS, override with
--peak-tflops). Model FLOPs per training step, with T = LM tokens, N = LM linear parameters (embeddings
excluded), L layers, d width, Te = encoder frames, Ne = encoder linear parameters:
    LM     (2 + 2) * N * T + 4 * L * T^2 * d       forward + input-gradient backward (frozen weights need
                                                   no weight-gradient; LoRA's own FLOPs are < 0.5% and left
                                                   out); causal attention counted as the half it computes:
                                                   2 matmuls x 2 FLOPs x T^2/2 x d, forward + backward
    head   6 * d * V * A                           the vocabulary projection on A answer tokens only
    audio  2 * Ne * Te + 4 * Le * Te^2 * de         frozen encoder, forward only
Recomputation by gradient checkpointing is not counted (this is MFU, not hardware FLOPs utilisation).
The conventional 6 * N * T (full fine-tuning) figure is printed too, for comparison with other reports.

    pip install torch transformers peft accelerate safetensors pyyaml pydantic soundfile soxr tqdm
    PYTHONPATH=src python benchmarks/bench_qwen2audio_gpu.py            # ~5 min on one H100
    PYTHONPATH=src python benchmarks/bench_qwen2audio_gpu.py --tiny     # CPU smoke test of the script
"""

import argparse
import json
import time

import torch

# Qwen/Qwen2-Audio-7B(-Instruct) config.json, written out (the fields that shape compute and memory).
QWEN2_AUDIO_7B = {
    "audio_token_index": 151646,
    "audio_config": {
        "model_type": "qwen2_audio_encoder", "num_mel_bins": 128, "encoder_layers": 32,
        "encoder_attention_heads": 20, "encoder_ffn_dim": 5120, "d_model": 1280, "activation_function": "gelu",
        "scale_embedding": False, "max_source_positions": 1500,
    },
    "text_config": {
        "model_type": "qwen2", "vocab_size": 156032, "hidden_size": 4096, "intermediate_size": 11008,
        "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
        "max_position_embeddings": 8192, "rope_theta": 10000.0, "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False, "bos_token_id": 151643, "eos_token_id": 151645,
    },
}  # fmt: skip

TINY = {
    "audio_token_index": 151646,
    "audio_config": {"model_type": "qwen2_audio_encoder", "num_mel_bins": 128, "encoder_layers": 2,
                     "encoder_attention_heads": 2, "encoder_ffn_dim": 64, "d_model": 32},
    "text_config": {"model_type": "qwen2", "vocab_size": 156032, "hidden_size": 64, "intermediate_size": 128,
                    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4},
}  # fmt: skip

AUDIOS, SECONDS, PROMPT, ANSWER = 2, 10, 40, 24  # an ACC sample: two AudioCaps clips


def build(spec: dict, device: str, dtype: torch.dtype):
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    from auralign.models.acc.qwen2audio import Qwen2AudioLLM
    from auralign.models.testing import offline_tokenizer

    config = Qwen2AudioConfig(**spec)
    with torch.device(device):
        model = Qwen2AudioForConditionalGeneration._from_config(config, dtype=dtype)
    # Only `loss` / `hf.generate` are used: the processor is needed to construct the backend, not to feed it.
    tok = PreTrainedTokenizerFast(tokenizer_object=offline_tokenizer(), pad_token="<|endoftext|>")
    processor = Qwen2AudioProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=128), tokenizer=tok
    )
    return Qwen2AudioLLM(model, processor), config


def make_batch(config, batch: int, device: str, train: bool = True) -> dict:
    frames = SECONDS * 100
    per_audio = (((frames - 1) // 2 + 1) - 2) // 2 + 1  # 250 tokens for 10 s
    g = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(batch):
        ids = torch.randint(0, 151000, (PROMPT + AUDIOS * per_audio + (ANSWER if train else 0),), generator=g)
        ids[8 : 8 + AUDIOS * per_audio] = config.audio_token_index
        rows.append(ids)
    ids = torch.stack(rows)
    labels = torch.full_like(ids, -100)
    if train:
        labels[:, -ANSWER:] = ids[:, -ANSWER:]
    feats = torch.randn(batch * AUDIOS, 128, 3000, generator=g)
    mask = torch.zeros(batch * AUDIOS, 3000, dtype=torch.long)
    mask[:, :frames] = 1
    out = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "input_features": feats,
           "feature_attention_mask": mask, "labels": labels}  # fmt: skip
    return {k: v.to(device) for k, v in out.items()}


def model_flops(config, batch: dict, lm_linear: int, enc_linear: int) -> tuple[float, float]:
    """(model FLOPs per step as documented above, the 6 N T convention) for one training step."""
    b, t = batch["input_ids"].shape
    tc, ac = config.text_config, config.audio_config
    answer = int((batch["labels"] != -100).sum())
    lm = 4 * lm_linear * b * t + 4 * tc.num_hidden_layers * b * t * t * tc.hidden_size
    head = 6 * tc.hidden_size * tc.vocab_size * answer
    te = 1500 * batch["input_features"].shape[0]  # encoder frames after the stride-2 conv (30 s windows)
    audio = 2 * enc_linear * te + 4 * ac.encoder_layers * 1500 * te * ac.d_model
    return lm + head + audio, 6 * lm_linear * b * t


def linear_params(module: torch.nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, torch.nn.Linear))


def train_step_stats(
    llm, config, batch_size: int, steps: int, device: str, peak_flops: float, ckpt: bool
) -> dict:
    lm_linear = linear_params(llm.hf.model.language_model)
    enc_linear = linear_params(llm.hf.model.audio_tower)
    if ckpt:
        llm.enable_gradient_checkpointing()
    else:
        llm.language_model.gradient_checkpointing_disable()
    llm.train()
    params = [p for p in llm.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.1)
    batch = make_batch(config, batch_size, device)
    torch.cuda.reset_peak_memory_stats() if device == "cuda" else None
    times = []
    for i in range(steps + 2):
        sync(device)
        t0 = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = llm(batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(device)
        if i >= 2:  # two warm-up steps
            times.append(time.perf_counter() - t0)
    step = sorted(times)[len(times) // 2]
    flops, flops_6nt = model_flops(config, batch, lm_linear, enc_linear)
    tokens = batch["input_ids"].numel()
    peak_mem = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
    del opt, batch
    return {
        "batch": batch_size, "grad_ckpt": ckpt, "seq_len": tokens // batch_size, "step_s": round(step, 4),
        "tokens_per_s": round(tokens / step, 1), "samples_per_s": round(batch_size / step, 3),
        "mfu": round(flops / step / peak_flops, 4), "mfu_6nt": round(flops_6nt / step / peak_flops, 4),
        "peak_mem_gib": round(peak_mem, 2), "loss": round(loss.item(), 3),
    }  # fmt: skip


def generation_stats(llm, config, batch_size: int, new_tokens: int, device: str) -> dict:
    llm.eval()
    batch = make_batch(config, batch_size, device, train=False)
    batch.pop("labels")
    kw = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "do_sample": False, "pad_token_id": 0}
    with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
        llm.hf.generate(**batch, **{**kw, "max_new_tokens": 2, "min_new_tokens": 2})  # warm-up
        sync(device)
        t0 = time.perf_counter()
        llm.hf.generate(**batch, **kw)
        sync(device)
    took = time.perf_counter() - t0
    return {"batch": batch_size, "new_tokens": new_tokens, "s": round(took, 3),
            "captions_per_s": round(batch_size / took, 3)}  # fmt: skip


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def peak_bf16_flops(name: str) -> float:
    for key, tflops in (
        ("H200", 989),
        ("H100", 989),
        ("A100", 312),
        ("4090", 165),
        ("L40S", 362),
        ("A10", 125),
    ):
        if key in name:
            return tflops * 1e12
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true", help="a tiny config on CPU: checks the script, not speed")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--max-batch", type=int, default=128)
    ap.add_argument("--gen-batch", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument(
        "--peak-tflops", type=float, help="the GPU's dense bf16 peak (default: looked up by name)"
    )
    ap.add_argument("--out", help="write the results as JSON here too")
    args = ap.parse_args()
    from auralign.models.lora import LoraSettings, apply_lora

    device = "cpu" if args.tiny else "cuda"
    name = "cpu (tiny config)" if args.tiny else torch.cuda.get_device_name()
    peak = args.peak_tflops * 1e12 if args.peak_tflops else (1e12 if args.tiny else peak_bf16_flops(name))
    torch.manual_seed(0)
    t0 = time.perf_counter()
    llm, config = build(
        TINY if args.tiny else QWEN2_AUDIO_7B, device, torch.float32 if args.tiny else torch.bfloat16
    )
    for p in llm.parameters():
        p.requires_grad_(False)
    apply_lora(llm, LoraSettings(r=8, alpha=32, dropout=0.05))
    total = sum(p.numel() for p in llm.parameters())
    lora = sum(p.numel() for p in llm.parameters() if p.requires_grad)
    results = {"device": name, "torch": torch.__version__, "params": total, "lora_params": lora,
               "build_s": round(time.perf_counter() - t0, 1), "peak_tflops": peak / 1e12, "train": [], "generate": []}  # fmt: skip
    print(json.dumps({k: v for k, v in results.items() if not isinstance(v, list)}), flush=True)
    for ckpt in (False, True):  # batch 1 is the paper's setting; then double until out of memory
        batch_size = 1
        while batch_size <= args.max_batch:
            try:
                row = train_step_stats(llm, config, batch_size, args.steps, device, peak, ckpt)
            except torch.OutOfMemoryError:
                print(json.dumps({"batch": batch_size, "grad_ckpt": ckpt, "oom": True}), flush=True)
                torch.cuda.empty_cache()
                break
            results["train"].append(row)
            print(json.dumps(row), flush=True)
            batch_size *= 2
    for batch_size in args.gen_batch:
        try:
            row = generation_stats(llm, config, batch_size, args.new_tokens, device)
        except torch.OutOfMemoryError:
            row = {"batch": batch_size, "oom": True}
            torch.cuda.empty_cache()
        results["generate"].append(row)
        print(json.dumps(row), flush=True)
    best = max(results["train"], key=lambda r: r["tokens_per_s"], default=None)
    if best:
        print(f"best: batch {best['batch']} {best['tokens_per_s']} tokens/s, MFU {best['mfu']:.1%} "
              f"(6NT convention {best['mfu_6nt']:.1%}), peak {best['peak_mem_gib']} GiB")  # fmt: skip
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
