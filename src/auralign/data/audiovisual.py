"""Audio-visual pairs for DALI: one clip's audio, its video frame(s) and, optionally, captions.

A manifest line (JSONL, paths relative to the manifest's folder)::

    {"id": "YxXs4mYpq7As_30", "audio": "audio/YxXs4mYpq7As.flac", "frames": ["frames/YxXs4mYpq7As/000.jpg"],
     "caption": "a dog barks", "references": ["a dog barks", "dogs barking"], "meta": {"labels": ["/m/0bt9lr"]}}

`caption` (a training target) and `references` (evaluation) are optional: distribution alignment needs pairs
only. Readers turn AudioSet-style layouts (a segments CSV, an audio folder, a frames folder) into samples, and
`extract_frames` / `extract_audio` take frames and 16 kHz audio out of downloaded videos (PyAV). A missing
file is an error that names it, never a silent substitute.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from auralign.data.readers import AudioFolder, describe_folder, read_text
from auralign.errors import ConfigError, DataError
from auralign.fileio import atomic_write, atomic_write_bytes, read_jsonl

log = logging.getLogger(__name__)

IMAGE_EXTS = (".jpg", ".jpeg", ".png")
KEYS = {"id", "audio", "frames", "caption", "references", "meta"}


@dataclass
class AVSample:
    """One clip: its audio, its frames (absolute or cwd-relative paths once read) and optional text."""

    id: str
    audio: Path
    frames: list[Path] = field(default_factory=list)
    caption: str | None = None
    references: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def missing_files(self) -> list[Path]:
        return [p for p in [self.audio, *self.frames] if not p.is_file()]


# --- manifest I/O -------------------------------------------------------------------------------------------


def _parse(record: dict[str, Any], base: Path, where: str) -> AVSample:
    unknown = sorted(set(record) - KEYS)
    if unknown:
        raise DataError(f"{where}: unknown key(s) {unknown}; expected {sorted(KEYS)}")
    sid, audio, frames = record.get("id"), record.get("audio"), record.get("frames", [])
    if not isinstance(sid, str) or not sid:
        raise DataError(f"{where}: 'id' must be a non-empty string")
    if not isinstance(audio, str) or not audio:
        raise DataError(f"{where}: 'audio' must be a non-empty path string")
    if not isinstance(frames, list) or not all(isinstance(f, str) and f for f in frames):
        raise DataError(f"{where}: 'frames' must be a list of non-empty path strings")
    caption, refs, meta = record.get("caption"), record.get("references", []), record.get("meta", {})
    if caption is not None and not isinstance(caption, str):
        raise DataError(f"{where}: 'caption' must be a string or null")
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise DataError(f"{where}: 'references' must be a list of strings")
    if not isinstance(meta, dict):
        raise DataError(f"{where}: 'meta' must be an object")
    return AVSample(sid, base / audio, [base / f for f in frames], caption, refs, meta)


def read_av_manifest(path: str | os.PathLike, check_files: bool = False) -> list[AVSample]:
    """Samples of an audio-visual manifest; relative paths resolve against its folder.

    Any malformed line, duplicate id or (with `check_files`) missing audio/frame raises DataError naming the
    manifest line and the file.
    """
    path = Path(path)
    samples: list[AVSample] = []
    seen: dict[str, int] = {}
    for lineno, record in read_jsonl(path, "audio-visual manifest"):
        where = f"{path}:{lineno}"
        sample = _parse(record, path.parent, where)
        if sample.id in seen:
            raise DataError(f"{where}: duplicate id {sample.id!r} (first on line {seen[sample.id]})")
        seen[sample.id] = lineno
        if check_files and (missing := sample.missing_files()):
            raise DataError(f"{where}: {sample.id}: file not found: {missing[0]}")
        samples.append(sample)
    return samples


def _rel(p: Path, base: Path) -> str:
    """A path relative to the manifest's folder (portable when the tree moves together)."""
    try:
        return Path(os.path.relpath(Path(p).absolute(), base.absolute())).as_posix()
    except ValueError:  # another drive on Windows
        return Path(p).absolute().as_posix()


def av_record(sample: AVSample, base: Path) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": sample.id,
        "audio": _rel(sample.audio, base),
        "frames": [_rel(f, base) for f in sample.frames],
    }
    if sample.caption is not None:
        record["caption"] = sample.caption
    if sample.references:
        record["references"] = list(sample.references)
    if sample.meta:
        record["meta"] = sample.meta
    return record


