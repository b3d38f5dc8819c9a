"""CAV-MAE audio branch: token layout, an independent forward over official key names, checkpoint loading, and
the audio tokenizers (CAV-MAE and transformers backbones) behind one interface."""

import math

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from auralign.audio import AudioError
from auralign.errors import ConfigError
from auralign.models.dali.cavmae import CAVMAEAudio, CAVMAEConfig, load_cavmae_checkpoint, sincos_2d
from auralign.models.encoders.base import AudioTokenizer
from auralign.models.encoders.cavmae import CAVMAEBackbone
from auralign.models.testing import tiny_cavmae_config

CFG = tiny_cavmae_config()


def official_state_dict(cfg: CAVMAEConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state dict with the official CAVMAE's key names and shapes, as DataParallel saves it: both
    branches, three norm pairs per block, the decoder, and DALI's `proj` adapter."""
    g = torch.Generator().manual_seed(seed)
    d, h = cfg.dim, int(cfg.dim * cfg.mlp_ratio)
    rand = lambda *shape: torch.randn(*shape, generator=g) * 0.2  # noqa: E731
    sd = {
        "patch_embed_a.proj.weight": rand(d, 1, cfg.patch, cfg.patch),
        "patch_embed_a.proj.bias": rand(d),
        "patch_embed_v.proj.weight": rand(d, 3, cfg.patch, cfg.patch),
        "patch_embed_v.proj.bias": rand(d),
        "pos_embed_a": rand(1, cfg.num_tokens, d),
        "pos_embed_v": rand(1, 196, d),
        "modality_a": rand(1, 1, d),
        "modality_v": rand(1, 1, d),
        "norm_a.weight": 1 + rand(d), "norm_a.bias": rand(d),
        "norm_v.weight": 1 + rand(d), "norm_v.bias": rand(d),
        "norm.weight": 1 + rand(d), "norm.bias": rand(d),
        "decoder_embed.weight": rand(16, d),
        "mask_token": rand(1, 1, 16),
        "decoder_blocks.0.attn.qkv.weight": rand(48, 16),
        "proj.weight": rand(1024, d), "proj.bias": rand(1024),
    }  # fmt: skip
    blocks = [("blocks_a", cfg.depth_a), ("blocks_v", cfg.depth_a), ("blocks_u", cfg.depth_u)]
    for stream, depth in blocks:
        for i in range(depth):
            p = f"{stream}.{i}."
            for norm in ("norm1", "norm1_a", "norm1_v", "norm2", "norm2_a", "norm2_v"):
                sd[p + norm + ".weight"], sd[p + norm + ".bias"] = 1 + rand(d), rand(d)
            sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"] = rand(3 * d, d), rand(3 * d)
            sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"] = rand(d, d), rand(d)
            sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"] = rand(h, d), rand(h)
            sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"] = rand(d, h), rand(d)
    return {"module." + k: v for k, v in sd.items()}


def reference_audio_forward(
    sd: dict[str, torch.Tensor], fbank: torch.Tensor, cfg: CAVMAEConfig
) -> torch.Tensor:
    """The official `forward_audio_feat` written functionally over the official keys: blocks_a with their plain
    norms, blocks_u with the `_a` norms, then norm_a; attention spelled out with an explicit softmax."""
    w = {k.removeprefix("module."): v for k, v in sd.items()}
    d, heads = cfg.dim, cfg.heads
    x = fbank.unsqueeze(1).transpose(2, 3)  # (B, T, F) -> (B, 1, F, T), as the official code
    x = F.conv2d(x, w["patch_embed_a.proj.weight"], w["patch_embed_a.proj.bias"], stride=cfg.patch)
    x = x.flatten(2).transpose(1, 2) + w["pos_embed_a"] + w["modality_a"]

    def block(x, p, n1, n2):
        b, n, _ = x.shape
        y = F.layer_norm(x, (d,), w[p + n1 + ".weight"], w[p + n1 + ".bias"])
        q, k, v = (y @ w[p + "attn.qkv.weight"].T + w[p + "attn.qkv.bias"]).view(b, n, 3, heads, -1).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // heads), -1) @ v
        x = x + att.transpose(1, 2).reshape(b, n, d) @ w[p + "attn.proj.weight"].T + w[p + "attn.proj.bias"]
        y = F.layer_norm(x, (d,), w[p + n2 + ".weight"], w[p + n2 + ".bias"])
        y = F.gelu(y @ w[p + "mlp.fc1.weight"].T + w[p + "mlp.fc1.bias"])
        return x + y @ w[p + "mlp.fc2.weight"].T + w[p + "mlp.fc2.bias"]

    for i in range(cfg.depth_a):
        x = block(x, f"blocks_a.{i}.", "norm1", "norm2")
    for i in range(cfg.depth_u):
        x = block(x, f"blocks_u.{i}.", "norm1_a", "norm2_a")
    return F.layer_norm(x, (d,), w["norm_a.weight"], w["norm_a.bias"])


def test_tokens_have_the_real_layout_and_bad_shapes_are_refused():
    model = CAVMAEAudio(CFG).eval()
    assert CFG.grid == (8, 64) and model.num_tokens == 512
    assert model(torch.randn(2, 1024, 128)).shape == (2, 512, CFG.dim)
    with pytest.raises(ValueError, match=r"\(batch, 1024 frames, 128 bins\).*\(2, 128, 1024\)"):
        model(
            torch.randn(2, 128, 1024)
        )  # frequency-major input: the transpose is ours to do, not the caller's
    with pytest.raises(ValueError, match="cavmae_fbank"):
        model(torch.randn(1024, 128))


def test_patches_are_frequency_major():
    model = CAVMAEAudio(CFG)
    fbank = torch.zeros(1, 1024, 128)
    fbank[0, 5 * 16 : 6 * 16, 2 * 16 : 3 * 16] = 1.0  # time patch 5, frequency patch 2
    x = fbank.transpose(1, 2).unsqueeze(1)
    tokens = model.patch_embed_a(x)[0]
    changed = (tokens - model.patch_embed_a.proj.bias).abs().sum(1).nonzero().flatten().tolist()
    assert changed == [2 * 64 + 5]


def test_sincos_positions_encode_time_then_frequency():
    dim, pos = 32, sincos_2d(32, 8, 64)
    assert pos.shape == (512, dim)
    q = dim // 4
    for f, t in [(0, 0), (3, 17), (7, 63)]:
        row = pos[f * 64 + t]
        assert math.isclose(row[0], math.sin(t), abs_tol=1e-6) and math.isclose(
            row[q], math.cos(t), abs_tol=1e-6
        )
        assert math.isclose(row[2 * q], math.sin(f), abs_tol=1e-6)
        assert math.isclose(row[3 * q], math.cos(f), abs_tol=1e-6)
        assert math.isclose(row[1], math.sin(t / 10000 ** (1 / q)), abs_tol=1e-6)


def test_audio_positions_start_as_sincos_train_and_load_from_official_checkpoints():
    """The official alignment calls requires_grad_(True) on the whole CAV-MAE: `pos_embed_a` trains too."""
    model = CAVMAEAudio(CFG)
    params = dict(model.named_parameters())
    assert "pos_embed_a" in params and params["pos_embed_a"].requires_grad
    assert torch.equal(model.pos_embed_a[0], sincos_2d(CFG.dim, *CFG.grid))  # CAV-MAE's fixed values at start
    sd = official_state_dict(CFG)
    assert load_cavmae_checkpoint(model, sd).missing == []
    assert torch.equal(model.pos_embed_a, sd["module.pos_embed_a"])  # the official state dict holds it
    model(torch.randn(1, 1024, 128)).square().mean().backward()
    assert model.pos_embed_a.grad is not None and model.pos_embed_a.grad.abs().sum() > 0


def test_official_checkpoint_loads_and_matches_an_independent_forward():
    sd = official_state_dict(CFG)
    model = CAVMAEAudio(CFG).eval()
    adapter = torch.nn.Linear(CFG.dim, 1024)
    missing, unexpected = load_cavmae_checkpoint(model, sd, adapter=adapter)
    assert missing == [] and unexpected == []
    # the shared block took its audio norms, not the joint ones that sit beside them in the file
    assert torch.equal(model.blocks_u[0].norm1_a.weight, sd["module.blocks_u.0.norm1_a.weight"])
    assert torch.equal(model.blocks_a[1].norm2.bias, sd["module.blocks_a.1.norm2.bias"])
    assert torch.equal(adapter.weight, sd["module.proj.weight"])
    fbank = torch.randn(2, 1024, 128)
    with torch.no_grad():
        ours = model(fbank)
        ref = reference_audio_forward(sd, fbank, CFG)
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)


