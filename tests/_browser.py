"""Headless Debian Chromium driven by Playwright, for the report and demo browser tests.

Playwright's own browser download (`playwright install`) is never used: the tests launch /usr/bin/chromium
(apt-get install chromium) with a fresh profile and every phone-home feature off, and skip when it is absent.
"""

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None,
    reason=f"{CHROMIUM} not found (Debian: apt-get install chromium); browser checks skipped",
)


@contextlib.contextmanager
def chromium_page(profile: Path, width: int = 1280, height: int = 900) -> Iterator:
    """A Playwright page in a fresh Chromium profile (`profile` is its --user-data-dir)."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="pip install playwright (no browser download)"
    )
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": width, "height": height},
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()
