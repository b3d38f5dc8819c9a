"""`auralign evaluate CONFIG.yaml [--set KEY=VALUE ...]`: captioning and general-ability benchmarks for each
configuration."""

import argparse
from pathlib import Path

from auralign.config import add_set_option, load_config


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("evaluate", help="captioning + general-ability benchmarks, the paper's tables")
    parser.add_argument("config", type=Path, help="evaluation config YAML (see configs/acc/eval.yaml)")
    add_set_option(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from auralign.eval.benchmark import EvalConfig, run, tables

    cfg = load_config(args.config, EvalConfig, args.overrides)
    print(tables(cfg, run(cfg, progress=not args.no_progress)))
    return 0
