"""`auralign dali prefix|align|distill|caption CONFIG.yaml [--set KEY=VALUE ...]`: DALI's stages;
`auralign dali quickstart`: all of them on the offline miniature (auralign.experiments.dali)."""

import argparse
from pathlib import Path
from typing import NamedTuple

from auralign.config import add_set_option, load_config


class Stage(NamedTuple):
    help: str
    config: str  # its config class in auralign.train.dali.config
    recipe: str  # its function in auralign.train.dali


STAGES = {
    "prefix": Stage("stage 1a: prefix tuning on (frame, audio caption) pairs", "PrefixConfig", "prefix_tune"),
    "align": Stage("stage 1b: audio-visual distribution alignment (resumable)", "AlignConfig", "align"),
    "distill": Stage(
        "stage 2: pseudo-captions, then an audio projector fine-tuned on them", "DistillConfig", "distill"
    ),
    "caption": Stage(
        "zero-shot captioning (audio, audio-visual, image) into predictions JSONL", "CaptionConfig", "caption"
    ),
}


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser("dali", help="DALI: zero-shot audio captioning with an image captioner (stages)")
    stages = p.add_subparsers(dest="dali_stage", required=True, metavar="STAGE")
    for name, stage in STAGES.items():
        sp = stages.add_parser(name, help=stage.help)
        sp.add_argument("config", type=Path, help="stage config YAML (see configs/dali/)")
        add_set_option(sp)
        sp.add_argument("--no-progress", action="store_true", help="no progress bars")
        sp.set_defaults(handler=_run)
    quick = stages.add_parser(
        "quickstart",
        help="the offline miniature end to end: captioner, prefix, 5 alignment methods, distillation, "
        "captioning, scores, PCA, report",
    )
    from auralign.experiments import dali as dali_quickstart

    dali_quickstart.add_arguments(quick)
    quick.set_defaults(handler=dali_quickstart.main)


def _run(args: argparse.Namespace) -> int:
    from auralign.train import dali
    from auralign.train.dali import config as dali_config

    stage = STAGES[args.dali_stage]
    cfg = load_config(args.config, getattr(dali_config, stage.config), args.overrides)
    print(getattr(dali, stage.recipe)(cfg, progress=not args.no_progress))
    return 0
