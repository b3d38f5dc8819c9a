"""The AudioLLM interface shared by every backend: chats in, a masked LM loss or generated text out.

A `Chat` is what one sample asks: chat messages whose user turns hold one `<audio>` tag per audio, and the
audios in tag order (file paths or 16 kHz waveforms). A backend turns a list of chats into a padded batch
(`collate`), scores it (`loss`: cross-entropy on assistant tokens only; `answer_logprobs`: each answer's
summed log-probability) and answers it (`generate`).

A clip longer than `WINDOW_SECONDS` follows the config's `long_audio` policy (`load_windows`), judged from
the file's header before decoding; truncating or splitting it, or generating through a part no adapter has
trained (`untrained_parts`), is said in a `ModelWarning`.
"""

import importlib.util
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from auralign.config import StrictModel
from auralign.data.manifest import AUDIO_TAG, Sample

if TYPE_CHECKING:
    from peft import PeftModel

SAMPLING_RATE = 16000
IGNORE = -100
LongAudio = Literal["error", "truncate", "split"]
#: how a loss over labelled tokens is reduced: their mean, or their sum (the caller divides)
Reduction = Literal["mean", "sum"]
#: the audio window `model.long_audio` speaks of: Qwen2-Audio's 30 s, which the composed backend follows
WINDOW_SECONDS = 30.0

#: a file path, or a 16 kHz mono waveform
Audio = str | os.PathLike | np.ndarray | torch.Tensor


@dataclass
class Chat:
    messages: list[dict[str, str]]
    audios: list[Audio] = field(default_factory=list)
    id: str = ""


def chat_from_sample(sample: Sample, base: str | os.PathLike, with_answer: bool = True) -> Chat:
    """A manifest sample as a chat; `with_answer=False` drops the final assistant turn (for generation)."""
    messages = [m.model_dump() for m in sample.messages]
    if not with_answer and messages[-1]["role"] == "assistant":
        messages = messages[:-1]
    return Chat(messages=messages, audios=[str(p) for p in sample.audio_paths(base)], id=sample.id)


class GenerationOptions(StrictModel):
    """Decoding settings, the one spelling for every generating verb and stage: greedy by default; a config
    section too (unknown keys are errors). `top_k: None` leaves the model's own default (transformers: 50),
    0 turns top-k filtering off."""

    max_new_tokens: int = Field(default=64, gt=0)
    num_beams: int = Field(default=1, gt=0)
    do_sample: bool = False
    temperature: float = Field(default=1.0, ge=0)
    top_p: float | None = 1.0
    top_k: int | None = Field(default=None, ge=0)
    seed: int = 0
    batch_size: int = Field(default=8, gt=0)

    def kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "num_beams": self.num_beams}
        if self.do_sample:
            kw.update(do_sample=True, temperature=self.temperature, top_p=self.top_p)
            if self.top_k is not None:
                kw["top_k"] = self.top_k
        else:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kw


DEFAULT_GENERATION = GenerationOptions()


