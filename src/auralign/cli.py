"""The `auralign` command. Verbs mirror the data flow; each room registers its own in a `commands` module.

Command modules import heavy libraries (torch, transformers) inside their handlers, so `auralign --help`
stays fast. A verb that reads a config takes `--set KEY=VALUE` (`auralign.config.add_set_option`). Errors a
user can fix (AuralignError) print as `auralign: error: ...` and exit with its code (2), no traceback; so
does, as a safety net, an operating-system error on a named path (a file not found, a folder where a file was
expected, no permission). auralign's own warnings (a clip truncated, an untrained projector) print as one
`auralign: warning: ...` line.
"""

import argparse
import importlib
import logging
import sys
import warnings

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
    if getattr(args, "no_progress", False):  # every verb's flag covers transformers' weight-loading bars too
        import transformers

        transformers.utils.logging.disable_progress_bar()
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warnings(warnings.showwarning)
        try:
            return int(args.handler(args) or 0)
        except AuralignError as exc:
            print(f"auralign: error: {exc}", file=sys.stderr)
            return exc.exit_code
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
            if exc.filename is None:
                raise
            print(f"auralign: error: {exc.filename}: {exc.strerror}", file=sys.stderr)
            return AuralignError.exit_code
        except KeyboardInterrupt:
            print("auralign: interrupted", file=sys.stderr)
            return 130


def _one_line_warnings(show):
    """`warnings.showwarning` printing auralign's own warnings as one line; others as `show` does."""

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, UserWarning) and category.__module__.startswith("auralign."):
            print(f"auralign: warning: {message}", file=file or sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


if __name__ == "__main__":
    sys.exit(main())
