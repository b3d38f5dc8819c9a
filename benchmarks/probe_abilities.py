"""How hard the mini corpus's ability tasks are: a linear probe over frozen YAMNet embeddings.

    .venv/bin/python benchmarks/probe_abilities.py MINI_DIR [--cache DIR] [--workers 2] [--json OUT]

For every task in MINI_DIR/abilities/tasks.json: each clip becomes the mean of its YAMNet frames (the frozen
features the ACC miniature's composed backend projects), a multinomial logistic regression is fitted on the
train clips (features standardised on train) and scored on the test clips. Prints test accuracy per task and
per class as a Markdown table. This is the fast proxy the mini corpus is calibrated against (a base model of
a small projector + LoRA over the same frames, trained ~2 epochs); it never looks at a trained model.
"""

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from auralign.models.encoders.yamnet import YamnetBackbone, warm_cache


def read_split(task_dir: Path, split: str) -> tuple[list[Path], list[str]]:
    """The clips and labels of one task split; a missing or malformed CSV names the file."""
    path = task_dir / f"{split}.csv"
    if not path.is_file():
        sys.exit(f"{path}: ability split not found (is {task_dir.parent.parent} a mini corpus?)")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"file_name", "label"} <= set(rows[0]):
        sys.exit(f"{path}: expected a file_name,label CSV with at least one row")
    return [task_dir / r["file_name"] for r in rows], [r["label"] for r in rows]


def embed(backbone: YamnetBackbone, paths: list[Path]) -> np.ndarray:
    """One vector per clip: the mean of its YAMNet frames."""
    return np.stack([backbone.embed(str(p)).mean(axis=0) for p in paths])


def probe(x_train: np.ndarray, y_train: list[str], x_test: np.ndarray, y_test: list[str]) -> dict:
    """Test accuracy overall and per class of a logistic regression fitted on the train side."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, C=1.0))
    model.fit(x_train, y_train)
    predicted = model.predict(x_test)
    truth = np.asarray(y_test)
    per_class = {label: float(np.mean(predicted[truth == label] == label)) for label in sorted(set(y_test))}
    return {
        "accuracy": float(np.mean(predicted == truth)),
        "per_class": per_class,
        "train": len(y_train),
        "test": len(y_test),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mini_dir", type=Path)
    parser.add_argument("--cache", type=Path, default=None, help="YAMNet feature cache folder")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    tasks_file = args.mini_dir / "abilities" / "tasks.json"
    if not tasks_file.is_file():
        sys.exit(f"{tasks_file}: not found (build one with `auralign data mini {args.mini_dir}`)")
    tasks = json.loads(tasks_file.read_text(encoding="utf-8"))
    splits = {
        t["task"]: {s: read_split(args.mini_dir / "abilities" / t["task"], s) for s in ("train", "test")}
        for t in tasks
    }
    backbone = YamnetBackbone(cache=args.cache)
    everything = [p for task in splits.values() for paths, _ in task.values() for p in paths]
    warm_cache(everything, backbone.cache.folder, workers=args.workers)
    results = {}
    for task, sides in splits.items():
        (train_paths, y_train), (test_paths, y_test) = sides["train"], sides["test"]
        results[task] = probe(embed(backbone, train_paths), y_train, embed(backbone, test_paths), y_test)
    print("| task | train / test clips | probe accuracy | per class |")
    print("|---|---|---|---|")
    for task, r in results.items():
        classes = ", ".join(f"{k} {100 * v:.0f}" for k, v in r["per_class"].items())
        print(f"| {task} | {r['train']} / {r['test']} | {100 * r['accuracy']:.1f} % | {classes} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
