"""`auralign caption`: audio files, folders or manifests in, predictions JSONL out."""

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from auralign.models.base import AudioLLM


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser("caption", help="caption audio (files, folders, manifests) with an audio LLM")
    p.add_argument(
        "inputs", type=Path, nargs="+", help="audio files, folders of audio, or manifests (.jsonl)"
    )
    p.add_argument("-o", "--out", type=Path, required=True, help="predictions JSONL")
    p.add_argument("--backend", choices=["qwen2audio", "composed"], default="composed")
    p.add_argument(
        "--model", default="smollm2", help="model folder or hub id (composed: LM; default packaged SmolLM2)"
    )
    p.add_argument(
        "--adapter", type=Path, help="a trained adapter folder (auralign train's output_dir/adapter)"
    )
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--long-audio", default="error", choices=["error", "truncate", "split"])
    p.add_argument(
        "--prompt", help="instruction (default: the manifest's, or 'Describe the audio in one sentence.')"
    )
    p.add_argument("--audios-per-sample", type=int, default=1, help="group loose audio files N at a time")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--num-beams", type=int, default=1)
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding (seeded)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--engine", choices=["transformers", "vllm"], default="transformers")
    p.set_defaults(handler=_caption)


def _caption(args: argparse.Namespace) -> int:
    from auralign.infer.caption import caption, collect
    from auralign.models.base import GenerationOptions

    options = GenerationOptions(
        max_new_tokens=args.max_new_tokens,
        num_beams=args.num_beams,
        do_sample=args.sample,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
        batch_size=args.batch_size,
    )
    items = list(collect(args.inputs, args.prompt, args.audios_per_sample))
    print(caption(load_captioner(args), items, args.out, options=options))
    return 0


def load_captioner(args: argparse.Namespace) -> "AudioLLM":
    """The model `caption` runs: vLLM's engine or an auralign model, with the adapter on top."""
    if args.engine == "vllm":
        from auralign.errors import ConfigError
        from auralign.infer.vllm_engine import VllmQwen2Audio

        if args.backend != "qwen2audio":
            raise ConfigError("--engine vllm serves --backend qwen2audio only")
        return VllmQwen2Audio(args.model, args.adapter, max_audios=max(2, args.audios_per_sample))
    from auralign.models.factory import ModelConfig, build_with_adapter

    cfg = ModelConfig(backend=args.backend, path=args.model, dtype=args.dtype, long_audio=args.long_audio)
    return build_with_adapter(cfg, args.adapter)
