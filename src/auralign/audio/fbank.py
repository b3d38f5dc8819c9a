"""Kaldi-compatible log-mel filterbank in plain torch, and the normalised CAV-MAE input built from it.

`kaldi_fbank` reproduces `torchaudio.compliance.kaldi.fbank` (which reproduces Kaldi's compute-fbank-feats)
for the options audio transformers use: frames of 25 ms every 10 ms with `snip_edges`, per-frame DC removal,
pre-emphasis, a povey/hanning/hamming window, zero padding to a power of two, power spectrum, triangular mel
banks on Kaldi's mel scale (1127 ln(1 + f/700)), log with a float32-epsilon floor. torchaudio does not load
beside our torch build, hence our own.

`cavmae_fbank` is CAV-MAE's (and DALI's) input: remove the waveform mean, 128-bin fbank, pad with zeros or
crop to 1024 frames, then (fbank - mean) / std with AudioSet statistics. The official CAV-MAE and DALI loaders
divide by std; AST's loader divides by 2 std, hence `std_scale`.
"""

import math

import numpy as np
import torch

KALDI_EPS = float(torch.finfo(torch.float32).eps)  # Kaldi floors energies at float epsilon before the log
CAVMAE_MEAN, CAVMAE_STD = -5.081, 4.4849  # AudioSet fbank statistics used by CAV-MAE and DALI
CAVMAE_FRAMES, CAVMAE_BINS = 1024, 128


def kaldi_mel(freq: torch.Tensor) -> torch.Tensor:
    return 1127.0 * (1.0 + freq / 700.0).log()


def kaldi_mel_banks(
    num_bins: int, n_fft: int, sample_rate: float, low_freq: float = 20.0, high_freq: float = 0.0
) -> torch.Tensor:
    """Triangular filters, (num_bins, n_fft // 2 + 1), equally spaced on the mel scale between the edges.

    `high_freq <= 0` counts down from Nyquist, as in Kaldi. The Nyquist bin gets no weight (Kaldi's filters
    cover the first n_fft // 2 bins only). Computed in float32 like Kaldi (BaseFloat) and torchaudio: the
    narrow low banks are sensitive to that rounding, and it is what CAV-MAE's features were computed with.
    """
    nyquist = sample_rate / 2
    high = high_freq + nyquist if high_freq <= 0 else high_freq
    if not 0 <= low_freq < high <= nyquist:
        raise ValueError(
            f"mel banks need 0 <= low_freq < high_freq <= {nyquist:g} Hz, got {low_freq}, {high}"
        )
    mel_low, mel_high = (1127.0 * math.log(1.0 + f / 700.0) for f in (low_freq, high))
    delta = (mel_high - mel_low) / (num_bins + 1)
    b = torch.arange(num_bins, dtype=torch.float32)[:, None]
    left, centre, right = mel_low + b * delta, mel_low + (b + 1.0) * delta, mel_low + (b + 2.0) * delta
    mel = kaldi_mel(sample_rate / n_fft * torch.arange(n_fft // 2, dtype=torch.float32))[None]
    up, down = (mel - left) / (centre - left), (right - mel) / (right - centre)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return torch.nn.functional.pad(banks, (0, 1))


def kaldi_window(kind: str, length: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    n = torch.arange(length, dtype=torch.float64)
    hann = 0.5 - 0.5 * torch.cos(2 * math.pi * n / (length - 1))  # Kaldi's windows are symmetric
    windows = {
        "hanning": lambda: hann,
        "povey": lambda: hann.pow(0.85),
        "hamming": lambda: 0.54 - 0.46 * torch.cos(2 * math.pi * n / (length - 1)),
        "rectangular": lambda: torch.ones(length, dtype=torch.float64),
    }
    if kind not in windows:
        raise ValueError(f"unknown window {kind!r}; expected one of {sorted(windows)}")
    return windows[kind]().to(dtype)


def kaldi_fbank(
    wave: torch.Tensor | np.ndarray,
    sample_rate: int = 16000,
    num_mel_bins: int = 128,
    frame_length_ms: float = 25.0,
    frame_shift_ms: float = 10.0,
    window: str = "hanning",
    preemphasis: float = 0.97,
    remove_dc_offset: bool = True,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
) -> torch.Tensor:
    """Log-mel filterbank of `wave` (..., samples) -> (..., frames, num_mel_bins), frames = 1 + (n - len) // shift.

    Matches `torchaudio.compliance.kaldi.fbank(wave, sample_frequency=sample_rate, num_mel_bins=...,
    window_type=window, dither=0.0, use_energy=False, frame_shift=frame_shift_ms)` (htk_compat only moves the
    energy column, which use_energy=False leaves out). Computed in the input's float dtype (float32 for arrays).
    """
    wave = torch.as_tensor(wave)
    if not wave.is_floating_point():
        raise ValueError(f"kaldi_fbank expects a float waveform, got {wave.dtype}")
    size = int(sample_rate * frame_length_ms / 1000)
    shift = int(sample_rate * frame_shift_ms / 1000)
    if wave.shape[-1] < size:
        raise ValueError(
            f"waveform of {wave.shape[-1]} samples is shorter than one {frame_length_ms:g} ms frame ({size} samples)"
        )
    n_fft = 1 << (size - 1).bit_length()  # round_to_power_of_two
    frames = wave.unfold(-1, size, shift)  # (..., frames, size), the snip_edges framing
    if remove_dc_offset:
        frames = frames - frames.mean(-1, keepdim=True)
    if preemphasis:
        # Kaldi's pre-emphasis treats the sample before the first as the first itself
        previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
        frames = frames - preemphasis * previous
    frames = frames * kaldi_window(window, size, frames.dtype)
    power = torch.fft.rfft(frames, n=n_fft).abs().pow(2)  # rfft zero-pads each frame to n_fft
    banks = kaldi_mel_banks(num_mel_bins, n_fft, sample_rate, low_freq, high_freq).to(power.dtype)
    return (power @ banks.T).clamp_min(KALDI_EPS).log()


def pad_or_crop(fbank: torch.Tensor, frames: int) -> torch.Tensor:
    """(n, bins) -> (frames, bins): zero rows appended or trailing rows dropped, as CAV-MAE's loader does."""
    n = fbank.shape[-2]
    if n >= frames:
        return fbank[..., :frames, :]
    return torch.nn.functional.pad(fbank, (0, 0, 0, frames - n))


def cavmae_fbank(
    wave: torch.Tensor | np.ndarray,
    sample_rate: int = 16000,
    frames: int = CAVMAE_FRAMES,
    num_mel_bins: int = CAVMAE_BINS,
    mean: float = CAVMAE_MEAN,
    std: float = CAVMAE_STD,
    std_scale: float = 1.0,
) -> torch.Tensor:
    """CAV-MAE's normalised input of a mono waveform (samples,) -> (frames, num_mel_bins), float32.

    Padding comes before normalisation, as in the official loader, so padded frames hold -mean / std.
    `std_scale=2` gives AST's convention, (fbank - mean) / (2 std).
    """
    wave = torch.as_tensor(wave, dtype=torch.float32)
    if wave.ndim != 1:
        raise ValueError(f"cavmae_fbank expects one mono waveform (samples,), got shape {tuple(wave.shape)}")
    if sample_rate != 16000:
        raise ValueError(
            f"CAV-MAE expects 16 kHz audio, got {sample_rate} Hz: resample first (load_audio does)"
        )
    fbank = kaldi_fbank(wave - wave.mean(), sample_rate=sample_rate, num_mel_bins=num_mel_bins)
    return (pad_or_crop(fbank, frames) - mean) / (std * std_scale)
