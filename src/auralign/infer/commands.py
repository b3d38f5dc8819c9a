"""`auralign caption`: audio files, folders or manifests in, predictions JSONL out.

Before a model is loaded, the options and every input audio's header are checked, so a missing or corrupt
file, a zero batch size or an output path that is a folder is one line naming it, not a traceback minutes in.
"""

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from auralign.config import positive_int
from auralign.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from auralign.models.base import Audio, AudioLLM, GenerationOptions


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
    p.add_argument(
        "--audios-per-sample", type=positive_int, default=1, help="group loose audio files N at a time"
    )
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--max-new-tokens", type=positive_int, default=64)
    p.add_argument("--num-beams", type=positive_int, default=1)
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding (seeded)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--engine", choices=["transformers", "vllm"], default="transformers")
    p.set_defaults(handler=_caption)


def _caption(args: argparse.Namespace) -> int:
    from auralign.infer.caption import caption, collect

    if args.out.is_dir():
        raise ConfigError(
            f"-o {args.out}: is a folder; name the predictions file, e.g. {args.out / 'predictions.jsonl'}"
        )
    if args.adapter is not None and not (args.adapter / "adapter_config.json").is_file():
        raise ConfigError(
            f"--adapter {args.adapter}: no adapter_config.json here (expected a PEFT adapter folder)"
        )
    options = generation_options(args)
    items = list(collect(args.inputs, args.prompt, args.audios_per_sample))
    check_audios((item.chat.audios for item in items), long_audio=args.long_audio)
    print(caption(load_captioner(args), items, args.out, options=options))
    return 0


def generation_options(args: argparse.Namespace) -> "GenerationOptions":
    """The decoding options of the command line; a value they refuse is named by its option."""
    from pydantic import ValidationError

    from auralign.models.base import GenerationOptions

    values = {
        "max_new_tokens": args.max_new_tokens,
        "num_beams": args.num_beams,
        "do_sample": args.sample,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "seed": args.seed,
        "batch_size": args.batch_size,
    }
    try:
        return GenerationOptions(**values)
    except ValidationError as exc:
        problem = exc.errors()[0]
        option = "--" + str(problem["loc"][0]).replace("_", "-")
        raise ConfigError(f"{option} {values[problem['loc'][0]]}: {problem['msg']}") from None


def check_audios(groups: "Iterable[Sequence[Audio]]", *, long_audio: str) -> None:
    """Every audio file's header: AudioError naming the first missing, empty or corrupt one, or one longer
    than the model's window when `long_audio` is "error" (judged without decoding)."""
    import os

    from auralign.audio import audio_info
    from auralign.models.base import WINDOW_SECONDS, too_long

    for audios in groups:
        for audio in audios:
            if not isinstance(audio, str | os.PathLike):
                continue
            rate, frames, _ = audio_info(audio)
            if long_audio == "error" and frames / rate > WINDOW_SECONDS:
                raise too_long(str(audio), frames / rate, WINDOW_SECONDS)


def load_captioner(args: argparse.Namespace) -> "AudioLLM":
    """The model `caption` runs: vLLM's engine or an auralign model, with the adapter on top."""
    if args.engine == "vllm":
        from auralign.infer.vllm_engine import VllmQwen2Audio

        if args.backend != "qwen2audio":
            raise ConfigError("--engine vllm serves --backend qwen2audio only")
        return VllmQwen2Audio(args.model, args.adapter, max_audios=max(2, args.audios_per_sample))
    from auralign.models.factory import ModelConfig, build_with_adapter

    cfg = ModelConfig(backend=args.backend, path=args.model, dtype=args.dtype, long_audio=args.long_audio)
    return build_with_adapter(cfg, args.adapter, seed=args.seed)
