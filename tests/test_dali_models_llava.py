"""DALI on a tiny random LLaVA-1.5: frozen loading, CLIP tokens, prefix placement, answer-only labels, the two
projectors, loss and generation from input embeddings."""

import numpy as np
import pytest
import torch
from PIL import Image

from auralign.errors import ConfigError
from auralign.models.base import GenerationOptions
from auralign.models.dali.captioner import (
    DALI_PROMPT,
    IGNORE,
    LLAVA_V1_SYSTEM,
    VICUNA_V1_SYSTEM,
    DALICaptioner,
    Prefix,
    llava_v1_prompt,
    load_prefix_weights,
    load_projector_weights,
)
from auralign.models.dali.llava import FrozenLlava
from auralign.models.encoders.base import AudioTokenizer
from auralign.models.testing import tiny_cavmae_config, tiny_llava

N_IMG = 16  # (56 / 14)^2 patches; 576 for the real 336 px ViT-L/14
IMAGE_TOKEN_INDEX = -200  # LLaVA's llava/constants.py


def official_prompt(system: str, prompt: str, answer: str | None = None) -> str:
    """LLaVA's Conversation.get_prompt for the v1 templates (SeparatorStyle.TWO, seps " " and "</s>", roles USER /
    ASSISTANT), transcribed; the first message is "<image>\\n" + the question, as the official scripts build it
    (training data: "<image>\\nDescribe the sound ..."; generation: DEFAULT_IMAGE_TOKEN + "\\n" + qs)."""
    seps = [" ", "</s>"]
    messages = [("USER", "<image>\n" + prompt), ("ASSISTANT", answer)]
    ret = system + seps[0]
    for i, (role, message) in enumerate(messages):
        ret += role + ": " + message + seps[i % 2] if message else role + ":"
    return ret


def official_ids(text: str, tok) -> list[int]:
    """LLaVA's mm_utils.tokenizer_image_token, transcribed: the text split at `<image>`, each piece tokenized
    with the tokenizer's specials; BOS kept once, at the start; IMAGE_TOKEN_INDEX where `<image>` was."""
    chunks = [tok(chunk).input_ids for chunk in text.split("<image>")]
    drop = 1 if chunks[0][:1] == [tok.bos_token_id] else 0
    ids = chunks[0][:drop]
    for k, chunk in enumerate(chunks):
        ids += ([IMAGE_TOKEN_INDEX] if k else []) + chunk[drop:]
    return ids


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
    return tiny_llava(
        tmp_path_factory.mktemp("llava")
    )  # saved, then loaded through FrozenLlava.from_pretrained


@pytest.fixture(scope="module")
def audio_tokens(llava):
    tok, _ = AudioTokenizer.cavmae(config=tiny_cavmae_config(), token_dim=llava.token_dim)
    waves = [np.random.default_rng(i).normal(0, 0.1, 16000).astype(np.float32) for i in range(2)]
    with torch.no_grad():
        return tok.encode(waves)  # (2, 512, 32)


@pytest.fixture(scope="module")
def image_tokens(llava):
    rng = np.random.default_rng(0)
    images = [Image.fromarray((rng.random((40, 70, 3)) * 255).astype("uint8")) for _ in range(2)]
    return llava.image_tokens(llava.preprocess(images))


def test_llava_loads_frozen_and_stays_in_eval(llava):
    assert not any(p.requires_grad for p in llava.parameters())
    llava.train()
    assert not llava.model.training and not llava.training
    assert type(llava.image_processor).__name__ == "CLIPImageProcessorPil"


def test_image_tokens_are_layer_minus_2_without_cls_and_project_like_llava(llava, image_tokens):
    assert image_tokens.shape == (2, N_IMG, llava.token_dim)
    pixels = llava.preprocess([Image.new("RGB", (56, 56), (10, 200, 30))])
    hidden = llava.vision_tower(pixels, output_hidden_states=True).hidden_states
    assert len(hidden) == 4  # embeddings + 3 layers: -2 is the penultimate layer's output
    torch.testing.assert_close(llava.image_tokens(pixels), hidden[-2][:, 1:])
    # our tokens through the original projector are exactly what LLaVA itself feeds its LM
    own = torch.stack(list(llava.model.model.get_image_features(pixel_values=pixels).pooler_output))
    torch.testing.assert_close(llava.project(llava.image_tokens(pixels)), own)
    with pytest.raises(ValueError, match=r"width 32"):
        llava.project(torch.zeros(1, 4, 48))
    with pytest.raises(ValueError, match=r"\(batch, 3, height, width\)"):
        llava.image_tokens(pixels[0])


