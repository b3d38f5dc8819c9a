"""auralign report: tables, figures, embedded audio and the errors of a broken run folder.

The run folder is a TEST FIXTURE with invented numbers (tests/_report_fixture.py), built to the contract in
docs/report.md.
"""

import base64
import io
import json
import math
import re
from pathlib import Path

import pytest
import soundfile as sf

from _report_fixture import make_run
from auralign.cli import main
from auralign.errors import DataError
from auralign.report import plots, write_report
from auralign.report.results import Abilities, AbilityRow, Captioning, CaptionRow, Dali, DaliRow, Difference
from auralign.report.tables import (
    abilities_table,
    captioning_table,
    dali_table,
    differences_table,
    logprob_table,
    markdown,
)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    run = make_run(tmp_path_factory.mktemp("run"))
    html, md = write_report(run)
    return run, html, md


def _column(table, name: str) -> list:
    i = table.header.index(name)
    return [row[i] for row in table.rows]


def test_files_are_written_beside_each_other(report) -> None:
    run, html, md = report
    assert html == run / "report" / "index.html" and md == run / "report" / "report.md"
    for png in ("loss.png", "abilities.png"):
        assert (run / "report" / png).read_bytes().startswith(PNG)
    assert "![training loss per configuration](loss.png)" in md.read_text()


def test_html_is_self_contained_and_small(report) -> None:
    _, html, _ = report
    page = html.read_text()
    assert html.stat().st_size < 10_000_000
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "external asset in the page"
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2 and all(base64.b64decode(b).startswith(PNG) for b in images)


def test_small_audio_embedded_as_is_and_long_audio_cut(report) -> None:
    run, html, _ = report
    uris = re.findall(r'<audio [^>]*src="data:(audio/[a-z]+);base64,([^"]+)"', html.read_text())
    assert [mime for mime, _ in uris] == ["audio/flac"] * 3
    assert base64.b64decode(uris[0][1]) == (run / "audio" / "test-scene-000.flac").read_bytes()
    long_clip = sf.info(io.BytesIO(base64.b64decode(uris[2][1])))
    assert long_clip.duration == pytest.approx(10.0) and long_clip.samplerate == 16000
    assert "first 10 s of 30.0 s" in html.read_text()


def test_captioning_table_bold_best_and_na_never_zero() -> None:
    cap = Captioning(
        dataset="mini test",
        n_samples=3,
        rows=[
            CaptionRow(config="base", metrics={"bleu_1": 0.5, "spice": None, "fer": 0.1, "vocab": 40.0}),
            CaptionRow(config="AC", metrics={"bleu_1": 0.7, "spice": None, "fer": 0.3, "vocab": 90.0}),
            CaptionRow(config="ACC", metrics={"bleu_1": 0.7001, "fer": 0.05}),
        ],
    )
    table = captioning_table(cap)
    assert table.header == ["Configuration", "BLEU-1", "SPICE", "FER", "Vocab"]
    # 0.7 and 0.7001 print the same: both bold
    assert [(c.text, c.bold) for c in _column(table, "BLEU-1")] == [
        ("0.500", False),
        ("0.700", True),
        ("0.700", True),
    ]
    assert [c.text for c in _column(table, "SPICE")] == ["n/a"] * 3 and not any(
        c.bold for c in _column(table, "SPICE")
    )
    assert [c.bold for c in _column(table, "FER")] == [False, False, True]  # lower is better
    assert [(c.text, c.bold) for c in _column(table, "Vocab")] == [
        ("40", False),
        ("90", False),
        ("n/a", False),
    ]


def test_abilities_table_change_from_base() -> None:
    ab = Abilities(
        tasks=["voice_type", "rhythm"],
        mirrors={"voice_type": "VSC", "rhythm": "MGC"},
        n_samples={"voice_type": 24, "rhythm": 32},
        rows=[
            AbilityRow(config="base", accuracy={"voice_type": 0.75, "rhythm": 0.5}),
            AbilityRow(config="ACC", accuracy={"voice_type": 0.7917, "rhythm": 0.4375}),
            AbilityRow(config="ADC", accuracy={"voice_type": None, "rhythm": 0.5}),
        ],
    )
    table = abilities_table(ab)
    assert table.header == ["Configuration", "voice_type (VSC, n=24)", "rhythm (MGC, n=32)", "mean"]
    texts = [[c.text for c in row] for row in table.rows]
    assert texts[0] == ["base", "75.0", "50.0", "62.5"]
    assert texts[1] == ["ACC", "79.2 (+4.2)", "43.8 (-6.2)", "61.5 (-1.0)"]
    assert texts[2] == ["ADC", "n/a", "50.0 (+0.0)", "n/a"]
    assert [c.tone for c in table.rows[1][1:]] == ["up", "down", "down"]


