"""The audio backbones' shared interface: YAMNet's frame cache keeps the keys and bytes earlier versions wrote,
and every backbone plugs into DALI's AudioTokenizer."""

import hashlib
import io

import numpy as np
import pytest
import soundfile as sf
import torch

from auralign.audio import load_audio
from auralign.models.encoders.base import AudioBackbone, AudioTokenizer, first_channel, pick_channel
from auralign.models.encoders.cavmae import CAVMAEBackbone
from auralign.models.encoders.yamnet import feature_cache
from auralign.models.testing import tiny_cavmae_config


def test_feature_cache_keys_and_files_are_the_old_ones(tmp_path) -> None:
    clip = tmp_path / "clip.wav"
    sf.write(clip, np.zeros(1600, np.float32), 16000)
    st = clip.stat()
    # the key FeatureCache used: sha1 of "resolved path|size|mtime_ns", under a two-character fan-out folder
    digest = hashlib.sha1(f"{clip.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    cache = feature_cache(tmp_path / "features")
    assert cache.entry(clip) == tmp_path / "features" / digest[:2] / f"{digest}.npy"
    frames = np.random.default_rng(0).standard_normal((3, 1024)).astype(np.float32)
    assert np.array_equal(cache.get(clip, lambda: frames), frames) and cache.misses == 1
    expected = io.BytesIO()
    np.save(expected, frames)
    assert cache.entry(clip).read_bytes() == expected.getvalue()
    assert np.array_equal(cache.get(clip, lambda: None), frames) and cache.hits == 1


def test_backbones_share_one_interface() -> None:
    backbone = CAVMAEBackbone(tiny_cavmae_config())
    assert isinstance(backbone, AudioBackbone)
    tokens = AudioTokenizer(backbone, token_dim=8).encode([np.zeros(16000, np.float32)])
    assert tokens.shape == (1, 512, 8)
    with pytest.raises(TypeError, match="AudioBackbone interface"):
        AudioTokenizer(torch.nn.Linear(2, 2))


def test_dali_tokenizer_takes_a_stereo_files_first_channel_or_the_mean(tmp_path) -> None:
    """The official DALI extraction keeps the first channel (torchaudio.load gives (channels, frames), then
    `waveform[0, :]`); `channel: mean` averages, as every backbone's own loading does."""
    rng = np.random.default_rng(1)
    left, right = (rng.normal(0, 0.1, 16000).astype(np.float32) for _ in range(2))
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.stack([left, right], 1), 16000, subtype="FLOAT")
    official = np.ascontiguousarray(sf.read(stereo, dtype="float32", always_2d=True)[0].T[0, :])  # [0, :]
    backbone = CAVMAEBackbone(tiny_cavmae_config())
    first = AudioTokenizer(backbone, token_dim=8).prepare([stereo])
    assert torch.equal(first, backbone.prepare([official]))
    mean = AudioTokenizer(backbone, token_dim=8, channel="mean").prepare([stereo])
    torch.testing.assert_close(mean, backbone.prepare([(left + right) / 2]))
    assert not torch.allclose(first, mean)
    # resampled as load_audio resamples: a 32 kHz stereo file's first channel = its left channel alone
    sf.write(tmp_path / "s32.wav", np.stack([left, right], 1), 32000, subtype="FLOAT")
    sf.write(tmp_path / "l32.wav", left, 32000, subtype="FLOAT")
    assert np.array_equal(first_channel(tmp_path / "s32.wav"), load_audio(tmp_path / "l32.wav", sr=16000))
    mono = tmp_path / "l32.wav"
    assert pick_channel(mono, "first") is mono  # a mono file stays a path (a backbone's file cache applies)
    with pytest.raises(ValueError, match="channel"):
        AudioTokenizer(backbone, channel="left")
