"""The report's tables in the ACC paper's layout, as plain data that both the HTML and the Markdown render.

Table 2 (captioning): one row per configuration, one column per metric present in the results, best value
per column in bold. Table 3 (general abilities): accuracy % per task, headed by the paper task it mirrors,
with the change from the base model in parentheses. A missing or null value is "n/a", never 0.
"""

from dataclasses import dataclass, field

from auralign.report.results import Abilities, Captioning, CaptionRow, Dali

NA = "n/a"
BASE = "base"

#: metric key -> column name, in the order the papers print them (aac-metrics key names)
METRIC_LABELS = {
    "bleu_1": "BLEU-1",
    "bleu_2": "BLEU-2",
    "bleu_3": "BLEU-3",
    "bleu_4": "BLEU-4",
    "meteor": "METEOR",
    "rouge_l": "ROUGE-L",
    "cider_d": "CIDEr-D",
    "spice": "SPICE",
    "spider": "SPIDEr",
    "spider_fl": "SPIDEr-FL",
    "fense": "FENSE",
    "sbert_sim": "SBERT-sim",
    "sbert_sim_minilm": "SBERT-sim (MiniLM)",
    "fer": "FER",
    "vocab": "Vocab",
    "vocab.mrefs_full": "Vocab (refs)",
    "vocab.ratio_full": "Vocab ratio",
}
LOWER_IS_BETTER = {"fer"}
NOT_RANKED = {"vocab", "vocab.mrefs_full", "vocab.ratio_full"}  # descriptive: bigger is not better


@dataclass
class Cell:
    text: str
    bold: bool = False
    tone: str = ""  # "up" / "down": a change from the base, coloured in the HTML


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[Cell]]
    notes: list[str] = field(default_factory=list)


def metric_columns(captioning: Captioning) -> list[str]:
    """Metric keys present in any row: the known ones in paper order, then any others as they first appear."""
    present: list[str] = []
    for row in captioning.rows:
        present += [k for k in row.metrics if k not in present]
    known = [k for k in METRIC_LABELS if k in present]
    return known + [k for k in present if k not in METRIC_LABELS]


def _fmt_metric(key: str, value: float | None) -> str:
    if value is None:
        return NA
    if key.startswith("vocab") and float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}"


def _bold_best(rows: list[list[Cell]], keys: list[str], first: int) -> None:
    """Bold the best value of each metric column (columns `first`, `first` + 1, ... hold `keys`)."""
    for col, key in enumerate(keys, start=first):
        if key in NOT_RANKED:
            continue
        # Compare the printed values, so cells that read the same are bold together.
        shown = [float(r[col].text) for r in rows if r[col].text != NA]
        if len(shown) < 2:
            continue
        best = min(shown) if key in LOWER_IS_BETTER else max(shown)
        for r in rows:
            r[col].bold = r[col].text != NA and float(r[col].text) == best


def _metric_notes(keys: list[str]) -> list[str]:
    notes = ["Best value per column in bold; n/a: the metric could not be computed here."]
    if any(k in LOWER_IS_BETTER for k in keys):
        notes.append("FER: fluency error rate, lower is better.")
    return notes


def captioning_table(captioning: Captioning) -> Table:
    keys = metric_columns(captioning)
    rows = [
        [Cell(row.config)] + [Cell(_fmt_metric(k, row.metrics.get(k))) for k in keys]
        for row in captioning.rows
    ]
    _bold_best(rows, keys, 1)
    n = f", {captioning.n_samples} clips" if captioning.n_samples is not None else ""
    return Table(
        f"Table 2. Captioning on {captioning.dataset or 'the test set'}{n}",
        ["Configuration"] + [METRIC_LABELS.get(k, k) for k in keys],
        rows,
        _metric_notes(keys),
    )


def dali_table(dali: Dali) -> Table:
    """DALI's zero-shot captioning: one row per (alignment method, input), one column per metric."""
    keys = metric_columns(
        Captioning(rows=[CaptionRow(config=r.method, metrics=r.metrics) for r in dali.rows])
    )
    rows = [
        [Cell(row.method), Cell(row.input)] + [Cell(_fmt_metric(k, row.metrics.get(k))) for k in keys]
        for row in dali.rows
    ]
    _bold_best(rows, keys, 2)
    n = f", {dali.n_samples} clips" if dali.n_samples is not None else ""
    notes = _metric_notes(keys)
    if any(r.input == "image" for r in dali.rows):
        notes.append(
            "Input image: the image captioner on the clip's frame (a reference, not audio captioning)."
        )
    return Table(
        f"DALI: zero-shot audio captioning on {dali.dataset or 'the test set'}{n}",
        ["Method", "Input"] + [METRIC_LABELS.get(k, k) for k in keys],
        rows,
        notes,
    )