def test_preprocess_pads_to_square_with_the_mean_colour(llava):
    wide = Image.fromarray(np.full((28, 56, 3), 255, dtype=np.uint8))  # white, twice as wide as tall
    pixels = llava.preprocess([wide])
    assert pixels.shape == (1, 3, 56, 56)
    # the bands above and below hold the processor's mean colour: ~0 after normalisation; the image stays white
    assert pixels[0, :, :10].abs().max() < 0.02
    assert (pixels[0, :, 20:36] > 1.5).all()
    cropped = llava.preprocess([wide], square=False)  # llava-hf's way: resize + centre crop, no bands
    assert (cropped[0] > 1.5).all()


def test_chat_format_is_llava_v1_with_vicuna_v1s_system_for_training():
    assert llava_v1_prompt(DALI_PROMPT) == (
        "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the human's questions. USER: <image>\n"
        "Describe the sound that can be heard in this scene. ASSISTANT:"
    )
    assert llava_v1_prompt("Hi", "a dog barks") == (
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the user's questions. USER: <image>\nHi ASSISTANT: a dog barks</s>"
    )
    for system in (LLAVA_V1_SYSTEM, VICUNA_V1_SYSTEM):
        for answer in (None, "a dog barks"):
            assert llava_v1_prompt(DALI_PROMPT, answer, system) == official_prompt(
                system, DALI_PROMPT, answer
            )


@pytest.mark.parametrize(
    ("answer", "system"), [("a dog barks while birds chirp", VICUNA_V1_SYSTEM), (None, LLAVA_V1_SYSTEM)]
)
def test_rendered_prompts_are_the_official_tokens(llava, answer, system):
    """Training (prefix, distillation: vicuna_v1's system) and generation (pseudo-labels, evaluation: llava_v1's)
    give, token for token, what LLaVA's template and tokenizer_image_token give; `<image>` is the slot."""
    model = DALICaptioner(llava)
    before, after, labels = model.text_ids(answer=answer)
    official = official_ids(official_prompt(system, DALI_PROMPT, answer), llava.tokenizer)
    assert [*before, IMAGE_TOKEN_INDEX, *after] == official
    assert (labels is None) == (answer is None)
    custom = model.text_ids("What is heard?", answer)
    assert [*custom[0], IMAGE_TOKEN_INDEX, *custom[1]] == official_ids(
        official_prompt(system, "What is heard?", answer), llava.tokenizer
    )


def sequence_parts(model: DALICaptioner, system: str = VICUNA_V1_SYSTEM) -> tuple[int, torch.Tensor]:
    """The text before the modality slot: vicuna_v1's system in training rows, llava_v1's in generation."""
    tok = model.llava.tokenizer
    before = tok(f"{system} USER: ").input_ids
    assert before[0] == tok.bos_token_id
    return len(before), model.llava.embed(torch.tensor(before))


@pytest.mark.parametrize("position", ["after", "before"])
def test_prefix_placement_and_modality_order(llava, image_tokens, audio_tokens, position):
    model = DALICaptioner(llava, prefix_position=position)
    batch = model.build_inputs(image_tokens, audio_tokens, answers=["a dog barks", "rain"])
    emb = batch["inputs_embeds"]
    nb, before = sequence_parts(model)
    torch.testing.assert_close(emb[0, :nb], before)
    img, aud, pre = llava.project(image_tokens), llava.project(audio_tokens), model.prefix.weight
    blocks = {"after": [img, aud, pre.expand(2, -1, -1)], "before": [pre.expand(2, -1, -1), img, aud]}[
        position
    ]
    start = nb
    for block in blocks:
        torch.testing.assert_close(emb[:, start : start + block.shape[1]], block)
        start += block.shape[1]
    assert start == nb + N_IMG + 512 + 16
    tail = llava.tokenizer("\n" + DALI_PROMPT + " ASSISTANT:", add_special_tokens=False).input_ids
    torch.testing.assert_close(emb[0, start : start + len(tail)], llava.embed(torch.tensor(tail)))


