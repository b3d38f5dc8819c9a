"""`auralign data ...`: build the offline mini corpus and instruction datasets, merge shards, show statistics."""

import argparse
import os
import shlex
from pathlib import Path

from auralign.config import add_set_option, load_config


def register(verbs: argparse._SubParsersAction) -> None:
    data = verbs.add_parser("data", help="build corpora and AC / ADC / ACC instruction manifests")
    sub = data.add_subparsers(dest="data_command", required=True, metavar="STEP")

    mini = sub.add_parser("mini", help="build the offline mini corpus from packaged real sounds")
    mini.add_argument("out_dir", type=Path)
    mini.add_argument("--seed", type=int, default=0)
    mini.set_defaults(handler=_mini)
    _add_build_verbs(sub)
    from auralign.data.av_commands import add_av_verbs

    add_av_verbs(sub)


def _mini(args: argparse.Namespace) -> int:
    from auralign.data.mini.corpus import build_mini_corpus

    build_mini_corpus(args.out_dir, seed=args.seed)
    return 0


def _add_build_verbs(sub: argparse._SubParsersAction) -> None:
    build = sub.add_parser(
        "build", help="render edit pairs and write AC / ADC / ACC manifests from a YAML config"
    )
    build.add_argument("config", type=Path)
    add_set_option(build)
    build.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)"
    )
    build.add_argument("--shard", help="i/N: render only pairs with index %% N == i (then run `data merge`)")
    build.add_argument("--no-progress", action="store_true")
    build.set_defaults(handler=_build)

    merge = sub.add_parser(
        "merge", help="write the manifests once every shard of `data build --shard` is done"
    )
    merge.add_argument("config", type=Path, help="the config `data build` ran with")
    add_set_option(merge)
    merge.set_defaults(handler=_merge)


def _build(args: argparse.Namespace) -> int:
    from auralign.data.build import BuildConfig, build, format_summary, parse_shard

    config = load_config(args.config, BuildConfig, args.overrides)
    shard = parse_shard(args.shard)
    summary = build(config, shard=shard, workers=max(1, args.workers), progress=not args.no_progress)
    if shard[1] > 1:
        merge = shlex.join(["auralign", "data", "merge", str(args.config), *_set_args(args.overrides)])
        print(f"shard {summary['shard']}: {summary['pairs']}; run `{merge}` when all finish")
    else:
        print(format_summary(summary))
        print(f"manifests in {config.out_dir}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from auralign.data.build import BuildConfig, format_summary, merge

    config = load_config(args.config, BuildConfig, args.overrides)
    print(format_summary(merge(config)))
    return 0


def _set_args(overrides: list[str]) -> list[str]:
    """The overrides as command-line arguments again: `data merge` must see the config `data build` saw."""
    return [arg for item in overrides for arg in ("--set", item)]