def test_missing_and_unexpected_keys_are_reported(tmp_path):
    sd = official_state_dict(CFG)
    del sd["module.norm_a.bias"], sd["module.proj.weight"], sd["module.proj.bias"]
    sd["module.blocks_a.0.attn.relative_bias"] = torch.zeros(3)
    sd["module.blocks_a.7.attn.qkv.weight"] = torch.zeros(3)  # a deeper checkpoint than the config
    model = CAVMAEAudio(CFG)
    result = load_cavmae_checkpoint(model, sd, adapter=torch.nn.Linear(CFG.dim, 1024))
    assert result.missing == ["norm_a.bias", "proj.weight", "proj.bias"]
    assert result.unexpected == ["blocks_a.0.attn.relative_bias", "blocks_a.7.attn.qkv.weight"]
    assert "missing: norm_a.bias, proj.weight, proj.bias" in str(result)
    # a plain CAV-MAE checkpoint (no DALI adapter) leaves the adapter out and says so, from a file too
    plain = {k: v for k, v in official_state_dict(CFG).items() if not k.startswith("module.proj.")}
    torch.save({"state_dict": plain}, tmp_path / "cav-mae-scale++.pth")
    tok, res = AudioTokenizer.cavmae(tmp_path / "cav-mae-scale++.pth", config=CFG)
    assert res.missing == ["proj.weight", "proj.bias"] and res.unexpected == []
    assert torch.equal(tok.backbone.modality_a, plain["module.modality_a"])


