"""`AudioLLM.answer_logprobs` on tiny models of both ACC backends, against independent computations: the
existing `loss` one chat at a time, and a log-softmax over the model's full logits."""

import numpy as np
import pytest
import torch
from torch import nn

from _models_fixtures import tone
from auralign.models.acc.composed import ComposedAudioLLM
from auralign.models.acc.qwen2audio import Qwen2AudioLLM
from auralign.models.base import IGNORE, AudioLLM, Chat, GenerationOptions
from auralign.models.lora import LoraSettings, apply_lora
from auralign.models.testing import offline_tokenizer, tiny_qwen2audio

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
WORDS = ["Audio", "cough", "laughter", "sigh", "what", "vocal", "sound", "is", "this", "?"]


class ToneBackbone(nn.Module):
    """A stand-in audio backbone: one 8-dim frame per 0.25 s (so clips of other lengths pad a batch)."""

    dim = 8

    def prepare(self, waves) -> torch.Tensor:
        wave = torch.as_tensor(np.asarray(waves[0]), dtype=torch.float32)
        frames = wave[: len(wave) // 4000 * 4000].reshape(-1, 4000)
        return torch.stack([frames.mean(1), frames.std(1), *frames[:, :6].T], dim=1)[None]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs


def tiny_composed() -> ComposedAudioLLM:
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=offline_tokenizer(WORDS))
    tokenizer.add_special_tokens({"pad_token": "<|endoftext|>", "eos_token": "<|im_end|>"})
    tokenizer.chat_template = CHATML
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    llm = ComposedAudioLLM(Qwen2ForCausalLM(config), tokenizer, ToneBackbone())
    for p in llm.projector.parameters():  # the projector is random anyway: let the audio matter more
        nn.init.normal_(p, std=0.5)
    return llm.eval()


BUILDERS = {"composed": tiny_composed, "qwen2audio": lambda: tiny_qwen2audio(vocab_words=WORDS)}


@pytest.fixture(params=sorted(BUILDERS))
def llm(request) -> AudioLLM:
    return BUILDERS[request.param]()


def chats() -> list[Chat]:
    """Three answered chats of different lengths (audio and text), so a batch of them is padded."""
    out = []
    for k, (seconds, answer) in enumerate([(1.0, "cough"), (2.0, "laughter and a sigh"), (1.5, "sigh")]):
        messages = [
            {"role": "user", "content": "<audio>what vocal sound is this?"},
            {"role": "assistant", "content": answer},
        ]
        out.append(Chat(messages, [tone(seconds, 300 + 150 * k, seed=k)], id=f"c{k}"))
    return out


def full_logits(llm: AudioLLM, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits at every position through the model's own forward (no label-only projection)."""
    if isinstance(llm, Qwen2AudioLLM):
        return llm.hf(**{k: v for k, v in batch.items() if k != "labels"}).logits
    return llm.lm(inputs_embeds=llm.embed(batch), attention_mask=batch["attention_mask"]).logits


def test_answer_logprobs_equal_the_loss_one_chat_at_a_time(llm: AudioLLM) -> None:
    batched = llm.answer_logprobs(chats())
    with torch.no_grad():
        alone = []
        for chat in chats():
            batch = llm.collate([chat])
            alone.append(-float(llm.loss(batch)) * llm.label_token_count(batch))
    assert np.allclose(batched, alone, rtol=1e-5, atol=1e-5), (batched, alone)
    assert all(v < 0 for v in batched) and len(set(np.round(batched, 4))) == 3


def test_answer_logprobs_equal_a_log_softmax_of_the_full_logits(llm: AudioLLM) -> None:
    batch = llm.collate(chats())
    with torch.no_grad():
        logp = full_logits(llm, batch)[:, :-1].float().log_softmax(-1)
    targets = batch["labels"][:, 1:]
    expected = []
    for row in range(len(targets)):
        positions = [t for t in range(targets.shape[1]) if targets[row, t] != IGNORE]
        expected.append(sum(float(logp[row, t, targets[row, t]]) for t in positions))
    assert np.allclose(llm.answer_logprobs(chats()), expected, rtol=1e-5, atol=1e-5)


def test_the_answer_scored_is_the_label_and_its_end_of_turn_token(llm: AudioLLM) -> None:
    labels = llm.collate(chats()[:1])["labels"][0]
    assert llm.tokenizer.decode(labels[labels != IGNORE]) == "cough<|im_end|>"


def test_padding_and_batch_size_do_not_change_a_chat_s_value(llm: AudioLLM) -> None:
    batched = llm.answer_logprobs(chats())
    padded = llm.collate(chats())["attention_mask"]
    assert (padded == 0).any(dim=1).sum() >= 2  # the batch of three really pads two of them
    one_by_one = llm.answer_logprobs(chats(), batch_size=1)
    assert np.allclose(batched, one_by_one, rtol=1e-5, atol=1e-5)
    reversed_ = llm.answer_logprobs(chats()[::-1])
    assert np.allclose(batched, reversed_[::-1], rtol=1e-5, atol=1e-5)


def test_a_backend_without_the_batched_hook_scores_each_chat_through_its_loss(llm: AudioLLM) -> None:
    batched = llm.answer_logprobs(chats())
    llm.sequence_logprobs = lambda batch: None  # what a backend that only has `loss` gives
    assert np.allclose(llm.answer_logprobs(chats()), batched, rtol=1e-5, atol=1e-5)


def test_answer_logprobs_run_in_eval_mode_and_restore_training(llm: AudioLLM) -> None:
    torch.manual_seed(1)
    apply_lora(llm, LoraSettings(dropout=0.5))
    for name, p in llm.named_parameters():  # LoRA B starts at zero: make dropout matter
        if "lora_B" in name:
            nn.init.normal_(p, std=0.5)
    llm.train()
    first = llm.answer_logprobs(chats())
    assert llm.training and llm.answer_logprobs(chats()) == first  # no dropout while scoring
    with torch.no_grad():
        batch = llm.collate(chats()[:1])
        llm.eval()
        assert np.isclose(first[0], -float(llm.loss(batch)) * llm.label_token_count(batch), atol=1e-5)


def test_a_chat_without_an_answer_is_refused_naming_it(llm: AudioLLM) -> None:
    unanswered = Chat(
        [{"role": "user", "content": "<audio>what vocal sound is this?"}], [tone(1.0, 300)], "c9"
    )
    with pytest.raises(ValueError, match="chat c9: no assistant answer to score"):
        llm.answer_logprobs([*chats()[:1], unanswered])


def test_generation_and_scoring_move_their_batch_to_the_model_s_device(llm: AudioLLM, monkeypatch) -> None:
    """collate builds on the CPU; a model on a GPU needs its batch there (both backends' generate did not)."""
    moved: list[str] = []
    original = AudioLLM.on_device

    def recording(self: AudioLLM, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        moved.append("train" if "labels" in batch and (batch["labels"] != -100).any() else "generate")
        return original(self, batch)

    monkeypatch.setattr(AudioLLM, "on_device", recording)
    prompts = [Chat(c.messages[:-1], c.audios, c.id) for c in chats()]
    llm.generate(prompts, GenerationOptions(max_new_tokens=2))
    llm.answer_logprobs(chats())
    assert moved[0] == "generate" and "train" in moved[1:]
