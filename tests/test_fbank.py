"""The Kaldi fbank against an independent float64 numpy rendering of Kaldi's recipe, transformers' numpy fbank,
and known properties (frame count, silence floor, CAV-MAE padding and normalisation)."""

import functools
import math

import numpy as np
import pytest
import torch

from auralign.audio.fbank import (
    CAVMAE_MEAN,
    CAVMAE_STD,
    KALDI_EPS,
    cavmae_fbank,
    kaldi_fbank,
    kaldi_mel_banks,
)


@functools.cache
def reference_banks(sr: int, bins: int, n_fft: int) -> np.ndarray:
    """Kaldi's MelBanks (mel-computations.cc), in its BaseFloat (float32) arithmetic: triangles on
    1127 ln(1 + f/700) between 20 Hz and Nyquist, weights strictly inside the edges."""
    f32 = np.float32
    mel = lambda f: f32(1127.0) * np.log(f32(1.0) + f32(f) / f32(700.0))  # noqa: E731
    low, high = mel(20.0), mel(sr / 2)
    delta = (high - low) / f32(bins + 1)
    banks = np.zeros((bins, n_fft // 2 + 1))
    for b in range(bins):
        left, centre, right = low + f32(b) * delta, low + f32(b + 1) * delta, low + f32(b + 2) * delta
        for i in range(n_fft // 2):
            m = mel(f32(sr / n_fft) * f32(i))
            if left < m < right:
                banks[b, i] = (m - left) / (centre - left) if m <= centre else (right - m) / (right - centre)
    return banks


def kaldi_reference(
    wave: np.ndarray,
    sr: int = 16000,
    bins: int = 128,
    window: str = "hanning",
    banks: np.ndarray | None = None,
) -> np.ndarray:
    """Kaldi's compute-fbank-feats written out frame by frame from feature-window.cc, in float64 but for the
    mel banks (given, or Kaldi's own float32 ones)."""
    wave = np.asarray(wave, dtype=np.float64)
    size, shift, n_fft = 400, 160, 512
    hann = np.hanning(size)  # numpy's symmetric Hann: 0.5 - 0.5 cos(2 pi n / (N - 1)), as Kaldi's
    win = {"hanning": hann, "povey": hann**0.85}[window]
    banks = reference_banks(sr, bins, n_fft) if banks is None else banks
    out = []
    for t in range(1 + (len(wave) - size) // shift):
        frame = wave[t * shift : t * shift + size].copy()
        frame -= frame.mean()
        frame = np.concatenate(
            [[frame[0] * (1 - 0.97)], frame[1:] - 0.97 * frame[:-1]]
        )  # Kaldi's pre-emphasis
        padded = np.zeros(n_fft)
        padded[:size] = frame * win
        power = np.abs(np.fft.rfft(padded)) ** 2
        out.append(np.log(np.maximum(banks @ power, np.finfo(np.float32).eps)))
    return np.array(out)


def random_signal(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.integers(400, 12000))
    kind = rng.integers(4)
    t = np.arange(n) / 16000
    if kind == 0:
        x = rng.normal(0, rng.uniform(1e-3, 0.5), n)
    elif kind == 1:
        x = rng.uniform(0.05, 0.9) * np.sin(2 * np.pi * rng.uniform(30, 7900) * t + rng.uniform(0, 6))
    elif kind == 2:  # chirp plus a DC offset that the per-frame DC removal must cancel
        x = 0.3 * np.sin(2 * np.pi * (100 + 3000 * t) * t) + rng.uniform(-0.5, 0.5)
    else:  # sparse clicks over silence: many bins sit on the epsilon floor
        x = np.zeros(n)
        x[rng.integers(0, n, size=5)] = rng.uniform(-1, 1, size=5)
    return x


def test_mel_banks_match_kaldi_up_to_float32_rounding():
    # Kaldi rounds the mel edges to float before the arithmetic, torchaudio (and we) after: the narrow low
    # banks' weights differ by ~2e-5, which moves their log energies by up to ~2e-4
    ours = kaldi_mel_banks(128, 512, 16000).numpy()
    assert np.abs(ours - reference_banks(16000, 128, 512)).max() < 5e-5


def test_matches_float64_kaldi_reference_on_many_random_signals():
    rng = np.random.default_rng(0)
    ours_banks = kaldi_mel_banks(128, 512, 16000).double().numpy()
    worst_pipeline = worst_kaldi = worst32 = 0.0
    for _ in range(40):
        x = random_signal(rng)
        ours64 = kaldi_fbank(torch.from_numpy(x)).numpy()  # float64 in, float64 arithmetic
        ours32 = kaldi_fbank(torch.from_numpy(x.astype(np.float32))).numpy()
        same_banks = kaldi_reference(x, banks=ours_banks)
        assert ours64.shape == same_banks.shape == (1 + (len(x) - 400) // 160, 128)
        worst_pipeline = max(worst_pipeline, np.abs(ours64 - same_banks).max())  # framing, window, FFT, log
        worst_kaldi = max(worst_kaldi, np.abs(ours64 - kaldi_reference(x)).max())  # and Kaldi's own banks
        # float32 log-energies: compare where the energy is well above float32 round-off of the frame
        loud = same_banks > np.log(KALDI_EPS) + 8
        worst32 = max(worst32, np.abs(ours32 - same_banks)[loud].max(initial=0.0))
    assert worst_pipeline < 1e-9
    assert worst_kaldi < 1e-3
    assert worst32 < 2e-3


def test_povey_window_and_batched_input():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.1, (3, 4000))
    ours = kaldi_fbank(torch.from_numpy(x), window="povey").numpy()
    assert ours.shape == (3, 23, 128)  # 1 + (4000 - 400) // 160
    banks = kaldi_mel_banks(128, 512, 16000).double().numpy()
    for row, signal in zip(ours, x, strict=True):
        np.testing.assert_allclose(row, kaldi_reference(signal, window="povey", banks=banks), atol=1e-9)


@pytest.mark.filterwarnings("ignore:At least one mel filter has all zero values")
def test_matches_transformers_numpy_kaldi_fbank():
    # transformers' AST feature extractor ships its own Kaldi-compatible numpy fbank (used without torchaudio)
    from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

    filters = mel_filter_bank(
        num_frequency_bins=257,
        num_mel_filters=128,
        min_frequency=20,
        max_frequency=8000,
        sampling_rate=16000,
        norm=None,
        mel_scale="kaldi",
        triangularize_in_mel_space=True,
    )
    rng = np.random.default_rng(2)
    for _ in range(5):
        x = rng.normal(0, 0.2, int(rng.integers(1000, 9000)))
        theirs = spectrogram(
            x,
            window_function(400, "hann", periodic=False),
            frame_length=400,
            hop_length=160,
            fft_length=512,
            power=2.0,
            center=False,
            preemphasis=0.97,
            mel_filters=filters,
            log_mel="log",
            mel_floor=1.192092955078125e-07,
            remove_dc_offset=True,
            dtype=np.float64,
        ).T
        # their banks are computed in float64, ours in float32 as torchaudio's: ~1e-5 apart, ~5e-5 in log
        np.testing.assert_allclose(kaldi_fbank(torch.from_numpy(x)).numpy(), theirs, atol=1e-4, rtol=0)


def test_mel_banks_are_triangles_on_kaldi_mel_scale():
    banks = kaldi_mel_banks(128, 512, 16000).numpy()
    assert banks.shape == (128, 257)
    assert banks.min() >= 0 and banks.max() <= 1
    assert (banks[:, 256] == 0).all()  # Kaldi never weights the Nyquist bin
    # at 128 banks over 257 bins the lowest triangles are narrower than an FFT bin: bank 3 catches none, so
    # CAV-MAE's fbank always holds log(eps) there (Kaldi and torchaudio alike); every other bank is live
    assert (banks.sum(1) == 0).nonzero()[0].tolist() == [3]
    peaks = np.delete(banks.argmax(1), 3)
    assert (np.diff(peaks) >= 0).all()  # centres rise with the bank index


def test_frame_count_and_silence_floor():
    silence = torch.zeros(16000)
    out = kaldi_fbank(silence)
    assert out.shape == (98, 128)  # 1 + (16000 - 400) // 160
    assert torch.allclose(out, torch.full_like(out, math.log(KALDI_EPS)))
    assert kaldi_fbank(torch.zeros(400)).shape == (1, 128)
    assert kaldi_fbank(torch.zeros(559)).shape == (1, 128)
    assert kaldi_fbank(torch.zeros(560)).shape == (2, 128)


def test_too_short_or_integer_input_is_refused():
    with pytest.raises(ValueError, match="shorter than one 25 ms frame"):
        kaldi_fbank(torch.zeros(399))
    with pytest.raises(ValueError, match="float waveform"):
        kaldi_fbank(torch.zeros(1000, dtype=torch.int16))
    with pytest.raises(ValueError, match="unknown window"):
        kaldi_fbank(torch.zeros(1000), window="blackmanharris")


def test_cavmae_fbank_pads_crops_and_normalises():
    rng = np.random.default_rng(3)
    ten_s = rng.normal(0, 0.1, 160000).astype(np.float32)
    full = cavmae_fbank(ten_s)
    assert full.shape == (1024, 128) and full.dtype == torch.float32
    raw = kaldi_fbank(torch.from_numpy(ten_s - ten_s.mean()))  # 998 frames, then 26 zero frames
    # float32 mean removal differs by summation order (numpy here, torch inside); the log amplifies it in
    # low-energy bins to ~1e-5 on values of order 1.
    np.testing.assert_allclose(full[:998].numpy(), ((raw - CAVMAE_MEAN) / CAVMAE_STD).numpy(), atol=1e-4)
    np.testing.assert_allclose(full[998:].numpy(), -CAVMAE_MEAN / CAVMAE_STD, atol=1e-6)
    long = cavmae_fbank(rng.normal(0, 0.1, 200000))
    assert long.shape == (1024, 128)
    ast_style = cavmae_fbank(ten_s, std_scale=2.0)
    np.testing.assert_allclose(ast_style.numpy(), full.numpy() / 2, atol=1e-6)


def test_cavmae_fbank_removes_the_waveform_mean():
    rng = np.random.default_rng(4)
    x = rng.normal(0, 0.1, 32000).astype(np.float32)
    # a constant offset changes nothing: global mean removal (CAV-MAE's loader) plus per-frame DC removal
    np.testing.assert_allclose(cavmae_fbank(x + 0.3).numpy(), cavmae_fbank(x).numpy(), atol=2e-3)


def test_cavmae_fbank_refuses_wrong_shapes_and_rates():
    with pytest.raises(ValueError, match="mono"):
        cavmae_fbank(np.zeros((2, 16000), dtype=np.float32))
    with pytest.raises(ValueError, match="16 kHz"):
        cavmae_fbank(np.zeros(16000, dtype=np.float32), sample_rate=44100)


def test_fixed_signal_against_torchaudio_values():
    # Values printed by torchaudio 2.11.0's compliance/kaldi.py (pure torch; run beside our torch for this
    # purpose, float64) for fbank(x, htk_compat=True, use_energy=False, window_type='hanning',
    # num_mel_bins=128, dither=0.0, frame_shift=10): two sines plus a chirp, 4000 samples -> 23 frames.
    n = torch.arange(4000, dtype=torch.float64)
    x = 0.5 * torch.sin(2 * math.pi * 440 * n / 16000) + 0.25 * torch.sin(
        2 * math.pi * 3000 * n / 16000 + 0.3
    )
    x = x + 0.05 * torch.sin(2 * math.pi * (200 + 2 * n) * n / 16000)
    bins = [1, 2, 10, 20, 40, 60, 77, 100, 127]
    expected = {
        0: [-14.59625683, -11.15285563, -9.37280236, -0.32301122, -1.32752748, -4.37926394, -10.61162791, -15.94238515, -15.94238515],
        7: [-14.22938674, -10.78598555, -9.45957131, -0.35858214, -13.40061334, -15.94238515, -10.58731605, -10.7872126, -15.94238515],
        22: [-13.51712532, -10.07372412, -9.04257159, -0.2498363, -1.24864456, -5.86975841, -10.56734659, -15.94238515, -15.94238515],
    }  # fmt: skip
    ours = kaldi_fbank(x)
    assert ours.shape == (23, 128)
    for frame, values in expected.items():
        np.testing.assert_allclose(ours[frame, bins].numpy(), values, atol=1e-7, rtol=0)
