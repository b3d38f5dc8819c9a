"""auralign demo without a browser: prompts per task, model specs, answering with a stand-in model."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from auralign.apps.demo import OFFLINE_DEFAULT, Models, answer, resolve_model, task_prompts
from auralign.cli import build_parser
from auralign.data.tasks import Prompts
from auralign.errors import AuralignError, ConfigError
from auralign.models.factory import SHIPPED_BASE, ModelConfig

SR = 16000


class Recorder:
    """A stand-in model: remembers what it was asked and answers with a fixed string."""

    def __init__(self) -> None:
        self.chats: list = []

    def generate(self, chats, options) -> list[str]:
        self.chats += chats
        return [f"answer {len(self.chats) - len(chats) + i}" for i in range(len(chats))]


def clip(path: Path, seconds: float, freq: float = 440.0) -> str:
    t = np.arange(int(seconds * SR)) / SR
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR)
    return str(path)


def test_task_prompts_are_the_training_prompts() -> None:
    p = Prompts()
    assert task_prompts("caption", 1) == [("<audio>" + p.ac, [0])]
    assert task_prompts("caption", 2) == [("<audio>" + p.ac, [0]), ("<audio>" + p.ac, [1])]
    assert task_prompts("commonality", 2) == [("<audio><audio>" + p.acc, [0, 1])]
    assert task_prompts("difference", 2) == [("<audio><audio>" + p.adc, [0, 1])]
    assert task_prompts("free question", 2, " Which is louder? ") == [
        ("<audio><audio>Which is louder?", [0, 1])
    ]


@pytest.mark.parametrize(
    ("task", "n", "question", "message"),
    [
        ("commonality", 1, "", "give a second one"),
        ("difference", 1, "", "give a second one"),
        ("free question", 1, "  ", "type a question"),
        ("caption", 0, "", "one or two clips"),
        ("summarise", 1, "", "unknown task"),
    ],
)
def test_task_prompts_refuse_what_cannot_be_asked(task: str, n: int, question: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        task_prompts(task, n, question)


def test_answer_sends_waveforms_and_labels_each_caption(tmp_path: Path) -> None:
    model = Recorder()
    models = Models(lambda spec, adapter: model)
    clips = [clip(tmp_path / "a.wav", 1.0), clip(tmp_path / "b.flac", 2.0, 220.0)]
    assert answer(models, clips, "caption", "", OFFLINE_DEFAULT) == "Clip 1: answer 0\nClip 2: answer 1"
    assert [len(c.audios[0]) for c in model.chats] == [SR, 2 * SR]  # 16 kHz arrays, not the temp paths
    assert answer(models, [clips[0], None], "caption", "", "") == "answer 2"
    assert answer(models, clips, "difference", "", OFFLINE_DEFAULT) == "answer 3"
    assert model.chats[-1].messages == [{"role": "user", "content": "<audio><audio>" + Prompts().adc}]


def test_answer_cuts_long_clips_and_says_so(tmp_path: Path) -> None:
    model = Recorder()
    out = answer(
        Models(lambda s, a: model), [clip(tmp_path / "long.wav", 31.0)], "caption", "", OFFLINE_DEFAULT
    )
    assert out == "answer 0\n(clip 1: only its first 30 s were heard)"
    assert len(model.chats[0].audios[0]) == 30 * SR


def test_models_loads_once_per_spec() -> None:
    calls = []
    models = Models(lambda spec, adapter: calls.append((spec, adapter)) or object())
    first = models.get("", None)
    assert models.get(OFFLINE_DEFAULT, None) is first
    models.get("/some/model", None)
    assert calls == [(OFFLINE_DEFAULT, None), ("/some/model", None)]


def test_resolve_model_specs(tmp_path: Path) -> None:
    shipped = SHIPPED_BASE if (SHIPPED_BASE / "adapter_config.json").is_file() else None
    assert resolve_model(OFFLINE_DEFAULT) == (ModelConfig(), shipped)  # the shipped base model
    assert resolve_model(OFFLINE_DEFAULT, tmp_path) == (ModelConfig(), tmp_path)
    config = tmp_path / "exp.yaml"
    config.write_text("output_dir: x\nmodel: {backend: composed, path: /models/lm, dtype: float32}\n")
    assert resolve_model(str(config))[0] == ModelConfig(path="/models/lm", dtype="float32")
    # an `auralign train` output folder, and one of its stage adapters
    run = tmp_path / "run"
    (run / "stages" / "ac" / "adapter").mkdir(parents=True)
    (run / "adapter").mkdir()
    for adapter in (run / "adapter", run / "stages" / "ac" / "adapter"):
        (adapter / "adapter_config.json").write_text("{}")
    (run / "config.json").write_text(json.dumps({"model": {"path": "/models/lm"}, "stages": []}))
    assert resolve_model(str(run)) == (ModelConfig(path="/models/lm"), run / "adapter")
    stage = run / "stages" / "ac" / "adapter"
    assert resolve_model(str(stage)) == (ModelConfig(path="/models/lm"), stage)
    # a Qwen2-Audio checkpoint folder is told from a plain causal LM by its config.json
    qwen = tmp_path / "qwen"
    qwen.mkdir()
    (qwen / "config.json").write_text(json.dumps({"model_type": "qwen2_audio"}))
    assert resolve_model(str(qwen))[0] == ModelConfig(backend="qwen2audio", path=str(qwen))


def test_resolve_model_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere.*no such file"):
        resolve_model(str(tmp_path / "nowhere"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {backend: nope}\n")
    with pytest.raises(ConfigError, match=r"(?s)bad\.yaml \(model:\).*backend"):
        resolve_model(str(bad))
    (tmp_path / "plain.yaml").write_text("seed: 1\n")
    with pytest.raises(AuralignError, match="no model: section"):
        resolve_model(str(tmp_path / "plain.yaml"))


def test_demo_verb_defaults_to_localhost() -> None:
    args = build_parser().parse_args(["demo"])
    assert (args.host, args.port, args.model, args.adapter) == ("127.0.0.1", 7860, OFFLINE_DEFAULT, None)
