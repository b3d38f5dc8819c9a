"""Corpus readers: published dataset layouts in, `Clip` records out (one audio file, its captions or label).

Every reader checks that the audio files exist. Missing ones are collected in `Corpus.missing` (reported
with a count and the first examples), never replaced by anything.

`READERS` is the table of corpus formats a build config's `format:` may name (`auralign.data.build`). A new
layout is a reader function here plus one `READERS` entry naming the config paths it needs.
"""

import csv
import json
import logging
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auralign.errors import DataError

log = logging.getLogger(__name__)
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")


@dataclass(frozen=True)
class Clip:
    id: str
    path: Path
    captions: tuple[str, ...] = ()
    label: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class Corpus:
    name: str
    clips: list[Clip]
    missing: list[str] = field(default_factory=list)

    def report_missing(self, examples: int = 3) -> str:
        if not self.missing:
            return ""
        shown = ", ".join(self.missing[:examples])
        return f"{self.name}: {len(self.missing)} audio file(s) missing, e.g. {shown}"


def read_csv(path: str | os.PathLike, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a CSV with a header, as (line number, row). Handles a BOM, blank lines and quoted commas.

    Raises DataError naming the file and line for a missing file, missing columns (with a hint when the
    header looks like another delimiter) or a row with the wrong number of fields.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: CSV file not found")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = None
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if header is None:
                    header = [cell.strip() for cell in row]
                    _check_header(path, header, required)
                    continue
                if len(row) != len(header):
                    raise DataError(
                        f"{path}:{reader.line_num}: expected {len(header)} fields, found {len(row)} "
                        "(unquoted comma in a caption?)"
                    )
                yield reader.line_num, {key: value.strip() for key, value in zip(header, row, strict=True)}
            if header is None:
                raise DataError(f"{path}: empty CSV (no header line)")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file") from None
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV: {exc}") from None


def _check_header(path: Path, header: list[str], required: Sequence[str]) -> None:
    missing = [col for col in required if col not in header]
    if not missing:
        return
    hint = ""
    joined = ",".join(header)
    for delimiter, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
        if delimiter in joined:
            hint = f"; the header looks {name}-delimited, expected commas"
    raise DataError(f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(header)}){hint}")


def _find_audio(folder: Path, stem: str) -> Path | None:
    """`folder/stem` if it exists, else `folder/stem + suffix` for the usual audio suffixes."""
    direct = folder / stem
    if direct.suffix.lower() in AUDIO_SUFFIXES and direct.is_file():
        return direct
    for suffix in AUDIO_SUFFIXES:
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _collect(name: str, entries: dict[str, tuple[str, list[str], str | None, dict]], folder: Path) -> Corpus:
    """Build a Corpus from {clip id: (audio stem, captions, label, meta)}, recording missing audio."""
    clips, missing = [], []
    for clip_id, (stem, captions, label, meta) in entries.items():
        path = _find_audio(folder, stem)
        if path is None:
            missing.append(str(folder / stem))
            continue
        clips.append(Clip(clip_id, path, tuple(captions), label, meta))
    corpus = Corpus(name, clips, missing)
    if missing:
        log.warning(corpus.report_missing())
    return corpus


def read_audiocaps(
    csv_path: str | os.PathLike, audio_dir: str | os.PathLike, name: str = "audiocaps"
) -> Corpus:
    """AudioCaps `audiocap_id,youtube_id,start_time,caption`; rows of one youtube_id are one clip.

    Audio is looked up as `<audio_dir>/<youtube_id>` with any usual suffix (.wav, .flac, .mp3, .ogg).
    """
    entries: dict[str, tuple[str, list[str], str | None, dict]] = {}
    for _, row in read_csv(csv_path, ("audiocap_id", "youtube_id", "start_time", "caption")):
        ytid = row["youtube_id"]
        entry = entries.setdefault(ytid, (ytid, [], None, {"start_time": row["start_time"]}))
        entry[1].append(row["caption"])
    return _collect(name, entries, Path(audio_dir))


def read_clotho(csv_path: str | os.PathLike, audio_dir: str | os.PathLike, name: str = "clotho") -> Corpus:
    """Clotho v2.1 `file_name,caption_1..caption_5`."""
    columns = ("file_name", *(f"caption_{i}" for i in range(1, 6)))
    entries = {
        row["file_name"]: (row["file_name"], [row[c] for c in columns[1:] if row[c]], None, {})
        for _, row in read_csv(csv_path, columns)
    }
    return _collect(name, entries, Path(audio_dir))