def test_markdown_tables(report) -> None:
    _, _, md = report
    text = md.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| AC+ACC | **"))
    assert "**0.741**" in row and row.count("n/a") == 2  # SPICE and SPIDEr unavailable in the fixture
    assert "| ACC | 79.2 (+4.2) |" in text
    assert "ticks &lt;loudly&gt;" not in text and "ticks &lt;loudly> &" in text  # no raw HTML from captions
    assert "[test-scene-000](../audio/test-scene-000.flac)" in text
    assert markdown(captioning_table(Captioning(rows=[]))).startswith("**Table 2.")


def test_html_escapes_captions(report) -> None:
    _, html, _ = report
    assert "ticks &lt;loudly&gt; &amp; steadily" in html.read_text()


def test_minimal_results_render(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps({"title": "partial run", "seed": 3}))
    html, md = write_report(tmp_path)
    page = html.read_text()
    assert "partial run" in page and "seed 3" in page and "<table" not in page and "<img" not in page
    assert md.read_text().startswith("# partial run")


def _broken(tmp_path: Path, edit) -> Path:
    run = make_run(tmp_path / "run")
    data = json.loads((run / "results.json").read_text())
    edit(run, data)
    (run / "results.json").write_text(json.dumps(data))
    return run


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda run, d: d["abilities"]["rows"][1]["accuracy"].update(rhythm=62.5),
            r"abilities\.rows\.1\.accuracy",
        ),
        (lambda run, d: d["captioning"]["rows"][0].pop("config"), r"captioning\.rows\.0\.config"),
        (
            lambda run, d: (run / "train" / "ACC" / "log.jsonl").unlink(),
            r"train/ACC/log\.jsonl: training log",
        ),
        (
            lambda run, d: (run / "train" / "AC" / "log.jsonl").write_text(
                '{"step": 0, "loss": 1}\n{"step": 1,\n'
            ),
            r"train/AC/log\.jsonl:2: broken JSON",
        ),
        (
            lambda run, d: (run / "train" / "AC" / "log.jsonl").write_text('{"step": 0, "loss": "high"}\n'),
            r"train/AC/log\.jsonl: line 1: 'loss' must be a number",
        ),
        (
            lambda run, d: (run / "audio" / "test-scene-001.flac").unlink(),
            r"audio/test-scene-001\.flac: audio",
        ),
        (
            lambda run, d: (run / "audio" / "test-scene-002.wav").write_bytes(b"RIFF" + bytes(2_000_000)),
            r"test-scene-002\.wav: cannot decode",
        ),
    ],
)
def test_broken_run_folder_names_the_file(tmp_path: Path, edit, message: str) -> None:
    run = _broken(tmp_path, edit)
    with pytest.raises(DataError, match=message):
        write_report(run)
    assert not (run / "report").exists()  # nothing written from a broken run folder


