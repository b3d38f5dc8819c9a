"""The report's tables in the ACC paper's layout, as plain data that both the HTML and the Markdown render.

Table 2 (captioning): one row per configuration, one column per metric present in the results, best value
per column in bold. Table 3 (general abilities): accuracy % per task, headed by the paper task it mirrors,
with the change from the base model in parentheses. A missing or null value is "n/a", never 0.

A value with a 95 % interval reads one way everywhere: the mean, then the interval in brackets,
"0.655 [0.612, 0.701]", each number printed as the mean is; bold-best compares and bolds the mean alone.
Bootstrap intervals are seldom symmetric, and a column that mixed "±" with brackets would read two ways.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from auralign.report.results import (
    Abilities,
    AbilityRow,
    Captioning,
    CaptionRow,
    Check,
    Claim,
    Dali,
    Difference,
    verdict_word,
)

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
    "event_recall": "event R",
    "event_precision": "event P",
    "event_f1": "event F1",
    "fer": "FER",
    "vocab": "Vocab",
    "vocab.mrefs_full": "Vocab (refs)",
    "vocab.ratio_full": "Vocab ratio",
}
LOWER_IS_BETTER = {"fer"}
NOT_RANKED = {"vocab", "vocab.mrefs_full", "vocab.ratio_full"}  # descriptive: bigger is not better
EVENT_METRICS = ("event_recall", "event_precision", "event_f1")
#: the metric a chart shows per configuration when the run has it (the papers rank by CIDEr-D)
PRIMARY_METRIC = "cider_d"
#: verdict (its first words) -> the HTML class that colours it
VERDICT_TONES = {
    "reproduced": "verdict-reproduced",
    "passed": "verdict-reproduced",
    "contradicted": "verdict-contradicted",
    "failed": "verdict-contradicted",
    "inconclusive": "verdict-inconclusive",
    "not tested": "verdict-not-tested",
}
INTERVAL_NOTE = (
    "With an interval: the mean, then its 95 % confidence interval [low, high]; bold marks the best mean."
)


@dataclass
class Cell:
    text: str
    bold: bool = False
    tone: str = ""  # its HTML class: "up" / "down" (a change from the base), a verdict's, "estimate"
    span: int = 1  # rows this cell covers in the HTML (Markdown, which cannot span, leaves them empty)
    hidden: bool = False  # covered by a spanning cell above: empty in Markdown, absent from the HTML
    rest: str = ""  # printed after `text` and never bold: a mean's interval, so bold marks the mean alone

    @property
    def shown(self) -> str:
        return self.text + self.rest


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


def has_values(maps: Iterable[Mapping[str, object]]) -> bool:
    """Whether any of these per-key maps (intervals, log-probabilities) holds a non-null value."""
    return any(v is not None for m in maps for v in m.values())


def _fmt_metric(key: str, value: float | None) -> str:
    if value is None:
        return NA
    if key.startswith("vocab") and float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}"


def _bracket(mean: str, interval: Sequence[str] | None) -> str:
    # No interval beside n/a: there is no mean for it to bound.
    return f" [{interval[0]}, {interval[1]}]" if interval and mean != NA else ""


def with_interval(mean: str, interval: Sequence[str] | None) -> str:
    """The report's one form of a value with its 95 % interval: "0.655 [0.612, 0.701]"."""
    return mean + _bracket(mean, interval)


def _metric_cell(key: str, value: float | None, interval: Sequence[float] | None) -> Cell:
    mean = _fmt_metric(key, value)
    return Cell(mean, rest=_bracket(mean, [_fmt_metric(key, x) for x in interval] if interval else None))


def _bold_best(rows: list[list[Cell]], keys: list[str], first: int) -> None:
    """Bold the best value of each metric column (columns `first`, `first` + 1, ... hold `keys`)."""
    for col, key in enumerate(keys, start=first):
        if key in NOT_RANKED:
            continue
        # Compare the printed means (a cell's text; its interval is its `rest`), so cells that read the
        # same are bold together.
        shown = [float(r[col].text) for r in rows if r[col].text != NA]
        if len(shown) < 2:
            continue
        best = min(shown) if key in LOWER_IS_BETTER else max(shown)
        for r in rows:
            r[col].bold = r[col].text != NA and float(r[col].text) == best