def test_checkpoint_errors_name_the_file(tmp_path):
    visual_only = {k: v for k, v in official_state_dict(CFG).items() if "_a" not in k and "blocks_u" not in k}
    torch.save(visual_only, tmp_path / "visual.pth")
    with pytest.raises(ConfigError, match=r"visual\.pth: no CAV-MAE audio-branch weights.*blocks_a"):
        load_cavmae_checkpoint(CAVMAEAudio(CFG), tmp_path / "visual.pth")
    with pytest.raises(ConfigError, match=r"absent\.pth: no such checkpoint file"):
        load_cavmae_checkpoint(CAVMAEAudio(CFG), tmp_path / "absent.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match=r"garbage\.pth: cannot read a state dict"):
        load_cavmae_checkpoint(CAVMAEAudio(CFG), tmp_path / "garbage.pth")
    wide = CAVMAEConfig(dim=64, heads=4, depth_a=2, depth_u=1)
    with pytest.raises(
        ConfigError,
        match=r"does not fit the model config: pos_embed_a: .*; modality_a: file \(1, 1, 32\) vs model \(1, 1, 64\)",
    ):
        load_cavmae_checkpoint(CAVMAEAudio(wide), official_state_dict(CFG))


def test_safetensors_checkpoint(tmp_path):
    from safetensors.torch import save_file

    sd = official_state_dict(CFG)
    save_file(sd, tmp_path / "audio.safetensors")
    model = CAVMAEAudio(CFG)
    assert load_cavmae_checkpoint(model, tmp_path / "audio.safetensors").unexpected == []
    assert torch.equal(model.patch_embed_a.proj.weight, sd["module.patch_embed_a.proj.weight"])


def test_cavmae_tokenizer_from_waves_and_files(tmp_path):
    tok, result = AudioTokenizer.cavmae(config=CFG)
    assert result is None and isinstance(tok.backbone, CAVMAEBackbone)
    rng = np.random.default_rng(0)
    waves = [
        rng.normal(0, 0.1, 16000 * 3).astype(np.float32),
        rng.normal(0, 0.1, 16000 * 12).astype(np.float32),
    ]
    sf.write(tmp_path / "clip.wav", waves[0], 16000, subtype="FLOAT")
    inputs = tok.prepare([waves[0], tmp_path / "clip.wav", waves[1]])
    assert inputs.shape == (3, 1024, 128)
    torch.testing.assert_close(inputs[0], inputs[1])  # the file holds the same float samples
    with torch.no_grad():
        tokens = tok(inputs)
    assert tokens.shape == (3, 512, 1024) and tok.token_dim == 1024
    sf.write(tmp_path / "blip.wav", rng.normal(0, 0.1, 100).astype(np.float32), 16000)
    with pytest.raises(AudioError, match=r"blip\.wav: waveform of 100 samples is shorter"):
        tok.prepare([tmp_path / "blip.wav"])


@pytest.mark.filterwarnings("ignore:At least one mel filter has all zero values")  # true of 128 Kaldi bins
def test_transformers_ast_backbone_behind_the_same_interface(tmp_path):
    from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

    cfg = ASTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_length=128,
        num_mel_bins=128,
        frequency_stride=16,
        time_stride=16,
    )
    ASTModel(cfg).save_pretrained(tmp_path)
    ASTFeatureExtractor(max_length=128, num_mel_bins=128).save_pretrained(tmp_path)
    tok = AudioTokenizer.from_transformers(tmp_path, token_dim=1024)
    inputs = tok.prepare([np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)] * 2)
    assert inputs.shape == (2, 128, 128)
    with torch.no_grad():
        tokens = tok(inputs)
    assert tokens.shape == (2, 8 * 8, 1024)  # 128/16 x 128/16 patches; CLS and distillation tokens dropped
    with torch.no_grad():
        full = tok.backbone.encoder(inputs).last_hidden_state
    torch.testing.assert_close(tokens, tok.adapter(full[:, 2:]))


def test_transformers_whisper_encoder_backbone(tmp_path):
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    cfg = WhisperConfig(
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        num_mel_bins=80,
        vocab_size=100,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    WhisperModel(cfg).save_pretrained(tmp_path)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(tmp_path)
    tok = AudioTokenizer.from_transformers(tmp_path, token_dim=1024)
    with torch.no_grad():
        tokens = tok.encode([np.zeros(16000, dtype=np.float32)])
    assert tokens.shape == (1, 1500, 1024)


def test_unsupported_transformers_backbone_is_refused(tmp_path):
    from transformers import BertConfig

    BertConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    ).save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="'bert' is not a supported audio backbone"):
        AudioTokenizer.from_transformers(tmp_path)