def write_av_manifest(path: str | os.PathLike, samples: Iterable[AVSample]) -> int:
    """Write atomically, paths relative to the manifest's folder; returns the count written."""
    path = Path(path)
    count = 0
    with atomic_write(path, "w", encoding="utf-8") as handle:
        for sample in samples:
            handle.write(json.dumps(av_record(sample, path.parent), ensure_ascii=False) + "\n")
            count += 1
    return count


# --- image-caption pairs (the image captioner's own training data) -----------------------------------------


@dataclass
class ImageCaption:
    id: str
    image: Path
    caption: str
    meta: dict[str, Any] = field(default_factory=dict)


def read_image_captions(path: str | os.PathLike) -> list[ImageCaption]:
    """JSONL lines {"id", "image", "caption", "meta"?}; the image path is relative to the manifest's folder."""
    path = Path(path)
    out = []
    for lineno, rec in read_jsonl(path, "image-caption manifest"):
        image, caption = rec.get("image"), rec.get("caption")
        if not isinstance(image, str) or not image or not isinstance(caption, str) or not caption:
            raise DataError(f"{path}:{lineno}: needs non-empty 'image' and 'caption' strings")
        out.append(
            ImageCaption(str(rec.get("id", lineno)), path.parent / image, caption, rec.get("meta", {}))
        )
    return out


def write_image_captions(path: str | os.PathLike, items: Iterable[ImageCaption]) -> int:
    path = Path(path)
    lines = [
        json.dumps(
            {"id": it.id, "image": _rel(it.image, path.parent), "caption": it.caption, "meta": it.meta}
        )
        for it in items
    ]
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))
    return len(lines)


# --- AudioSet-style layouts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    video_id: str
    start: float | None = None
    end: float | None = None
    labels: tuple[str, ...] = ()


# What a spreadsheet writes for a cell it read as a formula (an id starting with "-" or "="), and characters
# no video id holds (the quotes or formula a spreadsheet adds to keep an id as text).
SPREADSHEET_ERRORS = re.compile(r"#(NAME\?|N/A|VALUE!|REF!|DIV/0!|NUM!|NULL!)")
NOT_IN_IDS = re.compile(r"[\"'=\s]")


def read_segments(path: str | os.PathLike) -> list[Segment]:
    """AudioSet segment CSVs (`# YTID, start_seconds, end_seconds, positive_labels`, comments start with #),
    CSVs with a `video_id,start,end[,labels]` header, or a plain list of video ids, one a line.

    A file a spreadsheet re-saved is refused, naming the line, rather than read wrong: its `#NAME?` cells
    (ids the spreadsheet took for formulas) are not comments, and its quoted ids are not ids.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: segments file not found")
    rows = [
        (n, r)
        for n, r in enumerate(csv.reader(read_text(path).splitlines(), skipinitialspace=True), 1)
        if r and r[0].strip() and not _comment(r[0])
    ]
    if rows and rows[0][1][0].strip().lower() in ("video_id", "ytid", "youtube_id"):
        rows = rows[1:]
    segments = []
    for lineno, row in rows:
        _check_id(path, lineno, row[0].strip())
        try:
            start = float(row[1]) if len(row) > 1 and row[1].strip() else None
            end = float(row[2]) if len(row) > 2 and row[2].strip() else None
        except ValueError:
            raise DataError(f"{path}:{lineno}: start/end must be numbers, got {row[1:3]}") from None
        labels = tuple(x.strip() for x in ",".join(row[3:]).split(",") if x.strip())
        segments.append(Segment(row[0].strip(), start, end, labels))
    if not segments:
        raise DataError(f"{path}: no segments")
    return segments


def _comment(cell: str) -> bool:
    return cell.lstrip().startswith("#") and not SPREADSHEET_ERRORS.fullmatch(cell.strip())


def _check_id(path: Path, lineno: int, video_id: str) -> None:
    if SPREADSHEET_ERRORS.fullmatch(video_id) or NOT_IN_IDS.search(video_id):
        raise DataError(
            f"{path}:{lineno}: {video_id!r} is not a video id: a spreadsheet re-saved this file (it turns ids "
            "starting with - or = into #NAME? and quotes others); use the CSV as downloaded"
        )


def _stems(seg: Segment) -> list[str]:
    """File names AudioSet downloaders use for a segment: `<id>`, `Y<id>`, `<id>_<start>`, `<id>_<start>_<end>`,
    and audioset-download's `<id>_<start>-<end>` (start and end as the CSV's numbers print: 30.0, 30, 30.000)."""
    vid, stems = seg.video_id, [seg.video_id, f"Y{seg.video_id}"]
    if seg.start is not None:
        stems += [f"{vid}_{seg.start:g}", f"{vid}_{int(seg.start)}"]
        if seg.end is not None:
            stems.append(f"{vid}_{int(seg.start)}_{int(seg.end)}")
            stems += [f"{vid}_{seg.start!r}-{seg.end!r}", f"{vid}_{seg.start:g}-{seg.end:g}"]
            stems.append(f"{vid}_{seg.start:.3f}-{seg.end:.3f}")
    return list(dict.fromkeys(stems))


def find_audio(seg: Segment, audio: AudioFolder) -> Path | None:
    """The segment's audio in the folder or one of its label sub-folders (`<label>/<stem>.wav`)."""
    return audio.find(*_stems(seg))


