"""The run-folder contract (docs/report.md): `RUN_DIR/results.json` and the training logs it names.

Validation is strict about shape and lenient about content: unknown keys are kept (a newer quickstart may
add some), metric values may be null (unavailable here, shown as "n/a"), and every error names the file
and the key or line, so a broken run folder is one readable message.
"""

import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from auralign.errors import DataError
from auralign.fileio import read_jsonl

RESULTS = "results.json"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


def _ordered(value: tuple[float, float]) -> tuple[float, float]:
    if value[0] > value[1]:
        raise ValueError(f"interval {list(value)} has low > high")
    return value


#: a 95 % confidence interval [low, high] around the mean a row reports beside it
Interval = Annotated[tuple[float, float], AfterValidator(_ordered)]
Intervals = dict[str, Interval | None]


def _fractions(value: dict, what: str) -> dict:
    """Accuracies and their intervals are fractions: 62.5 (a percentage) is refused, naming the task."""
    for task, v in value.items():
        numbers = [] if v is None else list(v) if isinstance(v, tuple) else [v]
        if any(not 0.0 <= x <= 1.0 for x in numbers):
            shown = numbers if isinstance(v, tuple) else v
            raise ValueError(f"{what} of {task!r} is {shown}, expected a fraction in [0, 1]")
    return value


class CaptionRow(_Open):
    config: str
    metrics: dict[str, float | None] = Field(default_factory=dict)
    intervals: Intervals = Field(default_factory=dict)


class Captioning(_Open):
    dataset: str = ""
    n_samples: int | None = None
    rows: list[CaptionRow] = Field(default_factory=list)


class AbilityRow(_Open):
    config: str
    accuracy: dict[str, float | None] = Field(default_factory=dict)
    intervals: Intervals = Field(default_factory=dict)  # of the accuracy, fractions too
    #: log-probability of the correct answer per task (higher is better), and its intervals
    logprob: dict[str, float | None] = Field(default_factory=dict)
    logprob_intervals: Intervals = Field(default_factory=dict)

    @field_validator("accuracy")
    @classmethod
    def _fraction(cls, value: dict[str, float | None]) -> dict[str, float | None]:
        return _fractions(value, "accuracy")

    @field_validator("intervals")
    @classmethod
    def _fraction_intervals(cls, value: Intervals) -> Intervals:
        return _fractions(value, "accuracy interval")


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
    input: str  # "audio", "audio-visual", "image", or "none" (a baseline that hears nothing)
    metrics: dict[str, float | None] = Field(default_factory=dict)
    intervals: Intervals = Field(default_factory=dict)


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
    #: rows that caption without the clip (e.g. the prior's constant caption), shown below the others
    baselines: list[DaliRow] = Field(default_factory=list)
    pca: dict[str, DaliPca] = Field(default_factory=dict)
    training: dict[str, TrainingLog] = Field(default_factory=dict)


class _Estimate(_Open):
    """A named difference: its mean and 95 % interval [low, high] (null: n/a)."""

    name: str
    mean: float | None = None
    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "_Estimate":
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"{self.name!r}: low {self.low} > high {self.high}")
        return self


class Comparison(_Estimate):
    """One difference a claim is judged on, e.g. "ADC - AC", and its verdict."""

    verdict: str = ""


VERDICTS = ("reproduced", "contradicted", "inconclusive", "not tested")


def verdict_word(verdict: str) -> str | None:
    """The verdict a claim's verdict starts with ("inconclusive (check V1 failed)" -> "inconclusive")."""
    return next((w for w in VERDICTS if verdict == w or verdict.startswith(f"{w} (")), None)


def _a_verdict(value: str) -> str:
    if verdict_word(value) is None:
        raise ValueError(
            f"verdict {value!r}: expected one of {', '.join(VERDICTS)} (optionally followed by a reason in "
            "parentheses, e.g. 'inconclusive (check V1 failed)')"
        )
    return value


class Claim(_Open):
    """A claim of the paper, the comparisons that test it, the verdict and the rule that gave it."""

    id: str
    claim: str
    measure: str = ""
    comparisons: list[Comparison] = Field(default_factory=list)
    verdict: Annotated[str, AfterValidator(_a_verdict)]
    rule: str = ""


class CheckPart(_Estimate):
    """One part of a validity check: a comparison or a row's value on its measure, "passed" / "failed"."""

    measure: str = ""
    verdict: str = ""


class Check(_Open):
    """A validity check the claims depend on (e.g. "the fine-tuned model learned the task")."""

    id: str
    check: str = ""
    parts: list[CheckPart] = Field(default_factory=list)
    verdict: str = ""


class Difference(_Estimate):
    """A difference between configurations the report puts first ("Key differences")."""

    measure: str = ""


class Results(_Open):
    title: str = "auralign run"
    seed: int | None = None
    #: "quick": one seed, small test sets, a demonstration; "full": several seeds, claims tested
    preset: Literal["quick", "full"] | None = None
    seeds: list[int] | None = None
    claims: list[Claim] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)
    differences: list[Difference] = Field(default_factory=list)
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
