"""`auralign score PREDICTIONS.jsonl`: captioning metrics (or label accuracy) for a predictions file.

Rows are JSON objects with a `candidate` (or `prediction`) and its `references` (or, with --labels, its
`label`); or rows with `id` and `candidate` plus `--manifest`, whose samples give the references / labels.
Prints a table and writes JSON (default: PREDICTIONS.scores.json beside the input).

Every prediction counts once: two rows with one `id` are an error. With `--manifest`, predictions for only
some of its samples are refused (naming how many of how many, and the first missing ids) unless `--subset`
says that scoring those alone is meant; the report then says `"subset": {"scored": k, "of": n}`.
"""

import argparse
import json
import re
from pathlib import Path
from typing import Any

from auralign.errors import ConfigError, DataError
from auralign.fileio import read_jsonl

_CAND_KEYS = ("candidate", "prediction")


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser("score", help="score predictions with captioning metrics or label accuracy")
    p.add_argument("predictions", type=Path, help="JSONL, one prediction a line")
    p.add_argument("--manifest", type=Path, help="manifest whose samples (matched by id) hold the references")
    p.add_argument(
        "--metrics",
        default="default",
        help="a set (default, dcase2024, all) or comma-separated names, e.g. bleu_4,cider_d,meteor",
    )
    p.add_argument(
        "--subset",
        action="store_true",
        help="with --manifest: score predictions that cover only some of its samples (said in the report)",
    )
    p.add_argument("--out", type=Path, help="JSON output (default: PREDICTIONS.scores.json)")
    p.add_argument("--per-candidate", action="store_true", help="also write per-candidate scores")
    p.add_argument("--labels", action="store_true", help="label accuracy of free-text answers instead")
    p.add_argument(
        "--mode",
        default="normalized",
        choices=("exact", "normalized", "contains"),
        help="label matching (with --labels)",
    )
    p.add_argument("--java", help="java executable for the tokenizer and METEOR")
    p.add_argument("--spice-corenlp", help="folder with the Stanford CoreNLP 3.6.0 jars")
    p.add_argument("--spice-java", help="a Java 8-11 executable for SPICE")
    p.add_argument("--sbert-model", help="FENSE's sentence model: folder or hub id (local cache only)")
    p.add_argument("--echecker", help="FENSE's error-detector checkpoint (.ckpt)")
    p.add_argument("--echecker-base", help="folder with the error detector's base config and tokenizer")
    p.set_defaults(handler=_score)


def _read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = list(read_jsonl(path, "predictions file"))
    if not rows:
        raise DataError(f"{path}: no predictions")
    first: dict[str, int] = {}
    for lineno, row in rows:
        if "id" not in row:
            continue
        sample_id = str(row["id"])
        if sample_id in first:
            raise DataError(
                f"{path}:{lineno}: duplicate prediction id {sample_id!r} (first on line {first[sample_id]}); "
                "each sample must be scored once"
            )
        first[sample_id] = lineno
    return rows


def _candidate(path: Path, lineno: int, row: dict[str, Any]) -> str:
    for key in _CAND_KEYS:
        if key in row:
            if not isinstance(row[key], str):
                raise DataError(f"{path}:{lineno}: {key!r} must be a string, got {type(row[key]).__name__}")
            return row[key]
    raise DataError(f"{path}:{lineno}: no 'candidate' (or 'prediction') key")


