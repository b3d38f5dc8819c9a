"""The report as a person sees it: headless Debian Chromium loads index.html from a file:// URL, with no
network, and the tables, figures and audio players are there and work.

The run folder is a TEST FIXTURE with invented numbers (tests/_report_fixture.py).
"""

from pathlib import Path

from _browser import chromium_page, needs_chromium
from _report_fixture import make_run
from auralign.report import write_report


@needs_chromium
def test_report_renders_in_chromium(tmp_path: Path) -> None:
    html, _ = write_report(make_run(tmp_path / "run"))
    with chromium_page(tmp_path / "profile") as page:
        failed: list[str] = []
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.goto(html.as_uri(), wait_until="load")

        captions = page.locator("#captioning table")
        assert captions.locator("thead th").all_inner_texts()[:3] == ["Configuration", "BLEU-1", "BLEU-2"]
        assert captions.locator("tbody tr").count() == 6
        assert captions.locator("b").count() >= 7  # AC+ACC is best on every available metric in the fixture
        abilities = page.locator("#abilities table")
        assert "voice_type (VSC, n=24)" in abilities.locator("thead").inner_text()
        assert "79.2 (+4.2)" in abilities.inner_text()

        # Both figures decoded from their data URIs and drawn at a real size.
        sizes = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
        assert len(sizes) == 2 and all(done and width > 300 for done, width in sizes), sizes

        # Every clip plays: Chromium decodes the embedded FLAC and knows its duration.
        page.wait_for_function(
            "[...document.querySelectorAll('audio')].every(a => a.readyState >= 1)", timeout=10_000
        )
        durations = page.eval_on_selector_all("audio", "els => els.map(e => e.duration)")
        assert [round(d) for d in durations] == [4, 4, 10]
        assert page.locator("#examples tbody tr").count() == 3
        assert not failed, f"requests failed: {failed}"
