"""The backend table: a new backend is one AudioLLM subclass and one BACKENDS entry; the config, the builder,
LoRA and the demo's folder lookup all go through the table."""

import json

import pytest
import torch
from torch import nn

from auralign.apps.demo import resolve_model
from auralign.config import validate
from auralign.errors import ConfigError
from auralign.models.base import IGNORE, AudioLLM, Chat, masked_lm_loss
from auralign.models.factory import BACKENDS, Backend, ModelConfig, build_model
from auralign.models.lora import LoraSettings, apply_lora, load_adapter, save_adapter

VOCAB = 32


class ToyAudioLLM(AudioLLM):
    """Writes only what the contract requires; LoRA placement and saving come from the defaults."""

    def __init__(self) -> None:
        super().__init__()
        self.lm = nn.ModuleDict(
            {
                "embed": nn.Embedding(VOCAB, 8),
                "body": nn.ModuleDict({"mix": nn.Linear(8, 8)}),
                "lm_head": nn.Linear(8, VOCAB),
            }
        )

    @property
    def language_model(self) -> nn.Module:
        return self.lm

    def collate(self, chats: list[Chat], train: bool = True) -> dict[str, torch.Tensor]:
        ids = torch.tensor([[ord(c) % VOCAB for c in chat.messages[-1]["content"][:6]] for chat in chats])
        labels = ids.clone()
        labels[:, :2] = IGNORE
        return {"input_ids": ids, "labels": labels}

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.lm["body"]["mix"](self.lm["embed"](batch["input_ids"]))
        return masked_lm_loss(hidden, batch["labels"], self.lm["lm_head"])

    def generate(self, chats, options=None) -> list[str]:
        return ["" for _ in chats]


@pytest.fixture
def toy(monkeypatch):
    built = []

    def build(cfg: ModelConfig, dtype: torch.dtype) -> ToyAudioLLM:
        torch.manual_seed(0)
        built.append((cfg.path, dtype))
        return ToyAudioLLM().to(dtype)

    monkeypatch.setitem(BACKENDS, "toy", Backend(build, model_types=("toy_audio",)))
    return built


def test_a_registered_backend_builds_trains_and_saves_its_adapter(toy, tmp_path) -> None:
    cfg = ModelConfig(backend="toy", path="anything", dtype="float32")
    llm = build_model(cfg)
    assert isinstance(llm, ToyAudioLLM) and toy == [("anything", torch.float32)]
    assert not any(p.requires_grad for p in llm.parameters())  # frozen until LoRA
    apply_lora(llm, LoraSettings(dropout=0.0))
    trainable = {n for n, p in llm.named_parameters() if p.requires_grad}
    assert trainable and all("lm.body.mix.lora_" in n for n in trainable)  # not the head, not the embedding
    batch = llm.collate([Chat([{"role": "assistant", "content": "a dog barks"}])])
    for p in llm.parameters():  # LoRA B starts at zero: make the step visible in the loss
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.1)
    opt = torch.optim.SGD([p for p in llm.parameters() if p.requires_grad], lr=0.5)
    llm(batch).backward()
    opt.step()
    trained = llm(batch).item()
    save_adapter(llm, tmp_path / "adapter")
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["target_modules"] == r".*\.(mix)"  # the default: every Linear but lm_head
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()

    fresh = build_model(cfg)
    assert fresh(batch).item() != pytest.approx(trained)
    load_adapter(fresh, tmp_path / "adapter")
    assert fresh(batch).item() == pytest.approx(trained)


def test_backend_names_come_from_the_table(toy, tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"unknown backend 'nope' \(known: qwen2audio, composed, toy\)"):
        validate({"backend": "nope"}, ModelConfig, source="cfg.yaml (model:)")
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "toy_audio"}))
    assert resolve_model(str(folder))[0] == ModelConfig(backend="toy", path=str(folder))