@dataclass(frozen=True)
class ClipPair:
    id: str
    first: Path
    second: Path
    captions: tuple[str, ...]


def read_audiodiffcaps(
    csv_path: str | os.PathLike, audio_dir: str | os.PathLike
) -> tuple[list[ClipPair], list[str]]:
    """AudioDiffCaps `key,s1_fn,s2_fn,caption_1..caption_5`: difference captions of clip pairs."""
    folder, pairs, missing = Path(audio_dir), [], []
    captions = [f"caption_{i}" for i in range(1, 6)]
    for _, row in read_csv(csv_path, ("key", "s1_fn", "s2_fn", *captions)):
        first, second = _find_audio(folder, row["s1_fn"]), _find_audio(folder, row["s2_fn"])
        absent = [str(folder / n) for n, p in ((row["s1_fn"], first), (row["s2_fn"], second)) if p is None]
        if absent:
            missing.extend(absent)
            continue
        pairs.append(ClipPair(row["key"], first, second, tuple(row[c] for c in captions if row[c])))
    if missing:
        log.warning(f"audiodiffcaps: {len(missing)} audio file(s) missing, e.g. {', '.join(missing[:3])}")
    return pairs, missing


def read_labelled_csv(
    csv_path: str | os.PathLike, root: str | os.PathLike | None = None, name: str = "labelled"
) -> Corpus:
    """`file_name,label[,phrase]` with paths relative to `root` (default: the CSV's folder).

    Used for single-event clips (the phrase is how a caption names the event) and the mini ability sets.
    """
    csv_path = Path(csv_path)
    folder = Path(root) if root is not None else csv_path.parent
    entries: dict[str, tuple[str, list[str], str | None, dict]] = {}
    for lineno, row in read_csv(csv_path, ("file_name", "label")):
        if not row["label"]:
            raise DataError(f"{csv_path}:{lineno}: empty label")
        meta = {"phrase": row["phrase"]} if row.get("phrase") else {}
        entries[row["file_name"]] = (row["file_name"], [], row["label"], meta)
    return _collect(name, entries, folder)