def _targets(args: argparse.Namespace, rows: list[tuple[int, dict[str, Any]]]) -> tuple[list[Any], int]:
    """The references (or label, with --labels) of each row, from the row itself or the manifest, and how
    many samples the predictions should cover (the manifest's, else the rows')."""
    key = "label" if args.labels else "references"
    if args.manifest is None:
        missing = [lineno for lineno, row in rows if key not in row]
        if missing:
            raise DataError(f"{args.predictions}:{missing[0]}: no {key!r} key (or pass --manifest)")
        return [row[key] for _, row in rows], len(rows)
    from auralign.data.manifest import read_manifest

    samples = {s.id: s for s in read_manifest(args.manifest)}
    out = []
    for lineno, row in rows:
        if "id" not in row:
            raise DataError(f"{args.predictions}:{lineno}: no 'id' key to match against {args.manifest}")
        sample = samples.get(str(row["id"]))
        if sample is None:
            raise DataError(f"{args.predictions}:{lineno}: id {row['id']!r} is not in {args.manifest}")
        out.append(sample.label if args.labels else sample.references)
    predicted = {str(row["id"]) for _, row in rows}
    missing = [sample_id for sample_id in samples if sample_id not in predicted]
    if missing and not args.subset:
        shown = ", ".join(repr(m) for m in missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise DataError(
            f"{args.predictions}: predictions for {len(rows)} of the {len(samples)} samples in {args.manifest} "
            f"(missing: {shown}); pass --subset to score only those"
        )
    return out, len(samples)


def _locate(message: str, path: Path, linenos: list[int]) -> str:
    """Rewrite "candidates[3] ..." / "mult_references[3][1] ..." as "FILE:LINE: ..." for the row at index 3."""
    match = re.match(
        r"(candidates|mult_references|predictions|labels)\[(\d+)\](\[\d+\])?(.*)", message, flags=re.S
    )
    if not match or int(match.group(2)) >= len(linenos):
        return f"{path}: {message}"
    singular = {"candidates": "candidate", "predictions": "prediction", "labels": "label"}
    what = singular.get(match.group(1)) or f"reference{match.group(3) or 's'}"
    return f"{path}:{linenos[int(match.group(2))]}: {what}{match.group(4)}"


def _print_table(values: dict[str, Any], unavailable: dict[str, str]) -> None:
    width = max(map(len, values), default=6)
    for name, value in values.items():
        shown = "unavailable" if value is None else f"{value:.4f}"
        print(f"{name:<{width}}  {shown}")
    for name, why in unavailable.items():
        print(f"  {name}: {why}")


def _score(args: argparse.Namespace) -> int:
    from auralign.fileio import atomic_write_text
    from auralign.metrics import MetricInputError, Options, evaluate, label_accuracy

    if args.out is not None and args.out.is_dir():
        raise ConfigError(
            f"--out {args.out}: is a folder; name the scores file, e.g. {args.out / 'scores.json'}"
        )
    rows = _read_rows(args.predictions)
    candidates = [_candidate(args.predictions, lineno, row) for lineno, row in rows]
    targets, total = _targets(args, rows)
    report: dict[str, Any] = {"predictions": str(args.predictions), "n": len(candidates)}
    if total != len(candidates):
        print(f"subset: {len(candidates)} of the {total} samples in {args.manifest} scored")
        report["subset"] = {"scored": len(candidates), "of": total}
    if args.labels:
        try:
            result = label_accuracy(candidates, targets, mode=args.mode)
        except MetricInputError as exc:
            raise DataError(_locate(str(exc), args.predictions, [lineno for lineno, _ in rows])) from None
        report |= {"mode": args.mode, **result.to_json()}
        _print_table({"accuracy": result.accuracy, **result.per_class}, {})
    else:
        names = (
            args.metrics
            if "," not in args.metrics
            else [m.strip() for m in args.metrics.split(",") if m.strip()]
        )
        opts = Options(
            java=args.java,
            spice_corenlp=args.spice_corenlp,
            spice_java=args.spice_java,
            sbert_model=args.sbert_model,
            echecker=args.echecker,
            echecker_base=args.echecker_base,
        )
        try:
            scores = evaluate(candidates, targets, names, opts)
        except MetricInputError as exc:
            raise DataError(_locate(str(exc), args.predictions, [lineno for lineno, _ in rows])) from None
        report |= {"metrics": args.metrics, **scores.to_json(per_candidate=args.per_candidate)}
        _print_table(dict(scores), scores.unavailable)
    out = args.out or args.predictions.with_suffix(".scores.json")
    atomic_write_text(out, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")
    return 0
