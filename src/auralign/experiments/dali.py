"""`auralign dali quickstart`: DALI end to end on the offline audio-visual miniature, phase by phase.

    1 data       the mini corpus (packaged real sounds) and its audio-visual miniature (a drawn frame per scene)
    2 captioner  the mini image captioner (small CLIP + SmolLM2 as a LLaVA): the shipped one, or trained here
    3 prefix     prefix tuning on the 16 (frame, audio caption) pairs, the only audio captions DALI sees
    4 align      distribution alignment of YAMNet tokens with the image tokens, one run per method
    5 distill    pseudo-captions of the train scenes from frame + audio, then an audio projector, per method
    6 caption    the test scenes per method x input (audio, audio-visual) + the image captioner; scored
    7 results    results.json (run-folder contract, `dali` section), the PCA of DALI's Figure 4, the report

Every phase resumes: the data builders and the DALI stage recipes skip what is finished (done.json), captions
already written are kept. Each stage's config is written to RUN/configs/, so any stage can be rerun alone with
`auralign dali STAGE RUN/configs/STAGE.yaml`. The scale (epochs, sizes) is set so that a 2-core CPU runs it
all in under 20 minutes (docs/dali.md, "the offline miniature").
"""

import argparse
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from auralign.config import StrictModel

PHASES = 7
#: row name -> the align stage's `method`, in the table's order (DALI's Table 1 and Figure 4)
METHODS = {"contrastive": "contrastive", "MMD": "mmd", "OT": "ot_exact", "Sinkhorn": "sinkhorn",
           "attentive OT": "attentive_ot"}  # fmt: skip
INPUTS = ("audio", "audio-visual")
METRICS = ("bleu_1", "bleu_4", "meteor", "rouge_l", "cider_d", "spice", "spider", "sbert_sim")
IMAGE_ROW = "image captioner"
LLAVA_LOADER = "auralign.models.dali.mini_llava:load_mini_captioner"
AUDIO_LOADER = "auralign.models.encoders.yamnet_backbone:yamnet_tokenizer"


class CaptionerRecipe(StrictModel):
    """The mini image captioner: the shipped artifact unless --from-scratch (then trained with these)."""

    steps: int = Field(default=300, gt=0)
    vision_steps: int = Field(default=600, gt=0)
    batch_size: int = Field(default=8, gt=0)
    #: captioner images per split relative to the miniature's default (3000 train, 64 val)
    image_scale: float = Field(default=1.0, gt=0)


class PrefixRecipe(StrictModel):
    epochs: int = Field(default=16, gt=0)
    batch_size: int = Field(default=16, gt=0)
    lr: float = Field(default=5e-3, gt=0)


class AlignRecipe(StrictModel):
    """DALI's alignment scaled down: YAMNet is frozen (ONNX), so only the Linear(1024, 256) adapter trains."""

    methods: list[str] = Field(default_factory=lambda: list(METHODS))
    epochs: int = Field(default=20, gt=0)
    batch_size: int = Field(default=16, gt=0)
    lr: float = Field(default=1e-3, gt=0)
    #: per method row name, keyword options of its loss (e.g. {"Sinkhorn": {"eps": 0.05}})
    method_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: attentive OT's entropy schedule: heads frozen for the first epochs, then these lambdas, then the last
    attention_frozen_epochs: int = Field(default=1, ge=0)
    attention_lambdas: list[float] = Field(default_factory=lambda: [500.0, 400.0, 300.0, 200.0])
    attention_final_lambda: float = 100.0

    @field_validator("methods")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in METHODS]
        if unknown or not value:
            raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
        return value


class DistillRecipe(StrictModel):
    #: train scenes pseudo-captioned (None: all)
    limit: int | None = Field(default=80, gt=0)
    max_new_tokens: int = Field(default=24, gt=0)
    generate_batch_size: int = Field(default=20, gt=0)
    epochs: int = Field(default=1, gt=0)
    batch_size: int = Field(default=20, gt=0)
    lr: float = Field(default=2e-4, gt=0)


