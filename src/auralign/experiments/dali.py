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

The config (`configs/dali/quickstart.yaml` writes the defaults out): the typed keys of `DaliQuickstartConfig`
(which methods, the mini captioner's training, sizes, scoring), and four partial stage configs deep-merged over
what this recipe computes (auralign.experiments.miniature): `prefix:` a `PrefixConfig`, `align:` an
`AlignConfig` for every method, `distill:` a `DistillConfig` for every method, `caption:` a `CaptionConfig` for
every captioning run.
"""

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from auralign.config import StrictModel
from auralign.experiments import miniature
from auralign.experiments.miniature import IN_CODE, Origin, Phases, slug, stage_config

PHASES = 7
#: the align stage's `method` (a loss of auralign.align.loss) -> its row in the table and the PCA, in the
#: table's order (DALI's Table 1 and Figure 4)
METHODS = {
    "contrastive": "contrastive",
    "mmd": "MMD",
    "ot_exact": "OT",
    "sinkhorn": "Sinkhorn",
    "attentive_ot": "attentive OT",
}
INPUTS = ("audio", "audio-visual")
METRICS = ("bleu_1", "bleu_4", "meteor", "rouge_l", "cider_d", "spice", "spider", "sbert_sim")
IMAGE_ROW = "image captioner"
LLAVA_LOADER = "auralign.models.dali.mini_llava:load_mini_captioner"
AUDIO_LOADER = "auralign.models.encoders.yamnet:yamnet_tokenizer"


class CaptionerRecipe(StrictModel):
    """The mini image captioner: the shipped artifact unless --from-scratch (then trained with these)."""

    steps: int = Field(default=300, gt=0)
    vision_steps: int = Field(default=600, gt=0)
    batch_size: int = Field(default=8, gt=0)
    #: captioner images per split relative to the miniature's default (3000 train, 64 val)
    image_scale: float = Field(default=1.0, gt=0)


class DaliQuickstartConfig(StrictModel):
    """The DALI miniature's own keys; `prefix`, `align`, `distill` and `caption` are partial stage configs
    (`PrefixConfig`, `AlignConfig` and `DistillConfig` of every method, `CaptionConfig` of every captioning
    run), deep-merged over this recipe's."""

    seed: int = 0
    threads: int = Field(default=2, gt=0)
    #: mini corpus size multiplier (200 / 40 / 40 scenes at 1; tests use a small one)
    corpus_scale: float = Field(default=1.0, gt=0, le=10)
    #: the alignment methods (METHODS' keys), one align and one distill run each
    methods: list[str] = Field(default_factory=lambda: list(METHODS), min_length=1)
    #: per method, keyword options of its loss (e.g. {"sinkhorn": {"eps": 0.05}})
    method_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: train scenes pseudo-captioned per method (None: all)
    distill_limit: int | None = Field(default=80, gt=0)
    #: test scenes captioned and put in the PCA (None: all)
    test_limit: int | None = Field(default=None, gt=0)
    metrics: list[str] = Field(default_factory=lambda: list(METRICS))
    #: example captions in the report
    examples: int = Field(default=4, ge=0)
    captioner: CaptionerRecipe = CaptionerRecipe()
    prefix: dict[str, Any] = Field(default_factory=dict)
    align: dict[str, Any] = Field(default_factory=dict)
    distill: dict[str, Any] = Field(default_factory=dict)
    caption: dict[str, Any] = Field(default_factory=dict)

    @field_validator("methods", "method_options")
    @classmethod
    def _known_methods(cls, value: list[str] | dict[str, Any]) -> list[str] | dict[str, Any]:
        unknown = [m for m in value if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
        return value

    def rows(self) -> list[str]:
        """The methods' row names, in the config's order."""
        return [METHODS[m] for m in self.methods]


# ---------------------------------------------------------------- phases 1-2: data and the image captioner


def make_data(run_dir: Path, cfg: DaliQuickstartConfig, workers: int, progress: bool) -> dict[str, Any]:
    from auralign.data.mini.av import build_mini_av
    from auralign.data.mini.corpus import build_mini_corpus

    build_mini_corpus(run_dir / "mini", cfg.seed, progress, cfg.corpus_scale, workers)
    summary = build_mini_av(run_dir / "mini", run_dir / "av", cfg.seed, cfg.captioner.image_scale)
    print(
        f"  scenes {summary['scenes']}, prefix pairs {summary['prefix_pairs']}, "
        f"captioner images {summary['captioner_images']}"
    )
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
    from auralign.experiments.mini_captioner import train_mini_captioner
    from auralign.models.dali.mini_llava import DEFAULT_ARTIFACT, WEIGHTS

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
    info = train_mini_captioner(
        run_dir / "av" / "captioner" / "train.jsonl",
        out,
        seed=cfg.seed,
        steps=r.steps,
        batch_size=r.batch_size,
        vision_steps=r.vision_steps,
        progress=progress,
    )
    print(f"  trained in {info['train_seconds']} s, final loss {info['final_loss_ema']}")
    return out, "trained"


# ---------------------------------------------------------------- phases 3-6: the DALI stages


def model_section(run_dir: Path, captioner: Path) -> dict[str, Any]:
    """The mini captioner as LLaVA, YAMNet (cached embeddings) + an adapter into its 256-wide tokens, and
    DALI's 16 learnable vectors."""
    return {
        "llava": {"loader": LLAVA_LOADER, "loader_args": {"path": str(captioner)}},
        "audio": {
            "kind": "loader",
            "loader": AUDIO_LOADER,
            "loader_args": {"token_dim": 256, "cache": str(run_dir / "features"), "threads": 1},
        },
        "prefix_length": 16,
    }


def _data(run_dir: Path, split: str, limit: int | None = None) -> dict[str, Any]:
    return {"manifest": str(run_dir / "av" / "av" / f"{split}.jsonl"), "limit": limit}


def _common(cfg: DaliQuickstartConfig) -> dict[str, Any]:
    return {"seed": cfg.seed, "device": "cpu", "log_every": 1}


def prefix_config(run_dir: Path, cfg: DaliQuickstartConfig, captioner: Path, *, origin: Origin) -> Any:
    """Stage 1a on the 16 captioned train scenes (the paper: 500 epochs at 1e-3)."""
    from auralign.train.dali.config import PrefixConfig

    computed = {
        "output_dir": str(run_dir / "dali" / "prefix"),
        "model": model_section(run_dir, captioner),
        "data": _data(run_dir, "train"),
        "epochs": 16,
        "batch_size": 16,
        "lr": 5e-3,
        **_common(cfg),
    }
    return stage_config(PrefixConfig, computed=computed, partial=cfg.prefix, section="prefix", origin=origin)


def align_config(run_dir: Path, cfg: DaliQuickstartConfig, method: str, *, origin: Origin) -> Any:
    """DALI's alignment scaled down: YAMNet is frozen (ONNX), so only the Linear(1024, 256) adapter trains;
    the lr halves after half and three quarters of the epochs (the paper's 10 and 15 of 20)."""
    from auralign.train.dali.config import AlignConfig

    stages = run_dir / "dali"
    computed = {
        "output_dir": str(stages / f"align-{slug(METHODS[method])}"),
        "prefix_dir": str(stages / "prefix"),
        "data": {**_data(run_dir, "train"), "frame": "middle"},
        "method": method,
        "method_options": cfg.method_options.get(method, {}),
        "train_backbone": False,
        "epochs": 20,
        "batch_size": 16,
        "lr": 1e-3,
        "augment": False,
        "image_token_cache": "memory",
        **_common(cfg),
    }
    config = stage_config(AlignConfig, computed=computed, partial=cfg.align, section="align", origin=origin)
    if "lr_milestones" in cfg.align:
        return config
    return config.model_copy(update={"lr_milestones": [config.epochs // 2, 3 * config.epochs // 4]})


def distill_config(run_dir: Path, cfg: DaliQuickstartConfig, method: str, *, origin: Origin) -> Any:
    """Stage 2: pseudo-captions of `distill_limit` train scenes, then the audio projector."""
    from auralign.train.dali.config import DistillConfig

    stages, name = run_dir / "dali", slug(METHODS[method])
    computed = {
        "output_dir": str(stages / f"distill-{name}"),
        "align_dir": str(stages / f"align-{name}"),
        "data": _data(run_dir, "train", cfg.distill_limit),
        "epochs": 1,
        "batch_size": 20,
        "lr": 2e-4,
        "pseudo": {"max_new_tokens": 24, "batch_size": 20},
        **_common(cfg),
    }
    return stage_config(
        DistillConfig, computed=computed, partial=cfg.distill, section="distill", origin=origin
    )


def caption_config(
    run_dir: Path, cfg: DaliQuickstartConfig, *, folder: str, mode: str, predictions: str, origin: Origin
) -> Any:
    """The test scenes captioned in `mode` with the stage folder RUN/dali/`folder`, into
    RUN/predictions/`predictions`.jsonl."""
    from auralign.train.dali.config import CaptionConfig

    computed = {
        "distill_dir": str(run_dir / "dali" / folder),
        "output": str(run_dir / "predictions" / f"{predictions}.jsonl"),
        "data": _data(run_dir, "test", cfg.test_limit),
        "mode": mode,
        "generation": {"batch_size": 20, "max_new_tokens": 24},
        "seed": cfg.seed,
        "device": "cpu",
    }
    return stage_config(
        CaptionConfig, computed=computed, partial=cfg.caption, section="caption", origin=origin
    )


def stage_configs(
    run_dir: Path, cfg: DaliQuickstartConfig, captioner: Path, *, origin: Origin = IN_CODE
) -> dict[str, Any]:
    """Every stage's config object, by name: prefix, align-<m>, distill-<m>, caption-<m>-<input>, caption-image."""
    out: dict[str, Any] = {"prefix": prefix_config(run_dir, cfg, captioner, origin=origin)}
    for method in cfg.methods:
        s = slug(METHODS[method])
        out[f"align-{s}"] = align_config(run_dir, cfg, method, origin=origin)
        out[f"distill-{s}"] = distill_config(run_dir, cfg, method, origin=origin)
        for mode in INPUTS:
            out[f"caption-{s}-{mode}"] = caption_config(
                run_dir, cfg, folder=f"distill-{s}", mode=mode, predictions=f"{s}-{mode}", origin=origin
            )
    out["caption-image"] = caption_config(
        run_dir, cfg, folder="prefix", mode="image", predictions="image", origin=origin
    )
    return out


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
    return {
        k: (None if v is None else round(float(v), 4))
        for k, v in scores.items()
        if isinstance(v, int | float) or v is None
    }


def table_rows(run_dir: Path, cfg: DaliQuickstartConfig) -> list[dict[str, Any]]:
    """One row per (method, input), then the image captioner's, with its scores."""
    metrics = cfg.metrics
    rows = [
        {
            "method": name,
            "input": mode,
            "metrics": score(run_dir / "predictions" / f"{slug(name)}-{mode}.jsonl", metrics),
        }
        for name in cfg.rows()
        for mode in INPUTS
    ]
    image = score(run_dir / "predictions" / "image.jsonl", metrics)
    return [*rows, {"method": IMAGE_ROW, "input": "image", "metrics": image}]


def pca_points(audio_means: Any, image_means: Any, digits: int = 4) -> dict[str, Any]:
    """DALI's Figure 4 for one method: clip means on the first two principal axes + the gap statistics."""
    from auralign.align import modality_gap

    gap = modality_gap(audio_means[:, None], image_means[:, None]).to_dict()

    def rounded(points: list[list[float]]) -> list[list[float]]:
        return [[round(v, digits) for v in p] for p in points]

    return {
        "audio": rounded(gap["pca_x"]),
        "image": rounded(gap["pca_y"]),
        "explained_variance_ratio": [round(v, digits) for v in gap["explained_variance_ratio"]],
        **{
            k: round(gap[k], digits)
            for k in ("centroid_distance", "centroid_distance_normalized", "pair_distance", "pair_cosine")
        },
    }


def pca_all(run_dir: Path, cfg: DaliQuickstartConfig, configs: dict[str, Any]) -> dict[str, Any]:
    """Per method (and before any alignment: the adapter as initialised), the PCA of the test clips' mean tokens."""
    import torch

    from auralign.train import dali

    samples = dali.read_av_samples(configs["caption-image"].data)
    folders = {"unaligned": run_dir / "dali" / "prefix"}
    folders |= {name: run_dir / "dali" / f"align-{slug(name)}" for name in cfg.rows()}
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

    files = {
        f"{name} · {mode}": run_dir / "predictions" / f"{slug(name)}-{mode}.jsonl"
        for name in cfg.rows()
        for mode in INPUTS
    }
    files[IMAGE_ROW] = run_dir / "predictions" / "image.jsonl"
    preds = {row: [r for _, r in read_jsonl(path, "predictions")] for row, path in files.items()}
    first = preds[IMAGE_ROW][: cfg.examples]
    return [
        {
            "id": r["id"],
            "audio": os.path.relpath(r["audios"][0], run_dir),
            "references": r["references"],
            "predictions": {row: p[i]["prediction"] for row, p in preds.items()},
        }
        for i, r in enumerate(first)
    ]


def training_logs(run_dir: Path, cfg: DaliQuickstartConfig) -> dict[str, dict[str, str]]:
    stages = {"prefix": "prefix"}
    for name in cfg.rows():
        stages |= {f"align · {name}": f"align-{slug(name)}", f"distill · {name}": f"distill-{slug(name)}"}
    return {label: {"log": f"dali/{folder}/log.jsonl"} for label, folder in stages.items()}


def ordering_notes(rows: list[dict[str, Any]], pca: dict[str, Any]) -> list[str]:
    """This run's orderings beside the paper's, stated as measured (never tuned for)."""
    notes = []
    for mode in INPUTS:
        ranked = sorted(
            (r for r in rows if r["input"] == mode and r["metrics"].get("meteor") is not None),
            key=lambda r: -r["metrics"]["meteor"],
        )
        notes.append(
            f"METEOR ordering, {mode} input: "
            + " > ".join(f"{r['method']} ({r['metrics']['meteor']:.3f})" for r in ranked)
            + "."
        )
    gaps = sorted(pca.items(), key=lambda kv: kv[1]["centroid_distance"])
    notes.append(
        "Modality gap (centroid distance of mean tokens), smallest first: "
        + ", ".join(f"{k} {v['centroid_distance']:.2f}" for k, v in gaps)
        + ". The paper (Figure 4): contrastive leaves audio apart from image, MMD and OT close the gap, "
        "attentive OT closest; on AudioCaps attentive OT with audio-visual input captions best."
    )
    return notes


def write_results(run_dir: Path, cfg: DaliQuickstartConfig, rows: list, pca: dict, extra: dict) -> dict:
    from auralign.fileio import read_jsonl

    n = sum(1 for _ in read_jsonl(run_dir / "predictions" / "image.jsonl", "predictions"))
    config = {
        "dali_quickstart": cfg.model_dump(mode="json"),
        "model": "mini LLaVA (small CLIP + "
        "SmolLM2-135M-Instruct, frozen) as the image captioner; YAMNet (frozen, ONNX) + Linear(1024, 256) "
        "as the audio encoder",
        **{k: v for k, v in extra.items() if k != "notes"},
    }
    dali = {
        "dataset": "mini test",
        "n_samples": n,
        "rows": rows,
        "pca": pca,
        "training": training_logs(run_dir, cfg),
    }
    return miniature.write_results(
        run_dir,
        title="auralign dali quickstart: DALI on the offline audio-visual miniature",
        seed=cfg.seed,
        config=config,
        sections={"dali": dali, "examples": examples(run_dir, cfg)},
        timings=extra["timings"],
        notes=[*extra["notes"], *ordering_notes(rows, pca)],
    )


def format_table(rows: list[dict[str, Any]], pca: dict[str, Any]) -> str:
    """The DALI table as plain text (the report renders the same rows)."""
    from auralign.report.results import Dali
    from auralign.report.tables import dali_table, gap_table, markdown

    dali = Dali.model_validate({"dataset": "mini test", "rows": rows, "pca": pca})
    return markdown(dali_table(dali)) + "\n" + markdown(gap_table(dali))


# ---------------------------------------------------------------- the job


def check_stage_configs(cfg: DaliQuickstartConfig, origin: Origin) -> None:
    """Build every stage config over a placeholder run folder: a bad key in the file fails now, not after the
    data and the captioner."""
    stage_configs(Path("RUN"), cfg, Path("CAPTIONER"), origin=origin)


def run(
    run_dir: Path,
    cfg: DaliQuickstartConfig = DaliQuickstartConfig(),  # noqa: B008 - frozen
    *,
    workers: int | None = None,
    progress: bool = True,
    from_scratch: bool = False,
    captioner: Path | None = None,
    origin: Origin = IN_CODE,
) -> dict[str, Any]:
    """The whole miniature into `run_dir`; `origin`: where `cfg` came from, as its errors say."""
    import torch

    from auralign.report import write_report
    from auralign.train import dali

    check_stage_configs(cfg, origin)
    run_dir, workers = run_dir.resolve(), workers or os.cpu_count() or 1
    torch.set_num_threads(cfg.threads)
    phases = Phases(PHASES)
    phases.start(1, "mini corpus + audio-visual miniature (a drawn frame per scene), YAMNet features")
    summary = make_data(run_dir, cfg, workers, progress)
    print(f"  {warm_features(run_dir, workers, progress)} clips encoded")
    phases.lap("data_s")
    phases.start(2, "image captioner: mini LLaVA (small CLIP + SmolLM2)")
    captioner, captioner_source = make_captioner(run_dir, cfg, from_scratch, progress, captioner)
    phases.lap("captioner_s")
    configs = stage_configs(run_dir, cfg, captioner, origin=origin)
    write_configs(run_dir, configs)
    names = [slug(row) for row in cfg.rows()]
    phases.start(3, "prefix tuning on the 16 (frame, audio caption) pairs")
    run_stages(configs, ["prefix"], dali.prefix_tune, progress)
    phases.lap("prefix_s")
    phases.start(4, f"alignment with each method: {', '.join(cfg.rows())}")
    run_stages(configs, [f"align-{s}" for s in names], dali.align, progress)
    phases.lap("align_s")
    phases.start(5, "distillation per method: pseudo-captions, then the audio projector")
    run_stages(configs, [f"distill-{s}" for s in names], dali.distill, progress)
    phases.lap("distill_s")
    phases.start(6, "captioning the test scenes per method x (audio, audio-visual) + image; scores; PCA")
    captions = [*(f"caption-{s}-{m}" for s in names for m in INPUTS), "caption-image"]
    run_stages(configs, captions, dali.caption, progress)
    rows, pca = table_rows(run_dir, cfg), pca_all(run_dir, cfg, configs)
    phases.lap("caption_s")
    phases.start(7, "results.json, the DALI table and the report")
    notes = [
        f"Image captioner: {captioner_source} ({captioner}).",
        "No audio caption is used except the 16 of prefix tuning; references are the test scenes' audio "
        "captions, so a caption of what is seen and not heard scores low.",
    ]
    extra = {
        "captioner_source": captioner_source,
        "mini_av": {k: v for k, v in summary.items() if k != "looks"},
        "timings": phases.timings,
        "notes": notes,
    }
    write_results(run_dir, cfg, rows, pca, extra)
    html, _ = write_report(run_dir)
    phases.lap("report_s")
    phases.total()
    write_results(run_dir, cfg, rows, pca, extra)  # with the report's time and the total
    print("\n" + format_table(rows, pca))
    print(f"timings (s): {phases.timings}\nreport: {html}")
    return {"timings": phases.timings, "rows": rows, "pca": pca}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    miniature.add_arguments(
        parser,
        out="runs/dali-quickstart",
        defaults="configs/dali/quickstart.yaml",
        shipped="the image captioner",
    )
    parser.add_argument(
        "--captioner",
        type=Path,
        default=None,
        help="a trained mini captioner folder to use instead of the shipped one (train_mini_captioner's output)",
    )


def main(args: argparse.Namespace) -> int:
    return miniature.run_from_args(args, DaliQuickstartConfig, run, captioner=args.captioner)