def test_prefix_init_and_absence(llava, audio_tokens):
    model = DALICaptioner(llava, seed=3)
    assert model.prefix.weight.shape == (16, llava.width) and model.prefix.weight.requires_grad
    assert torch.equal(model.prefix.weight, DALICaptioner(llava, seed=3).prefix.weight)
    assert torch.equal(model.prefix.weight, Prefix(16, llava.width, seed=3).weight)
    bare = DALICaptioner(llava, prefix_length=0)
    assert bare.prefix is None
    nb, _ = sequence_parts(bare, LLAVA_V1_SYSTEM)  # a generation prompt
    audio_only = bare.build_inputs(audio_tokens=audio_tokens)
    torch.testing.assert_close(audio_only["inputs_embeds"][:, nb : nb + 512], llava.project(audio_tokens))


def test_prefix_starts_as_the_official_normal_0_1e_4():
    """trainPrefixTuningAudio.py: torch.nn.Parameter(torch.normal(0, 0.0001, ([16, 4096]))), transcribed; the
    official script draws from the global generator, auralign from its own seeded one (the same stream)."""
    for seed in (0, 7):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            official = torch.normal(0, 0.0001, ([16, 4096]))
        ours = Prefix(16, 4096, seed=seed).weight
        assert torch.equal(ours, official)
        assert 0.9e-4 < ours.std().item() < 1.1e-4 and abs(ours.mean().item()) < 1e-5


def test_labels_cover_the_answer_and_end_token_only(llava, image_tokens):
    model = DALICaptioner(llava)
    answers = ["a dog barks while a car passes by", "rain"]
    batch = model.build_inputs(image_tokens=image_tokens, answers=answers)
    tok = llava.tokenizer
    lengths = batch["attention_mask"].sum(1)
    assert lengths[0] > lengths[1] and batch["attention_mask"][1, lengths[1] :].eq(0).all()  # right padding
    for i, answer in enumerate(answers):
        labelled = batch["labels"][i][batch["labels"][i] != IGNORE].tolist()
        assert labelled[-1] == tok.eos_token_id
        assert tok.decode(labelled, skip_special_tokens=True).strip() == answer
        # the labelled tokens are the last real positions of the row
        assert (batch["labels"][i, lengths[i] - len(labelled) : lengths[i]] != IGNORE).all()


def test_loss_matches_transformers_own_shifted_cross_entropy(llava, image_tokens, audio_tokens):
    model = DALICaptioner(llava)
    batch = model.build_inputs(
        image_tokens, audio_tokens, answers=["a dog barks", "birds chirp and a man speaks"]
    )
    ours = model.loss(batch)
    theirs = llava.model(
        inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"], labels=batch["labels"]
    ).loss
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="no answer tokens"):
        model.loss({**batch, "labels": torch.full_like(batch["labels"], IGNORE)})


def test_two_projectors_at_audio_visual_inference(llava, image_tokens, audio_tokens):
    model = DALICaptioner(llava)
    original = {k: v.clone() for k, v in llava.projector.state_dict().items()}
    before = model.modality_embeds(image_tokens, audio_tokens)
    torch.testing.assert_close(before[:, N_IMG:], llava.project(audio_tokens))  # no copy yet: the original
    copy = model.distil_projector()
    assert model.distil_projector() is copy and copy is not llava.projector
    assert all(p.requires_grad for p in copy.parameters())
    assert not any(p.requires_grad for p in llava.projector.parameters())
    own_ptrs = {p.data_ptr() for p in llava.projector.parameters()}
    assert not own_ptrs & {p.data_ptr() for p in copy.parameters()}
    with torch.no_grad():
        for p in copy.parameters():
            p.add_(0.5)  # a "distilled" audio projector
    after = model.modality_embeds(image_tokens, audio_tokens)
    torch.testing.assert_close(after[:, :N_IMG], before[:, :N_IMG])  # images: still the original projector
    torch.testing.assert_close(after[:, N_IMG:], copy(audio_tokens))  # audio: the distilled copy
    assert not torch.allclose(after[:, N_IMG:], before[:, N_IMG:])
    for k, v in llava.projector.state_dict().items():
        assert torch.equal(v, original[k])