def _metric_notes(keys: list[str], intervals: bool = False) -> list[str]:
    notes = ["Best value per column in bold; n/a: the metric could not be computed here."]
    if any(k in LOWER_IS_BETTER for k in keys):
        notes.append("FER: fluency error rate, lower is better.")
    if any(k in EVENT_METRICS for k in keys):
        notes.append(
            "event R / P / F1: recall, precision and F1 of the clip's sound events as the caption names "
            "them; higher is better."
        )
    if intervals:
        notes.append(INTERVAL_NOTE)
    return notes


def primary_metric(keys: list[str]) -> str | None:
    """The metric a per-configuration chart shows: CIDEr-D when present, else the first ranked column."""
    ranked = [k for k in keys if k not in NOT_RANKED]
    return PRIMARY_METRIC if PRIMARY_METRIC in ranked else (ranked[0] if ranked else None)


def captioning_table(captioning: Captioning) -> Table:
    keys = metric_columns(captioning)
    rows = [
        [Cell(row.config)] + [_metric_cell(k, row.metrics.get(k), row.intervals.get(k)) for k in keys]
        for row in captioning.rows
    ]
    _bold_best(rows, keys, 1)
    n = f", {captioning.n_samples} clips" if captioning.n_samples is not None else ""
    return Table(
        f"Table 2. Captioning on {captioning.dataset or 'the test set'}{n}",
        ["Configuration"] + [METRIC_LABELS.get(k, k) for k in keys],
        rows,
        _metric_notes(keys, has_values(r.intervals for r in captioning.rows)),
    )


def dali_keys(dali: Dali) -> list[str]:
    """The DALI table's metric columns, over its rows and baselines."""
    rows = [CaptionRow(config=r.method, metrics=r.metrics) for r in dali.rows + dali.baselines]
    return metric_columns(Captioning(rows=rows))


def dali_table(dali: Dali) -> Table:
    """DALI's zero-shot captioning: one row per (alignment method, input), one column per metric; the
    baselines (input "none") below them, ranked with them: a method that loses to one is worth seeing."""
    keys = dali_keys(dali)
    rows = [
        [Cell(row.method), Cell(row.input)]
        + [_metric_cell(k, row.metrics.get(k), row.intervals.get(k)) for k in keys]
        for row in dali.rows + dali.baselines
    ]
    _bold_best(rows, keys, 2)
    n = f", {dali.n_samples} clips" if dali.n_samples is not None else ""
    notes = _metric_notes(keys, has_values(r.intervals for r in dali.rows + dali.baselines))
    if any(r.input == "image" for r in dali.rows):
        notes.append(
            "Input image: the image captioner on the clip's frame (a reference, not audio captioning)."
        )
    if dali.baselines:
        notes.append("Input none: a baseline that does not hear the clip (e.g. one constant caption).")
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


def _base(abilities: Abilities) -> AbilityRow | None:
    for row in abilities.rows:
        if (row.config == abilities.base) if abilities.base else (row.config.lower() == BASE):
            return row
    return None


def base_row(abilities: Abilities) -> dict[str, float | None] | None:
    base = _base(abilities)
    return base.accuracy if base else None


def task_header(abilities: Abilities, task: str) -> str:
    parts = [abilities.mirrors[task]] if task in abilities.mirrors else []
    if task in abilities.n_samples:
        parts.append(f"n={abilities.n_samples[task]}")
    return f"{task} ({', '.join(parts)})" if parts else task


def _mean(values: list[float | None]) -> float | None:
    # A mean over the tasks that happen to be present would compare different things: all or nothing.
    return None if not values or any(v is None for v in values) else sum(values) / len(values)


@dataclass(frozen=True)
class _Scale:
    """How a block of Table 3 prints: accuracy as % with 1 decimal, log-probabilities as they are."""

    factor: float
    digits: int

    def fmt(self, value: float) -> str:
        return f"{self.factor * value:.{self.digits}f}"


