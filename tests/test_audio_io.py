"""auralign.audio.io: good files load right, every bad file gives one AudioError that names it."""

import struct
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from auralign.audio import AudioError, AudioWarning, audio_info, load_audio, write_audio
from auralign.audio import io as audio_io
from auralign.cli import main

SR = 16000


def sine(freq: float = 440.0, seconds: float = 1.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def riff_wav(rate: int, data: bytes, channels: int = 1, bits: int = 16, claimed: int | None = None) -> bytes:
    """Raw RIFF/WAVE bytes with whatever header values a test needs (libsndfile refuses to write bad ones)."""
    block = channels * bits // 8
    size = len(data) if claimed is None else claimed
    fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * block) % 2**32, block, bits)
    return (
        b"RIFF"
        + struct.pack("<I", (36 + size) % 2**32)
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", size)
        + data
    )


def assert_audio_error(path: Path, *words: str, **kwargs) -> str:
    with pytest.raises(AudioError) as info:
        load_audio(path, **kwargs)
    message = str(info.value)
    assert message.startswith(str(path)), message
    for word in words:
        assert word in message, message
    return message


# --- good files ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("suffix", "subtype", "tol"), [(".wav", "PCM_16", 1e-4), (".flac", "PCM_24", 1e-6)])
def test_lossless_round_trip(tmp_path, suffix, subtype, tol):
    x = sine()
    path = tmp_path / f"a{suffix}"
    write_audio(path, x, SR, subtype=subtype)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.max(np.abs(x - y)) < tol
    assert audio_info(path) == (SR, SR, 1)


@pytest.mark.parametrize("fmt", ["OGG", "MP3"])
def test_lossy_formats_load_at_target_rate(tmp_path, fmt):
    x = sine(1000.0, seconds=2.0, sr=44100)
    path = tmp_path / f"a.{fmt.lower()}"
    sf.write(path, x, 44100, format=fmt)
    y = load_audio(path, sr=SR)
    assert y.dtype == np.float32
    assert abs(y.size - 2 * SR) < 0.05 * SR  # encoders pad a frame or two
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) * SR / y.size == pytest.approx(1000.0, abs=5.0)


def test_resampling_keeps_frequency_and_length(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, sine(440.0, seconds=1.0, sr=48000), 48000)
    y = load_audio(path, sr=SR)
    assert y.size == SR
    assert np.argmax(np.abs(np.fft.rfft(y))) == 440  # 1 Hz bins for a 1 s clip


def test_8bit_pcm_loads_correctly(tmp_path):
    x = sine(amp=0.8)
    path = tmp_path / "u8.wav"
    sf.write(path, x, SR, subtype="PCM_U8")
    assert sf.info(path).subtype == "PCM_U8"
    y = load_audio(path)
    assert np.max(np.abs(x - y)) < 2 / 256  # 8-bit quantisation step


def test_24bit_pcm_loads_correctly(tmp_path):
    x = sine(amp=0.8)
    path = tmp_path / "s24.wav"
    sf.write(path, x, SR, subtype="PCM_24")
    y = load_audio(path)
    assert np.max(np.abs(x - y)) < 1e-6


