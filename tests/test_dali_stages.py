"""DALI's stages on a tiny random LLaVA-1.5 and a tiny CAV-MAE of the real layout: what each stage trains (and
what stays frozen), every alignment method, resume, chaining through YAML configs and the CLI, missing files."""

import copy
import importlib
import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from _models_fixtures import write_av_clips
from auralign.align import LOSSES
from auralign.cli import main as cli_main
from auralign.config import load_config, validate
from auralign.errors import ConfigError, DataError
from auralign.fileio import Journal
from auralign.models.testing import tiny_llava
from auralign.train import dali
from auralign.train.dali.config import (
    AlignConfig,
    AudioSource,
    AVData,
    CaptionConfig,
    DistillConfig,
    LlavaSource,
    PrefixConfig,
)
from auralign.train.dali.data import ImageTokens
from auralign.train.dali.generation import generate_batch

CAPTIONS = [
    "a dog barks while a car passes by on a wet road",
    "birds chirp and a man speaks in the distance",
    "water runs from a tap and a woman laughs",
    "an engine idles then accelerates loudly",
    "music plays as people talk and clap their hands",
    "a dog barks and birds chirp",
]
MODEL = {
    "llava": {"loader": "tiny"},
    "audio": {"kind": "cavmae", "sizes": {"dim": 32, "heads": 4, "depth_a": 2, "depth_u": 1}},
}
CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "dali"
#: the align recipe's module (the package attribute `dali.align` is its function), to patch what it calls
ALIGN_RECIPE = importlib.import_module("auralign.train.dali.align")


def write_clips(folder: Path, n: int = len(CAPTIONS)) -> Path:
    """n clips (1 s tones, 2 frames each) and their audio-visual manifest, paths relative to it."""
    return write_av_clips(folder, CAPTIONS[:n], step_hz=150, shade=40, references=True)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    return write_clips(tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="module")
def shared_llava():
    """One tiny LLaVA handed to every stage through a registered loader, to check it never changes."""
    llava = tiny_llava()
    dali.register_llava_loader("shared-tiny", lambda: llava)
    return llava


@pytest.fixture(scope="module")
def prefix_dir(tmp_path_factory, manifest) -> Path:
    cfg = PrefixConfig(
        output_dir=str(tmp_path_factory.mktemp("prefix")),
        model=MODEL,
        data={"manifest": str(manifest)},
        num_pairs=4,
        epochs=2,
        batch_size=4,
    )
    return dali.prefix_tune(cfg, progress=False)


def align_config(out: Path, prefix: Path, manifest: Path, **kw) -> AlignConfig:
    base = {
        "output_dir": str(out),
        "prefix_dir": str(prefix),
        "data": {"manifest": str(manifest)},
        "method": "mmd",
        "epochs": 1,
        "batch_size": 6,
        "lr": 1e-3,
    }
    return AlignConfig(**(base | kw))


@pytest.fixture(scope="module")
def align_dir(tmp_path_factory, prefix_dir, manifest) -> Path:
    return dali.align(align_config(tmp_path_factory.mktemp("align"), prefix_dir, manifest), progress=False)


@pytest.fixture(scope="module")
def distill_dir(tmp_path_factory, align_dir, manifest) -> Path:
    cfg = DistillConfig(
        output_dir=str(tmp_path_factory.mktemp("distill")),
        align_dir=str(align_dir),
        data={"manifest": str(manifest)},
        pseudo={"max_new_tokens": 6, "batch_size": 4},
        epochs=4,
        batch_size=6,
        micro_batch_size=4,
        lr=1e-2,
        warmup_ratio=0,
    )
    return dali.distill(cfg, progress=False)


def losses(folder: Path, key: str = "loss") -> list[float]:
    return [json.loads(line)[key] for line in (folder / "log.jsonl").read_text().splitlines()]


def frozen_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def assert_same_state(before: dict, module: torch.nn.Module) -> None:
    after = module.state_dict()
    assert before.keys() == after.keys()
    for k, v in before.items():
        assert torch.equal(v, after[k]), k


