"""The run report: tables in the ACC paper's layout, training curves, example captions with their audio.

`write_report(run_dir)` reads the run-folder contract (docs/report.md) and writes RUN_DIR/report/index.html
(self-contained) and report.md.
"""

from typing import Any

__all__ = ["environment", "write_report"]


def __getattr__(name: str) -> Any:
    # Lazy, so `auralign --help` (which imports report.commands, hence this package) stays fast.
    if name == "write_report":
        from auralign.report.render import write_report

        return write_report
    if name == "environment":
        from auralign.report.env import environment

        return environment
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
