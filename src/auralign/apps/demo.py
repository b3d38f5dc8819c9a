"""`auralign demo`: a local web page to try a model by ear.

Upload or record one or two clips, pick a task (caption, commonality, difference, or a free question), pick
a model (the offline default, or a path) and read the answer. The prompts are the training prompts
(`auralign.data.tasks.Prompts`), so a model fine-tuned on AC / ADC / ACC answers the question it learned.

The page is Gradio, bound to 127.0.0.1 by default, with Gradio's analytics off, no share link, and the
system font (Gradio's default theme would fetch Google Fonts).
"""

import argparse
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from auralign.errors import AuralignError, ConfigError

log = logging.getLogger(__name__)

OFFLINE_DEFAULT = "offline default"
TASKS = ("caption", "commonality", "difference", "free question")
MAX_SECONDS = 30.0  # the models' audio window; longer clips keep their first 30 s (said in the answer)
MODEL_HELP = (
    "'offline default' (packaged SmolLM2-135M + YAMNet with the shipped base projector + LoRA) or a path: a config YAML with a "
    "model: section, an `auralign train` output folder, a PEFT adapter folder, or a model folder"
)

#: (model spec, adapter path or None) -> something with `generate(chats, options) -> list[str]`
Loader = Callable[[str, Path | None], Any]


# --- what to ask -------------------------------------------------------------------------------------------


def task_prompts(task: str, n_audios: int, question: str = "") -> list[tuple[str, list[int]]]:
    """The user turns to send, each with the indices of the clips it hears: one turn, or one per clip.

    caption: each clip is captioned on its own (the AC prompt takes one audio); commonality / difference:
    the ACC / ADC prompt over both clips, first = original; free question: the question over every clip.
    """
    from auralign.data.manifest import AUDIO_TAG
    from auralign.data.tasks import Prompts

    prompts = Prompts()
    if n_audios not in (1, 2):
        raise ConfigError("give one or two clips")
    if task == "caption":
        return [(AUDIO_TAG + prompts.ac, [i]) for i in range(n_audios)]
    if task in ("commonality", "difference"):
        if n_audios != 2:
            raise ConfigError(f"{task} compares two clips: give a second one")
        return [(2 * AUDIO_TAG + (prompts.acc if task == "commonality" else prompts.adc), [0, 1])]
    if task == "free question":
        if not question.strip():
            raise ConfigError("free question: type a question")
        return [(n_audios * AUDIO_TAG + question.strip(), list(range(n_audios)))]
    raise ConfigError(f"unknown task {task!r} (one of: {', '.join(TASKS)})")


# --- which model --------------------------------------------------------------------------------------------


def resolve_model(spec: str, adapter: Path | None = None) -> tuple[Any, Path | None]:
    """(ModelConfig, adapter folder or None) for a model spec, without loading anything.

    - "offline default" (or empty): the composed default, SmolLM2 + YAMNet, with the shipped base adapter
      (quickstart's base model: captions and the four ability tasks) unless another adapter is given;
    - a YAML file: its `model:` section (a train/experiment config);
    - an `auralign train` output folder (config.json + adapter/): its model and its final adapter;
    - a PEFT adapter folder (adapter_config.json): the model of the training run it sits in, else the default;
    - any other folder: the checkpoint of the backend whose table entry claims its config.json `model_type`
      (Qwen2-Audio), else a causal LM for the composed backend.
    """
    from auralign.models.factory import SHIPPED_BASE, ModelConfig, backend_for_folder

    spec = spec.strip()
    if spec in ("", OFFLINE_DEFAULT, "smollm2"):
        shipped = SHIPPED_BASE if (SHIPPED_BASE / "adapter_config.json").is_file() else None
        return ModelConfig(), adapter or shipped
    path = Path(spec).expanduser()
    if not path.exists():
        raise ConfigError(f"model {spec!r}: no such file or folder ({MODEL_HELP})")
    if path.is_file():
        return _config_model(path), adapter
    if (path / "adapter_config.json").exists():
        run = _training_run(path)
        return (_train_model(run / "config.json") if run else ModelConfig()), adapter or path
    if (path / "config.json").exists() and (path / "adapter" / "adapter_config.json").exists():
        return _train_model(path / "config.json"), adapter or path / "adapter"
    return ModelConfig(backend=backend_for_folder(path), path=str(path)), adapter


