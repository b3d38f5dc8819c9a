"""`auralign evaluate CONFIG.yaml`: every model row x every benchmark set -> predictions, scores, paper tables.

Rows are the base model and each fine-tuned adapter; sets are captioning manifests (scored with
`auralign.metrics.evaluate`) and the general-ability tasks VSC / SER / MIC / MGC (label accuracy of the
answer, read with the metrics' normalised matching). Predictions are cached per row and set, so adding a row
or a set re-runs only what is new. Output: `results.json` and `tables.md` laid out like the ACC paper's
Table 2 (captioning) and Table 3 (general abilities).

Forgetting is measured continuously too: for each ability item, the log-probability (natural log, summed over
the tokens training's labels mark: the label and the end-of-turn token) the model gives the correct label as
the answer to the task prompt (`AudioLLM.answer_logprobs`), written as `logprob` into the item's prediction
line beside `correct` (0/1: its answer read as its label under this run's `label_mode`); a set's results carry
the mean `logprob` beside `accuracy`. Every set's results keep per-item values under `per_item` (the ids, and
per metric or `correct` / `logprob`, in the items' order) so a caller can bootstrap over items.

A cached prediction file (`OUT/<row>/<set>.jsonl`) is reused only when what would produce it is the same:
beside it, `<set>.origin.json` records the model section, the row's adapter (path and a digest of its
files), the decoding options, the prompts and the inputs (`auralign.infer.caption.origin`); a changed one is
refused, naming the file and what differs. An ability set's file without a `logprob` on every line (one
from before they were computed, or a run killed between answering and scoring) is stale: its log-probabilities
are computed again (its answers, of the same origin, are kept). Rows, and sets, must have names that give
distinct folders and files (names differing only in punctuation or case would share one), checked when the
config is read.
"""

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from auralign.config import StrictModel
from auralign.errors import DataError
from auralign.fileio import atomic_write_text, read_jsonl, record_origin, reusable
from auralign.models.base import Chat, GenerationOptions
from auralign.models.factory import ModelConfig

if TYPE_CHECKING:
    from auralign.infer.caption import Item
    from auralign.metrics.labels import LabelScores
    from auralign.models.base import AudioLLM

log = logging.getLogger(__name__)


class Row(StrictModel):
    name: str = Field(min_length=1)
    adapter: str | None = None  # None: the base model
    #: the sets this row is scored on, by name (None: every set); a table shows the others as n/a
    sets: list[str] | None = Field(default=None, min_length=1)

    def scores(self, bench: "BenchSet") -> bool:
        return self.sets is None or bench.name in self.sets


class BenchSet(StrictModel):
    name: str = Field(min_length=1)
    manifest: str
    mirrors: str | None = None  # for an ability set: the paper's task it stands for (VSC, SER, MIC, MGC)
    kind: Literal["caption", "label"] = "caption"
    prompt: str | None = None  # override the manifest's instruction
    limit: int | None = Field(default=None, gt=0)  # first N samples (quick runs)


class EvalConfig(StrictModel):
    output_dir: str
    model: ModelConfig
    rows: list[Row] = Field(min_length=1)
    captioning: list[BenchSet] = Field(default_factory=list)
    abilities: list[BenchSet] = Field(default_factory=list)
    metrics: str | list[str] = "default"
    label_mode: Literal["exact", "normalized", "contains"] = "contains"
    generation: GenerationOptions = GenerationOptions()
    #: new tokens an ability answer may take (labels are a few tokens); None: `generation.max_new_tokens`
    label_max_new_tokens: int | None = Field(default=None, gt=0)
    metric_options: dict[str, str] = Field(default_factory=dict)  # auralign.metrics.Options (java, ...)

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: str | list[str]) -> str | list[str]:
        """Unknown metric names fail when the config is read, not after hours of generation."""
        from auralign.metrics.evaluate import resolve_metrics

        resolve_metrics(value)
        return value

    @field_validator("rows")
    @classmethod
    def _distinct_rows(cls, rows: list[Row]) -> list[Row]:
        """Two rows whose names give one folder would share, and report, one set of predictions."""
        _check_distinct([row.name for row in rows], "folder")
        return rows

    @field_validator("captioning", "abilities")
    @classmethod
    def _distinct_sets(cls, sets: list[BenchSet], info: ValidationInfo) -> list[BenchSet]:
        """Sets of both kinds share each row's folder, so all their names must give distinct files."""
        before = info.data.get("captioning", []) if info.field_name == "abilities" else []
        _check_distinct([s.name for s in [*before, *sets]], "file")
        return sets

    @model_validator(mode="after")
    def _known_row_sets(self) -> "EvalConfig":
        """A row's `sets` must name sets of this config: a typo would silently score nothing."""
        names = {s.name for s in (*self.captioning, *self.abilities)}
        for row in self.rows:
            unknown = sorted(set(row.sets or ()) - names)
            if unknown:
                raise ValueError(f"row '{row.name}': sets {unknown} are not in this config ({sorted(names)})")
        return self


