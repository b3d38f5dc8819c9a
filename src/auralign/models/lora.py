"""LoRA adapters on any backend, through the `AudioLLM` contract alone.

`apply_lora` wraps `llm.lora_module()` with PEFT and puts LoRA on the modules `llm.lora_target_regex` names:
the language model's linear layers (the audio encoder has q/k/v projections too). With `train_projector`,
`llm.peft_extras` train and are saved inside the adapter, and `llm.train_extras` unfreezes the parts outside
PEFT's reach. `save_adapter` publishes the PEFT files and `llm.save_extras` as one folder (written aside, then
renamed); `load_adapter` reads both back into a freshly built backend.
"""

import os
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn

from auralign.config import StrictModel
from auralign.errors import ConfigError
from auralign.fileio import atomic_dir
from auralign.models.base import AudioLLM


class LoraSettings(StrictModel):
    """Defaults are the ACC paper's (ms-swift defaults): r 8, alpha 32, dropout 0.05."""

    r: int = 8
    alpha: int = 32
    dropout: float = 0.05
    #: train the audio projector too (saved fully inside the adapter for Qwen2-Audio)
    train_projector: bool = False
    #: on CPU, draw LoRA dropout masks from 16-bit slices of 64-bit random words (p rounded to 1/65536):
    #: torch's CPU bernoulli_ costs ~10% of a small model's training step
    fast_dropout: bool = True


class FastDropout(nn.Module):
    """Inverted dropout with a mask built from three 16-bit draws per 64-bit random word."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.threshold = round(p * 65536)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        n = x.numel()
        words = torch.empty((n + 2) // 3, dtype=torch.int64, device=x.device).random_()
        # random_() fills [0, 2**63): the top 16 bits are not uniform, so use the lower three slices only.
        # Each slice is uniform over all int16 values, so P(slice < threshold - 2**15) = threshold / 2**16.
        slices = words.view(torch.int16).reshape(-1, 4)[:, :3].reshape(-1)[:n].view(x.shape)
        keep = slices >= self.threshold - 32768
        return torch.where(keep, x, 0.0).mul_(1.0 / (1.0 - self.p))


def apply_lora(llm: AudioLLM, settings: LoraSettings) -> PeftModel:
    """Wrap the backend's `lora_module()` with PEFT; returns the PeftModel whose `save_pretrained` writes the
    adapter.

    The wrapped module is changed in place (LoRA layers are injected), so the backend's own forward uses the
    adapter without knowing about PEFT.
    """
    peft_extras = list(llm.peft_extras) if settings.train_projector and llm.peft_extras else None
    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=llm.lora_target_regex,
        modules_to_save=peft_extras,
        bias="none",
    )
    peft = get_peft_model(llm.lora_module(), config)
    llm.attach_peft(peft)
    if settings.fast_dropout and settings.dropout > 0:
        use_fast_dropout(peft, settings.dropout)
    llm.train_extras(settings.train_projector)
    return peft


def use_fast_dropout(model: nn.Module, p: float) -> None:
    """Swap PEFT's LoRA dropout for FastDropout in every LoRA layer that lives on the CPU."""
    for module in model.modules():
        drops = getattr(module, "lora_dropout", None)
        if isinstance(drops, nn.ModuleDict) and module.weight.device.type == "cpu":
            for name, drop in drops.items():
                if isinstance(drop, nn.Dropout):
                    drops[name] = FastDropout(p)


def load_adapter(llm: AudioLLM, folder: str | os.PathLike, trainable: bool = False) -> PeftModel:
    """Attach a saved adapter (and the backend's extras saved beside it) to a freshly built backend."""
    folder = Path(folder)
    if not (folder / "adapter_config.json").exists():
        raise ConfigError(f"{folder}: no adapter_config.json here (expected a PEFT adapter folder)")
    peft = PeftModel.from_pretrained(llm.lora_module(), folder, is_trainable=trainable)
    llm.attach_peft(peft)
    llm.load_extras(folder)
    return peft


def save_adapter(llm: AudioLLM, folder: str | os.PathLike) -> None:
    """PEFT adapter files and the backend's extras (the composed projector.safetensors), published at once."""
    if llm.peft is None:
        raise ValueError("no LoRA to save: apply_lora or load_adapter first")
    with atomic_dir(folder) as tmp:
        llm.peft.save_pretrained(tmp)
        llm.save_extras(tmp)