PERCENT, PLAIN = _Scale(100.0, 1), _Scale(1.0, 3)


def _ability_cell(
    value: float | None,
    base: float | None,
    is_base: bool,
    interval: Sequence[float] | None = None,
    scale: _Scale = PERCENT,
) -> Cell:
    if value is None:
        return Cell(NA)
    text = with_interval(scale.fmt(value), [scale.fmt(x) for x in interval] if interval else None)
    if is_base or base is None:
        return Cell(text)
    delta = round(scale.factor * (value - base), scale.digits)
    tone = "up" if delta > 0 else "down" if delta < 0 else ""
    return Cell(f"{text} ({delta:+.{scale.digits}f})", tone=tone)


def _ability_rows(abilities: Abilities, logprob: bool) -> list[list[Cell]]:
    """Table 3's rows: accuracy (or log-probability) per task, its interval, the change from the base."""
    scale = PLAIN if logprob else PERCENT
    base = _base(abilities)
    base_values = getattr(base, "logprob" if logprob else "accuracy") if base else {}
    rows = []
    for row in abilities.rows:
        values_of = row.logprob if logprob else row.accuracy
        intervals = row.logprob_intervals if logprob else row.intervals
        values = [values_of.get(t) for t in abilities.tasks]
        refs = [base_values.get(t) for t in abilities.tasks] if base else [None] * len(values)
        cells = [
            _ability_cell(v, b, row is base, intervals.get(t), scale)
            for t, v, b in zip(abilities.tasks, values, refs, strict=True)
        ]
        cells.append(_ability_cell(_mean(values), _mean(refs), row is base, None, scale))
        rows.append([Cell(row.config), *cells])
    return rows


def abilities_table(abilities: Abilities) -> Table:
    notes = ["Accuracy in %; in parentheses the change from the base model in percentage points."]
    if _base(abilities) is None:
        notes = ["Accuracy in %; no 'base' row, so no change from the base is shown."]
    if has_values(r.intervals for r in abilities.rows):
        notes.append("In brackets: the accuracy's 95 % confidence interval (none for the mean over tasks).")
    notes.append("Tasks mirror the paper's VSC (VocalSound), SER (IEMOCAP), MIC (NSynth) and MGC (GTZAN).")
    return Table(
        "Table 3. General abilities before and after fine-tuning",
        ["Configuration"] + [task_header(abilities, t) for t in abilities.tasks] + ["mean"],
        _ability_rows(abilities, logprob=False),
        notes,
    )


def logprob_table(abilities: Abilities) -> Table | None:
    """Table 3's second block: the log-probability of the correct answer, a finer measure of what
    fine-tuning forgot than accuracy on small test sets; None when the run has none."""
    if not has_values(r.logprob for r in abilities.rows):  # e.g. all null: made before log-probs
        return None
    notes = ["Mean log-probability of the correct answer (higher is better)"]
    notes[0] += "; in parentheses the change from the base model." if _base(abilities) else "."
    if has_values(r.logprob_intervals for r in abilities.rows):
        notes.append("In brackets: its 95 % confidence interval (none for the mean over tasks).")
    return Table(
        "Table 3b. General abilities: log-probability of the correct answer",
        ["Configuration"] + [task_header(abilities, t) for t in abilities.tasks] + ["mean"],
        _ability_rows(abilities, logprob=True),
        notes,
    )


def _fmt_estimate(mean: float | None, low: float | None, high: float | None) -> str:
    """A claim's or a difference's mean and interval, 3 decimals as in the metric tables."""
    if mean is None or not math.isfinite(mean):
        return NA
    finite = low is not None and high is not None and math.isfinite(low) and math.isfinite(high)
    return with_interval(f"{mean:.3f}", [f"{low:.3f}", f"{high:.3f}"] if finite else None)


def _verdict_cell(verdict: str, bold: bool = False, span: int = 1) -> Cell:
    word = verdict_word(verdict) or verdict
    return Cell(verdict, bold=bold, tone=VERDICT_TONES.get(word, ""), span=span)


