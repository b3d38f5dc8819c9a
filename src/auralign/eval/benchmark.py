"""`auralign evaluate CONFIG.yaml`: every model row x every benchmark set -> predictions, scores, paper tables.

Rows are the base model and each fine-tuned adapter; sets are captioning manifests (scored with
`auralign.metrics.evaluate`) and the general-ability tasks VSC / SER / MIC / MGC (label accuracy of the
answer, read with the metrics' normalised matching). Predictions are cached per row and set, so adding a row
or a set re-runs only what is new. Output: `results.json` and `tables.md` laid out like the ACC paper's
Table 2 (captioning) and Table 3 (general abilities).

A cached prediction file (`OUT/<row>/<set>.jsonl`) is reused only when what would produce it is the same:
beside it, `<set>.origin.json` records the model section, the row's adapter (path and a digest of its
files), the decoding options, the prompts and the inputs (`auralign.infer.caption.origin`); a changed one is
refused, naming the file and what differs. Rows, and sets, must have names that give distinct folders and
files (names differing only in punctuation or case would share one), checked when the config is read.
"""

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from auralign.config import StrictModel
from auralign.errors import DataError
from auralign.fileio import atomic_write_text, record_origin, reusable
from auralign.models.base import GenerationOptions
from auralign.models.factory import ModelConfig

log = logging.getLogger(__name__)


class Row(StrictModel):
    name: str = Field(min_length=1)
    adapter: str | None = None  # None: the base model


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


def run(cfg: EvalConfig) -> dict:
    from auralign.infer.caption import caption, collect, origin
    from auralign.models.factory import build_with_adapter

    out = Path(cfg.output_dir)
    sets = [
        *(s.model_copy(update={"kind": "caption"}) for s in cfg.captioning),
        *(s.model_copy(update={"kind": "label"}) for s in cfg.abilities),
    ]
    for row in cfg.rows:
        model, todo = row_model(cfg, row), []
        for bench in sets:
            items = list(collect([Path(bench.manifest)], bench.prompt))[: bench.limit]
            made_by = origin(items, cfg.generation, model)
            if not cached(predictions_file(out, row, bench), made_by):
                todo.append((bench, items, made_by))
        if not todo:
            continue
        llm = build_with_adapter(cfg.model, row.adapter)
        for bench, items, made_by in todo:
            log.info("%s / %s: %d samples", row.name, bench.name, len(items))
            predictions = predictions_file(out, row, bench)
            record_origin(predictions, made_by)
            caption(llm, items, predictions, options=cfg.generation, model=model)
        del llm
    results = {
        row.name: {s.name: score(cfg, predictions_file(out, row, s), s) for s in sets} for row in cfg.rows
    }
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    atomic_write_text(out / "tables.md", tables(cfg, results))
    return results


def score(cfg: EvalConfig, predictions: Path, bench: BenchSet) -> dict:
    from auralign.metrics import Options, evaluate, label_accuracy

    rows = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines() if line.strip()]
    preds = [r["prediction"] for r in rows]
    if bench.kind == "label":
        if any(r["label"] is None for r in rows):
            raise DataError(f"{bench.manifest}: an ability task needs a `label` on every sample")
        scores = label_accuracy(preds, [r["label"] for r in rows], mode=cfg.label_mode)
        return {"n": len(rows), "accuracy": scores.accuracy, "per_class": scores.to_json()["per_class"]}
    refs = [r["references"] for r in rows]
    if any(not r for r in refs):
        raise DataError(f"{bench.manifest}: a captioning set needs references on every sample")
    scores = evaluate(preds, refs, metrics=cfg.metrics, options=Options(**cfg.metric_options))
    return {"n": len(rows), **scores.to_json()}


def report_sections(cfg: EvalConfig, results: dict) -> dict:
    """The results as the run-folder contract's sections (docs/report.md): `captioning` (one entry per set)
    and `abilities`, with the first row as the base the changes are measured from."""
    first = cfg.rows[0].name
    captioning = [
        {
            "dataset": bench.name,
            "n_samples": results[first][bench.name]["n"],
            "rows": [
                {
                    "config": row,
                    "metrics": {
                        k: v for k, v in sets[bench.name]["corpus"].items() if not isinstance(v, dict)
                    },
                }
                for row, sets in results.items()
            ],
        }
        for bench in cfg.captioning
    ]
    abilities = {
        "base": first,
        "tasks": [b.name for b in cfg.abilities],
        "mirrors": {b.name: b.mirrors for b in cfg.abilities if b.mirrors},
        "n_samples": {b.name: results[first][b.name]["n"] for b in cfg.abilities},
        "rows": [
            {"config": row, "accuracy": {b.name: sets[b.name]["accuracy"] for b in cfg.abilities}}
            for row, sets in results.items()
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