def test_gradients_reach_only_the_trainable_parts(llava, image_tokens, audio_tokens):
    audio = AudioTokenizer.cavmae(config=tiny_cavmae_config(), token_dim=llava.token_dim)[0]
    model = DALICaptioner(llava, audio=audio)

    def trained() -> set[str]:
        return {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}

    assert trained() == {"prefix", "audio"}
    model.distil_projector()
    assert trained() == {"prefix", "audio", "audio_projector"}
    inputs = audio.prepare([np.random.default_rng(5).normal(0, 0.1, 8000).astype(np.float32)] * 2)
    loss = model(["a dog barks", "rain"], image_tokens=image_tokens, audio_tokens=audio(inputs))
    loss.backward()
    assert model.prefix.weight.grad is not None and model.prefix.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.audio_projector.parameters())
    assert (
        audio.adapter.weight.grad is not None and audio.backbone.blocks_a[0].attn.qkv.weight.grad is not None
    )
    assert all(p.grad is None for p in llava.parameters())


def test_greedy_generation_from_embeddings_matches_a_manual_decode(llava, image_tokens, audio_tokens):
    model = DALICaptioner(llava)
    text = model.generate(image_tokens[:1], audio_tokens[:1], options=GenerationOptions(max_new_tokens=6))
    batch = model.build_inputs(image_tokens[:1], audio_tokens[:1])
    emb, ids = batch["inputs_embeds"], []
    with torch.no_grad():
        for _ in range(6):  # no cache, no generate(): argmax of the full forward, step by step
            nxt = int(llava.model(inputs_embeds=emb).logits[0, -1].argmax())
            if nxt == llava.tokenizer.eos_token_id:
                break
            ids.append(nxt)
            emb = torch.cat([emb, llava.embed(torch.tensor([[nxt]]))], dim=1)
    assert text == [llava.tokenizer.decode(ids, skip_special_tokens=True).strip()]


def test_left_padded_batches_generate_as_single_samples(llava, image_tokens):
    model = DALICaptioner(llava)
    prompts = ["Describe the sound.", "What can be heard in this scene while the dog barks?"]
    batch = model.build_inputs(image_tokens=image_tokens, prompts=prompts)
    assert batch["attention_mask"][0, 0] == 0 and batch["attention_mask"][:, -1].eq(1).all()  # left padding
    together = model.generate(image_tokens, prompts=prompts, options=GenerationOptions(max_new_tokens=5))
    alone = [
        model.generate(
            image_tokens[i : i + 1], prompts=[prompts[i]], options=GenerationOptions(max_new_tokens=5)
        )[0]
        for i in range(2)
    ]
    assert together == alone


def test_sampling_is_seeded_and_takes_the_options(llava, audio_tokens, monkeypatch):
    model = DALICaptioner(llava)
    sample = GenerationOptions(max_new_tokens=8, do_sample=True, temperature=1.0, top_k=50, seed=1)
    a = model.generate(audio_tokens=audio_tokens, options=sample)
    b = model.generate(audio_tokens=audio_tokens, options=sample)
    assert a == b and len(a) == 2
    seen = []
    real = llava.model.generate
    monkeypatch.setattr(llava.model, "generate", lambda **kw: seen.append(kw) or real(**kw))
    model.generate(audio_tokens=audio_tokens, options=sample.model_copy(update={"top_k": 7, "top_p": 0.9}))
    assert {k: seen[0][k] for k in ("do_sample", "temperature", "top_k", "top_p", "max_new_tokens")} == {
        "do_sample": True,
        "temperature": 1.0,
        "top_k": 7,
        "top_p": 0.9,
        "max_new_tokens": 8,
    }


