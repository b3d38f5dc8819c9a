"""auralign demo end to end in a browser: Playwright drives headless Debian Chromium against the Gradio page.

The model is the REAL offline default (packaged SmolLM2-135M + YAMNet with the shipped base adapter, loaded
through `auralign.apps.demo.load_model`); it needs no network and answers in ~15-30 s on 2 CPU cores with 16 new
tokens. The answer's content is not checked (the base model never learned commonality): the check is that two uploaded clips go
through the page, the server and the model and come back as a non-empty answer, that a mistake (one clip for
"difference") is explained on the page, and that the page asks nothing of any host but 127.0.0.1.
"""

import socket
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from _browser import chromium_page, needs_chromium
from auralign.models.base import GenerationOptions

SR = 16000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tone(path: Path, freq: float, seconds: float = 2.0) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR)
    return path


@needs_chromium
@pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")  # gradio vs pandas 3 deprecations
def test_two_clips_commonality_gives_an_answer(tmp_path: Path) -> None:
    pytest.importorskip("gradio", reason="pip install gradio")
    from auralign.apps.demo import build_app, launch, load_model

    loads: list[str] = []

    def loader(spec: str, adapter: Path | None):
        loads.append(spec)
        return load_model(spec, adapter)

    app = build_app(loader=loader, options=GenerationOptions(max_new_tokens=16))
    port = free_port()
    launch(app, port=port, block=False)
    hosts: set[str] = set()
    try:
        with chromium_page(tmp_path / "profile") as page:
            page.on("request", lambda r: hosts.add(r.url.split("/")[2]) if "://" in r.url else None)
            page.goto(f"http://127.0.0.1:{port}/")
            page.locator("#clip1 input[type=file]").set_input_files(str(tone(tmp_path / "a.wav", 330.0)))
            # A mistake is explained on the page (before any model is loaded) ...
            page.get_by_label("difference").check()
            page.locator("#answer-button").click()
            page.get_by_text("difference compares two clips: give a second one").first.wait_for(
                timeout=20_000
            )
            # ... and two clips get an answer.
            page.locator("#clip2 input[type=file]").set_input_files(str(tone(tmp_path / "b.wav", 550.0)))
            page.get_by_label("commonality").check()
            page.locator("#answer-button").click()
            page.wait_for_function(
                "document.querySelector('#answer textarea').value.trim().length > 0", timeout=120_000
            )
            text = page.locator("#answer textarea").input_value()
    finally:
        app.close()
    assert text.strip() and "error" not in text.lower(), text
    assert loads == ["offline default"]
    assert hosts == {f"127.0.0.1:{port}"}, f"the page reached other hosts: {hosts}"
