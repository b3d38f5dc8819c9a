"""Corpus readers: published dataset layouts in, `Clip` records out (one audio file, its captions or label).

Audio is found as the releases and the common downloaders name it, whatever its audio suffix (`AudioFolder`):
a CSV saying `x.wav` finds `x.flac` once the corpus was converted. Missing files are collected in
`Corpus.missing` (reported with a count and the first examples), never replaced by anything; a corpus none of
whose listed clips is found is an error naming what was tried and showing one file that is there.

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
from typing import Any, Literal, NamedTuple

from auralign.errors import DataError

log = logging.getLogger(__name__)
# What libsndfile decodes (`auralign.audio.load_audio`), in the order a name found with several is preferred.
# `.au`: GTZAN's original release.
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".au")


@dataclass(frozen=True)
class Clip:
    id: str
    path: Path
    captions: tuple[str, ...] = ()
    label: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class ClipPair:
    """Two clips and captions of their difference (AudioDiffCaps)."""

    id: str
    first: Path
    second: Path
    captions: tuple[str, ...]


@dataclass
class Corpus:
    """Clips (or, for a pair corpus, clip pairs) and the audio files the metadata lists but the disk lacks."""

    name: str
    clips: list[Clip]
    missing: list[str] = field(default_factory=list)
    pairs: list[ClipPair] = field(default_factory=list)

    def report_missing(self, examples: int = 3) -> str:
        if not self.missing:
            return ""
        shown = ", ".join(self.missing[:examples])
        return f"{self.name}: {len(self.missing)} audio file(s) missing, e.g. {shown}"


# --- CSVs -------------------------------------------------------------------------------------------------


def read_csv(path: str | os.PathLike, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a CSV with a header, as (line number, row). Handles a BOM, blank lines and quoted commas.

    Raises DataError naming the file and line for a missing file, missing columns (with a hint when the
    header looks like another delimiter), a row with the wrong number of fields or a file that is not UTF-8
    (naming the encoding it most likely is).
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
    except UnicodeDecodeError as exc:
        raise DataError(not_utf8(path, exc)) from None
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV: {exc}") from None


def not_utf8(path: Path, exc: UnicodeDecodeError) -> str:
    """The message for a text file that is not UTF-8: where it fails and the encodings it most likely is."""
    likely = likely_encodings(path)
    guess = f"likely {' or '.join(likely)}; " if likely else ""
    return (
        f"{path}: not a UTF-8 text file (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
        f"{guess}re-save it as UTF-8"
    )


def likely_encodings(path: Path, most: int = 4) -> list[str]:
    """The encodings charset_normalizer finds equally plausible for a file, best first (a few accented
    letters in English text rarely tell cp1250 from cp1252, so one guess alone would often be wrong)."""
    from charset_normalizer import from_path

    matches = list(from_path(path))
    if not matches:
        return []
    names = [
        name for match in matches if match.chaos <= matches[0].chaos for name in match.could_be_from_charset
    ]
    return list(dict.fromkeys(names))[:most]


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


# --- finding audio ----------------------------------------------------------------------------------------


def _audio_stem(name: str) -> str:
    suffix = os.path.splitext(name)[1].lower()
    return name[: -len(suffix)] if suffix in AUDIO_SUFFIXES else name


class AudioFolder:
    """The audio files of one folder, found by name whatever their audio suffix.

    A name is a path relative to the folder, with or without a suffix (`x.wav` finds `x.wav`, else `x.flac`,
    ...). Each directory is listed once, so a lookup makes no file-system call per candidate name. With
    `label_folders`, files one level down (`<folder>/<label>/<file>`) are found by their bare names too.
    """

    def __init__(self, root: str | os.PathLike, *, label_folders: bool = False) -> None:
        self.root = Path(root)
        self.label_folders = label_folders
        self._listings: dict[Path, dict[str, list[str]]] = {}

    def _listing(self, folder: Path) -> dict[str, list[str]]:
        """{stem: [names relative to `folder`]} of its audio files, best suffix first."""
        if folder not in self._listings:
            stems: dict[str, list[str]] = defaultdict(list)
            depth = 2 if self.label_folders and folder == self.root else 1
            for relative in _audio_files(folder, depth=depth):
                stems[_audio_stem(Path(relative).name)].append(relative)
            for names in stems.values():
                names.sort(key=_preference)
            self._listings[folder] = dict(stems)
        return self._listings[folder]

    def find(self, *names: str) -> Path | None:
        """The first of `names` that exists, or None."""
        for name in names:
            path = self.root / name
            found = self._listing(path.parent).get(_audio_stem(path.name))
            if found:
                exact = path.name if path.name in found else found[0]
                return path.parent / exact
        return None

    def tried(self, *names: str) -> str:
        """What `find(*names)` looked for, for a message: `folder/a.*, folder/b.*`."""
        where = f"{self.root}/[<label>/]" if self.label_folders else f"{self.root}/"
        return ", ".join(f"{where}{_audio_stem(name)}.*" for name in dict.fromkeys(names))

    def describe(self) -> str:
        """One file that is there (or that the folder is empty or absent), for a message."""
        return describe_folder(self.root)


def _audio_files(folder: Path, depth: int) -> list[str]:
    """Names (relative to `folder`) of the audio files in it, and `depth - 1` levels below."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []
    names = []
    for entry in entries:
        if os.path.splitext(entry.name)[1].lower() in AUDIO_SUFFIXES and entry.is_file():
            names.append(entry.name)
        elif depth > 1 and entry.is_dir():
            names += [f"{entry.name}/{name}" for name in _audio_files(Path(entry.path), depth - 1)]
    return names


