"""auralign report: tables, figures, embedded audio and the errors of a broken run folder.

The run folder is a TEST FIXTURE with invented numbers (tests/_report_fixture.py), built to the contract in
docs/report.md.
"""

import base64
import io
import json
import re
from pathlib import Path

import pytest
import soundfile as sf

from _report_fixture import make_run
from auralign.cli import main
from auralign.errors import DataError
from auralign.report import write_report
from auralign.report.results import Abilities, AbilityRow, Captioning, CaptionRow
from auralign.report.tables import abilities_table, captioning_table, markdown

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