def find_frames(seg: Segment, frames_dir: Path) -> list[Path]:
    """`<frames_dir>/<stem>/*.jpg|png` (sorted) or a single `<frames_dir>/<stem>.jpg|png`."""
    for stem in _stems(seg):
        folder = frames_dir / stem
        if folder.is_dir():
            found = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)
            if found:
                return found
        for ext in IMAGE_EXTS:
            if (p := frames_dir / f"{stem}{ext}").is_file():
                return [p]
    return []


def read_class_labels(path: str | os.PathLike) -> dict[str, str]:
    """AudioSet's class_labels_indices.csv (index,mid,display_name): MID -> name."""
    path = Path(path)
    rows = list(csv.DictReader(read_text(path).splitlines()))
    if not rows or not {"mid", "display_name"} <= set(rows[0]):
        raise DataError(f"{path}: expected the columns mid and display_name (class_labels_indices.csv)")
    return {row["mid"]: row["display_name"] for row in rows}


def read_audioset_layout(
    segments: str | os.PathLike | Sequence[Segment | str],
    audio_dir: str | os.PathLike,
    frames_dir: str | os.PathLike,
    on_missing: Literal["error", "skip"] = "error",
    class_labels: str | os.PathLike | None = None,
) -> list[AVSample]:
    """Samples for the segments whose audio and frames exist; a missing one is an error naming it, or, with
    `on_missing="skip"`, left out and counted in the log (real AudioSet downloads always miss some videos)."""
    segs = read_segments(segments) if isinstance(segments, str | os.PathLike) else segments
    segs = [Segment(s) if isinstance(s, str) else s for s in segs]
    names = read_class_labels(class_labels) if class_labels else {}
    audio_dir, frames_dir = AudioFolder(audio_dir, label_folders=True), Path(frames_dir)
    samples, skipped, first_missing = [], 0, ""
    for seg in segs:
        audio, frames = find_audio(seg, audio_dir), find_frames(seg, frames_dir)
        if audio is None or not frames:
            what = _missing(seg, audio_dir, frames_dir, audio is None)
            if on_missing == "error":
                raise DataError(f"segment {seg.video_id}: {what} (use on_missing='skip' to leave it out)")
            skipped += 1
            first_missing = first_missing or f"segment {seg.video_id}: {what}"
            continue
        meta: dict[str, Any] = {"video_id": seg.video_id}
        if seg.start is not None:
            meta.update(start=seg.start, end=seg.end)
        if seg.labels:
            meta["labels"] = list(seg.labels)
            if names:
                meta["label_names"] = [names.get(m, m) for m in seg.labels]
        sid = seg.video_id if seg.start is None else f"{seg.video_id}_{seg.start:g}"
        samples.append(AVSample(sid, audio, frames, meta=meta))
    if not samples:
        raise DataError(f"none of the {len(segs)} segment(s) has both its audio and frames; {first_missing}")
    if skipped:
        log.warning("%d of %d segments left out: audio or frames missing", skipped, len(segs))
    return samples


def _missing(seg: Segment, audio: AudioFolder, frames_dir: Path, no_audio: bool) -> str:
    """What was looked for and not found, and one file that is there."""
    if no_audio:
        return f"no audio: tried {audio.tried(*_stems(seg))}; {audio.describe()}"
    stems = ",".join(_stems(seg))
    return f"no frames (tried {frames_dir}/{{{stems}}}/*.jpg|png and .jpg|png); {describe_folder(frames_dir)}"


# --- videos -------------------------------------------------------------------------------------------------


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise ConfigError("reading videos needs PyAV: pip install av") from None
    return av