def _training_run(adapter: Path) -> Path | None:
    """The `auralign train` output folder an adapter sits in: OUT/adapter, OUT/ckpt-N/adapter, OUT/stages/S/adapter."""
    import json

    for folder in list(adapter.resolve().parents)[:3]:
        try:
            data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "model" in data and "stages" in data:
            return folder
    return None


def _config_model(path: Path) -> Any:
    from auralign.config import read_yaml, validate
    from auralign.models.factory import ModelConfig

    data = read_yaml(path)
    if not isinstance(data, dict) or "model" not in data:
        raise ConfigError(f"{path}: no model: section (expected a train or experiment config)")
    return validate(data["model"], ModelConfig, source=f"{path} (model:)")


def _train_model(path: Path) -> Any:
    """The model section of an `auralign train` output folder's config.json."""
    import json

    from auralign.config import validate
    from auralign.models.factory import ModelConfig

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the training config: {exc}") from None
    return validate(data.get("model", {}) if isinstance(data, dict) else data, ModelConfig, source=str(path))


def load_model(spec: str, adapter: Path | None = None) -> Any:
    """The real loader: build the backend (GPU if there is one) and attach the adapter."""
    from auralign.models.factory import build_with_adapter

    cfg, adapter = resolve_model(spec, adapter)
    # seeded: an untrained projector is the same random one each time, so the page answers the same way
    return build_with_adapter(cfg, adapter, seed=0).eval()


class Models:
    """Keeps the last model loaded (one at a time: two 7B models would not fit next to each other)."""

    def __init__(self, loader: Loader) -> None:
        self.loader = loader
        self.key: tuple[str, Path | None] | None = None
        self.model: Any = None

    def get(self, spec: str, adapter: Path | None) -> Any:
        key = (spec.strip() or OFFLINE_DEFAULT, adapter)
        if key != self.key:
            self.model = None  # free the old one before loading the new one
            log.info("demo: loading %s%s", key[0], f" + adapter {adapter}" if adapter else "")
            self.model, self.key = self.loader(*key), key
        return self.model


# --- answering ----------------------------------------------------------------------------------------------


def answer(
    models: Models,
    clips: list[str | None],
    task: str,
    question: str,
    model: str,
    adapter: Path | None = None,
    options: Any = None,
) -> str:
    """The model's answer to `task` over the given clips (file paths); a user mistake is an AuralignError."""
    import warnings

    import torch

    from auralign.audio import load_audio
    from auralign.models.base import Chat, GenerationOptions

    paths = [Path(c) for c in clips if c]
    turns = task_prompts(task, len(paths), question)
    waves, notes = [], []
    for i, path in enumerate(paths, 1):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            waves.append(load_audio(path, sr=16000, max_seconds=MAX_SECONDS, on_too_long="truncate"))
        if any("truncated" in str(w.message) for w in caught):
            notes.append(f"(clip {i}: only its first {MAX_SECONDS:g} s were heard)")
    # Waveforms, not paths: uploads are temp files that must not fill the training feature cache.
    chats = [
        Chat(messages=[{"role": "user", "content": text}], audios=[waves[i] for i in idx])
        for text, idx in turns
    ]
    llm = models.get(model, adapter)
    with torch.inference_mode():
        outputs = llm.generate(chats, options or GenerationOptions(max_new_tokens=64))
    texts = [o.strip() or "(the model answered with an empty string)" for o in outputs]
    body = texts[0] if len(texts) == 1 else "\n".join(f"Clip {i}: {t}" for i, t in enumerate(texts, 1))
    return "\n".join([body, *notes])


# --- the page -----------------------------------------------------------------------------------------------