def gap_table(dali: Dali) -> Table:
    """The modality gap per method: how far the mean audio tokens sit from the mean image tokens."""
    fields = (
        ("centroid_distance", "centroid distance"),
        ("centroid_distance_normalized", "normalised"),
        ("pair_cosine", "pair cosine"),
    )
    rows = [
        [Cell(method)] + [Cell(_fmt_metric(k, getattr(pca, k))) for k, _ in fields]
        for method, pca in dali.pca.items()
    ]
    notes = [
        "Per-clip mean audio token vs mean image token (auralign.align.modality_gap): distances between "
        "the two clouds' centres (raw and on unit-normalised means), mean cosine of a clip's two means."
    ]
    return Table("Modality gap per method", ["Method"] + [label for _, label in fields], rows, notes)


def base_row(abilities: Abilities) -> dict[str, float | None] | None:
    for row in abilities.rows:
        if (row.config == abilities.base) if abilities.base else (row.config.lower() == BASE):
            return row.accuracy
    return None


def task_header(abilities: Abilities, task: str) -> str:
    parts = [abilities.mirrors[task]] if task in abilities.mirrors else []
    if task in abilities.n_samples:
        parts.append(f"n={abilities.n_samples[task]}")
    return f"{task} ({', '.join(parts)})" if parts else task


def _mean(values: list[float | None]) -> float | None:
    # A mean over the tasks that happen to be present would compare different things: all or nothing.
    return None if not values or any(v is None for v in values) else sum(values) / len(values)


def _ability_cell(value: float | None, base: float | None, is_base: bool) -> Cell:
    if value is None:
        return Cell(NA)
    text = f"{100 * value:.1f}"
    if is_base or base is None:
        return Cell(text)
    delta = round(100 * (value - base), 1)
    tone = "up" if delta > 0 else "down" if delta < 0 else ""
    return Cell(f"{text} ({delta:+.1f})", tone=tone)


def abilities_table(abilities: Abilities) -> Table:
    base = base_row(abilities)
    rows = []
    for row in abilities.rows:
        is_base = row.accuracy is base
        values = [row.accuracy.get(t) for t in abilities.tasks]
        base_values = [base.get(t) for t in abilities.tasks] if base else [None] * len(values)
        cells = [_ability_cell(v, b, is_base) for v, b in zip(values, base_values, strict=True)]
        cells.append(_ability_cell(_mean(values), _mean(base_values), is_base))
        rows.append([Cell(row.config), *cells])
    notes = ["Accuracy in %; in parentheses the change from the base model in percentage points."]
    if base is None:
        notes = ["Accuracy in %; no 'base' row, so no change from the base is shown."]
    notes.append("Tasks mirror the paper's VSC (VocalSound), SER (IEMOCAP), MIC (NSynth) and MGC (GTZAN).")
    return Table(
        "Table 3. General abilities before and after fine-tuning",
        ["Configuration"] + [task_header(abilities, t) for t in abilities.tasks] + ["mean"],
        rows,
        notes,
    )


def key_value_table(title: str, header: list[str], items: dict, unit: str = "") -> Table:
    rows = [[Cell(str(k)), Cell(_fmt_value(v, unit))] for k, v in items.items()]
    return Table(title, header, rows)


def _fmt_value(value: object, unit: str) -> str:
    if value is None:
        return NA
    if unit == "s" and isinstance(value, int | float):
        return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min ({value:.0f} s)"
    return str(value)


def markdown(table: Table) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(_md_escape(c) for c in cells) + " |"

    out = [f"**{table.title}**", "", line(table.header), line(["---"] * len(table.header))]
    out += [line([f"**{c.text}**" if c.bold else c.text for c in row]) for row in table.rows]
    for note in table.notes:
        out += ["", f"_{note}_"]
    return "\n".join(out).rstrip() + "\n"


def _md_escape(text: str) -> str:
    # "<" would start raw HTML in most Markdown renderers; "|" would end the cell.
    return text.replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")