def _open(video: Path) -> Any:
    av = _av()
    if not video.is_file():
        raise DataError(f"{video}: video not found")
    try:
        return av.open(str(video))
    except av.FFmpegError as e:
        raise DataError(f"{video}: cannot open as a video ({e})") from None


def _targets(duration: float, n: int | None, fps: float | None) -> list[float]:
    """Frame times: `n` evenly spaced mid-interval times, or one every 1/fps seconds."""
    if fps:
        count = max(1, int(duration * fps))
        return [(k + 0.5) / fps for k in range(count)]
    n = n or 1
    return [duration * (k + 0.5) / n for k in range(n)]


def extract_frames(
    video: str | os.PathLike,
    out_dir: str | os.PathLike,
    n: int | None = 1,
    fps: float | None = None,
    size: int | None = None,
    quality: int = 90,
) -> list[Path]:
    """Save `n` evenly spaced frames (or `fps` frames a second) of `video` as out_dir/000.jpg, 001.jpg, ...

    The middle frame for n=1, as DALI takes one frame per clip. `size` rescales the shorter side. Existing
    frames are kept (re-running is a no-op).
    """
    video, out = Path(video), Path(out_dir)
    container = _open(video)
    av = _av()
    try:
        if not container.streams.video:
            raise DataError(f"{video}: no video stream")
        stream = container.streams.video[0]
        duration = (
            float(stream.duration * stream.time_base) if stream.duration else (container.duration or 0) / 1e6
        )
        targets = _targets(duration, n, fps)
        paths = [out / f"{k:03d}.jpg" for k in range(len(targets))]
        if all(p.is_file() for p in paths):
            return paths
        images = _decode_at(container, stream, targets)
    except av.FFmpegError as e:
        raise DataError(f"{video}: cannot decode ({e})") from None
    finally:
        container.close()
    if not images:
        raise DataError(f"{video}: no frame could be decoded")
    for path, image in zip(paths, images, strict=False):
        if size:
            scale = size / min(image.size)
            image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, "JPEG", quality=quality)
        atomic_write_bytes(path, buffer.getvalue())
    return paths[: len(images)]


def _decode_at(container: Any, stream: Any, targets: list[float]) -> list[Any]:
    """The first decoded frame at or after each target time (the last frame for targets past the end)."""
    images, k, last = [], 0, None
    for frame in container.decode(stream):
        last = frame
        t = float(frame.pts * stream.time_base) if frame.pts is not None else 0.0
        while k < len(targets) and t + 1e-6 >= targets[k]:
            images.append(frame.to_image())
            k += 1
        if k == len(targets):
            break
    while last is not None and k < len(targets):
        images.append(last.to_image())
        k += 1
    return images


def extract_audio(video: str | os.PathLike, out_path: str | os.PathLike, sr: int = 16000) -> Path:
    """The video's first audio stream as mono `sr` Hz audio in out_path (.flac or .wav)."""
    import numpy as np

    from auralign.audio.io import write_audio

    video, out = Path(video), Path(out_path)
    container = _open(video)
    av = _av()
    try:
        if not container.streams.audio:
            raise DataError(f"{video}: no audio stream")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
        chunks = []
        for frame in container.decode(container.streams.audio[0]):
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    except av.FFmpegError as e:
        raise DataError(f"{video}: cannot decode audio ({e})") from None
    finally:
        container.close()
    if not chunks:
        raise DataError(f"{video}: the audio stream holds no samples")
    write_audio(out, np.concatenate(chunks).astype(np.float32), sr)
    return out


def extract_dir(
    video_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    n: int | None = 1,
    fps: float | None = None,
    audio: bool = False,
    progress: bool = True,
) -> int:
    """Every video in `video_dir` -> out_dir/frames/<stem>/NNN.jpg (and out_dir/audio/<stem>.flac with `audio`):
    the layout `read_audioset_layout` reads. Returns the number of videos done."""
    from tqdm import tqdm

    exts = {".mp4", ".mkv", ".webm", ".avi", ".mov"}
    videos = sorted(p for p in Path(video_dir).iterdir() if p.suffix.lower() in exts)
    if not videos:
        raise DataError(f"{video_dir}: no video files ({', '.join(sorted(exts))})")
    out = Path(out_dir)
    for video in tqdm(videos, desc="videos", disable=not progress):
        extract_frames(video, out / "frames" / video.stem, n=n, fps=fps)
        if audio and not (out / "audio" / f"{video.stem}.flac").is_file():
            extract_audio(video, out / "audio" / f"{video.stem}.flac")
    return len(videos)