def describe_folder(folder: Path) -> str:
    """`<folder> holds e.g. <one file>` (searching two levels down), or that it is empty or absent."""
    if not folder.is_dir():
        return f"{folder} does not exist"
    for level in (folder, *sorted(p for p in folder.iterdir() if p.is_dir())):
        # an audio file if there is one: it shows the naming to compare with what was tried
        files = sorted(
            (p.suffix.lower() not in AUDIO_SUFFIXES, p.name, p) for p in level.iterdir() if p.is_file()
        )
        if files:
            return f"{folder} holds e.g. {files[0][2]}"
    return f"{folder} holds no files"


def _preference(name: str) -> tuple:
    """Files of one stem: shallowest first, then in `AUDIO_SUFFIXES` order."""
    return name.count("/"), AUDIO_SUFFIXES.index(os.path.splitext(name)[1].lower()), name


class _Entry(NamedTuple):
    """A clip the metadata lists: the names its audio may have, its captions, label and meta."""

    names: tuple[str, ...]
    captions: list[str]
    label: str | None
    meta: dict


def _collect(name: str, entries: Mapping[str, _Entry], folder: AudioFolder, source: Path) -> Corpus:
    """A Corpus of the entries whose audio exists; none found (or none listed) is an error."""
    if not entries:
        raise DataError(f"{source}: lists no clips")
    clips, missing = [], []
    for clip_id, entry in entries.items():
        path = folder.find(*entry.names)
        if path is None:
            missing.append(folder.tried(*entry.names))
            continue
        clips.append(Clip(clip_id, path, tuple(entry.captions), entry.label, entry.meta))
    if not clips:
        first_id, first = next(iter(entries.items()))
        raise DataError(
            f"{name}: none of the {len(entries)} clip(s) {source} lists has its audio: for {first_id} tried "
            f"{folder.tried(*first.names)}; {folder.describe()}"
        )
    corpus = Corpus(name, clips, missing)
    if missing:
        log.warning(corpus.report_missing())
    return corpus


# --- captioned corpora ------------------------------------------------------------------------------------


def read_audiocaps(
    csv_path: str | os.PathLike, audio_dir: str | os.PathLike, name: str = "audiocaps"
) -> Corpus:
    """AudioCaps `audiocap_id,youtube_id,start_time,caption`; rows of one youtube_id are one clip.

    The audio of a clip is the first file found among the names the common downloaders give it: the bare
    `<youtube_id>`, aac-datasets' `<youtube_id>_<start_time>`, AudioSet dumps' `Y<youtube_id>`, and
    audiocaps-download's `<audiocap_id>` (one file per caption row; any of them), with any audio suffix.
    """
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    for _, row in read_csv(csv_path, ("audiocap_id", "youtube_id", "start_time", "caption")):
        rows[row["youtube_id"]].append(row)
    entries = {
        ytid: _Entry(
            _audiocaps_names(ytid, group[0]["start_time"], [row["audiocap_id"] for row in group]),
            [row["caption"] for row in group],
            None,
            {"start_time": group[0]["start_time"]},
        )
        for ytid, group in rows.items()
    }
    return _collect(name, entries, AudioFolder(audio_dir), Path(csv_path))


def _audiocaps_names(ytid: str, start: str, audiocap_ids: Sequence[str]) -> tuple[str, ...]:
    starts = [start]
    if re.fullmatch(r"\d+\.0*", start):  # "30.0" in a re-saved CSV, "30" in the file name
        starts.append(start.split(".")[0])
    return tuple(dict.fromkeys([ytid, *(f"{ytid}_{s}" for s in starts), f"Y{ytid}", *audiocap_ids]))


