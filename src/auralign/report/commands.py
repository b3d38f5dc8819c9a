"""`auralign report RUN_DIR`: the run folder's results as one HTML page and a Markdown twin."""

import argparse
from pathlib import Path


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "report", help="write RUN_DIR/report/index.html and report.md from RUN_DIR/results.json"
    )
    p.add_argument("run_dir", type=Path, help="a run folder with results.json (e.g. runs/quickstart)")
    p.add_argument("-o", "--out", type=Path, help="output folder (default: RUN_DIR/report)")
    p.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from auralign.report import write_report

    html, md = write_report(args.run_dir, args.out)
    print(f"{html} ({html.stat().st_size / 1e6:.1f} MB)\n{md}")
    return 0