class CaptionRecipe(StrictModel):
    #: test scenes captioned and put in the PCA (None: all)
    limit: int | None = Field(default=None, gt=0)
    batch_size: int = Field(default=20, gt=0)
    max_new_tokens: int = Field(default=24, gt=0)
    metrics: list[str] = Field(default_factory=lambda: list(METRICS))
    examples: int = Field(default=4, ge=0)


class DaliQuickstartConfig(StrictModel):
    seed: int = 0
    threads: int = Field(default=2, gt=0)
    #: mini corpus size multiplier (200 / 40 / 40 scenes at 1; tests use a small one)
    corpus_scale: float = Field(default=1.0, gt=0, le=10)
    prefix_length: int = Field(default=16, gt=0)
    captioner: CaptionerRecipe = CaptionerRecipe()
    prefix: PrefixRecipe = PrefixRecipe()
    align: AlignRecipe = AlignRecipe()
    distill: DistillRecipe = DistillRecipe()
    caption: CaptionRecipe = CaptionRecipe()


# ---------------------------------------------------------------- phases 1-2: data and the image captioner


def make_data(run_dir: Path, cfg: DaliQuickstartConfig, workers: int, progress: bool) -> dict[str, Any]:
    from auralign.data.mini.av import build_mini_av
    from auralign.data.mini.corpus import build_mini_corpus

    build_mini_corpus(run_dir / "mini", cfg.seed, progress, cfg.corpus_scale, workers)
    summary = build_mini_av(run_dir / "mini", run_dir / "av", cfg.seed, cfg.captioner.image_scale)
    print(f"  scenes {summary['scenes']}, prefix pairs {summary['prefix_pairs']}, "
          f"captioner images {summary['captioner_images']}")  # fmt: skip
    return summary


def warm_features(run_dir: Path, workers: int, progress: bool) -> int:
    """YAMNet embeddings of every scene into the cache the audio tokenizer reads (YAMNet is frozen: each clip is
    encoded once, in `workers` processes, instead of once per epoch and stage)."""
    from auralign.data.audiovisual import read_av_manifest
    from auralign.models.encoders.yamnet import warm_cache

    paths = {
        s.audio
        for split in ("train", "test")
        for s in read_av_manifest(run_dir / "av" / "av" / f"{split}.jsonl")
    }
    warm_cache(list(paths), run_dir / "features", workers, progress)
    return len(paths)


def shipped_captioner_fits(cfg: DaliQuickstartConfig) -> bool:
    """The shipped captioner was trained on the miniature's default captioner images (seed 0, scale 1)."""
    from auralign.models.dali.mini_llava import DEFAULT_ARTIFACT, WEIGHTS

    meta = DEFAULT_ARTIFACT / "config.json"
    if not (DEFAULT_ARTIFACT / WEIGHTS).is_file() or not meta.is_file():
        return False
    info = json.loads(meta.read_text(encoding="utf-8"))
    return info.get("seed", 0) == cfg.seed and cfg.captioner.image_scale == 1.0


def make_captioner(
    run_dir: Path, cfg: DaliQuickstartConfig, from_scratch: bool, progress: bool, given: Path | None = None
) -> tuple[Path, str]:
    """The captioner folder and where it came from ("given", "shipped" or "trained")."""
    from auralign.errors import ConfigError
    from auralign.models.dali.mini_llava import DEFAULT_ARTIFACT, WEIGHTS, train_mini_captioner

    if given is not None:
        if not (given / WEIGHTS).is_file() or not (given / "config.json").is_file():
            raise ConfigError(f"--captioner {given}: not a trained mini captioner ({WEIGHTS} + config.json)")
        print(f"  using the given mini captioner {given}")
        return given.resolve(), "given"

    if not from_scratch and shipped_captioner_fits(cfg):
        print(f"  using the shipped mini captioner {DEFAULT_ARTIFACT} (--from-scratch retrains it)")
        return DEFAULT_ARTIFACT, "shipped"
    out = run_dir / "captioner"
    if (out / "config.json").is_file():  # written last by save_mini_captioner
        print(f"  {out}: already trained")
        return out, "trained"
    if not from_scratch:
        print("  no shipped captioner for this seed / image scale: training it here")
    r = cfg.captioner
    info = train_mini_captioner(run_dir / "av" / "captioner" / "train.jsonl", out, seed=cfg.seed, steps=r.steps,
                                batch_size=r.batch_size, vision_steps=r.vision_steps, progress=progress)  # fmt: skip
    print(f"  trained in {info['train_seconds']} s, final loss {info['final_loss_ema']}")
    return out, "trained"


