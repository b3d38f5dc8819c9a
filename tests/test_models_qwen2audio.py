"""The Qwen2-Audio backend on a tiny random model of the real architecture (built from config, offline tokenizer)."""

import numpy as np
import pytest
import torch

from _models_fixtures import tone
from auralign.audio import AudioError
from auralign.models.acc.qwen2audio import Qwen2AudioLLM, to_qwen_messages
from auralign.models.base import IGNORE, Chat, GenerationOptions
from auralign.models.lora import LoraSettings, apply_lora, load_adapter, save_adapter
from auralign.models.testing import tiny_qwen2audio


@pytest.fixture
def llm() -> Qwen2AudioLLM:
    return tiny_qwen2audio()


def chat(n_audios: int, answer: str | None = "a dog barks.") -> Chat:
    prompt = "tell me the similarities between the two audios." if n_audios == 2 else "describe the audio."
    messages = [{"role": "user", "content": "<audio>" * n_audios + prompt}]
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return Chat(messages, [tone(1.0 + 0.5 * k, 300 + 100 * k, seed=k) for k in range(n_audios)])


@pytest.mark.parametrize("n_audios", [1, 2])
def test_collate_matches_the_processor(llm: Qwen2AudioLLM, n_audios: int) -> None:
    c = chat(n_audios)
    batch = llm.collate([c])
    text = llm.render(to_qwen_messages(c.messages), False)
    assert text.count("Audio ") == n_audios and "Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>" in text
    ref = llm.processor(text=[text], audio=c.audios, sampling_rate=16000, return_tensors="pt")
    assert torch.equal(batch["input_ids"], ref["input_ids"])
    assert torch.equal(batch["input_features"], ref["input_features"])
    assert torch.equal(batch["feature_attention_mask"], ref["feature_attention_mask"])
    # 1 s -> 100 mel frames -> 25 tokens; 1.5 s -> 150 frames -> 37 tokens
    expected = [25, 37][:n_audios]
    assert int((batch["input_ids"] == llm.processor.audio_token_id).sum()) == sum(expected)


def test_labels_cover_only_assistant_tokens(llm: Qwen2AudioLLM) -> None:
    c = chat(1)
    c.messages += [
        {"role": "user", "content": "and one more"},
        {"role": "assistant", "content": "a car passes."},
    ]
    batch = llm.collate([c, chat(2)])
    first = batch["labels"][0]
    assert llm.tokenizer.decode(first[first != IGNORE]) == "a dog barks.<|im_end|>a car passes.<|im_end|>"
    second = batch["labels"][1]
    assert llm.tokenizer.decode(second[second != IGNORE]) == "a dog barks.<|im_end|>"
    # padding (right, for training) is never labelled
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE).all()


def test_lora_targets_only_the_language_model(llm: Qwen2AudioLLM) -> None:
    apply_lora(llm, LoraSettings())
    wrapped = [n for n, m in llm.hf.named_modules() if hasattr(m, "lora_A")]
    assert wrapped and all(".language_model." in n for n in wrapped)
    assert any(n.endswith("self_attn.q_proj") for n in wrapped) and any(
        n.endswith("mlp.down_proj") for n in wrapped
    )
    trainable = [n for n, p in llm.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and ".language_model." in n for n in trainable)
    assert not any(hasattr(m, "lora_A") for m in llm.hf.model.audio_tower.modules())


def test_training_steps_lower_the_loss(llm: Qwen2AudioLLM) -> None:
    torch.manual_seed(0)
    apply_lora(llm, LoraSettings(dropout=0.0))
    llm.train()
    batch = llm.collate([chat(1), chat(2, "a car passes.")])
    opt = torch.optim.AdamW([p for p in llm.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(5):
        loss = llm(batch)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.05, losses


def test_loss_equals_full_logit_loss(llm: Qwen2AudioLLM) -> None:
    """Projecting only labelled positions must not change the loss."""
    batch = llm.collate([chat(1), chat(2)])
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = llm.hf(**inputs).logits
    labels = batch["labels"]
    full = torch.nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=IGNORE
    )
    assert torch.allclose(llm.loss(batch), full, atol=1e-6)


def test_generate_greedy_beam_and_seeded_sampling(llm: Qwen2AudioLLM) -> None:
    chats = [chat(1, None), chat(2, None)]
    greedy = llm.generate(chats, GenerationOptions(max_new_tokens=5))
    assert len(greedy) == 2 and all(isinstance(t, str) for t in greedy)
    # a batch with left padding answers each chat as it would alone
    assert llm.generate([chats[0]], GenerationOptions(max_new_tokens=5))[0] == greedy[0]
    assert len(llm.generate(chats, GenerationOptions(max_new_tokens=5, num_beams=2))) == 2
    sample = GenerationOptions(max_new_tokens=8, do_sample=True, temperature=1.5, seed=3)
    assert llm.generate(chats, sample) == llm.generate(chats, sample)


def test_long_audio_is_refused_truncated_or_split(llm: Qwen2AudioLLM) -> None:
    long = Chat(
        [{"role": "user", "content": "<audio>describe the audio."}], [np.zeros(16000 * 31, np.float32) + 0.01]
    )
    with pytest.raises(AudioError, match=r"31\.0 s long"):
        llm.collate([long], train=False)
    llm.long_audio = "split"
    split = llm.collate([long], train=False)
    assert split["input_features"].shape[0] == 2  # two windows of one audio, in order
    assert int((split["input_ids"] == llm.processor.audio_token_id).sum()) == 750 + 25
    llm.long_audio = "truncate"
    with pytest.warns(UserWarning, match="truncated"):
        assert llm.collate([long], train=False)["input_features"].shape[0] == 1


def test_adapter_saves_and_reloads_with_plain_peft(llm: Qwen2AudioLLM, tmp_path) -> None:
    from peft import PeftModel
    from transformers import Qwen2AudioForConditionalGeneration

    base = tmp_path / "base"
    llm.hf.save_pretrained(base)
    llm.processor.save_pretrained(base)
    apply_lora(llm, LoraSettings())
    for n, p in llm.named_parameters():  # LoRA B starts at zero: make the adapter matter
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.5)
    llm.eval()
    batch = llm.collate([chat(2)])
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    expected = llm.hf(**inputs).logits
    save_adapter(llm, tmp_path / "adapter")

    plain = PeftModel.from_pretrained(
        Qwen2AudioForConditionalGeneration.from_pretrained(base), tmp_path / "adapter"
    )
    assert torch.allclose(plain.eval()(**inputs).logits, expected, atol=1e-5)
    fresh = Qwen2AudioLLM.from_pretrained(base)
    load_adapter(fresh, tmp_path / "adapter")
    assert torch.allclose(fresh.eval().hf(**inputs).logits, expected, atol=1e-5)
    assert not torch.allclose(Qwen2AudioLLM.from_pretrained(base).hf(**inputs).logits, expected, atol=1e-3)