def _check_distinct(names: list[str], what: str) -> None:
    seen: dict[str, str] = {}
    for name in names:
        key = slug(name).casefold()
        if key in seen:
            other = seen[key]
            raise ValueError(
                f"names '{other}' and '{name}' would share one predictions {what} ('{slug(name)}'); rename one"
            )
        seen[key] = name


def slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def predictions_file(out: Path, row: Row, bench: BenchSet) -> Path:
    """Where a row's predictions on a set are cached (reused while its origin file matches)."""
    return out / slug(row.name) / f"{slug(bench.name)}.jsonl"


def row_model(cfg: EvalConfig, row: Row) -> dict[str, Any]:
    """The model a row's predictions come from, as the config names it, with a digest of the adapter's files
    (so an adapter retrained in place is not taken for the old one)."""
    return {
        "config": cfg.model.model_dump(mode="json"),
        "adapter": row.adapter,
        "adapter_files": _folder_digest(Path(row.adapter)) if row.adapter else None,
    }


def _folder_digest(folder: Path) -> str | None:
    if not folder.is_dir():
        return None  # loading it fails later, naming it
    digest = hashlib.sha1()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder)}|".encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def cached(predictions: Path, origin: dict[str, Any]) -> bool:
    """True when `predictions` exist and were made by `origin`; existing ones of another origin are refused."""
    return reusable(
        predictions,
        origin,
        what="cached predictions of another setup",
        remedy="use a new output_dir or delete the file to generate it again",
    )


def generation_options(cfg: EvalConfig, bench: BenchSet) -> GenerationOptions:
    """The decoding options of a set: ability answers take at most `label_max_new_tokens` when it is set."""
    if bench.kind == "label" and cfg.label_max_new_tokens is not None:
        return cfg.generation.model_copy(update={"max_new_tokens": cfg.label_max_new_tokens})
    return cfg.generation


@dataclass
class Job:
    """One row's work on one set: generate its answers (`generate`), and for an ability set score the labels."""

    bench: BenchSet
    items: "list[Item]"
    made_by: dict[str, Any]
    predictions: Path
    generate: bool  # False: cached answers whose log-probabilities are missing


def plan(cfg: EvalConfig, row: Row, bench: BenchSet, model: dict[str, Any]) -> Job | None:
    """What is left to do for `row` on `bench`; None when its cached predictions are complete."""
    from auralign.infer.caption import collect, origin

    items = list(collect([Path(bench.manifest)], bench.prompt))[: bench.limit]
    if bench.kind == "label" and any(it.label is None for it in items):
        raise DataError(f"{bench.manifest}: an ability task needs a `label` on every sample")
    made_by = origin(items, generation_options(cfg, bench), model)
    predictions = predictions_file(Path(cfg.output_dir), row, bench)
    if not cached(predictions, made_by):
        return Job(bench, items, made_by, predictions, generate=True)
    if bench.kind == "label" and not has_logprobs(predictions):
        return Job(bench, items, made_by, predictions, generate=False)
    return None


def run(cfg: EvalConfig, *, progress: bool = True) -> dict:
    from auralign.infer.caption import caption
    from auralign.models.factory import build_with_adapter

    out = Path(cfg.output_dir)
    sets = [
        *(s.model_copy(update={"kind": "caption"}) for s in cfg.captioning),
        *(s.model_copy(update={"kind": "label"}) for s in cfg.abilities),
    ]
    for row in cfg.rows:
        model = row_model(cfg, row)
        mine = [bench for bench in sets if row.scores(bench)]
        todo = [job for bench in mine if (job := plan(cfg, row, bench, model)) is not None]
        if not todo:
            continue
        llm = build_with_adapter(cfg.model, row.adapter)
        for job in todo:
            log.info("%s / %s: %d samples", row.name, job.bench.name, len(job.items))
            if job.generate:
                record_origin(job.predictions, job.made_by)
                options = generation_options(cfg, job.bench)
                caption(llm, job.items, job.predictions, options=options, model=model, progress=progress)
            if job.bench.kind == "label":
                write_logprobs(llm, job.items, job.predictions, batch_size=cfg.generation.batch_size)
        del llm
    for row in cfg.rows:  # `label_mode` is no part of the origin: each run marks its own reading
        for bench in (s for s in sets if s.kind == "label" and row.scores(s)):
            mark_correct(cfg, predictions_file(out, row, bench), bench)
    results = {
        row.name: {s.name: score(cfg, predictions_file(out, row, s), s) for s in sets if row.scores(s)}
        for row in cfg.rows
    }
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    atomic_write_text(out / "tables.md", tables(cfg, results))
    return results


def answer_chat(item: "Item") -> Chat:
    """An ability item's prompt answered with its correct label, the text `answer_logprobs` scores."""
    answer = {"role": "assistant", "content": item.label}
    return Chat([*item.chat.messages, answer], item.chat.audios, item.chat.id)


def has_logprobs(predictions: Path) -> bool:
    """True when every line of a predictions file has its label's log-probability."""
    rows = [r for _, r in read_jsonl(predictions, "predictions")]
    return all(isinstance(r.get("logprob"), int | float) for r in rows)