# ---------------------------------------------------------------- phases 3-6: the DALI stages


def model_section(run_dir: Path, captioner: Path, cfg: DaliQuickstartConfig) -> dict[str, Any]:
    """The mini captioner as LLaVA and YAMNet (cached embeddings) + an adapter into its 256-wide tokens."""
    return {
        "llava": {"loader": LLAVA_LOADER, "loader_args": {"path": str(captioner)}},
        "audio": {"kind": "loader", "loader": AUDIO_LOADER,
                  "loader_args": {"token_dim": 256, "cache": str(run_dir / "features"), "threads": 1}},
        "prefix_length": cfg.prefix_length,
    }  # fmt: skip


def _data(run_dir: Path, split: str, limit: int | None = None) -> dict[str, Any]:
    return {"manifest": str(run_dir / "av" / "av" / f"{split}.jsonl"), "limit": limit}


def stage_configs(run_dir: Path, cfg: DaliQuickstartConfig, captioner: Path) -> dict[str, Any]:
    """Every stage's config object, by name: prefix, align-<m>, distill-<m>, caption-<m>-<input>, caption-image."""
    from auralign.train.dali import config as dc

    stages, d = run_dir / "dali", cfg.distill
    common = {"seed": cfg.seed, "device": "cpu", "log_every": 1}
    out: dict[str, Any] = {"prefix": dc.PrefixConfig(
        output_dir=str(stages / "prefix"), model=model_section(run_dir, captioner, cfg), data=_data(run_dir, "train"),
        epochs=cfg.prefix.epochs, batch_size=cfg.prefix.batch_size, lr=cfg.prefix.lr, **common)}  # fmt: skip
    test = _data(run_dir, "test", cfg.caption.limit)
    generation = {"batch_size": cfg.caption.batch_size, "max_new_tokens": cfg.caption.max_new_tokens}
    for name in cfg.align.methods:
        s = slug(name)
        out[f"align-{s}"] = align_config(run_dir, cfg, name)
        out[f"distill-{s}"] = dc.DistillConfig(
            output_dir=str(stages / f"distill-{s}"), align_dir=str(stages / f"align-{s}"),
            data=_data(run_dir, "train", d.limit), epochs=d.epochs, batch_size=d.batch_size, lr=d.lr,
            pseudo={"max_new_tokens": d.max_new_tokens, "batch_size": d.generate_batch_size}, **common)  # fmt: skip
        for mode in INPUTS:
            out[f"caption-{s}-{mode}"] = dc.CaptionConfig(
                distill_dir=str(stages / f"distill-{s}"), output=str(run_dir / "predictions" / f"{s}-{mode}.jsonl"),
                data=test, mode=mode, generation=generation, seed=cfg.seed, device="cpu")  # fmt: skip
    out["caption-image"] = dc.CaptionConfig(
        distill_dir=str(stages / "prefix"), output=str(run_dir / "predictions" / "image.jsonl"), data=test,
        mode="image", generation=generation, seed=cfg.seed, device="cpu")  # fmt: skip
    return out


