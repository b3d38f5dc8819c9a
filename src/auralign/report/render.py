"""`write_report(run_dir)`: the run folder's results as one self-contained HTML page and a Markdown twin.

RUN_DIR/report/index.html embeds its figures and example audio as data URIs (one file to mail or archive);
RUN_DIR/report/report.md links the PNGs written beside it and the audio files in the run folder.
"""

import json
import logging
import os
from pathlib import Path
from typing import Any

from auralign.fileio import atomic_write_bytes
from auralign.report import tables
from auralign.report.media import audio_bytes, data_uri
from auralign.report.plots import (
    ability_changes,
    captioning_bars,
    colour,
    dali_bars,
    loss_curves,
    pca_scatter,
)
from auralign.report.results import RESULTS, Results, load_log, load_results, resolve

log = logging.getLogger(__name__)
AUDIO_BUDGET = 8_000_000  # bytes of embedded audio; keeps the page under ~10 MB with the figures
CAPTIONING_ALT = "primary captioning metric per configuration with 95 % intervals"
DALI_METRIC_ALT = "primary captioning metric per method and input with 95 % intervals"


def write_report(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Write `index.html` and `report.md` (+ PNGs) to `out_dir` (default RUN_DIR/report); returns both paths."""
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir else run_dir / "report"
    results = load_results(run_dir)
    logs = {
        name: load_log(resolve(run_dir, t.log, f"training log of {name!r}"))
        for name, t in results.training.items()
    }
    context = _context(results, run_dir, out)  # reads every example clip: a broken one fails before any write
    colours = colour(_config_order(results))
    images = {"loss": loss_curves(logs, colours) if logs else None}
    images["abilities"] = ability_changes(results.abilities, colours) if results.abilities else None
    images["captioning"] = captioning_bars(results.captioning, colours) if results.captioning else None
    images |= _dali_images(results, run_dir)
    html = _render_html(context, {k: data_uri(v, "image/png") if v else None for k, v in images.items()})
    md = _render_markdown(context, {k: f"{k}.png" for k, v in images.items() if v})
    for name, png in images.items():
        if png:
            _publish(out / f"{name}.png", png)
    _publish(out / "report.md", md.encode("utf-8"))
    _publish(out / "index.html", html.encode("utf-8"))
    log.info("report: %s (%.1f MB)", out / "index.html", len(html) / 1e6)
    return out / "index.html", out / "report.md"


def _dali_images(results: Results, run_dir: Path) -> dict[str, bytes | None]:
    """DALI's PCA figure and its per-stage loss curves (each on its own scale), when the run has them."""
    dali = results.dali
    if dali is None:
        return {"dali_pca": None, "dali_loss": None, "dali_metric": None}
    logs = {
        name: load_log(resolve(run_dir, t.log, f"DALI training log of {name!r}"))
        for name, t in dali.training.items()
    }
    return {
        "dali_pca": pca_scatter(dali.pca) if dali.pca else None,
        "dali_loss": loss_curves(logs, colour(list(logs)), sharey=False) if logs else None,
        "dali_metric": dali_bars(dali),
    }


def _publish(path: Path, data: bytes) -> None:
    # Atomic writes create private (0600) temp files; a report is for sharing, so make it world-readable.
    atomic_write_bytes(path, data)
    path.chmod(0o644)


def _config_order(results: Results) -> list[str]:
    """Configurations in the order the run lists them, so each keeps its colour across figures."""
    names: list[str] = []
    for rows in (
        results.captioning.rows if results.captioning else [],
        results.abilities.rows if results.abilities else [],
    ):
        names += [r.config for r in rows if r.config not in names]
    return names + [n for n in results.training if n not in names]


def _meta(results: Results) -> list[str]:
    meta = [f"created {results.created}"] if results.created else []
    if results.seeds:
        meta.append(f"{_count(len(results.seeds), 'seed')} ({', '.join(map(str, results.seeds))})")
    else:
        meta.append(f"seed {results.seed}" if results.seed is not None else "seed n/a")
    cap = results.captioning
    if cap and cap.n_samples is not None:
        meta.append(f"captioning: {cap.n_samples} clips of {cap.dataset or 'the test set'}")
    if results.abilities and results.abilities.n_samples:
        n = results.abilities.n_samples
        meta.append(
            "abilities: " + ", ".join(f"{t} {n[t]}" for t in results.abilities.tasks if t in n) + " clips"
        )
    return meta


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def preset_sentence(results: Results) -> str:
    """What the run can show, said first: a quick run demonstrates, a full run tests the claims."""
    if results.preset == "quick":
        return (
            "This is a quick run: it demonstrates the pipeline and tests no claim of the paper "
            "(one seed, small test sets)."
        )
    if results.preset == "full":
        seeds = _count(len(results.seeds), "seed") if results.seeds else "several seeds"
        what = "tests the claims listed first" if results.claims else "lists no claim verdict"
        return f"This is a full run ({seeds} per configuration, 95 % confidence intervals): it {what}."
    return ""


def _prediction_names(results: Results) -> list[str]:
    present: list[str] = []
    for ex in results.examples:
        present += [k for k in ex.predictions if k not in present]
    order = _config_order(results)
    return [n for n in order if n in present] + [n for n in present if n not in order]


def _examples(results: Results, run_dir: Path, out: Path) -> list[dict[str, Any]]:
    budget, rows = AUDIO_BUDGET, []
    for ex in results.examples:
        row: dict[str, Any] = {**ex.model_dump(), "audio_uri": None, "audio_note": "", "audio_link": None}
        if ex.audio:
            path = resolve(run_dir, ex.audio, f"audio of example {ex.id!r}")
            row["audio_link"] = Path(os.path.relpath(path, out)).as_posix()
            data, mime, note = audio_bytes(path)
            if len(data) <= budget:
                budget -= len(data)
                row["audio_uri"], row["audio_note"] = data_uri(data, mime), note
            else:  # say so rather than let the page grow past what a browser opens comfortably
                row["audio_note"] = f"not embedded (page size budget): {ex.audio}"
        rows.append(row)
    return rows


def _context(results: Results, run_dir: Path, out: Path) -> dict[str, Any]:
    sections = [("claims", "Claims")] if results.claims or results.checks else []
    sections += [("differences", "Key differences")] if results.differences else []
    sections += [("captioning", "Captioning")] if results.captioning else []
    sections += [("abilities", "General abilities")] if results.abilities else []
    sections += [("dali", "DALI")] if results.dali else []
    sections += [("training", "Training")] if results.training else []
    sections += [("examples", "Examples")] if results.examples else []
    sections.append(("run", "Run"))
    ability_rows = results.abilities.rows if results.abilities else []
    return {
        "r": results,
        "meta": _meta(results),
        "preset": preset_sentence(results),
        "sections": sections,
        "claims": tables.claims_table(results.claims) if results.claims else None,
        "checks": tables.checks_table(results.checks) if results.checks else None,
        "differences": tables.differences_table(results.differences) if results.differences else None,
        "captioning": tables.captioning_table(results.captioning) if results.captioning else None,
        "abilities": tables.abilities_table(results.abilities) if results.abilities else None,
        "logprob": tables.logprob_table(results.abilities) if results.abilities else None,
        "dali": tables.dali_table(results.dali) if results.dali else None,
        "dali_gap": tables.gap_table(results.dali) if results.dali and results.dali.pca else None,
        "examples": _examples(results, run_dir, out),
        "prediction_names": _prediction_names(results),
        "timings": tables.key_value_table("Timings", ["phase", "time"], results.timings, "s")
        if results.timings
        else None,
        "environment": tables.key_value_table("Environment", ["", "version"], results.environment)
        if results.environment
        else None,
        "config": json.dumps(results.config, indent=2, ensure_ascii=False)
        if results.config is not None
        else "",
        "notes": results.notes,
        "interval_bars": tables.has_values(r.intervals for r in ability_rows),
        "captioning_alt": CAPTIONING_ALT,
        "dali_metric_alt": DALI_METRIC_ALT,
        "source": (run_dir / RESULTS).as_posix(),
    }


def _render_html(context: dict[str, Any], images: dict[str, str]) -> str:
    import jinja2

    from auralign.report.template import PAGE

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True)
    return env.from_string(PAGE).render(**context, images=images)