def read_clotho(csv_path: str | os.PathLike, audio_dir: str | os.PathLike, name: str = "clotho") -> Corpus:
    """Clotho v2.1 `file_name,caption_1..caption_5`; `file_name` is found with any audio suffix."""
    columns = ("file_name", *(f"caption_{i}" for i in range(1, 6)))
    entries = {
        row["file_name"]: _Entry((row["file_name"],), [row[c] for c in columns[1:] if row[c]], None, {})
        for _, row in read_csv(csv_path, columns)
    }
    return _collect(name, entries, AudioFolder(audio_dir), Path(csv_path))


def read_audiodiffcaps(
    csv_path: str | os.PathLike, audio_dir: str | os.PathLike | None = None, name: str = "audiodiffcaps"
) -> Corpus:
    """AudioDiffCaps `key,s1_fn,s2_fn,caption_1..caption_5` (e.g. `adc_rain/dev/adc_rain_dev.csv`): a pair
    corpus, difference captions of clip pairs. Audio defaults to the release's `wav/` beside the CSV."""
    csv_path = Path(csv_path)
    folder = AudioFolder(audio_dir if audio_dir is not None else csv_path.parent / "wav")
    captions = [f"caption_{i}" for i in range(1, 6)]
    pairs, missing, listed = [], [], 0
    first_names: tuple[str, str] | None = None
    for _, row in read_csv(csv_path, ("key", "s1_fn", "s2_fn", *captions)):
        listed += 1
        first_names = first_names or (row["s1_fn"], row["s2_fn"])
        first, second = folder.find(row["s1_fn"]), folder.find(row["s2_fn"])
        absent = [folder.tried(n) for n, p in ((row["s1_fn"], first), (row["s2_fn"], second)) if p is None]
        if absent:
            missing.extend(absent)
            continue
        pairs.append(ClipPair(row["key"], first, second, tuple(row[c] for c in captions if row[c])))
    if not listed:
        raise DataError(f"{csv_path}: lists no clip pairs")
    if not pairs:
        raise DataError(
            f"{name}: none of the {listed} pair(s) {csv_path} lists has its audio: tried "
            f"{folder.tried(*first_names)}; {folder.describe()}"
        )
    corpus = Corpus(name, [], missing, pairs)
    if missing:
        log.warning(corpus.report_missing())
    return corpus


def read_labelled_csv(
    csv_path: str | os.PathLike, root: str | os.PathLike | None = None, name: str = "labelled"
) -> Corpus:
    """`file_name,label[,phrase]` with paths relative to `root` (default: the CSV's folder).

    Used for single-event clips (the phrase is how a caption names the event) and the mini ability sets.
    """
    csv_path = Path(csv_path)
    folder = Path(root) if root is not None else csv_path.parent
    entries: dict[str, _Entry] = {}
    for lineno, row in read_csv(csv_path, ("file_name", "label")):
        if not row["label"]:
            raise DataError(f"{csv_path}:{lineno}: empty label")
        meta = {"phrase": row["phrase"]} if row.get("phrase") else {}
        entries[row["file_name"]] = _Entry((row["file_name"],), [], row["label"], meta)
    return _collect(name, entries, AudioFolder(folder), csv_path)


