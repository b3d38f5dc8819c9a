"""Audio-visual manifests, AudioSet-style layouts and frame/audio extraction from videos."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from auralign.data.audiovisual import (
    AVSample,
    extract_audio,
    extract_dir,
    extract_frames,
    read_audioset_layout,
    read_av_manifest,
    read_segments,
    write_av_manifest,
)
from auralign.errors import ConfigError, DataError


def _files(root: Path, *names: str) -> list[Path]:
    out = []
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        out.append(path)
    return out


def test_round_trip_keeps_everything_and_writes_relative_paths(tmp_path: Path) -> None:
    audio, f1, f2 = _files(tmp_path, "audio/a.flac", "frames/a/000.jpg", "frames/a/001.jpg")
    samples = [
        AVSample("a", audio, [f1, f2], "a dog barks", ["a dog barks", "dogs bark"], {"labels": ["dog"]}),
        AVSample("b", audio, [f1]),
    ]
    manifest = tmp_path / "sets" / "train.jsonl"
    assert write_av_manifest(manifest, samples) == 2
    first = json.loads(manifest.read_text().splitlines()[0])
    assert first["audio"] == "../audio/a.flac" and first["frames"][1] == "../frames/a/001.jpg"
    assert "caption" not in json.loads(manifest.read_text().splitlines()[1])
    back = read_av_manifest(manifest, check_files=True)
    assert [(s.id, s.audio.resolve(), [f.resolve() for f in s.frames]) for s in back] == [
        (s.id, s.audio.resolve(), [f.resolve() for f in s.frames]) for s in samples
    ]
    assert back[0].caption == "a dog barks" and back[0].references == ["a dog barks", "dogs bark"]
    assert back[0].meta == {"labels": ["dog"]} and back[1].caption is None and back[1].references == []


def test_relative_paths_resolve_against_the_manifest_not_the_cwd(tmp_path: Path, monkeypatch) -> None:
    _files(tmp_path, "m/clip.wav", "m/clip.jpg")
    (tmp_path / "m" / "x.jsonl").write_text('{"id": "c", "audio": "clip.wav", "frames": ["clip.jpg"]}\n')
    monkeypatch.chdir(tmp_path)
    (sample,) = read_av_manifest(Path("m/x.jsonl"), check_files=True)
    assert sample.audio.is_file() and sample.frames[0].is_file()


def test_missing_files_are_errors_that_name_them(tmp_path: Path) -> None:
    _files(tmp_path, "a.wav")
    path = tmp_path / "x.jsonl"
    path.write_text(
        '{"id": "a", "audio": "a.wav", "frames": []}\n{"id": "b", "audio": "a.wav", "frames": ["gone.jpg"]}\n'
    )
    assert len(read_av_manifest(path)) == 2  # existence is only checked when asked
    with pytest.raises(DataError, match=r"x\.jsonl:2: b: file not found: .*gone\.jpg"):
        read_av_manifest(path, check_files=True)


@pytest.mark.parametrize(
    "line, problem",
    [
        ('{"id": "a", "audio": "a.wav"', "broken JSON"),
        ('{"id": "", "audio": "a.wav"}', "'id' must be a non-empty string"),
        ('{"id": "a"}', "'audio' must be a non-empty path"),
        ('{"id": "a", "audio": "a.wav", "frames": "f.jpg"}', "'frames' must be a list"),
        ('{"id": "a", "audio": "a.wav", "caption": 3}', "'caption' must be a string"),
        ('{"id": "a", "audio": "a.wav", "references": "x"}', "'references' must be a list"),
        ('{"id": "a", "audio": "a.wav", "frame": ["f.jpg"]}', r"unknown key\(s\) \['frame'\]"),
        ('{"id": "ok", "audio": "a.wav"}', "duplicate id 'ok' \\(first on line 1\\)"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "ok", "audio": "a.wav"}\n' + line + "\n")
    with pytest.raises(DataError, match=rf"bad\.jsonl:2: .*{problem}"):
        read_av_manifest(path)


def test_audioset_layout(tmp_path: Path) -> None:
    segments = tmp_path / "balanced_train_segments.csv"
    segments.write_text(
        "# Segments csv created Sun Mar  5 10:54:31 2017\n"
        "# YTID, start_seconds, end_seconds, positive_labels\n"
        'vid1, 30.000, 40.000, "/m/09x0r,/m/05zppz"\n'
        'vid2, 0.000, 10.000, "/m/0bt9lr"\n'
        'vid3, 5.000, 15.000, "/m/0bt9lr"\n'
    )
    _files(tmp_path, "audio/vid1.flac", "audio/Yvid2.wav", "frames/vid1/001.jpg", "frames/vid1/000.jpg")
    _files(tmp_path, "frames/vid2.jpg", "audio/vid3.wav")
    labels = tmp_path / "class_labels_indices.csv"
    labels.write_text('index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/m/0bt9lr,Dog\n')
    assert [s.video_id for s in read_segments(segments)] == ["vid1", "vid2", "vid3"]
    with pytest.raises(DataError, match=r"segment vid3: no frames .*vid3"):
        read_audioset_layout(segments, tmp_path / "audio", tmp_path / "frames")
    samples = read_audioset_layout(
        segments, tmp_path / "audio", tmp_path / "frames", on_missing="skip", class_labels=labels
    )
    assert [s.id for s in samples] == ["vid1_30", "vid2_0"]
    assert [f.name for f in samples[0].frames] == ["000.jpg", "001.jpg"]
    assert samples[1].audio.name == "Yvid2.wav" and samples[1].frames[0].name == "vid2.jpg"
    assert samples[0].meta["label_names"] == ["Speech", "/m/05zppz"] and samples[0].meta["start"] == 30.0
    write_av_manifest(tmp_path / "av.jsonl", samples)
    assert len(read_av_manifest(tmp_path / "av.jsonl", check_files=True)) == 2


def test_segments_as_header_csv_or_id_list(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("video_id,start,end\nabc,1.5,11.5\n")
    (tmp_path / "b.txt").write_text("abc\n\ndef\n")
    (tmp_path / "c.csv").write_text("video_id,start,end\nabc,one,11\n")
    assert read_segments(tmp_path / "a.csv")[0].start == 1.5
    assert [s.video_id for s in read_segments(tmp_path / "b.txt")] == ["abc", "def"]
    with pytest.raises(DataError, match=r"c\.csv:2: start/end must be numbers"):
        read_segments(tmp_path / "c.csv")


def _video(path: Path, seconds: float = 2.0, fps: int = 10) -> None:
    """Red for the first second, blue after; a 440 Hz tone at 16 kHz."""
    av = pytest.importorskip("av", reason="PyAV (pip install av) reads videos")
    with av.open(str(path), "w", format="matroska") as out:
        video = out.add_stream("mpeg4", rate=fps)
        video.width = video.height = 32
        video.pix_fmt = "yuv420p"
        audio = out.add_stream("pcm_s16le", rate=16000, layout="mono")
        for k in range(int(seconds * fps)):
            rgb = np.zeros((32, 32, 3), np.uint8)
            rgb[..., 0 if k < fps else 2] = 255
            out.mux(video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(video.encode(None))
        tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * 16000)) / 16000) * 32767).astype(
            np.int16
        )
        frame = av.AudioFrame.from_ndarray(tone[None], format="s16", layout="mono")
        frame.sample_rate = 16000
        out.mux(audio.encode(frame))
        out.mux(audio.encode(None))


def test_extract_frames_and_audio(tmp_path: Path) -> None:
    video = tmp_path / "videos" / "clip.mkv"
    video.parent.mkdir()
    _video(video)
    (middle,) = extract_frames(video, tmp_path / "one")
    assert np.asarray(Image.open(middle))[..., 2].mean() > 200  # t = 1.0 s: blue
    first, second = extract_frames(video, tmp_path / "two", n=2)
    assert (
        np.asarray(Image.open(first))[..., 0].mean() > 200
        and np.asarray(Image.open(second))[..., 2].mean() > 200
    )
    assert len(extract_frames(video, tmp_path / "fps", n=None, fps=2)) == 4
    from auralign.audio.io import load_audio

    wave = load_audio(extract_audio(video, tmp_path / "clip.flac"), sr=16000)
    assert abs(len(wave) - 32000) < 1600 and 0.3 < np.abs(wave).max() < 0.6
    assert extract_dir(tmp_path / "videos", tmp_path / "layout", audio=True, progress=False) == 1
    (sample,) = read_audioset_layout(["clip"], tmp_path / "layout" / "audio", tmp_path / "layout" / "frames")
    assert sample.frames[0].name == "000.jpg"


def test_bad_videos_are_named(tmp_path: Path) -> None:
    pytest.importorskip("av", reason="PyAV (pip install av) reads videos")
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(DataError, match=r"broken\.mp4: cannot open"):
        extract_frames(tmp_path / "broken.mp4", tmp_path / "out")
    with pytest.raises(DataError, match=r"missing\.mp4: video not found"):
        extract_frames(tmp_path / "missing.mp4", tmp_path / "out")


def test_without_pyav_the_error_says_what_to_install(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ConfigError, match="pip install av"):
        extract_frames(tmp_path / "x.mp4", tmp_path / "out")