# ---------------------------------------------------------------- stage 1a


def test_prefix_stage_trains_only_the_prefix(tmp_path, manifest, shared_llava):
    before = frozen_state(shared_llava)
    model = MODEL | {"llava": {"loader": "shared-tiny"}}
    cfg = PrefixConfig(
        output_dir=str(tmp_path / "p"),
        model=model,
        data={"manifest": str(manifest)},
        num_pairs=4,
        epochs=12,
        batch_size=4,
        lr=3e-2,
    )
    out = dali.prefix_tune(cfg, progress=False)
    curve = losses(out)
    assert len(curve) == 12 and curve[-1] < curve[0]
    assert json.loads((out / "done.json").read_text())["pairs"] == ["c0", "c1", "c2", "c3"]
    assert set(load_file(str(out / "prefix.safetensors"))) == {"weight"}
    assert_same_state(before, shared_llava)
    # a finished folder is a no-op with the same config, an error with another
    assert dali.prefix_tune(cfg, progress=False) == out and len(losses(out)) == 12
    with pytest.raises(ConfigError, match="differs in: epochs"):
        dali.prefix_tune(cfg.model_copy(update={"epochs": 3}), progress=False)


# ---------------------------------------------------------------- stage 1b


@pytest.mark.parametrize(
    ("method", "lr"), [("mmd", 3e-3), ("ot_exact", 3e-3), ("sinkhorn", 3e-3), ("contrastive", 3e-4)]
)
def test_each_alignment_method_lowers_its_loss(tmp_path, prefix_dir, manifest, method, lr):
    cfg = align_config(tmp_path / method, prefix_dir, manifest, method=method, epochs=4, lr=lr)
    out = dali.align(cfg, progress=False)
    curve = losses(out)  # one full-batch step per epoch: the same loss, measured as it falls
    assert len(curve) == 4 and curve[-1] < curve[0], curve
    assert (out / "audio.safetensors").is_file() and (out / "prefix.safetensors").is_file()


def test_a_loss_registered_in_losses_trains_from_a_config(
    tmp_path, prefix_dir, manifest, monkeypatch, capsys
):
    """The extension recipe: a loss is its function plus one LOSSES entry; `dali align` then trains it."""
    calls = []

    def mean_gap(x, y, *, x_mask=None, y_mask=None, weight=1.0):
        calls.append(weight)
        return weight * (x.mean(1) - y.mean(1)).pow(2).sum(-1).mean()

    body = {
        "output_dir": str(tmp_path / "gap"),
        "prefix_dir": str(prefix_dir),
        "data": {"manifest": str(manifest)},
        "method": "mean_gap",
        "method_options": {"weight": 2.0},
        "epochs": 3,
        "batch_size": 6,
        "lr": 3e-3,
    }
    config = tmp_path / "align-gap.yaml"
    config.write_text(yaml.safe_dump(body))
    assert cli_main(["dali", "align", str(config), "--no-progress"]) == 2  # not registered yet
    assert "mean_gap" in capsys.readouterr().err
    monkeypatch.setitem(LOSSES, "mean_gap", mean_gap)
    assert cli_main(["dali", "align", str(config), "--no-progress"]) == 0
    out = tmp_path / "gap"
    curve = losses(out)
    assert calls == [2.0, 2.0, 2.0] and len(curve) == 3 and curve[-1] < curve[0], curve
    assert json.loads((out / "done.json").read_text())["method"] == "mean_gap"


def test_unknown_method_error_lists_the_known_ones():
    with pytest.raises(ConfigError, match="known: attentive_ot, contrastive, mmd, ot_exact, sinkhorn"):
        validate(
            {"output_dir": "o", "prefix_dir": "p", "data": {"manifest": "m"}, "method": "ot"}, AlignConfig
        )