def _render_markdown(context: dict[str, Any], images: dict[str, str]) -> str:
    r: Results = context["r"]
    out = [f"# {r.title}", "", " · ".join(context["meta"]), ""]
    out += [context["preset"], ""] if context["preset"] else []
    if context["claims"] or context["checks"]:
        out += ["## Claims", ""]
        out += [tables.markdown(context[k]) for k in ("claims", "checks") if context[k]]
    if context["differences"]:
        out += ["## Key differences", "", tables.markdown(context["differences"])]
    if context["captioning"]:
        out += ["## Captioning", "", tables.markdown(context["captioning"])]
    if "captioning" in images:
        out += [f"![{CAPTIONING_ALT}](captioning.png)", ""]
    if context["abilities"]:
        out += ["## General abilities", "", tables.markdown(context["abilities"])]
    if context["logprob"]:
        out.append(tables.markdown(context["logprob"]))
    if "abilities" in images:
        out += ["![accuracy change from the base per task](abilities.png)", ""]
    out += _dali_markdown(context, images)
    if "loss" in images:
        out += ["## Training", "", "![training loss per configuration](loss.png)", ""]
    if context["examples"]:
        out += ["## Example captions", "", _examples_markdown(context), ""]
    out += ["## Run", ""]
    out += [f"- {n}" for n in context["notes"]] + ([""] if context["notes"] else [])
    for key in ("timings", "environment"):
        if context[key]:
            out.append(tables.markdown(context[key]))
    if context["config"]:
        out += ["**Configuration**", "", "```json", context["config"], "```", ""]
    return "\n".join(out)


def _examples_markdown(context: dict[str, Any]) -> str:
    names = context["prediction_names"]
    header = ["Clip", "Ground truth", *names]
    rows = []
    for ex in context["examples"]:
        clip = f"[{ex['id']}]({ex['audio_link']})" if ex["audio_link"] else ex["id"]
        truth = " / ".join(ex["references"]) or tables.NA
        rows.append(
            [tables.Cell(clip), tables.Cell(truth)]
            + [tables.Cell(ex["predictions"].get(n, tables.NA)) for n in names]
        )
    return tables.markdown(tables.Table("Ground truth and each configuration's caption", header, rows))


def _dali_markdown(context: dict[str, Any], images: dict[str, str]) -> list[str]:
    if not context["dali"]:
        return []
    out = ["## DALI", "", tables.markdown(context["dali"])]
    if "dali_metric" in images:
        out += [f"![{DALI_METRIC_ALT}](dali_metric.png)", ""]
    if context["dali_gap"]:
        out.append(tables.markdown(context["dali_gap"]))
    if "dali_pca" in images:
        out += ["![PCA of mean audio and image tokens per method](dali_pca.png)", ""]
    if "dali_loss" in images:
        out += ["![DALI training loss per stage](dali_loss.png)", ""]
    return out
