"""The `auralign` command. Verbs mirror the data flow; each room registers its own in a `commands` module.

Command modules import heavy libraries (torch, transformers) inside their handlers, so `auralign --help`
stays fast. A verb that reads a config takes `--set KEY=VALUE` (`auralign.config.add_set_option`). Errors a
user can fix (AuralignError) print as `auralign: error: ...` and exit with its code (2), no traceback.
"""

import argparse
import importlib
import logging
import sys

from auralign.errors import AuralignError

COMMAND_MODULES = (
    "auralign.audio.commands",
    "auralign.data.commands",
    "auralign.metrics.commands",
    "auralign.experiments.acc",
    "auralign.train.commands",
    "auralign.train.dali.commands",
    "auralign.infer.commands",
    "auralign.report.commands",
    "auralign.apps.demo",
    "auralign.eval.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="auralign", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    verbs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.handler(args) or 0)
    except AuralignError as exc:
        print(f"auralign: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("auralign: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
