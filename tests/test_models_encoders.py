"""The audio backbones' shared interface: YAMNet's frame cache keeps the keys and bytes earlier versions wrote,
and every backbone plugs into DALI's AudioTokenizer."""

import hashlib
import io

import numpy as np
import pytest
import soundfile as sf
import torch

from auralign.models.encoders.base import AudioBackbone, AudioTokenizer
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