def test_missing_or_malformed_results_json(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"results\.json: not found"):
        write_report(tmp_path)
    (tmp_path / "results.json").write_text('{"title": "x",\n "seed": }')
    with pytest.raises(DataError, match=r"results\.json: line 2, column 10: malformed JSON"):
        write_report(tmp_path)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = make_run(tmp_path / "run")
    assert main(["report", str(run), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "index.html").exists() and "index.html" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "nowhere/results.json: not found" in capsys.readouterr().err


def test_environment_block_is_plain_strings() -> None:
    from auralign.report import environment

    env = environment()
    assert {"python", "torch", "transformers", "platform", "cpu", "gpu"} <= env.keys()
    assert env["torch"].startswith("2.") and all(isinstance(v, str) for v in env.values())
    json.dumps(env)


# ---------------------------------------------------------------- the full preset's keys

GOLDEN = Path(__file__).parent / "report_golden" / "fixture_with_dali_v1.md"


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    run = make_run(tmp_path_factory.mktemp("full"), dali=True, full=True)
    html, md = write_report(run)
    return run, html.read_text(), md.read_text()


def test_an_old_results_json_renders_the_markdown_it_rendered_before(tmp_path: Path) -> None:
    """The fixture without the new keys gives byte for byte the Markdown captured before they existed."""
    run = make_run(tmp_path / "run", dali=True)
    html, md = write_report(run)
    assert md.read_bytes() == GOLDEN.read_bytes()
    page = html.read_text()
    assert 'class="preset"' not in page and 'id="claims"' not in page and "verdict-" not in page
    assert sorted(p.name for p in (run / "report").glob("*.png")) == [
        "abilities.png",
        "dali_loss.png",
        "dali_pca.png",
        "loss.png",
    ]


def test_interval_cells_read_mean_then_bracketed_interval_and_bold_stays_on_the_mean() -> None:
    cap = Captioning(
        rows=[
            CaptionRow(
                config="AC",
                metrics={"cider_d": 0.6551, "spice": None, "vocab": 45.0},
                intervals={"cider_d": [0.6124, 0.7013], "spice": [0.1, 0.2], "vocab": [40.0, 50.0]},
            ),
            # a lower mean with a wider interval: bold goes by the mean, not the upper bound
            CaptionRow(
                config="ADC", metrics={"cider_d": 0.4, "spice": None}, intervals={"cider_d": [0.1, 0.9]}
            ),
            CaptionRow(config="base", metrics={"cider_d": 0.2}),  # no interval: the plain mean
        ]
    )
    table = captioning_table(cap)
    assert [(c.shown, c.bold) for c in _column(table, "CIDEr-D")] == [
        ("0.655 [0.612, 0.701]", True),
        ("0.400 [0.100, 0.900]", False),
        ("0.200", False),
    ]
    assert [c.shown for c in _column(table, "SPICE")] == ["n/a"] * 3  # no mean: no interval either
    assert _column(table, "Vocab")[0].shown == "45 [40, 50]"
    # bold marks the mean alone, in both renderings
    assert "| AC | **0.655** [0.612, 0.701] | n/a | 45 [40, 50] |" in markdown(table)
    assert table.notes[-1].startswith("With an interval: the mean, then its 95 % confidence interval")
    assert not any("interval" in n for n in captioning_table(Captioning(rows=cap.rows[2:])).notes)


def test_ability_intervals_and_the_logprob_block() -> None:
    ab = Abilities(
        tasks=["voice_type", "rhythm"],
        rows=[
            AbilityRow(
                config="base",
                accuracy={"voice_type": 0.75, "rhythm": 0.5},
                intervals={"voice_type": [0.625, 0.875]},
                logprob={"voice_type": -0.5, "rhythm": -1.25},
            ),
            AbilityRow(
                config="ACC",
                accuracy={"voice_type": 0.7917, "rhythm": 0.4375},
                intervals={"voice_type": [0.7083, 0.875], "rhythm": [0.3125, 0.5625]},
                logprob={"voice_type": -0.4121, "rhythm": -1.3},
                logprob_intervals={"voice_type": [-0.4552, -0.3804]},
            ),
        ],
    )
    texts = [[c.text for c in row] for row in abilities_table(ab).rows]
    assert texts[0] == ["base", "75.0 [62.5, 87.5]", "50.0", "62.5"]
    assert texts[1] == ["ACC", "79.2 [70.8, 87.5] (+4.2)", "43.8 [31.2, 56.2] (-6.2)", "61.5 (-1.0)"]
    lp = logprob_table(ab)
    assert lp is not None and lp.title.startswith("Table 3b.")
    assert [[c.text for c in row] for row in lp.rows] == [
        ["base", "-0.500", "-1.250", "-0.875"],
        ["ACC", "-0.412 [-0.455, -0.380] (+0.088)", "-1.300 (-0.050)", "-0.856 (+0.019)"],
    ]
    assert [c.tone for c in lp.rows[1][1:]] == ["up", "down", "up"]
    for without in ({}, {"t": None}):  # no log-probs, or only nulls (an evaluation made before them)
        row = AbilityRow(config="base", accuracy={"t": 0.5}, logprob=without)
        assert logprob_table(Abilities(tasks=["t"], rows=[row])) is None


def test_claims_and_key_differences_come_first(full_report) -> None:
    _, page, md = full_report
    assert page.index('id="claims"') < page.index('id="differences"') < page.index('id="captioning"')
    assert md.index("## Claims") < md.index("## Key differences") < md.index("## Captioning")
    assert "| A2 | ACC captions single clips at least as well as AC | CIDEr-D | ACC - AC | " in md
    assert "| 0.047 [-0.021, 0.114] | inconclusive | **inconclusive** |" in md
    assert "|  |  |  | AC+ACC - AC | 0.086 [0.012, 0.158] | reproduced |  |" in md  # spanned in the HTML
    assert (
        "| D1 | DALI's SPICE improves with attentive OT | SPICE | none | n/a |  | **not tested (no SPICE scores)** |"
        in md
    )
    # a verdict with its reason is coloured by its first word; the validity checks follow the claims
    assert '<td class="verdict-inconclusive"><b>inconclusive (check V2 failed)</b></td>' in page
    assert '<td class="verdict-not-tested"><b>not tested (no SPICE scores)</b></td>' in page
    assert (
        md.index("**Claims and their verdicts**")
        < md.index("**Validity checks**")
        < md.index("## Key differences")
    )
    assert (
        "| V2 | the base answers the ability tasks above chance | voice_type accuracy | base in [0.3, 1] | 0.250 [0.130, 0.380] | failed | **failed** |"
        in md
    )
    assert '<td rowspan="2" class="verdict-reproduced"><b>passed</b></td>' in page
    assert "<td>CIDEr-D</td><td>AC - base</td>" in page  # a measure's metric key shown as its column name
    assert "| ACC - ADC (abilities, mean accuracy) | pp | 8.300 [3.100, 13.900] |" in md
    assert "<td><b>0.741</b> [0.617, 0.915]</td>" in page  # AC+ACC's CIDEr-D: bold on the mean
    # coloured verdicts, and A2's own cells span its two comparisons
    assert '<td rowspan="2" class="verdict-inconclusive"><b>inconclusive</b></td>' in page
    assert '<td class="verdict-contradicted"><b>contradicted</b></td>' in page
    assert '<td class="verdict-reproduced">reproduced</td>' in page
    assert '<td rowspan="2">A2</td>' in page and page.count("<td>A1</td>") == 1
    assert "Rule (A1, A2, A3): reproduced if every comparison" in md


def test_a_difference_without_a_finite_value_is_na() -> None:
    rows = differences_table(
        [
            Difference(name="a", mean=math.nan, low=0.1, high=0.2),
            Difference(name="b", mean=0.5, low=math.nan, high=0.7),
            Difference(name="c", mean=0.5),
        ]
    ).rows
    assert [r[2].text for r in rows] == ["n/a", "0.500", "0.500"]


def test_the_preset_is_said_first(full_report, tmp_path: Path) -> None:
    _, page, md = full_report
    full = "This is a full run (3 seeds per configuration, 95 % confidence intervals): it tests the claims listed first."
    assert md.splitlines()[4] == full and f'<p class="preset">{full}</p>' in page
    assert "3 seeds (0, 1, 2)" in md.splitlines()[2]
    (tmp_path / "results.json").write_text(
        json.dumps({"title": "t", "seed": 0, "preset": "quick", "seeds": [0]})
    )
    html, md_path = write_report(tmp_path)
    quick = "This is a quick run: it demonstrates the pipeline and tests no claim of the paper (one seed, small test sets)."
    assert md_path.read_text().splitlines()[2:5] == ["1 seed (0)", "", quick]
    assert quick in html.read_text()


def test_event_columns_and_dali_baselines_below_the_image_captioner() -> None:
    dali = Dali(
        rows=[
            DaliRow(
                method="MMD", input="audio", metrics={"cider_d": 0.02, "event_f1": 0.3, "event_recall": 0.4}
            ),
            DaliRow(
                method="image captioner", input="image", metrics={"cider_d": 0.09, "event_precision": 0.5}
            ),
        ],
        baselines=[
            DaliRow(
                method="prior caption",
                input="none",
                metrics={"cider_d": 0.1},
                intervals={"cider_d": [0.05, 0.12]},
            )
        ],
    )
    table = dali_table(dali)
    assert table.header == ["Method", "Input", "CIDEr-D", "event R", "event P", "event F1"]
    assert [[c.shown for c in row[:3]] for row in table.rows] == [
        ["MMD", "audio", "0.020"],
        ["image captioner", "image", "0.090"],
        ["prior caption", "none", "0.100 [0.050, 0.120]"],
    ]
    assert [c.bold for c in _column(table, "CIDEr-D")] == [False, False, True]  # ranked with the others
    assert any(n.startswith("event R / P / F1") for n in table.notes)
    assert table.notes[-1].startswith("Input none: a baseline that does not hear the clip")


def _drawn_error_bars(monkeypatch: pytest.MonkeyPatch, draw) -> tuple[bytes, list[tuple[float, float]]]:
    """The PNG a chart function returns and the (low, high) of every error bar on its figure."""
    seen = []
    real = plots._png
    monkeypatch.setattr(plots, "_png", lambda fig: seen.append(fig) or real(fig))
    png = draw()
    (ax,) = seen[0].axes
    bars = [
        (float(min(seg[:, 1])), float(max(seg[:, 1])))
        for coll in ax.collections
        for seg in coll.get_segments()
        if seg[0, 0] == seg[1, 0]  # vertical: the interval, not the caps
    ]
    return png, bars


def test_charts_draw_the_intervals_as_error_bars(monkeypatch: pytest.MonkeyPatch) -> None:
    def captioning(high: float) -> Captioning:
        return Captioning(
            rows=[
                CaptionRow(
                    config="AC", metrics={"cider_d": 0.6, "bleu_1": 0.5}, intervals={"cider_d": [0.5, high]}
                ),
                CaptionRow(config="ACC", metrics={"cider_d": 0.7}, intervals={"cider_d": [0.62, 0.81]}),
            ]
        )

    png, bars = _drawn_error_bars(monkeypatch, lambda: plots.captioning_bars(captioning(0.75), {}))
    assert png.startswith(PNG) and bars == [(0.5, 0.75), (0.62, 0.81)]
    assert plots.captioning_bars(captioning(0.9), {}) != png  # another interval, another picture
    assert (
        plots.captioning_bars(Captioning(rows=[CaptionRow(config="AC", metrics={"cider_d": 0.6})]), {})
        is None
    )

    ab = Abilities(
        tasks=["t"],
        rows=[
            AbilityRow(config="base", accuracy={"t": 0.5}),
            AbilityRow(config="ACC", accuracy={"t": 0.6}, intervals={"t": [0.45, 0.7]}),
        ],
    )
    png, bars = _drawn_error_bars(monkeypatch, lambda: plots.ability_changes(ab, {}))
    assert png.startswith(PNG) and bars == [pytest.approx((-5.0, 20.0))]  # pp from the base's mean
    ab.rows[1].intervals = {}
    assert plots.ability_changes(ab, {}) != png


def test_full_report_embeds_every_chart(full_report) -> None:
    run, page, md = full_report
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 6 and all(base64.b64decode(b).startswith(PNG) for b in images)
    for name in ("captioning", "dali_metric"):
        assert (run / "report" / f"{name}.png").read_bytes().startswith(PNG)
        assert f"]({name}.png)" in md
    assert md.index("](captioning.png)") < md.index("## General abilities")
    assert "**Table 3b. General abilities: log-probability of the correct answer**" in md


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["captioning"]["rows"][0]["intervals"].update(cider_d=[0.3, 0.1]),
            r"captioning\.rows\.0\.intervals\.cider_d.*low > high",
        ),
        (
            lambda d: d["abilities"]["rows"][1]["intervals"].update(rhythm=[50.0, 62.5]),
            r"abilities\.rows\.1\.intervals.*'rhythm' is \[50\.0, 62\.5\], expected a fraction",
        ),
        (
            lambda d: d["claims"][0].update(verdict="confirmed"),
            r"claims\.0\.verdict.*'confirmed': expected one of",
        ),
        (lambda d: d["claims"][0].update(verdict="reproducedish"), r"claims\.0\.verdict"),
        (lambda d: d["checks"][0]["parts"][0].pop("name"), r"checks\.0\.parts\.0\.name"),
        (
            lambda d: d["claims"][0]["comparisons"][0].update(low=13.9, high=3.1),
            r"claims\.0\.comparisons\.0: .*'ACC - ADC': low 13\.9 > high 3\.1",
        ),
        (lambda d: d.update(preset="medium"), r"preset"),
        (lambda d: d["differences"][0].pop("name"), r"differences\.0\.name"),
    ],
)
def test_a_broken_full_preset_key_names_the_key(tmp_path: Path, edit, message: str) -> None:
    run = make_run(tmp_path / "run", full=True)
    data = json.loads((run / "results.json").read_text())
    edit(data)
    (run / "results.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match=message):
        write_report(run)


def test_claim_measures_read_as_words() -> None:
    from auralign.report.tables import _measure

    assert _measure("cider_d") == "CIDEr-D"
    assert _measure("ability_accuracy") == "ability accuracy (all items)"
    assert _measure("accuracy:rhythm") == "rhythm accuracy"
    assert _measure("own:ADC test") == "CIDEr-D on ADC test"
    assert _measure("something_new") == "something_new"