def test_bad_inputs_are_refused(llava, image_tokens, audio_tokens):
    model = DALICaptioner(llava)
    with pytest.raises(ValueError, match="2 images but 1 audios"):
        model.build_inputs(image_tokens, audio_tokens[:1])
    with pytest.raises(ValueError, match="3 answers for a batch of 2"):
        model.build_inputs(image_tokens, answers=["a", "b", "c"])
    with pytest.raises(ValueError, match="empty batch"):
        model.build_inputs()
    with pytest.raises(ValueError, match="prefix_position"):
        DALICaptioner(llava, prefix_position="middle")
    wide = AudioTokenizer.cavmae(config=tiny_cavmae_config(), token_dim=1024)[0]
    with pytest.raises(ValueError, match="1024 wide but LLaVA's projector takes 32"):
        DALICaptioner(llava, audio=wide)
    slow = FrozenLlava(llava.model, object(), llava.image_processor)  # a tokenizer without offsets
    with pytest.raises(ConfigError, match="fast tokenizer"):
        DALICaptioner(slow)


def test_official_projector_and_prefix_files_load(llava, tmp_path):
    model = DALICaptioner(llava)
    copy = model.distil_projector()
    g = torch.Generator().manual_seed(0)
    official = {  # DALI's prefixMLP.bin / LLaVA's mm_projector.bin layout: Sequential(Linear, GELU, Linear)
        "model.mm_projector.0.weight": torch.randn(48, 32, generator=g),
        "model.mm_projector.0.bias": torch.randn(48, generator=g),
        "model.mm_projector.2.weight": torch.randn(48, 48, generator=g),
        "model.mm_projector.2.bias": torch.randn(48, generator=g),
    }
    torch.save(official, tmp_path / "prefixMLP.bin")
    load_projector_weights(copy, tmp_path / "prefixMLP.bin")
    assert torch.equal(copy.linear_1.weight, official["model.mm_projector.0.weight"])
    assert torch.equal(copy.linear_2.bias, official["model.mm_projector.2.bias"])
    # transformers' own naming, e.g. a full llava-hf state dict, loads too
    load_projector_weights(copy, {k: v for k, v in llava.model.state_dict().items() if "projector" in k})
    torch.testing.assert_close(copy(torch.ones(1, 2, 32)), llava.projector(torch.ones(1, 2, 32)))
    with pytest.raises(
        ConfigError, match=r"half\.bin: expected the 4 tensors.*\['linear_1.bias', 'linear_1.weight'\]"
    ):
        torch.save({k: v for k, v in official.items() if ".0." in k}, tmp_path / "half.bin")
        load_projector_weights(copy, tmp_path / "half.bin")
    prefix = torch.randn(16, 48, generator=g)
    torch.save({"model.audio_tower.prefix": prefix}, tmp_path / "prefix.bin")
    load_prefix_weights(model.prefix, tmp_path / "prefix.bin")
    assert torch.equal(model.prefix.weight, prefix) and model.prefix.weight.requires_grad
    with pytest.raises(ConfigError, match=r"prefix of shape \(16, 4096\), the model has \(16, 48\)"):
        load_prefix_weights(model.prefix, {"model.audio_tower.prefix": torch.zeros(16, 4096)})


def test_half_precision_llava_with_fp32_trainable_parts():
    llava = tiny_llava()
    llava.model.to(torch.bfloat16)
    audio = AudioTokenizer.cavmae(config=tiny_cavmae_config(), token_dim=llava.token_dim)[0]
    model = DALICaptioner(llava, audio=audio)
    assert model.distil_projector().linear_1.weight.dtype == torch.float32  # trains in fp32 beside bf16 LLaVA
    pixels = llava.preprocess([Image.new("RGB", (60, 40))] * 2)
    tokens = audio.encode([np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32)] * 2)
    batch = model.build_inputs(llava.image_tokens(pixels), tokens, answers=["a dog", "rain falls"])
    assert batch["inputs_embeds"].dtype == torch.bfloat16
    model.loss(batch).backward()
    assert model.prefix.weight.grad.dtype == torch.float32
    assert model.audio_projector.linear_1.weight.grad is not None
    assert len(model.generate(audio_tokens=tokens, options=GenerationOptions(max_new_tokens=3))) == 2