def write_logprobs(llm: "AudioLLM", items: "list[Item]", predictions: Path, *, batch_size: int) -> None:
    """Add each item's `logprob` (of its correct label as the answer) to its line of `predictions`."""
    values = llm.answer_logprobs([answer_chat(it) for it in items], batch_size=batch_size)
    by_id = {it.chat.id: value for it, value in zip(items, values, strict=True)}
    rows = [r for _, r in read_jsonl(predictions, "predictions")]
    write_rows(predictions, [r | {"logprob": by_id[r["id"]]} for r in rows])


def mark_correct(cfg: EvalConfig, predictions: Path, bench: BenchSet) -> None:
    """Write each line's `correct` (0/1, as `label_mode` reads its answer); rewritten only when it changes."""
    rows = [r for _, r in read_jsonl(predictions, "predictions")]
    _, correct = label_scores(cfg, rows, bench)
    if [r.get("correct") for r in rows] != correct:
        write_rows(predictions, [r | {"correct": c} for r, c in zip(rows, correct, strict=True)])


def write_rows(predictions: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(predictions, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def label_scores(
    cfg: EvalConfig, rows: list[dict[str, Any]], bench: BenchSet
) -> "tuple[LabelScores, list[int]]":
    """Label accuracy of an ability set's prediction lines, and whether each answer was read as its label."""
    from auralign.metrics import label_accuracy

    if any(r["label"] is None for r in rows):
        raise DataError(f"{bench.manifest}: an ability task needs a `label` on every sample")
    labels = [r["label"] for r in rows]
    scores = label_accuracy([r["prediction"] for r in rows], labels, mode=cfg.label_mode)
    return scores, [int(read == label) for read, label in zip(scores.predicted, labels, strict=True)]


def score(cfg: EvalConfig, predictions: Path, bench: BenchSet) -> dict:
    from auralign.metrics import Options, evaluate

    rows = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines() if line.strip()]
    preds, ids = [r["prediction"] for r in rows], [r["id"] for r in rows]
    if bench.kind == "label":
        scores, correct = label_scores(cfg, rows, bench)
        logprobs = [r.get("logprob") for r in rows]
        mean = None if None in logprobs else sum(logprobs) / len(logprobs)  # None: a file made before them
        return {
            "n": len(rows),
            "accuracy": scores.accuracy,
            "logprob": mean,
            "per_class": scores.to_json()["per_class"],
            "per_item": {"id": ids, "correct": correct, "logprob": logprobs},
        }
    refs = [r["references"] for r in rows]
    if any(not r for r in refs):
        raise DataError(f"{bench.manifest}: a captioning set needs references on every sample")
    scores = evaluate(preds, refs, metrics=cfg.metrics, options=Options(**cfg.metric_options))
    per_item = scores.to_json(per_candidate=True)["sents"]
    return {"n": len(rows), **scores.to_json(), "per_item": {"id": ids, **per_item}}


def report_sections(cfg: EvalConfig, results: dict) -> dict:
    """The results as the run-folder contract's sections (docs/report.md): `captioning` (one entry per set)
    and `abilities` (each row's `accuracy` and mean label `logprob` per task), with the first row that answers
    the ability sets as the base the changes are measured from. A row lists only the sets it was scored on."""

    def n_samples(bench: BenchSet) -> int | None:
        return next((sets[bench.name]["n"] for sets in results.values() if bench.name in sets), None)

    captioning = [
        {
            "dataset": bench.name,
            "n_samples": n_samples(bench),
            "rows": [
                {
                    "config": row,
                    "metrics": {
                        k: v for k, v in sets[bench.name]["corpus"].items() if not isinstance(v, dict)
                    },
                }
                for row, sets in results.items()
                if bench.name in sets
            ],
        }
        for bench in cfg.captioning
    ]
    answering = {row: sets for row, sets in results.items() if any(b.name in sets for b in cfg.abilities)}
    abilities = {
        "base": next(iter(answering), cfg.rows[0].name),
        "tasks": [b.name for b in cfg.abilities],
        "mirrors": {b.name: b.mirrors for b in cfg.abilities if b.mirrors},
        "n_samples": {b.name: n for b in cfg.abilities if (n := n_samples(b)) is not None},
        "rows": [
            {
                "config": row,
                "accuracy": {b.name: sets[b.name]["accuracy"] for b in cfg.abilities if b.name in sets},
                "logprob": {b.name: sets[b.name].get("logprob") for b in cfg.abilities if b.name in sets},
            }
            for row, sets in answering.items()
        ],
    }
    return {"captioning": captioning, "abilities": abilities}


def tables(cfg: EvalConfig, results: dict) -> str:
    """Markdown laid out like the paper: Table 2 per captioning set (best in bold), Table 3 (accuracy % and the
    change from the first row), rendered by the report's table code so both read the same."""
    from auralign.report.results import Abilities, Captioning
    from auralign.report.tables import abilities_table, captioning_table, markdown

    sections = report_sections(cfg, results)
    parts = [markdown(captioning_table(Captioning.model_validate(c))) for c in sections["captioning"]]
    if cfg.abilities:
        parts.append(markdown(abilities_table(Abilities.model_validate(sections["abilities"]))))
    return "\n\n".join(parts) + "\n"