def build_app(
    loader: Loader = load_model,
    model: str = OFFLINE_DEFAULT,
    adapter: Path | None = None,
    options: Any = None,
) -> Any:
    """The Gradio Blocks page; `loader` is replaceable (tests, other backends)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no usage pings
    import gradio as gr

    models = Models(loader)
    choices = [OFFLINE_DEFAULT] + ([model] if model != OFFLINE_DEFAULT else [])

    def respond(clip1: str | None, clip2: str | None, task: str, question: str, spec: str) -> str:
        try:
            return answer(models, [clip1, clip2], task, question, spec or OFFLINE_DEFAULT, adapter, options)
        except AuralignError as exc:
            raise gr.Error(str(exc)) from None

    with gr.Blocks(title="auralign demo", analytics_enabled=False) as app:
        gr.Markdown(
            "## auralign demo\nUpload or record one or two clips, pick a task and a model, press Answer."
        )
        with gr.Row():
            clip1, clip2 = (
                gr.Audio(
                    sources=["upload", "microphone"],
                    type="filepath",
                    buttons=["download"],  # no "share": it would post the clip to Hugging Face Spaces
                    label=label,
                    elem_id=f"clip{i}",
                )
                for i, label in ((1, "Clip 1 (original)"), (2, "Clip 2 (optional; edited)"))
            )
        task = gr.Radio(list(TASKS), value="caption", label="Task", elem_id="task")
        question = gr.Textbox(
            label="Question (free question only)", placeholder="What is making the sound?", elem_id="question"
        )
        spec = gr.Dropdown(
            choices, value=model, allow_custom_value=True, label="Model", info=MODEL_HELP, elem_id="model"
        )
        button = gr.Button("Answer", variant="primary", elem_id="answer-button")
        out = gr.Textbox(label="Answer", lines=4, interactive=False, elem_id="answer")
        button.click(respond, [clip1, clip2, task, question, spec], out)
    return app


def launch(app: Any, host: str = "127.0.0.1", port: int = 7860, block: bool = True) -> Any:
    """Serve the page locally: no share link, no MCP server, system fonts only."""
    import gradio as gr

    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    return app.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        prevent_thread_lock=not block,
        mcp_server=False,
        ssr_mode=False,
        run_history=False,
        footer_links=["settings"],
        theme=theme,
        quiet=not block,
    )


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser("demo", help="a local web page: ask a model about one or two clips")
    p.add_argument("--model", default=OFFLINE_DEFAULT, help=MODEL_HELP)
    p.add_argument("--adapter", type=Path, help="a PEFT adapter folder to load on top of the model")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: this machine only)")
    p.add_argument("--port", type=_port, default=7860, help="TCP port, 1..65535 (default 7860)")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.set_defaults(handler=_demo)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (1..65535)")
    return port


def check_port_free(host: str, port: int) -> None:
    """ConfigError naming the address when nothing could listen there (in use, or not this machine's)."""
    import socket

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
            probe.bind((host, port))
    except OSError as exc:
        raise ConfigError(
            f"--host {host} --port {port}: cannot serve there ({exc.strerror or exc}); "
            "is another server on that port? pick another with --port"
        ) from None


def _demo(args: argparse.Namespace) -> int:
    from auralign.models.base import GenerationOptions

    if args.model != OFFLINE_DEFAULT:
        resolve_model(args.model, args.adapter)  # a typo in the path fails here, not in the browser
    if args.adapter and not (args.adapter / "adapter_config.json").exists():
        raise ConfigError(f"{args.adapter}: no adapter_config.json here (expected a PEFT adapter folder)")
    check_port_free(args.host, args.port)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("demo: serving on %s: anyone who can reach this address can use the model", args.host)
    app = build_app(
        model=args.model, adapter=args.adapter, options=GenerationOptions(max_new_tokens=args.max_new_tokens)
    )
    print(f"auralign demo on http://{args.host}:{args.port} (Ctrl+C to stop)")
    launch(app, args.host, args.port)
    return 0