def test_generation_sections_take_dali_decoding_defaults():
    """DALI samples at temperature 0.2 with transformers' default top-k (50: the official generation leaves it
    unset) and no top-p, greedy at 0, batch k seeded by the stage's seed."""
    base = {"distill_dir": "d", "output": "o", "data": {"manifest": "m"}}
    full = CaptionConfig(**base, seed=4).generation
    assert (full.do_sample, full.temperature, full.top_p, full.top_k, full.seed) == (True, 0.2, None, 50, 4)
    assert full.kwargs()["top_k"] == 50
    assert (full.max_new_tokens, full.batch_size, full.num_beams) == (64, 16, 1)
    greedy = CaptionConfig(**base, generation={"temperature": 0}).generation
    assert (greedy.do_sample, greedy.batch_size, greedy.seed) == (False, 16, 0)
    distill = {"output_dir": "o", "align_dir": "a", "data": {"manifest": "m"}}
    assert DistillConfig(**distill).pseudo.max_new_tokens == 128  # the section left out
    assert DistillConfig(**distill, pseudo={"temperature": 0.2}).pseudo.max_new_tokens == 64  # as before
    assert DistillConfig(**distill).pseudo.top_k == 50
    assert CaptionConfig(**base, generation={"top_k": 0}).generation.top_k == 0  # 0: top-k off, if asked


def test_generation_hands_the_sections_options_to_the_captioner(distill_dir, manifest, monkeypatch):
    captioner = dali.load_captioner(distill_dir, device="cpu")
    seen = []
    real = captioner.llava.model.generate
    monkeypatch.setattr(captioner.llava.model, "generate", lambda **kw: seen.append(kw) or real(**kw))
    options = CaptionConfig(
        distill_dir="d", output="o", data={"manifest": "m"}, generation={"max_new_tokens": 3}
    ).generation
    samples = dali.read_av_samples(validate({"manifest": str(manifest), "limit": 2}, AVData))
    generate_batch(
        captioner, samples, mode="audio", images=ImageTokens(captioner.llava), options=options, seed=9
    )
    picked = {k: seen[0][k] for k in ("do_sample", "temperature", "top_k", "top_p", "max_new_tokens")}
    assert picked == {"do_sample": True, "temperature": 0.2, "top_k": 50, "top_p": None, "max_new_tokens": 3}


def test_attentive_ot_trains_its_heads_on_the_entropy_schedule(
    tmp_path, prefix_dir, manifest, shared_llava, monkeypatch
):
    before, initial_heads, make = frozen_state(shared_llava), [], dali.make_aligner

    def spy(*args, **kwargs):
        aligner = make(*args, **kwargs)
        initial_heads.append(frozen_state(aligner.attention))
        return aligner

    monkeypatch.setattr(ALIGN_RECIPE, "make_aligner", spy)
    cfg = align_config(
        tmp_path / "att",
        prefix_dir,
        manifest,
        method="attentive_ot",
        epochs=3,
        model=MODEL | {"llava": {"loader": "shared-tiny"}},
        keep_checkpoints=5,
    )
    out = dali.align(cfg, progress=False)
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r.get("lambda") for r in rows] == [None, 500.0, 400.0]  # epoch 1 frozen, then the schedule
    ckpts = sorted((out / "checkpoints").iterdir())
    assert [c.name for c in ckpts] == [
        "epoch-001-step-0000001",
        "epoch-002-step-0000001",
        "epoch-003-step-0000001",
    ]
    heads = [load_file(str(c / "attentive_ot.safetensors")) for c in ckpts]
    audio = [load_file(str(c / "audio.safetensors")) for c in ckpts]
    assert all(torch.equal(v, heads[0][k]) for k, v in initial_heads[0].items())  # frozen in epoch 1
    key = "attn_x.in_proj_weight"
    assert not torch.equal(heads[0][key], heads[1][key])  # their own optimiser stepped in epoch 2
    assert not torch.equal(audio[0]["adapter.weight"], audio[1]["adapter.weight"])
    assert_same_state(before, shared_llava)
    assert (out / "attentive_ot.safetensors").is_file()


