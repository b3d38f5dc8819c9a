"""The run-folder contract (docs/report.md): `RUN_DIR/results.json` and the training logs it names.

Validation is strict about shape and lenient about content: unknown keys are kept (a newer quickstart may
add some), metric values may be null (unavailable here, shown as "n/a"), and every error names the file
and the key or line, so a broken run folder is one readable message.
"""

import json
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from auralign.errors import DataError
from auralign.fileio import read_jsonl

RESULTS = "results.json"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class CaptionRow(_Open):
    config: str
    metrics: dict[str, float | None] = Field(default_factory=dict)


class Captioning(_Open):
    dataset: str = ""
    n_samples: int | None = None
    rows: list[CaptionRow] = Field(default_factory=list)


class AbilityRow(_Open):
    config: str
    accuracy: dict[str, float | None] = Field(default_factory=dict)

    @field_validator("accuracy")
    @classmethod
    def _fraction(cls, value: dict[str, float | None]) -> dict[str, float | None]:
        for task, acc in value.items():
            if acc is not None and not 0.0 <= acc <= 1.0:
                raise ValueError(f"accuracy of {task!r} is {acc}, expected a fraction in [0, 1]")
        return value


class Abilities(_Open):
    #: the configuration the changes are measured from (default: the row named "base")
    base: str | None = None
    tasks: list[str] = Field(default_factory=list)
    mirrors: dict[str, str] = Field(default_factory=dict)
    n_samples: dict[str, int] = Field(default_factory=dict)
    rows: list[AbilityRow] = Field(default_factory=list)


class Example(_Open):
    id: str
    audio: str | None = None  # relative to RUN_DIR
    references: list[str] = Field(default_factory=list)
    predictions: dict[str, str] = Field(default_factory=dict)


class TrainingLog(_Open):
    log: str  # relative to RUN_DIR: JSONL, one {"step", "loss", "lr", "stage"} per logged step


class DaliRow(_Open):
    method: str
    input: str  # "audio", "audio-visual" or "image"
    metrics: dict[str, float | None] = Field(default_factory=dict)


class DaliPca(_Open):
    """One method's clips on the first two principal axes of their mean audio and mean image tokens."""

    audio: list[list[float]]
    image: list[list[float]]
    explained_variance_ratio: list[float] = Field(default_factory=list)
    centroid_distance: float | None = None
    centroid_distance_normalized: float | None = None
    pair_cosine: float | None = None


class Dali(_Open):
    """DALI's zero-shot audio captioning: one row per alignment method and input, the PCA of DALI's Figure 4
    per method, and per-stage training logs (paths relative to RUN_DIR)."""

    dataset: str = ""
    n_samples: int | None = None
    rows: list[DaliRow] = Field(default_factory=list)
    pca: dict[str, DaliPca] = Field(default_factory=dict)
    training: dict[str, TrainingLog] = Field(default_factory=dict)


class Results(_Open):
    title: str = "auralign run"
    seed: int | None = None
    created: str = ""
    environment: dict[str, Any] = Field(default_factory=dict)
    config: Any = None
    captioning: Captioning | None = None
    abilities: Abilities | None = None
    dali: Dali | None = None
    examples: list[Example] = Field(default_factory=list)
    training: dict[str, TrainingLog] = Field(default_factory=dict)
    timings: dict[str, float | None] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)


def load_results(run_dir: Path) -> Results:
    """`RUN_DIR/results.json`, validated; a missing, unreadable or malformed file is a `DataError` naming it."""
    path = Path(run_dir) / RESULTS
    if not path.is_file():
        raise DataError(f"{path}: not found (is {run_dir} a run folder written by `auralign quickstart`?)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: line {exc.lineno}, column {exc.colno}: malformed JSON: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object at the top level, got {type(data).__name__}")
    try:
        return Results.model_validate(data)
    except ValidationError as exc:
        problems = [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise DataError(f"{path}: does not follow the run-folder contract\n" + "\n".join(problems)) from None


def resolve(run_dir: Path, relative: str, what: str) -> Path:
    """A path named in results.json (relative to RUN_DIR) that must exist."""
    path = Path(run_dir) / relative
    if not path.is_file():
        raise DataError(f"{path}: {what} named in {Path(run_dir) / RESULTS} not found")
    return path


def load_log(path: Path) -> list[dict[str, Any]]:
    """One training log: rows with an int `step` and a numeric `loss` (NaN kept: a diverged run shows as one)."""
    rows = []
    for number, row in read_jsonl(path, "training log"):
        step, loss = row.get("step"), row.get("loss")
        if not isinstance(step, int) or isinstance(step, bool):
            raise DataError(f"{path}: line {number}: 'step' must be an integer, got {step!r}")
        if not isinstance(loss, int | float) or isinstance(loss, bool):
            raise DataError(f"{path}: line {number}: 'loss' must be a number, got {loss!r}")
        rows.append({**row, "loss": float(loss) if math.isfinite(loss) else math.nan})
    if not rows:
        raise DataError(f"{path}: training log has no rows")
    return rows