def test_six_channels_downmix_to_mono(tmp_path):
    levels = np.array([0.6, 0.3, 0.0, -0.3, 0.12, 0.06], dtype=np.float32)
    data = np.tile(levels, (SR // 2, 1)) * np.sign(sine(50.0, 0.5))[:, None]
    path = tmp_path / "surround.wav"
    sf.write(path, data, SR, subtype="FLOAT")
    assert audio_info(path) == (SR, SR // 2, 6)
    y = load_audio(path)
    assert y.ndim == 1 and y.size == SR // 2
    np.testing.assert_allclose(np.abs(y).max(), levels.mean(), rtol=1e-5)


def test_silent_audio_is_a_warning_not_an_error(tmp_path):
    path = tmp_path / "silence.flac"
    write_audio(path, np.zeros(SR, np.float32), SR)
    with pytest.warns(AudioWarning, match="silent"):
        y = load_audio(path)
    assert y.size == SR and not y.any()


def test_write_audio_is_deterministic_and_clips_instead_of_wrapping(tmp_path):
    x = sine(amp=1.5)
    write_audio(tmp_path / "a.flac", x, SR)
    write_audio(tmp_path / "b.flac", x, SR)
    assert (tmp_path / "a.flac").read_bytes() == (tmp_path / "b.flac").read_bytes()
    assert sf.info(tmp_path / "a.flac").subtype == "PCM_16"
    y = load_audio(tmp_path / "a.flac")
    assert y.max() > 0.99 and y.min() < -0.99  # clipped to full scale, not wrapped to the other sign
    assert np.all(np.sign(y[np.abs(x) > 1.0]) == np.sign(x[np.abs(x) > 1.0]))


def test_failed_write_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "a.flac"
    write_audio(path, sine(), SR)
    before = path.read_bytes()
    bad = sine()
    bad[10] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        write_audio(path, bad, SR)
    with pytest.raises(AudioError, match="suffix"):
        write_audio(tmp_path / "a.xyz", sine(), SR)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.flac"]  # no temporary left behind


# --- bad files ------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    assert_audio_error(tmp_path / "nope.wav", "not found")


def test_directory_named_wav(tmp_path):
    (tmp_path / "x.wav").mkdir()
    assert_audio_error(tmp_path / "x.wav", "directory")


def test_text_file_named_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 20)
    assert_audio_error(path, "unreadable")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.flac"
    path.touch()
    assert_audio_error(path, "empty file")


def test_wav_with_no_frames(tmp_path):
    path = tmp_path / "none.wav"
    path.write_bytes(riff_wav(SR, b""))
    assert_audio_error(path, "zero length")


def test_truncated_wav(tmp_path):
    path = tmp_path / "cut.wav"
    write_audio(path, sine(), SR)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert_audio_error(path, "truncated")


def test_truncated_flac(tmp_path):
    path = tmp_path / "cut.flac"
    write_audio(path, (np.random.default_rng(0).standard_normal(2 * SR) * 0.1).astype(np.float32), SR)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert_audio_error(path, "truncated")


def test_flac_cut_inside_its_header(tmp_path):
    path = tmp_path / "stub.flac"
    write_audio(path, sine(), SR)
    path.write_bytes(path.read_bytes()[:30])
    assert_audio_error(path, "unreadable")


def test_nan_samples(tmp_path):
    x = sine()
    x[100:103] = [np.nan, np.inf, -np.inf]
    path = tmp_path / "nan.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    assert_audio_error(path, "3 of 16000 samples are NaN or Inf")


@pytest.mark.parametrize("rate", [0, 5_000_000, 3_000_000_000])
def test_absurd_sample_rate_in_header(tmp_path, rate):
    path = tmp_path / f"rate{rate}.wav"
    path.write_bytes(riff_wav(rate, b"\x01\x00" * 100))
    assert_audio_error(path, f"{rate} Hz")
    with pytest.raises(AudioError, match="sample rate"):
        audio_info(path)


def sparse_two_hour_wav(path: Path) -> Path:
    """A real 8 kHz 8-bit WAV of 2 hours (57.6 MB) that takes 4 kB on disk: the data is a sparse hole."""
    frames = 8000 * 7200
    with open(path, "wb") as handle:
        handle.write(riff_wav(8000, b"", bits=8, claimed=frames))
        handle.truncate(44 + frames)
    return path


def test_two_hour_file_rejected_from_header_without_decoding(tmp_path, monkeypatch):
    path = sparse_two_hour_wav(tmp_path / "long.wav")
    assert audio_info(path) == (8000, 8000 * 7200, 1)

    def no_decoding(*args, **kwargs):
        raise AssertionError("the file was decoded")

    monkeypatch.setattr(audio_io, "_decode", no_decoding)
    start = time.perf_counter()
    assert_audio_error(path, "7200.0 s", "30 s", max_seconds=30)
    assert time.perf_counter() - start < 1.0


def test_two_hour_file_truncated_with_a_warning(tmp_path):
    path = sparse_two_hour_wav(tmp_path / "long.wav")
    with pytest.warns(AudioWarning, match="truncated to the first 30 s"):
        y = load_audio(path, max_seconds=30, on_too_long="truncate")
    assert y.size == 30 * SR


def test_bad_arguments_are_programming_errors(tmp_path):
    path = tmp_path / "a.wav"
    write_audio(path, sine(), SR)
    with pytest.raises(ValueError):
        load_audio(path, sr=0)
    with pytest.raises(ValueError):
        load_audio(path, on_too_long="ignore")


# --- CLI -------------------------------------------------------------------------------------------


def test_cli_check_reports_each_bad_file_and_exits_nonzero(tmp_path, capsys):
    good = tmp_path / "good.flac"
    write_audio(good, sine(), SR)
    text = tmp_path / "text.wav"
    text.write_text("not audio")
    folder = tmp_path / "dir.wav"
    folder.mkdir()
    long = sparse_two_hour_wav(tmp_path / "long.wav")
    code = main(["audio", "check", str(good), str(text), str(folder), str(long), "--max-seconds", "30"])
    out, err = capsys.readouterr()
    assert code == 2
    assert f"{good}: ok, 16000 Hz, 1 ch, 1.00 s" in out
    for path in (text, folder, long):
        assert f"auralign: error: {path}:" in err
    assert "Traceback" not in err


def test_cli_check_passes_good_files(tmp_path, capsys):
    path = tmp_path / "quiet.wav"
    write_audio(path, np.zeros(SR, np.float32), SR)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["audio", "check", str(path)]) == 0
    assert "silent" in capsys.readouterr().out


def test_mp3_shorter_than_its_length_tag_warns_but_gross_truncation_fails(tmp_path):
    # libsndfile's MP3 length comes from the Xing tag, an estimate: valid files can fall short of it.
    full = tmp_path / "full.mp3"
    sf.write(full, sine(440.0, seconds=4.0, sr=44100), 44100, format="MP3")
    data = full.read_bytes()
    short, cut = tmp_path / "short.mp3", tmp_path / "cut.mp3"
    short.write_bytes(data[: int(0.8 * len(data))])
    cut.write_bytes(data[: int(0.3 * len(data))])
    with pytest.warns(AudioWarning, match=r"short\.mp3: the header promises"):
        y = load_audio(short, sr=SR)
    assert 0.7 * 4 * SR < y.size < 0.9 * 4 * SR
    with pytest.raises(AudioError, match=r"cut\.mp3: truncated or corrupt"):
        load_audio(cut, sr=SR)


def test_a_config_sample_rate_outside_the_plausible_range_is_refused_when_read():
    from auralign.audio import SampleRate
    from auralign.config import StrictModel, validate
    from auralign.errors import ConfigError

    class Section(StrictModel):
        sample_rate: SampleRate = 16000

    assert validate({"sample_rate": 8000}, Section).sample_rate == 8000
    with pytest.raises(
        ConfigError, match=r"build.yaml: invalid config\n  sample_rate: Input should be greater"
    ):
        validate({"sample_rate": 5}, Section, source="build.yaml")


def test_windows_are_decoded_one_at_a_time_and_equal_the_whole_file_cut(tmp_path, monkeypatch):
    from auralign.audio import load_audio_windows

    path = tmp_path / "long.flac"
    stereo = np.stack([sine(440.0, 70.0), sine(220.0, 70.0)], axis=1)
    write_audio(path, stereo, SR)
    asked = []
    real_read = sf.SoundFile.read

    def read(self, frames=-1, *args, **kwargs):
        asked.append(frames)
        return real_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", read)
    windows = list(load_audio_windows(path, 30.0, sr=SR))
    assert asked == [30 * SR, 30 * SR, 10 * SR]  # never the whole file at once
    whole = load_audio(path, sr=SR)
    assert [len(w) for w in windows] == [30 * SR, 30 * SR, 10 * SR]
    assert np.array_equal(np.concatenate(windows), whole)
