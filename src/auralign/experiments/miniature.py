"""What the two miniatures (`auralign quickstart`, `auralign dali quickstart`) share: their command line, their
config file, their numbered phases with timings, and their results.json.

The config file of a miniature has two kinds of keys:

- its own, typed (a `StrictModel`), for what no stage config holds: seed, threads, corpus size, which methods;
- one plain mapping per stage, a **partial stage config** in the shape of that stage's real config class
  (`base:` a partial `TrainConfig`, `align:` a partial `AlignConfig` with `attention:` nested as there).
  `stage_config` deep-merges it over what the miniature computes (paths, data sections, its recipe's scale)
  and validates the result as the stage config class. The file wins; a field that a stage config gains is
  settable from the file with no edit here; an error names the file and the dotted key
  (`align.attention.lambdas.0: ...`). A miniature checks every partial before its first phase
  (`check_stage_configs` builds the stage configs over a placeholder run folder), so a typo costs no minutes.

`--set KEY=VALUE` (repeatable) overrides any key, stage keys included (`--set finetune.optim.lr=2.0e-4`); an
error in an overridden key names `--set KEY` (`Origin` carries the file and those keys to the stage configs).

A run prints `[k/N] what` before each phase and keeps seconds per timed step (`Phases`); `write_results`
writes RUN/results.json in the report's run-folder contract (docs/report.md), checked against
`auralign.report.results.Results` before it is written.
"""

import argparse
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, create_model

from auralign.config import StrictModel, add_set_option, deep_merge, load_config, validate

Model = TypeVar("Model", bound=BaseModel)


def slug(name: str) -> str:
    """A row name as a folder or file name: "AC+ADC" -> "ac-adc", "attentive OT" -> "attentive-ot"."""
    return name.lower().replace("+", "-").replace(" ", "-")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------- config: typed keys + partial stage configs


@dataclass(frozen=True)
class Origin:
    """Where a miniature's config came from, as its errors name it: the file (or the built-in defaults) and
    the keys that --set overrode."""

    source: str
    set_keys: tuple[str, ...] = ()


#: a config built in Python (tests, notebooks)
IN_CODE = Origin("the given config")


def stage_config(
    model: type[Model],
    *,
    computed: Mapping[str, Any],
    partial: Mapping[str, Any],
    section: str,
    origin: Origin,
) -> Model:
    """`partial` (the config's `section:`) deep-merged over `computed`, validated as `model`; an error names
    the key as `section.dotted.key`, under the file or as the --set option that gave it."""
    wrapper = create_model(f"{model.__name__}Section", __base__=StrictModel, **{section: (model, ...)})
    merged = {section: deep_merge(computed, partial)}
    return getattr(validate(merged, wrapper, origin.source, origin.set_keys), section)


def read_config(
    args: argparse.Namespace, model: type[Model], presets: Mapping[str, Mapping[str, Any]] | None = None
) -> tuple[Model, Origin]:
    """The miniature's config from the command line (--preset, --config, --set, --seed) and where it came
    from: the preset's keys over the defaults, the file's over the preset's, --set over both."""
    preset = getattr(args, "preset", "quick")
    source = "the built-in defaults" if args.config is None else str(args.config)
    if preset != "quick":
        source = (
            f"the {preset} preset" if args.config is None else f"{args.config} (over the {preset} preset)"
        )
    under = (presets or {}).get(preset, {})
    cfg = load_config(args.config, model, args.overrides, under=under, source=source)
    set_keys = tuple(item.partition("=")[0] for item in args.overrides)
    if args.seed is not None:
        cfg = cfg.model_copy(update={"seed": args.seed})
    return cfg, Origin(source, set_keys)


def run_from_args(
    args: argparse.Namespace,
    model: type[Model],
    run: Any,
    presets: Mapping[str, Mapping[str, Any]] | None = None,
    **extra: Any,
) -> int:
    """A miniature verb's handler: its config from the command line, then `run(out, cfg, ...)` with the shared
    options and the verb's own (`extra`)."""
    cfg, origin = read_config(args, model, presets)
    run(
        args.out,
        cfg,
        workers=args.workers,
        progress=not args.no_progress,
        from_scratch=args.from_scratch,
        origin=origin,
        **extra,
    )
    return 0


# ---------------------------------------------------------------- the command line


def add_arguments(
    parser: argparse.ArgumentParser,
    *,
    out: str,
    defaults: str,
    shipped: str,
    presets: Mapping[str, Any] | None = None,
) -> None:
    """The options every miniature takes; `defaults` is the YAML that writes its defaults out, `shipped` what
    it ships trained (and --from-scratch trains), `presets` its named presets ("quick" is the defaults)."""
    parser.add_argument("--out", type=Path, default=Path(out), help="run folder")
    if presets:
        parser.add_argument(
            "--preset",
            choices=list(presets),
            default="quick",
            help="quick: minutes, one seed, demonstrates the pipeline; full: the protocol of "
            "docs/replication.md (several seeds, intervals, verdicts)",
        )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"config YAML (default: built in, written out in {defaults})",
    )
    add_set_option(parser)
    parser.add_argument("--seed", type=int, default=None, help="overrides the config's seed")
    parser.add_argument("--workers", type=int, default=None, help="processes for data and YAMNet features")
    parser.add_argument(
        "--from-scratch", action="store_true", help=f"train {shipped} instead of using the shipped one"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


# ---------------------------------------------------------------- phases and results


class Phases:
    """Numbered phase banners and the seconds of each timed step, in order (`timings`)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.timings: dict[str, float] = {}
        self._clock = time.perf_counter()

    def start(self, k: int, text: str) -> None:
        print(f"[{k}/{self.count}] {text}", flush=True)

    def lap(self, name: str) -> None:
        """Time since the last lap as `name` (e.g. "data_s")."""
        clock = time.perf_counter()
        self.timings[name] = round(clock - self._clock, 1)
        self._clock = clock

    def total(self) -> None:
        self.timings["total_s"] = round(sum(self.timings.values()), 1)


def write_results(
    run_dir: Path,
    *,
    title: str,
    seed: int,
    config: dict[str, Any],
    sections: dict[str, Any],
    timings: dict[str, float],
    notes: list[str],
) -> dict[str, Any]:
    """RUN/results.json: title, seed, creation time, environment and config, then `sections` (captioning,
    abilities, dali, examples, training, ...), timings and notes."""
    from auralign.report import environment
    from auralign.report.results import Results

    doc = {
        "title": title,
        "seed": seed,
        "created": now(),
        "environment": environment(),
        "config": config,
        **sections,
        "timings": timings,
        "notes": notes,
    }
    Results.model_validate(doc)  # the report's contract: a broken document is a bug here, not in the report
    return save_results(run_dir, doc)


def write_timings(run_dir: Path, doc: dict[str, Any], timings: dict[str, float]) -> dict[str, Any]:
    """RUN/results.json again with the final `timings` (the report's and the total, known only after the
    report was written from the first results.json), nothing recomputed."""
    return save_results(run_dir, {**doc, "timings": dict(timings)})


def save_results(run_dir: Path, doc: dict[str, Any]) -> dict[str, Any]:
    from auralign.fileio import atomic_write_text

    atomic_write_text(run_dir / "results.json", json.dumps(doc, indent=2) + "\n")
    return doc
