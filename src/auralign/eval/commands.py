"""`auralign evaluate CONFIG.yaml`: captioning and general-ability benchmarks for each configuration."""

import argparse
from pathlib import Path


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("evaluate", help="captioning + general-ability benchmarks, the paper's tables")
    parser.add_argument("config", type=Path)
    parser.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from auralign.config import load_config
    from auralign.eval.benchmark import EvalConfig, run, tables

    cfg = load_config(args.config, EvalConfig)
    print(tables(cfg, run(cfg)))
    return 0