def _grouped_rows(own: list[str], parts: list[list[Cell]], verdict: str) -> list[list[Cell]]:
    """One row per part (a comparison); the group's own cells and verdict span them in the HTML and are
    empty below the first in Markdown. A group without parts is one row saying so."""
    n = max(1, len(parts))
    first = [Cell(text, span=n) for text in own]
    last = _verdict_cell(verdict, bold=True, span=n)
    if not parts:
        return [[*first, Cell("none"), Cell(NA), Cell(""), last]]
    covered = [Cell("", hidden=True) for _ in own]
    return [[*first, *parts[0], last]] + [[*covered, *p, Cell("", hidden=True)] for p in parts[1:]]


#: the miniatures' measures that are not metric columns (experiments/acc.py and dali.py collect them)
MEASURE_LABELS = {
    "ability_accuracy": "ability accuracy (all items)",
    "ability_logprob": "log P(label) (all items)",
    "gap": "modality gap (centroid distance)",
}


def _measure(key: str) -> str:
    # Claims name measures by their keys ("cider_d", "accuracy:rhythm", "own:ADC test"); show them readably.
    kind, _, name = key.partition(":")
    if name:
        return {
            "accuracy": f"{name} accuracy",
            "logprob": f"{name} log P(label)",
            "own": f"CIDEr-D on {name}",
        }.get(kind, key)
    return MEASURE_LABELS.get(key) or METRIC_LABELS.get(key, key)


def _part(name: str, mean: float | None, low: float | None, high: float | None, verdict: str) -> list[Cell]:
    return [Cell(name), Cell(_fmt_estimate(mean, low, high), tone="estimate"), _verdict_cell(verdict)]


def claims_table(claims: list[Claim]) -> Table:
    """The paper's claims this run tests: each comparison's mean and 95 % interval, the verdict per claim."""
    rows = [
        row
        for c in claims
        for row in _grouped_rows(
            [c.id, c.claim, _measure(c.measure)],
            [_part(p.name, p.mean, p.low, p.high, p.verdict) for p in c.comparisons],
            c.verdict,
        )
    ]
    rules: dict[str, list[str]] = {}
    for claim in claims:
        if claim.rule:
            rules.setdefault(claim.rule, []).append(claim.id)
    notes = ["Each comparison: its mean, then its 95 % confidence interval [low, high]."]
    notes += [f"Rule ({', '.join(ids)}): {rule}" for rule, ids in rules.items()]
    return Table(
        "Claims and their verdicts",
        ["ID", "Claim", "Measure", "Comparison", "mean [95 % CI]", "its verdict", "Verdict"],
        rows,
        notes,
    )


def checks_table(checks: list[Check]) -> Table:
    """The validity checks the claims depend on: each part on its measure, passed or failed."""
    rows = [
        row
        for c in checks
        for row in _grouped_rows(
            [c.id, c.check],
            [[Cell(_measure(p.measure)), *_part(p.name, p.mean, p.low, p.high, p.verdict)] for p in c.parts],
            c.verdict,
        )
    ]
    return Table(
        "Validity checks",
        ["ID", "Check", "Measure", "Part", "mean [95 % CI]", "its verdict", "Verdict"],
        rows,
        ["A claim that depends on a failed check is inconclusive, whatever its intervals say."],
    )


def differences_table(differences: list[Difference]) -> Table:
    rows = [
        [Cell(d.name), Cell(_measure(d.measure)), Cell(_fmt_estimate(d.mean, d.low, d.high), tone="estimate")]
        for d in differences
    ]
    return Table(
        "Key differences",
        ["Difference", "Measure", "mean [95 % CI]"],
        rows,
        [
            "Mean difference, then its 95 % confidence interval [low, high]; an interval that excludes 0 "
            "separates the two."
        ],
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
    out += [
        line([f"**{c.text}**{c.rest}" if c.bold and c.text else c.shown for c in row]) for row in table.rows
    ]
    for note in table.notes:
        out += ["", f"_{note}_"]
    return "\n".join(out).rstrip() + "\n"


def _md_escape(text: str) -> str:
    # "<" would start raw HTML in most Markdown renderers; "|" would end the cell.
    return text.replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")
