"""`auralign data ...`: build the offline mini corpus and instruction datasets, merge shards, show statistics."""

import argparse
from pathlib import Path


def register(verbs: argparse._SubParsersAction) -> None:
    data = verbs.add_parser("data", help="build corpora and AC / ADC / ACC instruction manifests")
    sub = data.add_subparsers(dest="data_command", required=True, metavar="STEP")

    mini = sub.add_parser("mini", help="build the offline mini corpus from packaged real sounds")
    mini.add_argument("out_dir", type=Path)
    mini.add_argument("--seed", type=int, default=0)
    mini.set_defaults(handler=_mini)


def _mini(args: argparse.Namespace) -> int:
    from auralign.data.mini import build_mini_corpus

    build_mini_corpus(args.out_dir, seed=args.seed)
    return 0
