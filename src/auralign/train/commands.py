"""`auralign train CONFIG.yaml [--set KEY=VALUE ...]`: LoRA SFT over one or more stages of instruction
manifests."""

import argparse
from pathlib import Path

from auralign.config import add_set_option, load_config


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser("train", help="LoRA fine-tuning on AC / ADC / ACC manifests (resumable)")
    p.add_argument("config", type=Path, help="training config YAML (see configs/acc/)")
    add_set_option(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from auralign.train.sft.config import TrainConfig
    from auralign.train.sft.recipe import train

    cfg = load_config(args.config, TrainConfig, args.overrides)
    print(train(cfg, source=str(args.config), progress=not args.no_progress))
    return 0