def read_label_folders(root: str | os.PathLike, name: str = "events") -> Corpus:
    """A folder of single-event clips with one sub-folder per label: `<root>/<label>/<clip>.wav`."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found")
    clips = [
        Clip(f"{path.parent.name}/{path.name}", path, (), path.parent.name)
        for path in sorted(root.glob("*/*"))
        if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file()
    ]
    if not clips:
        raise DataError(
            f"{root}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in label sub-folders "
            f"(<root>/<label>/<clip>.wav); {describe_folder(root)}"
        )
    return Corpus(name, clips)


# --- the four general-ability sets, from their published layouts -------------------------------------

VOCALSOUND_LABELS = ("laughter", "sigh", "cough", "throatclearing", "sneeze", "sniff")
# split -> the prefix of its files in `meta/` and `datafiles/`
VOCALSOUND_SPLITS = {"train": "tr", "val": "val", "test": "te"}


def read_vocalsound(root: str | os.PathLike, split: str | None = None) -> Corpus:
    """VocalSound release: `audio_16k/<speaker>_<n>_<label>.wav` (or `audio_44k/`).

    `split` ("train", "val", "test"; None for all clips) keeps the speakers its split file lists, the first
    found of `meta/<tr|val|te>_meta.json` (the release's, as its README lays it out), `meta/<..>_meta.csv`
    and the baseline's `datafiles/<tr|val|te>.json`.
    """
    root = Path(root)
    tried = [root / "audio_16k", root / "audio_44k"]
    audio = next((folder for folder in tried if folder.is_dir()), None)
    if audio is None:
        raise DataError(
            f"{root}: VocalSound audio folder not found: tried {tried[0]}/ and {tried[1]}/; {describe_folder(root)}"
        )
    speakers, source = _vocalsound_speakers(root, split) if split else (None, None)
    clips = []
    for name in sorted(_audio_files(audio, depth=1)):
        stem = _audio_stem(name)
        speaker, label = stem.split("_")[0], stem.rsplit("_", 1)[-1]
        if label not in VOCALSOUND_LABELS:
            raise DataError(
                f"{audio / name}: label '{label}' is not a VocalSound class ({', '.join(VOCALSOUND_LABELS)})"
            )
        if speakers is None or speaker in speakers:
            clips.append(Clip(stem, audio / name, (), label, {"speaker": speaker}))
    if not clips:
        which = f" of the {len(speakers)} speaker(s) {source} lists" if speakers else ""
        raise DataError(
            f"{audio}: no VocalSound clip (<speaker>_<n>_<label>.wav){which}; {describe_folder(audio)}"
        )
    return Corpus("vocalsound", clips)


def _vocalsound_speakers(root: Path, split: str) -> tuple[set[str], Path]:
    """The speaker ids of a split and the file they come from."""
    if split not in VOCALSOUND_SPLITS:
        raise DataError(f"VocalSound split must be one of {', '.join(VOCALSOUND_SPLITS)}, got '{split}'")
    prefix = VOCALSOUND_SPLITS[split]
    tried = [
        root / "meta" / f"{prefix}_meta.json",
        root / "meta" / f"{prefix}_meta.csv",
        root / "datafiles" / f"{prefix}.json",
    ]
    for path in tried:
        if path.is_file():
            speakers = _speaker_ids(path)
            if not speakers:
                raise DataError(f"{path}: lists no speakers")
            return speakers, path
    raise DataError(
        f"VocalSound split '{split}': no split file; tried {', '.join(map(str, tried))}; "
        f"{describe_folder(root / 'meta')}"
    )


def _speaker_ids(path: Path) -> set[str]:
    """Speaker ids from a VocalSound split file: the first column of a `*_meta.csv`; the rows (lists, the first
    item the id, or objects with `spk_id`) or keys of a `*_meta.json`; the clips of a `datafiles/*.json`."""
    text = read_text(path)
    if path.suffix == ".csv":
        return {line.split(",")[0].strip() for line in text.splitlines() if line.strip()}
    data = load_json(path, text)
    if isinstance(data, dict) and isinstance(data.get("data"), list):  # datafiles: {"data": [{"wav": ...}]}
        rows = [
            Path(str(item.get("wav", ""))).name.split("_")[0]
            for item in data["data"]
            if isinstance(item, dict)
        ]
    elif isinstance(data, dict):
        rows = list(data)
    elif isinstance(data, list):
        rows = [_first_field(item) for item in data]
    else:
        raise DataError(f"{path}: expected a JSON list of speakers or an object keyed by speaker id")
    return {str(row).strip() for row in rows if row is not None and str(row).strip()}


def _first_field(item: Any) -> Any:
    if isinstance(item, list | tuple):
        return item[0] if item else None
    if isinstance(item, dict):
        return next((item[key] for key in ("spk_id", "speaker", "id") if key in item), None)
    return item


def read_text(path: Path) -> str:
    """A UTF-8 text file's content; DataError naming the file if it is absent or in another encoding."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise DataError(not_utf8(path, exc)) from None


def load_json(path: Path, text: str | None = None) -> Any:
    """A JSON file's content; DataError naming the file and line if it is broken."""
    try:
        return json.loads(read_text(path) if text is None else text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: broken JSON ({exc.msg} at line {exc.lineno})") from None


def json_type(value: Any) -> str:
    """How JSON calls the type of a parsed value (for messages about the wrong one)."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


IEMOCAP_LINE = re.compile(r"^\[[\d.]+ - [\d.]+\]\t(\S+)\t(\w+)\t")
# The usual fixed split (leave-one-session-out's last fold): Session 5 is the test set.
IEMOCAP_SESSIONS = {"train": (1, 2, 3, 4), "test": (5,)}


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
    entries: dict[str, _Entry] = {}
    for session in sessions:
        evaluation = root / f"Session{session}" / "dialog" / "EmoEvaluation"
        if not evaluation.is_dir():
            raise DataError(f"{evaluation}: IEMOCAP evaluation folder not found; {describe_folder(root)}")
        for txt in sorted(evaluation.glob("*.txt")):
            for line in txt.read_text(encoding="utf-8", errors="replace").splitlines():
                match = IEMOCAP_LINE.match(line)
                if not match:
                    continue
                utterance, label = match.group(1), merge.get(match.group(2), match.group(2))
                if label in classes:
                    dialog = utterance.rsplit("_", 1)[0]
                    name = f"Session{session}/sentences/wav/{dialog}/{utterance}"
                    entries[utterance] = _Entry((name,), [], label, {"session": session})
    where = f"{root} (sessions {', '.join(map(str, sessions))})"
    return _collect("iemocap", entries, AudioFolder(root), Path(where))


def read_nsynth(root: str | os.PathLike) -> Corpus:
    """NSynth split folder (e.g. `nsynth-test/`): `examples.json` + `audio/<note_str>.wav`; label = instrument family."""
    root = Path(root)
    meta_path = root / "examples.json"
    if not meta_path.is_file():
        raise DataError(f"{meta_path}: NSynth examples.json not found; {describe_folder(root)}")
    examples = load_json(meta_path)
    if not isinstance(examples, dict):
        raise DataError(
            f"{meta_path}: expected an object mapping note names to their attributes, "
            f"found a JSON {json_type(examples)}"
        )
    entries = {}
    for note, info in examples.items():
        if not isinstance(info, dict) or "instrument_family_str" not in info:
            raise DataError(f"{meta_path}: example '{note}' has no instrument_family_str")
        entries[note] = _Entry((note,), [], info["instrument_family_str"], {"pitch": info.get("pitch")})
    return _collect("nsynth", entries, AudioFolder(root / "audio"), meta_path)


# split -> the stem of its fault-filtered list (Kereliuk et al. 2015, as coreyker/dnn-mgr publishes them)
GTZAN_LISTS = {
    "train": "train_filtered",
    "valid": "valid_filtered",
    "val": "valid_filtered",
    "test": "test_filtered",
}


def read_gtzan(root: str | os.PathLike, split: str | None = None) -> Corpus:
    """GTZAN: `<root>/<genre>/<genre>.000NN.au` (the original release's `genres/`) or `.wav` (`genres_original/`).

    `split` ("train", "valid" or "val", "test") keeps the files of the standard fault-filtered list,
    `<split>_filtered.txt` in the root or beside it, lines `blues/blues.00029.wav` (found as `.au` too).
    """
    root = Path(root)
    if split is None:
        return read_label_folders(root, name="gtzan")
    if split not in GTZAN_LISTS:
        raise DataError(f"GTZAN split must be one of {', '.join(GTZAN_LISTS)}, got '{split}'")
    tried = [folder / f"{GTZAN_LISTS[split]}.txt" for folder in (root, root.parent)]
    list_path = next((path for path in tried if path.is_file()), None)
    if list_path is None:
        raise DataError(f"GTZAN split '{split}': no split list; tried {tried[0]} and {tried[1]}")
    entries = {}
    for lineno, line in enumerate(read_text(list_path).splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.count("/") != 1:
            raise DataError(f"{list_path}:{lineno}: expected <genre>/<file>, got {line!r}")
        entries[line] = _Entry((line,), [], line.split("/")[0], {})
    return _collect("gtzan", entries, AudioFolder(root), list_path)


# --- the corpus formats a build config names ----------------------------------------------------------


@dataclass(frozen=True)
class CorpusFormat:
    """One `format:` of a build config's corpus: the paths it needs (checked in this order, each one of `csv`
    and `audio_dir`), the reader, called as `read(csv=..., audio_dir=..., name=...)`, and what its corpus
    holds: captioned or labelled `clips`, or captioned clip `pairs` (whose split yields ADC samples)."""

    needs: tuple[str, ...]
    read: Callable[..., Corpus]
    holds: Literal["clips", "pairs"] = "clips"


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
    # audio_dir is optional: the release's wav/ beside the CSV without it
    "audiodiffcaps": CorpusFormat(
        ("csv",),
        lambda *, csv, audio_dir, name: read_audiodiffcaps(csv, audio_dir, name=name),
        holds="pairs",
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