def official_step_gradients(audio, heads, inputs, image_tokens, epoch, scales=(2.0**16, 2.0**16)):
    """The attentive-OT step of traintest_distribution_alignment.py, transcribed: the encoder's and the heads'
    gradients as their GradScalers hand them to the optimisers (unscaled); `scales`: the encoder's GradScaler
    scale and the heads' (both start at 2^16). The heads' step between the two backward passes is left out:
    under DataParallel the second pass runs on the replicas' copies of the weights, which that step leaves."""
    scale, scale_x = scales
    encoder = [p for p in audio.parameters() if p.requires_grad]
    for p in [*encoder, *heads.parameters()]:
        p.grad = None  # optimizer.zero_grad(), then optimizerX.zero_grad()
    out = heads(audio(inputs), image_tokens)
    loss, loss_entrop = out.loss, out.entropy.mean()  # what the model returns: OT, H(a) + H(b)
    head_grads = None
    if epoch > 1:  # 1 < epoch < 6: weight 100 (6 - epoch + 1); from epoch 6 on: 100
        loss_x = loss - loss_entrop * (100 * (6 - epoch + 1) if epoch < 6 else 100)
        (loss_x * scale_x).backward(retain_graph=True)  # scalerX.scale(lossX).backward(retain_graph=True)
        head_grads = [p.grad / scale_x for p in heads.parameters()]  # scalerX.step(optimizerX) unscales
    (loss * scale).backward()  # scaler.scale(loss).backward(), no inputs: into the encoder
    return [p.grad / scale for p in encoder], head_grads  # scaler.step(optimizer) unscales


def step_gradients(aligner, inputs, image_tokens, epoch):
    """The gradients each optimiser of `align_step` steps with."""
    seen = {}
    for name, opt in (("encoder", aligner.optimizer), ("heads", aligner.attention_optimizer)):

        def spy(*args, _name=name, _opt=opt, _step=opt.step, **kwargs):
            seen[_name] = [p.grad.clone() for g in _opt.param_groups for p in g["params"]]
            return _step(*args, **kwargs)

        opt.step = spy
    dali.align_step(aligner, aligner.audio(inputs), image_tokens, epoch)
    return seen["encoder"], seen.get("heads")


def test_attentive_ot_encoder_gets_the_official_gradient_or_ot_alone():
    """`attention.encoder_objective`: "official" (default) gives the encoder what the official loop gives it,
    grad(OT - lambda H) + grad(OT) once the heads train; "ot_only" grad(OT). The heads get grad(OT - lambda H)."""
    torch.manual_seed(0)
    audio0 = dali.build_audio(validate(MODEL["audio"], AudioSource), 16)
    inputs, image_tokens = torch.randn(2, 1024, 128), torch.randn(2, 24, 16)
    heads0 = None

    def run(objective, epoch):
        nonlocal heads0
        cfg = AlignConfig(
            output_dir="o",
            prefix_dir="p",
            data={"manifest": "m"},
            method="attentive_ot",
            attention={"encoder_objective": objective},
        )
        aligner = dali.make_aligner(cfg, copy.deepcopy(audio0), torch.device("cpu"))
        if heads0 is None:
            heads0 = copy.deepcopy(aligner.attention)
        aligner.attention.load_state_dict(heads0.state_dict())
        return step_gradients(aligner, inputs, image_tokens, epoch)

    assert AlignConfig(
        output_dir="o", prefix_dir="p", data={"manifest": "m"}
    ).attention.encoder_objective == ("official")
    run("official", 1)  # draws heads0
    ot_alone, _ = official_step_gradients(
        copy.deepcopy(audio0), copy.deepcopy(heads0), inputs, image_tokens, 1
    )
    for epoch in (1, 2, 4, 6):
        official = official_step_gradients(
            copy.deepcopy(audio0), copy.deepcopy(heads0), inputs, image_tokens, epoch
        )
        for objective, expected in (("official", official[0]), ("ot_only", ot_alone)):
            encoder, heads = run(objective, epoch)
            for ours, theirs in zip(encoder, expected, strict=True):
                torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5 * theirs.abs().max().item())
            if epoch == 1:
                assert heads is None  # frozen: the heads' optimiser does not step
            else:
                for ours, theirs in zip(heads, official[1], strict=True):
                    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5 * theirs.abs().max().item())
        adapter = -2  # adapter.weight: the encoder's gradients differ once the heads train
        differ = not torch.allclose(official[0][adapter], ot_alone[adapter], rtol=1e-3)
        assert differ == (epoch > 1), epoch