def read_label_folders(root: str | os.PathLike, name: str = "events") -> Corpus:
    """A folder of single-event clips with one sub-folder per label: `<root>/<label>/<clip>.wav`."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found")
    clips = [
        Clip(f"{path.parent.name}/{path.name}", path, (), path.parent.name)
        for path in sorted(root.glob("*/*"))
        if path.suffix.lower() in AUDIO_SUFFIXES
    ]
    if not clips:
        raise DataError(f"{root}: no audio files in label sub-folders (<root>/<label>/<clip>.wav)")
    return Corpus(name, clips)


# --- the four general-ability sets, from their published layouts -------------------------------------

VOCALSOUND_LABELS = ("laughter", "sigh", "cough", "throatclearing", "sneeze", "sniff")


def read_vocalsound(root: str | os.PathLike, split: str | None = None) -> Corpus:
    """VocalSound (16 kHz release): `audio_16k/<speaker>_<n>_<label>.wav`, splits in `meta/{tr,val,te}_meta.csv`.

    The split files list speaker ids; `split` is one of "train", "val", "test" or None for all clips.
    """
    root = Path(root)
    audio = root / "audio_16k"
    if not audio.is_dir():
        raise DataError(f"{audio}: VocalSound audio folder not found (expected <root>/audio_16k/)")
    speakers = _vocalsound_speakers(root, split) if split else None
    clips = []
    for path in sorted(audio.glob("*.wav")):
        speaker, label = path.stem.split("_")[0], path.stem.rsplit("_", 1)[-1]
        if label not in VOCALSOUND_LABELS:
            raise DataError(
                f"{path}: label '{label}' is not a VocalSound class ({', '.join(VOCALSOUND_LABELS)})"
            )
        if speakers is None or speaker in speakers:
            clips.append(Clip(path.stem, path, (), label, {"speaker": speaker}))
    return Corpus("vocalsound", clips)


def _vocalsound_speakers(root: Path, split: str) -> set[str]:
    names = {"train": "tr_meta.csv", "val": "val_meta.csv", "test": "te_meta.csv"}
    if split not in names:
        raise DataError(f"VocalSound split must be one of {', '.join(names)}, got '{split}'")
    path = root / "meta" / names[split]
    if not path.is_file():
        raise DataError(f"{path}: VocalSound split file not found")
    return {
        line.split(",")[0].strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    }


IEMOCAP_LINE = re.compile(r"^\[[\d.]+ - [\d.]+\]\t(\S+)\t(\w+)\t")


def read_iemocap(
    root: str | os.PathLike,
    sessions: Sequence[int] = (1, 2, 3, 4, 5),
    classes: Sequence[str] = ("neu", "hap", "ang", "sad"),
    merge: dict[str, str] | None = None,
) -> Corpus:
    """IEMOCAP full release: labels from `SessionN/dialog/EmoEvaluation/*.txt`, audio from
    `SessionN/sentences/wav/<dialog>/<utterance>.wav`. The usual 4-class setup merges excited into happy.
    """
    root, merge = Path(root), merge if merge is not None else {"exc": "hap"}
    entries: dict[str, tuple[str, list[str], str | None, dict]] = {}
    for session in sessions:
        evaluation = root / f"Session{session}" / "dialog" / "EmoEvaluation"
        if not evaluation.is_dir():
            raise DataError(f"{evaluation}: IEMOCAP evaluation folder not found")
        for txt in sorted(evaluation.glob("*.txt")):
            for line in txt.read_text(encoding="utf-8", errors="replace").splitlines():
                match = IEMOCAP_LINE.match(line)
                if not match:
                    continue
                utterance, label = match.group(1), merge.get(match.group(2), match.group(2))
                if label in classes:
                    dialog = utterance.rsplit("_", 1)[0]
                    stem = str(Path(f"Session{session}", "sentences", "wav", dialog, utterance))
                    entries[utterance] = (stem, [], label, {"session": session})
    return _collect("iemocap", entries, root)


def read_nsynth(root: str | os.PathLike) -> Corpus:
    """NSynth split folder (e.g. `nsynth-test/`): `examples.json` + `audio/<note_str>.wav`; label = instrument family."""
    root = Path(root)
    meta_path = root / "examples.json"
    if not meta_path.is_file():
        raise DataError(f"{meta_path}: NSynth examples.json not found")
    try:
        examples = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{meta_path}: broken JSON ({exc.msg} at line {exc.lineno})") from None
    entries = {}
    for note, info in examples.items():
        if "instrument_family_str" not in info:
            raise DataError(f"{meta_path}: example '{note}' has no instrument_family_str")
        entries[note] = (note, [], info["instrument_family_str"], {"pitch": info.get("pitch")})
    return _collect("nsynth", entries, root / "audio")


def read_gtzan(root: str | os.PathLike) -> Corpus:
    """GTZAN: `<root>/<genre>/<genre>.000NN.wav` (the `genres/` or `genres_original/` folder)."""
    return read_label_folders(root, name="gtzan")


# --- the corpus formats a build config names ----------------------------------------------------------


@dataclass(frozen=True)
class CorpusFormat:
    """One `format:` of a build config's corpus: the paths it needs (checked in this order, each one of `csv`
    and `audio_dir`) and the reader, called as `read(csv=..., audio_dir=..., name=...)`."""

    needs: tuple[str, ...]
    read: Callable[..., Corpus]


READERS: dict[str, CorpusFormat] = {
    "audiocaps": CorpusFormat(
        ("csv", "audio_dir"), lambda *, csv, audio_dir, name: read_audiocaps(csv, audio_dir, name=name)
    ),
    "clotho": CorpusFormat(
        ("csv", "audio_dir"), lambda *, csv, audio_dir, name: read_clotho(csv, audio_dir, name=name)
    ),
    # audio_dir is optional: file names are relative to the CSV's folder without it
    "labelled_csv": CorpusFormat(
        ("csv",), lambda *, csv, audio_dir, name: read_labelled_csv(csv, audio_dir, name=name)
    ),
    "label_folders": CorpusFormat(
        ("audio_dir",), lambda *, csv, audio_dir, name: read_label_folders(audio_dir, name=name)
    ),
}


def known_format(value: str, table: Mapping[str, object], what: str) -> str:
    """`value` if `table` has it; else a ValueError naming the known ones (a config validator's message)."""
    if value not in table:
        raise ValueError(f"unknown {what} '{value}' (known: {', '.join(table)})")
    return value


def group_by_label(clips: Sequence[Clip]) -> dict[str, list[Clip]]:
    groups: dict[str, list[Clip]] = defaultdict(list)
    for clip in clips:
        groups[clip.label or ""].append(clip)
    return dict(groups)
