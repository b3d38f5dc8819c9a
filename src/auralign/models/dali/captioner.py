"""DALI's captioner: a frozen LLaVA-1.5 fed projected image and/or audio tokens, a learned prefix, and a prompt.

One sequence per sample, in LLaVA-1.5's v1 chat format (LLaVA's conversation templates: roles USER /
ASSISTANT, separators " " and "</s>"), as the official DALI code builds it:

    <s>{system} USER: | image tokens, audio tokens | prefix | \\n{prompt} ASSISTANT: | {answer}</s>
      prompt-before          modality tokens                   prompt-after          labelled

The system prompt is the one of the official script that does the same job: training sequences (with an
answer: prefix tuning, distillation; `--version v1` there) start with vicuna_v1's ("... a curious user ..."),
generation prompts (pseudo-labelling, evaluation; `conv_mode` llava_v1 there) with llava_v1's ("... a curious
human ...").

Modality tokens are image tokens through LLaVA's original projector, then audio tokens through the audio
projector (the original until `distil_projector()` makes a trainable copy for audio alone, as the paper's
figure draws it; the official code overwrote its single projector, which also changed the image path). The
16 prefix vectors follow the modality tokens as in the official code, or precede them (`prefix_position=
"before"`, the paper's figure). Labels cover the answer and its end token only.
"""

import copy
import os
import re
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from auralign.errors import ConfigError
from auralign.models.base import DEFAULT_GENERATION, IGNORE, GenerationOptions, masked_lm_loss
from auralign.models.dali.cavmae import read_state_dict
from auralign.models.dali.llava import FrozenLlava
from auralign.models.encoders.base import AudioTokenizer

#: the system prompt of training sequences: LLaVA's vicuna_v1 template (the official training script's)
VICUNA_V1_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
#: the system prompt of generation prompts: LLaVA's llava_v1 template (the official generation scripts')
LLAVA_V1_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)
DALI_PROMPT = "Describe the sound that can be heard in this scene."
#: std of the prefix at start (official prefix tuning: torch.normal(0, 0.0001, (16, 4096)))
PREFIX_STD = 1e-4
PrefixPosition = Literal["after", "before"]


def llava_v1_prompt(prompt: str, answer: str | None = None, system: str | None = None) -> str:
    """The text LLaVA-1.5 sees, `<image>` marking where the modality tokens go; `system` defaults to the
    captioner's: vicuna_v1's with an answer (training), llava_v1's without (generation)."""
    if system is None:
        system = LLAVA_V1_SYSTEM if answer is None else VICUNA_V1_SYSTEM
    text = f"{system} USER: <image>\n{prompt} ASSISTANT:"
    return text if answer is None else f"{text} {answer}</s>"


class Prefix(nn.Module):
    """`length` learned input vectors of the LLM's width, drawn from N(0, std^2) by a generator seeded `seed`
    (official prefix tuning: std 1e-4)."""

    def __init__(self, length: int = 16, width: int = 4096, std: float = PREFIX_STD, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.normal(0.0, std, (length, width), generator=gen))

    def forward(self, batch: int) -> torch.Tensor:
        return self.weight.unsqueeze(0).expand(batch, -1, -1)  # (B, length, width)


PROJECTOR_KEYS = {
    # original LLaVA (and DALI's mm_projector.bin / prefixMLP.bin): Sequential(Linear, GELU, Linear)
    r"(?:^|\.)mm_projector\.0\.(weight|bias)$": "linear_1.",
    r"(?:^|\.)mm_projector\.2\.(weight|bias)$": "linear_2.",
    # transformers' LlavaMultiModalProjector, bare or inside a full model / our own saved copy
    r"(?:^|\.)linear_1\.(weight|bias)$": "linear_1.",
    r"(?:^|\.)linear_2\.(weight|bias)$": "linear_2.",
}


def load_projector_weights(projector: nn.Module, source: str | os.PathLike | dict) -> None:
    """Load a 2-layer LLaVA projector from the original LLaVA/DALI layout (`model.mm_projector.0.weight`, ...) or
    transformers' (`linear_1.weight`, ...), e.g. DALI's distilled `prefixMLP.bin` into `distil_projector()`."""
    state, name = read_state_dict(source)
    found = {}
    for key, value in state.items():
        for pattern, target in PROJECTOR_KEYS.items():
            if m := re.search(pattern, key):
                found[target + m.group(1)] = value
    own = projector.state_dict()
    if set(found) != set(own):
        raise ConfigError(
            f"{name}: expected the 4 tensors of a 2-layer LLaVA projector (mm_projector.0/.2 or linear_1/_2 "
            f"weight and bias), found {sorted(found) or 'none'}"
        )
    bad = [
        f"{k}: file {tuple(found[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if found[k].shape != v.shape
    ]
    if bad:
        raise ConfigError(f"{name}: projector does not fit this LLaVA: " + "; ".join(bad))
    projector.load_state_dict(found)