def align_config(run_dir: Path, cfg: DaliQuickstartConfig, name: str) -> Any:
    from auralign.train.dali.config import AlignConfig

    a, stages = cfg.align, run_dir / "dali"
    attention = {"frozen_epochs": a.attention_frozen_epochs, "lambdas": a.attention_lambdas,
                 "final_lambda": a.attention_final_lambda}  # fmt: skip
    return AlignConfig(
        output_dir=str(stages / f"align-{slug(name)}"), prefix_dir=str(stages / "prefix"),
        data={**_data(run_dir, "train"), "frame": "middle"}, method=METHODS[name],
        method_options=a.method_options.get(name, {}), attention=attention, train_backbone=False,
        epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, lr_milestones=[a.epochs // 2, 3 * a.epochs // 4],
        augment=False, image_token_cache="memory", seed=cfg.seed, device="cpu", log_every=1,
    )  # fmt: skip


def write_configs(run_dir: Path, configs: dict[str, Any]) -> None:
    """Each stage's config as YAML, to rerun one by hand: `auralign dali STAGE RUN/configs/NAME.yaml`."""
    import yaml

    from auralign.fileio import atomic_write_text

    for name, config in configs.items():
        text = yaml.safe_dump(config.model_dump(mode="json", exclude_none=True), sort_keys=False)
        atomic_write_text(run_dir / "configs" / f"{name}.yaml", text)


def run_stages(configs: dict[str, Any], names: list[str], fn: Callable[..., Path], progress: bool) -> None:
    for name in names:
        start = time.perf_counter()
        fn(configs[name], progress=progress)
        print(f"  {name}: {time.perf_counter() - start:.1f} s", flush=True)


# ---------------------------------------------------------------- phase 6: scores and the PCA


def score(path: Path, metrics: list[str]) -> dict[str, float | None]:
    """Corpus scores of a predictions JSONL (None where a metric cannot run here, e.g. SPICE without Java)."""
    from auralign.fileio import read_jsonl
    from auralign.metrics import evaluate

    rows = [r for _, r in read_jsonl(path, "predictions")]
    scores = evaluate([r["prediction"] for r in rows], [r["references"] for r in rows], metrics)
    return {k: (None if v is None else round(float(v), 4)) for k, v in scores.items()
            if isinstance(v, int | float) or v is None}  # fmt: skip


def table_rows(run_dir: Path, cfg: DaliQuickstartConfig) -> list[dict[str, Any]]:
    """One row per (method, input), then the image captioner's, with its scores."""
    metrics = cfg.caption.metrics
    rows = [{"method": name, "input": mode, "metrics": score(run_dir / "predictions" / f"{slug(name)}-{mode}.jsonl",
                                                             metrics)}
            for name in cfg.align.methods for mode in INPUTS]  # fmt: skip
    image = score(run_dir / "predictions" / "image.jsonl", metrics)
    return [*rows, {"method": IMAGE_ROW, "input": "image", "metrics": image}]


def pca_points(audio_means: Any, image_means: Any, digits: int = 4) -> dict[str, Any]:
    """DALI's Figure 4 for one method: clip means on the first two principal axes + the gap statistics."""
    from auralign.align import modality_gap

    gap = modality_gap(audio_means[:, None], image_means[:, None]).to_dict()

    def rounded(points: list[list[float]]) -> list[list[float]]:
        return [[round(v, digits) for v in p] for p in points]

    return {"audio": rounded(gap["pca_x"]), "image": rounded(gap["pca_y"]),
            "explained_variance_ratio": [round(v, digits) for v in gap["explained_variance_ratio"]],
            **{k: round(gap[k], digits) for k in ("centroid_distance", "centroid_distance_normalized",
                                                  "pair_distance", "pair_cosine")}}  # fmt: skip


def pca_all(run_dir: Path, cfg: DaliQuickstartConfig, configs: dict[str, Any]) -> dict[str, Any]:
    """Per method (and before any alignment: the adapter as initialised), the PCA of the test clips' mean tokens."""
    import torch

    from auralign.train.dali import stages as dali

    samples = dali.read_av_samples(configs["caption-image"].data)
    folders = {"unaligned": run_dir / "dali" / "prefix"}
    folders |= {name: run_dir / "dali" / f"align-{slug(name)}" for name in cfg.align.methods}
    out = {}
    for name, folder in folders.items():
        torch.manual_seed(cfg.seed)  # the unaligned adapter: initialised as alignment starts it
        captioner = dali.load_captioner(folder, device="cpu")
        out[name] = pca_points(*dali.mean_tokens(captioner, samples))
    return out


# ---------------------------------------------------------------- phase 7: results


def examples(run_dir: Path, cfg: DaliQuickstartConfig) -> list[dict[str, Any]]:
    """The first test scenes: audio, references and every row's caption."""
    from auralign.fileio import read_jsonl

    files = {f"{name} · {mode}": run_dir / "predictions" / f"{slug(name)}-{mode}.jsonl"
             for name in cfg.align.methods for mode in INPUTS}  # fmt: skip
    files[IMAGE_ROW] = run_dir / "predictions" / "image.jsonl"
    preds = {row: [r for _, r in read_jsonl(path, "predictions")] for row, path in files.items()}
    first = preds[IMAGE_ROW][: cfg.caption.examples]
    return [{"id": r["id"], "audio": os.path.relpath(r["audios"][0], run_dir), "references": r["references"],
             "predictions": {row: p[i]["prediction"] for row, p in preds.items()}}
            for i, r in enumerate(first)]  # fmt: skip


def training_logs(run_dir: Path, cfg: DaliQuickstartConfig) -> dict[str, dict[str, str]]:
    stages = {"prefix": "prefix"}
    for name in cfg.align.methods:
        stages |= {f"align · {name}": f"align-{slug(name)}", f"distill · {name}": f"distill-{slug(name)}"}
    return {label: {"log": f"dali/{folder}/log.jsonl"} for label, folder in stages.items()}


def ordering_notes(rows: list[dict[str, Any]], pca: dict[str, Any]) -> list[str]:
    """This run's orderings beside the paper's, stated as measured (never tuned for)."""
    notes = []
    for mode in INPUTS:
        ranked = sorted((r for r in rows if r["input"] == mode and r["metrics"].get("meteor") is not None),
                        key=lambda r: -r["metrics"]["meteor"])  # fmt: skip
        notes.append(f"METEOR ordering, {mode} input: "
                     + " > ".join(f"{r['method']} ({r['metrics']['meteor']:.3f})" for r in ranked) + ".")  # fmt: skip
    gaps = sorted(pca.items(), key=lambda kv: kv[1]["centroid_distance"])
    notes.append("Modality gap (centroid distance of mean tokens), smallest first: "
                 + ", ".join(f"{k} {v['centroid_distance']:.2f}" for k, v in gaps)
                 + ". The paper (Figure 4): contrastive leaves audio apart from image, MMD and OT close the gap, "
                 "attentive OT closest; on AudioCaps attentive OT with audio-visual input captions best.")  # fmt: skip
    return notes


def write_results(run_dir: Path, cfg: DaliQuickstartConfig, rows: list, pca: dict, extra: dict) -> dict:
    from auralign.fileio import atomic_write_text, read_jsonl
    from auralign.report import environment

    n = sum(1 for _ in read_jsonl(run_dir / "predictions" / "image.jsonl", "predictions"))
    doc = {
        "title": "auralign dali quickstart: DALI on the offline audio-visual miniature",
        "seed": cfg.seed,
        "created": now(),
        "environment": environment(),
        "config": {
            "dali_quickstart": cfg.model_dump(mode="json"),
            "model": "mini LLaVA (small CLIP + "
            "SmolLM2-135M-Instruct, frozen) as the image captioner; YAMNet (frozen, ONNX) + Linear(1024, 256) "
            "as the audio encoder",
            **{k: v for k, v in extra.items() if k != "notes"},
        },
        "dali": {
            "dataset": "mini test",
            "n_samples": n,
            "rows": rows,
            "pca": pca,
            "training": training_logs(run_dir, cfg),
        },
        "examples": examples(run_dir, cfg),
        "timings": extra["timings"],
        "notes": [*extra["notes"], *ordering_notes(rows, pca)],
    }
    atomic_write_text(run_dir / "results.json", json.dumps(doc, indent=2) + "\n")
    return doc


def format_table(rows: list[dict[str, Any]], pca: dict[str, Any]) -> str:
    """The DALI table as plain text (the report renders the same rows)."""
    from auralign.report.results import Dali
    from auralign.report.tables import dali_table, gap_table, markdown

    dali = Dali.model_validate({"dataset": "mini test", "rows": rows, "pca": pca})
    return markdown(dali_table(dali)) + "\n" + markdown(gap_table(dali))


# ---------------------------------------------------------------- the job


def slug(name: str) -> str:
    return name.lower().replace(" ", "-")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def phase(k: int, text: str) -> None:
    print(f"[{k}/{PHASES}] {text}", flush=True)


class Laps:
    """Seconds per phase, in order."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.clock = time.perf_counter()

    def __call__(self, name: str) -> None:
        self.timings[name] = round(time.perf_counter() - self.clock, 1)
        self.clock = time.perf_counter()


def run(
    run_dir: Path,
    cfg: DaliQuickstartConfig = DaliQuickstartConfig(),  # noqa: B008 - frozen
    workers: int | None = None,
    progress: bool = True,
    from_scratch: bool = False,
    captioner: Path | None = None,
) -> dict[str, Any]:
    import torch

    from auralign.report import write_report
    from auralign.train.dali import stages as dali

    run_dir, workers = run_dir.resolve(), workers or os.cpu_count() or 1
    torch.set_num_threads(cfg.threads)
    lap = Laps()
    phase(1, "mini corpus + audio-visual miniature (a drawn frame per scene), YAMNet features")
    summary = make_data(run_dir, cfg, workers, progress)
    print(f"  {warm_features(run_dir, workers, progress)} clips encoded")
    lap("data_s")
    phase(2, "image captioner: mini LLaVA (small CLIP + SmolLM2)")
    captioner, source = make_captioner(run_dir, cfg, from_scratch, progress, captioner)
    lap("captioner_s")
    configs = stage_configs(run_dir, cfg, captioner)
    write_configs(run_dir, configs)
    names = [slug(m) for m in cfg.align.methods]
    phase(3, "prefix tuning on the 16 (frame, audio caption) pairs")
    run_stages(configs, ["prefix"], dali.prefix_tune, progress)
    lap("prefix_s")
    phase(4, f"alignment with each method: {', '.join(cfg.align.methods)}")
    run_stages(configs, [f"align-{s}" for s in names], dali.align, progress)
    lap("align_s")
    phase(5, "distillation per method: pseudo-captions, then the audio projector")
    run_stages(configs, [f"distill-{s}" for s in names], dali.distill, progress)
    lap("distill_s")
    phase(6, "captioning the test scenes per method x (audio, audio-visual) + image; scores; PCA")
    run_stages(configs, [*(f"caption-{s}-{m}" for s in names for m in INPUTS), "caption-image"], dali.caption,
               progress)  # fmt: skip
    rows, pca = table_rows(run_dir, cfg), pca_all(run_dir, cfg, configs)
    lap("caption_s")
    phase(7, "results.json, the DALI table and the report")
    notes = [f"Image captioner: {source} ({captioner}).",
             "No audio caption is used except the 16 of prefix tuning; references are the test scenes' audio "
             "captions, so a caption of what is seen and not heard scores low."]  # fmt: skip
    extra = {"captioner_source": source, "mini_av": {k: v for k, v in summary.items() if k != "looks"},
             "timings": lap.timings, "notes": notes}  # fmt: skip
    write_results(run_dir, cfg, rows, pca, extra)
    html, _ = write_report(run_dir)
    lap("report_s")
    lap.timings["total_s"] = round(sum(lap.timings.values()), 1)
    write_results(run_dir, cfg, rows, pca, extra)  # with the report's time and the total
    print("\n" + format_table(rows, pca))
    print(f"timings (s): {lap.timings}\nreport: {html}")
    return {"timings": lap.timings, "rows": rows, "pca": pca}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/dali-quickstart"), help="run folder")
    parser.add_argument(
        "--config", type=Path, default=None, help="DaliQuickstartConfig YAML (default: built in)"
    )
    parser.add_argument("--seed", type=int, default=None, help="overrides the config's seed")
    parser.add_argument("--workers", type=int, default=None, help="processes for data and YAMNet features")
    parser.add_argument("--from-scratch", action="store_true", help="train the image captioner instead of "
                        "using the shipped one")  # fmt: skip
    parser.add_argument("--captioner", type=Path, default=None, help="a trained mini captioner folder to use "
                        "instead of the shipped one (train_mini_captioner's output)")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def main(args: argparse.Namespace) -> int:
    from auralign.config import load_config

    cfg = load_config(args.config, DaliQuickstartConfig) if args.config else DaliQuickstartConfig()
    if args.seed is not None:
        cfg = cfg.model_copy(update={"seed": args.seed})
    run(args.out, cfg, args.workers, not args.no_progress, args.from_scratch, args.captioner)
    return 0