def test_align_trains_cavmae_positions_as_the_official_code(tmp_path, prefix_dir, manifest, monkeypatch):
    seen, make = [], dali.make_aligner

    def spy(*args, **kwargs):
        aligner = make(*args, **kwargs)
        trained = {id(p) for g in aligner.optimizer.param_groups for p in g["params"]}
        seen.append(
            (
                aligner.audio.backbone.pos_embed_a.detach().clone(),
                id(aligner.audio.backbone.pos_embed_a) in trained,
            )
        )
        return aligner

    monkeypatch.setattr(ALIGN_RECIPE, "make_aligner", spy)
    out = dali.align(align_config(tmp_path / "a", prefix_dir, manifest), progress=False)
    initial, in_optimizer = seen[0]
    assert in_optimizer
    assert not torch.equal(initial, load_file(str(out / "audio.safetensors"))["backbone.pos_embed_a"])


def test_alignment_lr_halves_as_the_official_multisteplr():
    """Official: MultiStepLR(optimizer, list(range(10, 1000, 5)), gamma=0.5), stepped after each epoch."""
    cfg = AlignConfig(output_dir="o", prefix_dir="p", data={"manifest": "m"})
    ours = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    official = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(official, list(range(10, 1000, 5)), gamma=0.5)
    lrs = []
    for epoch in range(1, 41):
        lrs.append(ALIGN_RECIPE.set_epoch_lr(cfg, ours, epoch))
        assert lrs[-1] == pytest.approx(official.param_groups[0]["lr"], rel=1e-12), epoch
        official.step()
        scheduler.step()
    assert [lrs[e - 1] / 1e-4 for e in (10, 11, 16, 21, 36, 40)] == pytest.approx(
        [1, 0.5, 0.25, 0.125, 2**-6, 2**-6]
    )


def test_align_can_train_the_adapter_alone(tmp_path, prefix_dir, manifest, monkeypatch):
    initial, make = [], dali.make_aligner

    def spy(*args, **kwargs):
        aligner = make(*args, **kwargs)
        initial.append(frozen_state(aligner.audio))
        return aligner

    monkeypatch.setattr(ALIGN_RECIPE, "make_aligner", spy)
    out = dali.align(align_config(tmp_path / "a", prefix_dir, manifest, train_backbone=False), progress=False)
    final = load_file(str(out / "audio.safetensors"))
    assert all(torch.equal(v, final[k]) for k, v in initial[0].items() if k.startswith("backbone."))
    assert not torch.equal(initial[0]["adapter.weight"], final["adapter.weight"])