def assistant_spans(render, messages: list[dict[str, Any]]) -> tuple[str, list[tuple[int, int]]]:
    """Render `messages` and find the character span of each assistant answer (its text + end token).

    `render(messages, add_generation_prompt)` is the chat template. Each span starts where the generation
    prompt of the turn ends, so the loss covers exactly what the model would have to generate.
    """
    text = render(messages, False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prefix = render(messages[:i], True)
        upto = render(messages[: i + 1], False)
        if not (text.startswith(prefix) and text.startswith(upto) and upto.startswith(prefix)):
            raise ValueError("the chat template does not render conversations as prefixes of each other")
        end = len(upto.rstrip())  # the newline after the end token belongs to the next turn
        spans.append((len(prefix), end))
    return text, spans


def labels_from_offsets(
    ids: list[int], offsets: list[tuple[int, int]], spans: list[tuple[int, int]]
) -> list[int]:
    """Token labels: the token id where the token starts inside an assistant span, IGNORE elsewhere."""
    labels = []
    for tok, (start, end) in zip(ids, offsets, strict=True):
        inside = end > start and any(a <= start < b for a, b in spans)
        labels.append(tok if inside else IGNORE)
    return labels


def masked_lm_loss(
    hidden: torch.Tensor, labels: torch.Tensor, lm_head: nn.Module, reduction: Reduction = "mean"
) -> torch.Tensor:
    """Next-token cross-entropy over labelled positions, projecting only those hidden states to the vocabulary;
    averaged over them, or summed (`reduction="sum"`, for a caller that divides by a count of its own).

    The vocabulary projection and softmax dominate a small LM's step; prompts and audio tokens carry no
    label, so skipping them saves most of that work without changing the loss.
    """
    targets = labels[:, 1:]
    keep = targets != IGNORE
    if not bool(keep.any()):
        raise ValueError("batch has no answer tokens to learn from (every assistant label is masked)")
    logits = lm_head(hidden[:, :-1][keep]).float()
    return F.cross_entropy(logits, targets[keep], reduction=reduction)


def masked_lm_logprobs(hidden: torch.Tensor, labels: torch.Tensor, lm_head: nn.Module) -> torch.Tensor:
    """Each row's summed log-probability (natural log) of its labelled next tokens: what `masked_lm_loss`
    averages over the batch, kept per sequence, from the same labelled positions only. A row without
    labels sums to 0."""
    targets = labels[:, 1:]
    keep = targets != IGNORE
    logits = lm_head(hidden[:, :-1][keep]).float()
    token = logits.log_softmax(-1).gather(-1, targets[keep][:, None])[:, 0]
    rows = keep.nonzero()[:, 0]  # row-major, the order boolean indexing took the positions in
    return token.new_zeros(len(labels)).index_add_(0, rows, token)


def split_audio_tags(content: str) -> list[str | None]:
    """Content split into text pieces and `None` where an audio goes."""
    parts: list[str | None] = []
    for i, piece in enumerate(content.split(AUDIO_TAG)):
        if i:
            parts.append(None)
        if piece:
            parts.append(piece)
    return parts


class ModelWarning(UserWarning):
    """What a model did that the user must know: an untrained part in use, a clip cut or split into windows."""


def too_long(name: str, seconds: float, max_seconds: float) -> Exception:
    """The AudioError of a clip over the window: the clip, its length, and the option that lets it in."""
    from auralign.audio import AudioError

    return AudioError(
        f"{name}: {seconds:.1f} s long, over the model's {max_seconds:g} s window "
        "(set model.long_audio, or --long-audio, to truncate or split)"
    )


def window_audio(wave: np.ndarray, max_seconds: float, policy: LongAudio, name: str) -> list[np.ndarray]:
    """Cut a waveform into windows of at most `max_seconds` as the config asks; never silently (a
    `ModelWarning` says what was done)."""
    import warnings

    limit = int(max_seconds * SAMPLING_RATE)
    if len(wave) <= limit:
        return [wave]
    seconds = len(wave) / SAMPLING_RATE
    if policy == "error":
        raise too_long(name, seconds, max_seconds)
    if policy == "truncate":
        warnings.warn(
            f"{name}: {seconds:.1f} s long; truncated to the first {max_seconds:g} s",
            ModelWarning,
            stacklevel=3,
        )
        return [wave[:limit]]
    parts = [wave[i : i + limit] for i in range(0, len(wave), limit)]
    warnings.warn(
        f"{name}: {seconds:.1f} s long; split into {len(parts)} windows of {max_seconds:g} s",
        ModelWarning,
        stacklevel=3,
    )
    return parts


def load_windows(audio: Audio, max_seconds: float, policy: LongAudio, name: str) -> list[np.ndarray]:
    """`window_audio` of a file or a waveform. A file's length is read from its header first, so a clip the
    policy refuses is never decoded, one it truncates is decoded only as far as it is kept, and one it splits
    is decoded window by window."""
    if not isinstance(audio, str | os.PathLike):
        return window_audio(load_wave(audio), max_seconds, policy, name)
    import warnings

    from auralign.audio import audio_info, load_audio, load_audio_windows

    rate, frames, _ = audio_info(audio)
    seconds = frames / rate
    if seconds <= max_seconds:
        return [load_wave(audio)]
    if policy == "error":
        raise too_long(name, seconds, max_seconds)
    if policy == "truncate":
        # load_audio cuts before decoding and says so (an AudioWarning naming the file)
        return [load_audio(audio, sr=SAMPLING_RATE, max_seconds=max_seconds, on_too_long="truncate")]
    parts = list(load_audio_windows(audio, max_seconds, sr=SAMPLING_RATE))
    warnings.warn(
        f"{name}: {seconds:.1f} s long; split into {len(parts)} windows of {max_seconds:g} s",
        ModelWarning,
        stacklevel=2,
    )
    return parts


def cache_root() -> Path:
    """Where converted models and computed features are kept: $AURALIGN_CACHE, else ~/.cache/auralign."""
    return Path(os.environ.get("AURALIGN_CACHE", Path.home() / ".cache" / "auralign"))


def package_dir(name: str, hint: str) -> Path:
    """A data-only package's folder, found without importing it (some of them import missing modules)."""
    from auralign.errors import ConfigError

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"package {name!r} is not installed: {hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def load_wave(audio: Audio) -> np.ndarray:
    """A float32 waveform; a file is loaded mono at 16 kHz."""
    if isinstance(audio, str | os.PathLike):
        from auralign.audio import load_audio

        return load_audio(Path(audio), sr=SAMPLING_RATE)
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().float().cpu().numpy()
    return np.asarray(audio, dtype=np.float32)


class AudioLLM(nn.Module, ABC):
    """A chat model that hears audio: the contract every backend fulfils.

    A backend must give `language_model`, `collate`, `loss` and `generate`. The rest has defaults that fit a
    backend whose LoRA goes on its language model's linear layers and which trains nothing else:

    - `lora_module()` is what PEFT wraps (default: `language_model`), `lora_target_regex` the names inside it
      that get LoRA (default: every `nn.Linear` but `lm_head`);
    - `peft_extras` name submodules inside `lora_module()` that PEFT trains and saves fully when the config
      trains the projector; parts outside it train through `train_extras` and are written beside the adapter
      by `save_extras` / read back by `load_extras`;
    - `peft` is the PEFT model once LoRA is applied or loaded (`attach_peft`).
    """

    #: submodules of `lora_module()` that PEFT saves fully when the projector trains (e.g. Qwen2-Audio's)
    peft_extras: tuple[str, ...] = ()

    @property
    @abstractmethod
    def language_model(self) -> nn.Module: ...

    @abstractmethod
    def collate(self, chats: list[Chat], train: bool = True) -> dict[str, torch.Tensor]:
        """Padded tensors; with `train`, `labels` mark assistant tokens, otherwise a generation prompt is added."""

    @abstractmethod
    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy averaged over the batch's labelled (assistant) tokens."""

    def token_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy summed over the batch's labelled tokens, with `label_token_count` the count to divide
        by. Training divides the sums of every micro-batch and every process by their total count, so the
        gradient is the mean over the global batch's tokens whatever the split (as transformers'
        `num_items_in_batch`). Backends override it with `masked_lm_loss(..., reduction="sum")`; this
        default rescales `loss`."""
        return self.loss(batch) * self.label_token_count(batch)

    @abstractmethod
    def generate(self, chats: list[Chat], options: GenerationOptions = DEFAULT_GENERATION) -> list[str]: ...

    def lora_module(self) -> nn.Module:
        """The module PEFT wraps; LoRA layers are injected into it in place."""
        return self.language_model

    @property
    def lora_target_regex(self) -> str:
        """Regex over module names inside `lora_module()` selecting the LoRA targets."""
        leaves = {
            n.rsplit(".", 1)[-1] for n, m in self.lora_module().named_modules() if isinstance(m, nn.Linear)
        }
        return rf".*\.({'|'.join(sorted(leaves - {'lm_head'}))})"

    @property
    def peft(self) -> "PeftModel | None":
        """The PEFT model wrapping `lora_module()`, or None before LoRA is applied or loaded."""
        return self.__dict__.get("peft")

    def attach_peft(self, peft: "PeftModel") -> None:
        # Kept out of the module tree: its parameters are already registered through `lora_module()`.
        self.__dict__["peft"] = peft

    def train_extras(self, train: bool) -> None:
        """Let the trained parts outside `lora_module()` (e.g. a projector) train or stay frozen."""

    def save_extras(self, folder: str | os.PathLike) -> None:
        """Write the trained parts outside `lora_module()` into the adapter folder."""

    def load_extras(self, folder: str | os.PathLike) -> None:
        """Read back what `save_extras` wrote, if the adapter folder has it."""

    def untrained_parts(self) -> tuple[str, ...]:
        """Parts still at their random initialisation that generation runs through (e.g. a projector no
        adapter has loaded yet); `build_with_adapter` names them in a `ModelWarning`."""
        return ()

    def forward(self, batch: dict[str, torch.Tensor], reduction: Reduction = "mean") -> torch.Tensor:
        # DDP/FSDP only synchronise gradients through forward(): training calls the model, not `.loss`.
        return self.token_loss(batch) if reduction == "sum" else self.loss(batch)

    def enable_gradient_checkpointing(self) -> None:
        # Non-reentrant checkpointing needs no input that requires grad, so frozen embeddings are fine.
        self.language_model.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False}
        )

    def label_token_count(self, batch: dict[str, torch.Tensor]) -> int:
        return int((batch["labels"][:, 1:] != IGNORE).sum())

    def sequence_logprobs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """Each row's summed log-probability of its labelled tokens in a `collate(train=True)` batch, from one
        forward (`masked_lm_logprobs` over the hidden states `loss` reads). None: this backend has no batched
        hook, and `answer_logprobs` scores one chat per forward through `loss` instead."""
        return None

    def answer_logprobs(self, chats: list[Chat], *, batch_size: int = 8) -> list[float]:
        """The log-probability (natural log) of each chat's assistant answer(s) under teacher forcing: summed
        over the tokens training's labels mark (the answer and its end-of-turn token), `batch_size` chats
        per forward, in eval mode. Padding does not change a chat's value."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                out: list[float] = []
                for i in range(0, len(chats), batch_size):
                    out += self._chunk_logprobs(chats[i : i + batch_size])
        finally:
            self.train(was_training)
        return out

    def on_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A collated batch moved to the device the model's weights are on (a GPU once `build_with_adapter`
        put it there); collate builds on the CPU."""
        device = next(self.parameters()).device
        return {k: v.to(device) for k, v in batch.items()}

    def _chunk_logprobs(self, chats: list[Chat]) -> list[float]:
        batch = self.on_device(self.collate(chats, train=True))
        counts = (batch["labels"][:, 1:] != IGNORE).sum(1).tolist()
        for chat, count in zip(chats, counts, strict=True):
            if not count:
                raise ValueError(f"chat {chat.id or '(no id)'}: no assistant answer to score")
        sums = self.sequence_logprobs(batch)
        if sums is not None:
            return sums.tolist()
        return [self._one_logprob(chat) for chat in chats]

    def _one_logprob(self, chat: Chat) -> float:
        """A hook-less backend's fallback: minus the mean loss over the answer tokens, times their count."""
        batch = self.on_device(self.collate([chat], train=True))
        return -float(self.loss(batch)) * self.label_token_count(batch)