def load_prefix_weights(prefix: "Prefix", source: str | os.PathLike | dict) -> None:
    """Load prefix vectors saved by the official code (`model.audio_tower.prefix`) or by us (`weight`)."""
    state, name = read_state_dict(source)
    hits = [
        v for k, v in state.items() if k == "weight" or k.endswith("prefix") or k.endswith("prefix.weight")
    ]
    if len(hits) != 1:
        raise ConfigError(f"{name}: expected one prefix tensor (a key ending in 'prefix'), found {len(hits)}")
    if hits[0].shape != prefix.weight.shape:
        raise ConfigError(
            f"{name}: prefix of shape {tuple(hits[0].shape)}, the model has {tuple(prefix.weight.shape)}"
        )
    with torch.no_grad():
        prefix.weight.copy_(hits[0])


class DALICaptioner(nn.Module):
    """Frozen LLaVA + optional audio tokenizer + prefix + optional distilled audio projector.

    Stages train different parts: prefix tuning `prefix`, alignment `audio` (backbone + adapter), distillation
    `audio_projector`; everything in `llava` stays frozen.
    """

    def __init__(
        self,
        llava: FrozenLlava,
        audio: AudioTokenizer | None = None,
        prefix_length: int = 16,
        prefix_position: PrefixPosition = "after",
        prompt: str = DALI_PROMPT,
        train_system: str = VICUNA_V1_SYSTEM,
        generation_system: str = LLAVA_V1_SYSTEM,
        prefix_std: float = PREFIX_STD,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if prefix_position not in ("after", "before"):
            raise ValueError(f"prefix_position must be 'after' or 'before', got {prefix_position!r}")
        if not getattr(llava.tokenizer, "is_fast", False):
            # answer labels come from character offsets, which only fast (tokenizers-backed) tokenizers give
            raise ConfigError("DALI needs a fast tokenizer (a tokenizer.json beside the LLaVA checkpoint)")
        if audio is not None and audio.token_dim != llava.token_dim:
            raise ValueError(
                f"audio tokens are {audio.token_dim} wide but LLaVA's projector takes {llava.token_dim}"
            )
        self.llava = llava
        self.audio = audio
        self.prefix = Prefix(prefix_length, llava.width, prefix_std, seed) if prefix_length else None
        self.prefix_position = prefix_position
        self.prompt = prompt
        self.train_system, self.generation_system = train_system, generation_system
        self.audio_projector: nn.Module | None = None

    def distil_projector(self, dtype: torch.dtype = torch.float32) -> nn.Module:
        """Make (once) and return the trainable copy of LLaVA's projector that audio tokens go through from now
        on; image tokens keep the frozen original. The copy trains in `dtype` (fp32 even beside a half LLaVA)."""
        if self.audio_projector is None:
            self.audio_projector = copy.deepcopy(self.llava.projector).to(dtype).requires_grad_(True).train()
        return self.audio_projector

    def modality_embeds(
        self, image_tokens: torch.Tensor | None = None, audio_tokens: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """Image tokens (B, Ni, 1024) through the original projector, then audio tokens (B, Na, 1024) through the
        audio projector: (B, Ni + Na, W), or None without either."""
        parts = []
        if image_tokens is not None:
            parts.append(self.llava.project(image_tokens))
        if audio_tokens is not None:
            parts.append(self.llava.project(audio_tokens, self.audio_projector))
        if len(parts) == 2 and parts[0].shape[0] != parts[1].shape[0]:
            raise ValueError(f"{parts[0].shape[0]} images but {parts[1].shape[0]} audios in one batch")
        return torch.cat(parts, dim=1) if parts else None

    def text_ids(
        self, prompt: str | None = None, answer: str | None = None
    ) -> tuple[list[int], list[int], list[int] | None]:
        """Token ids of the text before the modality slot (with BOS) and after it, and the labels of the part
        after it (None without an answer). With an answer (training) the system prompt is `train_system`,
        without (generation) `generation_system`. The two pieces are tokenized apart, as LLaVA's
        tokenizer_image_token splits the text at `<image>`."""
        tok = self.llava.tokenizer
        system = self.generation_system if answer is None else self.train_system
        before = tok(f"{system} USER: ").input_ids
        after = f"\n{self.prompt if prompt is None else prompt} ASSISTANT:"
        if answer is None:
            return before, tok(after, add_special_tokens=False).input_ids, None
        enc = tok(f"{after} {answer}", add_special_tokens=False, return_offsets_mapping=True)
        # tokens starting at or after the space that ends "ASSISTANT:" are the answer
        labels = [
            t if s >= len(after) else IGNORE
            for t, (s, _) in zip(enc.input_ids, enc.offset_mapping, strict=True)
        ]
        return before, [*enc.input_ids, tok.eos_token_id], [*labels, tok.eos_token_id]

    def build_inputs(
        self,
        image_tokens: torch.Tensor | None = None,
        audio_tokens: torch.Tensor | None = None,
        answers: Sequence[str] | None = None,
        prompts: Sequence[str] | None = None,
    ) -> dict[str, torch.Tensor]:
        """`inputs_embeds` (B, L, W), `attention_mask` (B, L) and, with answers, `labels` (B, L).

        With answers (training) sequences are right-padded; without (generation) left-padded, so every row ends
        at its generation prompt. `prompts` overrides the configured prompt per sample.
        """
        mods = self.modality_embeds(image_tokens, audio_tokens)
        batch = mods.shape[0] if mods is not None else len(answers or prompts or [])
        if batch == 0:
            raise ValueError("empty batch: give modality tokens, answers or prompts")
        for name, seq in (("answers", answers), ("prompts", prompts)):
            if seq is not None and len(seq) != batch:
                raise ValueError(f"{len(seq)} {name} for a batch of {batch}")
        llava = self.llava
        slot = [] if mods is None else [mods.to(llava.dtype)]
        if self.prefix is not None:
            prefix = self.prefix(batch).to(llava.device, llava.dtype)
            slot = [*slot, prefix] if self.prefix_position == "after" else [prefix, *slot]
        rows, row_labels = [], []
        for i in range(batch):
            before, after, labels = self.text_ids(
                prompts[i] if prompts else None, answers[i] if answers is not None else None
            )
            head = [llava.embed(torch.tensor(before)), *(part[i] for part in slot)]
            rows.append(torch.cat([*head, llava.embed(torch.tensor(after))]))
            width = sum(part.shape[0] for part in head)
            row_labels.append(([IGNORE] * width + labels) if labels is not None else None)
        return self._pad(rows, row_labels, left=answers is None)

    @staticmethod
    def _pad(rows: list[torch.Tensor], labels: list[list[int] | None], left: bool) -> dict[str, torch.Tensor]:
        length = max(r.shape[0] for r in rows)
        embeds = rows[0].new_zeros(len(rows), length, rows[0].shape[1])
        mask = torch.zeros(len(rows), length, dtype=torch.long, device=rows[0].device)
        out_labels = torch.full((len(rows), length), IGNORE, dtype=torch.long, device=rows[0].device)
        for i, (row, lab) in enumerate(zip(rows, labels, strict=True)):
            span = slice(length - row.shape[0], length) if left else slice(0, row.shape[0])
            embeds[i, span], mask[i, span] = row, 1
            if lab is not None:
                out_labels[i, span] = torch.tensor(lab, device=row.device)
        out = {"inputs_embeds": embeds, "attention_mask": mask}
        if labels[0] is not None:
            out["labels"] = out_labels
        return out

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy of the answers given everything before them."""
        hidden = self.llava.model.model(
            inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"]
        ).last_hidden_state
        return masked_lm_loss(hidden, batch["labels"], self.llava.lm_head)

    def forward(
        self,
        answers: Sequence[str],
        image_tokens: torch.Tensor | None = None,
        audio_tokens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        # DDP synchronises gradients through forward(): training loops call the module
        return self.loss(self.build_inputs(image_tokens, audio_tokens, answers=answers))

    @torch.no_grad()
    def generate(
        self,
        image_tokens: torch.Tensor | None = None,
        audio_tokens: torch.Tensor | None = None,
        prompts: Sequence[str] | None = None,
        *,
        options: GenerationOptions = DEFAULT_GENERATION,
    ) -> list[str]:
        """Captions from `inputs_embeds`, decoded as `options` say (`max_new_tokens`, `num_beams`, `do_sample`,
        `temperature`, `top_p`, `top_k`), sampling from a generator seeded `options.seed`; default: greedy."""
        batch = self.build_inputs(image_tokens, audio_tokens, prompts=prompts)
        tok = self.llava.tokenizer
        device = self.llava.device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(options.seed)
            out = self.llava.model.generate(
                **batch,
                pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
                eos_token_id=tok.eos_token_id,
                **options.kwargs(),
            )
        return [text.strip() for text in tok.batch_decode(out, skip_special_tokens=True)]