def test_align_resumes_mid_epoch_to_the_same_weights(tmp_path, prefix_dir, manifest, monkeypatch):
    kw = {"epochs": 2, "batch_size": 3, "save_every": 1}
    whole = dali.align(align_config(tmp_path / "whole", prefix_dir, manifest, **kw), progress=False)
    step, calls = dali.align_step, []

    def crash_on_fourth(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return step(*args, **kwargs)

    monkeypatch.setattr(ALIGN_RECIPE, "align_step", crash_on_fourth)
    cfg = align_config(tmp_path / "cut", prefix_dir, manifest, **kw)
    with pytest.raises(KeyboardInterrupt):
        dali.align(cfg, progress=False)
    assert not (tmp_path / "cut" / "done.json").exists()
    monkeypatch.setattr(ALIGN_RECIPE, "align_step", step)
    cut = dali.align(cfg, progress=False)  # resumes after epoch 2, step 1
    assert [json.loads(r)["step"] for r in (cut / "log.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
    a, b = load_file(str(whole / "audio.safetensors")), load_file(str(cut / "audio.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert losses(whole) == losses(cut)


def test_image_token_caches_and_loader_workers_change_nothing(tmp_path, prefix_dir, manifest):
    runs = {
        "none": {},
        "memory": {"image_token_cache": "memory"},
        "disk": {"image_token_cache": "disk", "data": {"manifest": str(manifest), "num_workers": 2}},
    }
    weights = {}
    for name, kw in runs.items():
        out = dali.align(align_config(tmp_path / name, prefix_dir, manifest, epochs=2, **kw), progress=False)
        weights[name] = load_file(str(out / "audio.safetensors"))
    assert len(list((tmp_path / "disk" / "image_tokens").glob("*.pt"))) == 6  # one file per frame
    for name in ("memory", "disk"):
        for k, v in weights["none"].items():
            assert torch.equal(v, weights[name][k]), (name, k)


# ---------------------------------------------------------------- stage 2 and captioning


def test_distill_trains_an_audio_projector_and_keeps_the_image_one(distill_dir, align_dir):
    curve = losses(distill_dir)
    assert len(curve) == 4 and curve[-1] < curve[0]
    rows = [json.loads(line) for line in (distill_dir / "pseudo_captions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"c{i}" for i in range(6)]
    assert all(Path(r["audio"]).is_absolute() and len(r["frames"]) == 1 for r in rows)
    for name in ("prefix", "audio"):  # carried over unchanged from align
        assert (distill_dir / f"{name}.safetensors").read_bytes() == (
            align_dir / f"{name}.safetensors"
        ).read_bytes()
    captioner = dali.load_captioner(distill_dir, device="cpu")
    original = tiny_llava().projector.state_dict()
    assert_same_state(original, captioner.llava.projector)
    assert (
        captioner.audio_projector is not None and captioner.audio_projector is not captioner.llava.projector
    )
    assert not torch.equal(captioner.audio_projector.linear_1.weight, original["linear_1.weight"])
    tokens = torch.randn(1, 4, captioner.llava.token_dim)
    torch.testing.assert_close(
        captioner.modality_embeds(image_tokens=tokens), captioner.llava.project(tokens)
    )


@pytest.mark.parametrize("mode", ["audio", "audio-visual", "image"])
def test_caption_modes_write_seeded_predictions(tmp_path, distill_dir, manifest, mode):
    def run(name: str) -> list[dict]:
        cfg = CaptionConfig(
            distill_dir=str(distill_dir),
            output=str(tmp_path / name),
            mode=mode,
            data={"manifest": str(manifest), "limit": 3},
            generation={"max_new_tokens": 5, "batch_size": 2},
        )
        out = dali.caption(cfg, progress=False)
        return [json.loads(line) for line in out.read_text().splitlines()]

    rows = run("a.jsonl")
    assert [r["id"] for r in rows] == ["c0", "c1", "c2"]
    assert {"id", "task", "audios", "prompt", "prediction", "references", "label"} <= rows[0].keys()
    assert rows[0]["references"] == [CAPTIONS[0], "a sound"] and rows[0]["mode"] == mode
    assert run("b.jsonl") == rows  # seeded sampling at T = 0.2


def test_image_mode_captions_from_a_prefix_folder(tmp_path, prefix_dir, manifest):
    cfg = CaptionConfig(
        distill_dir=str(prefix_dir),
        output=str(tmp_path / "p.jsonl"),
        mode="image",
        data={"manifest": str(manifest), "limit": 2},
        generation={"max_new_tokens": 3},
    )
    assert len(dali.caption(cfg, progress=False).read_text().splitlines()) == 2
    with pytest.raises(ConfigError, match="no aligned audio tokenizer"):
        dali.caption(
            cfg.model_copy(update={"mode": "audio", "output": str(tmp_path / "q.jsonl")}), progress=False
        )


def test_mean_tokens_give_one_point_per_clip_and_modality(distill_dir, manifest):
    from auralign.align import modality_gap

    captioner = dali.load_captioner(distill_dir, device="cpu")
    samples = dali.read_av_samples(validate({"manifest": str(manifest)}, AVData))
    audio, image = dali.mean_tokens(captioner, samples, batch_size=4)
    assert audio.shape == image.shape == (6, captioner.llava.token_dim)
    assert modality_gap(audio[:, None], image[:, None]).pca_x.shape == (6, 2)


# ---------------------------------------------------------------- chaining, configs, errors


def test_stages_chain_through_yaml_configs_and_the_cli(tmp_path, manifest, capsys):
    def write(name: str, body: dict) -> str:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(body))
        return str(path)

    data = {"manifest": str(manifest)}
    runs = tmp_path / "runs"
    configs = {
        "prefix": {
            "output_dir": str(runs / "prefix"),
            "model": MODEL,
            "data": data,
            "epochs": 1,
            "num_pairs": 2,
        },
        "align": {
            "output_dir": str(runs / "align"),
            "prefix_dir": str(runs / "prefix"),
            "data": data,
            "method": "ot_exact",
            "epochs": 1,
        },
        "distill": {
            "output_dir": str(runs / "distill"),
            "align_dir": str(runs / "align"),
            "data": data,
            "pseudo": {"max_new_tokens": 4},
        },
        "caption": {
            "distill_dir": str(runs / "distill"),
            "output": str(runs / "pred.jsonl"),
            "data": data,
            "mode": "audio-visual",
            "generation": {"max_new_tokens": 4},
        },
    }
    for stage, body in configs.items():
        args = ["dali", stage, write(stage, body), "--no-progress"]
        assert cli_main([*args, "--set", "seed=3"] if stage == "align" else args) == 0, stage
    saved = json.loads((runs / "distill" / "config.json").read_text())
    assert saved["model"]["audio"]["sizes"]["dim"] == 32  # inherited from the prefix stage's config
    assert json.loads((runs / "align" / "config.json").read_text())["seed"] == 3
    assert len((runs / "pred.jsonl").read_text().splitlines()) == 6
    # a stage pointed at an unfinished folder says which stage to run
    bad = write(
        "bad", configs["distill"] | {"align_dir": str(runs / "nowhere"), "output_dir": str(runs / "x")}
    )
    assert cli_main(["dali", "distill", bad]) == 2
    assert "auralign dali align" in capsys.readouterr().err


def test_missing_audio_or_frame_is_an_error_naming_it(tmp_path, prefix_dir):
    manifest = write_clips(tmp_path / "clips", n=3)
    (tmp_path / "clips" / "audio" / "c1.wav").unlink()
    with pytest.raises(DataError, match=r"'c1': audio file .*c1\.wav not found"):
        dali.align(align_config(tmp_path / "a", prefix_dir, manifest), progress=False)
    assert not (tmp_path / "a" / "audio.safetensors").exists()
    (tmp_path / "clips" / "frames" / "c2-1.png").unlink()  # the middle of two frames is the second
    cfg = PrefixConfig(output_dir=str(tmp_path / "p"), model=MODEL, data={"manifest": str(manifest)})
    with pytest.raises(DataError, match=r"'c2': frame file .*c2-1\.png not found"):
        dali.prefix_tune(cfg, progress=False)


def test_frame_choice_and_seeded_augmentation(manifest):
    middle = dali.read_av_samples(validate({"manifest": str(manifest)}, AVData))
    first = dali.read_av_samples(validate({"manifest": str(manifest), "frame": "first"}, AVData))
    assert middle[0].frames[0].name == "c0-1.png" and first[0].frames[0].name == "c0-0.png"
    audio = dali.build_audio(validate(MODEL["audio"], AudioSource), 32)
    assert audio.channel == "first"  # a stereo file's first channel, as the official extraction
    assert dali.build_audio(validate(MODEL["audio"] | {"channel": "mean"}, AudioSource), 32).channel == "mean"
    data = dali.AVDataset(middle, audio, None, augment_seed=0)
    clean = audio.prepare([middle[0].audio])[0]
    once, again = data[0][1], data[0][1]
    assert torch.equal(once, again) and not torch.equal(once, clean)  # a function of (seed, epoch, clip)
    data.epoch = 2
    assert not torch.equal(data[0][1], once)


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="method"):
        validate(
            {"output_dir": "o", "prefix_dir": "p", "data": {"manifest": "m"}, "method": "emd"}, AlignConfig
        )
    with pytest.raises(ConfigError, match=r"model\.audio"):
        validate(
            {"output_dir": "o", "data": {"manifest": "m"}, "model": {"audio": {"kind": "loader"}}},
            PrefixConfig,
        )
    with pytest.raises(ConfigError, match="neither a registered loader"):
        dali.build_llava(validate({"loader": "nope"}, LlavaSource), torch.device("cpu"))


# quickstart.yaml is the miniature's own config, validated by tests/test_dali_quickstart.py
@pytest.mark.parametrize(
    "path",
    sorted(p for p in CONFIGS.glob("*.yaml") if not p.stem.startswith("quickstart")),
    ids=lambda p: p.name,
)
def test_shipped_configs_validate(path):
    kinds = {"prefix": PrefixConfig, "align": AlignConfig, "distill": DistillConfig, "caption": CaptionConfig}
    cfg = load_config(path, kinds[path.stem.split("-")[0]])
    if isinstance(cfg, PrefixConfig):
        assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.num_pairs) == (500, 16, 1e-3, 16)
    if isinstance(cfg, AlignConfig):
        assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.betas, cfg.lr_milestones) == (
            20,
            256,
            1e-4,
            (0.95, 0.999),
            list(range(10, 1000, 5)),
        )


def test_a_finished_caption_output_is_kept_for_its_config_and_refused_for_another(
    tmp_path, distill_dir, manifest
):
    cfg = CaptionConfig(
        distill_dir=str(distill_dir),
        output=str(tmp_path / "c.jsonl"),
        mode="audio",
        data={"manifest": str(manifest), "limit": 2},
        generation={"max_new_tokens": 3},
    )
    out = dali.caption(cfg, progress=False)
    before, mtime = out.read_bytes(), out.stat().st_mtime_ns
    assert dali.caption(cfg.model_copy(update={"device": "cpu"}), progress=False) == out  # a runtime key
    assert out.stat().st_mtime_ns == mtime
    other = cfg.model_copy(update={"mode": "audio-visual"})
    with pytest.raises(DataError, match=r"holds captions of another run \(differs in: config\.mode\)"):
        dali.caption(other, progress=False)
    (tmp_path / "c.origin.json").unlink()  # an output that does not say what made it
    with pytest.raises(DataError, match=r"no c\.origin\.json beside it"):
        dali.caption(cfg, progress=False)
    assert out.read_bytes() == before


def test_a_killed_caption_journal_is_not_resumed_by_another_config(tmp_path, distill_dir, manifest):
    from auralign.train.dali.caption import caption_origin

    cfg = CaptionConfig(
        distill_dir=str(distill_dir),
        output=str(tmp_path / "c.jsonl"),
        data={"manifest": str(manifest), "limit": 2},
        generation={"max_new_tokens": 3, "batch_size": 1},  # resume skips whole batches
    )
    journal = Journal(tmp_path / "c.jsonl.partial")
    journal.claim(caption_origin(cfg, distill_dir))
    journal.append({"id": "c0", "prediction": "left by a killed run"})
    other = cfg.model_copy(update={"generation": cfg.generation.model_copy(update={"temperature": 0.7})})
    with pytest.raises(DataError, match=r"differs in: config\.generation\.temperature"):
        dali.caption(other, progress=False)
    rows = [json.loads(line) for line in dali.caption(cfg, progress=False).read_text().splitlines()]
    assert rows[0]["prediction"] == "left by a killed run" and [r["id"] for r in rows] == ["c0", "c1"]
