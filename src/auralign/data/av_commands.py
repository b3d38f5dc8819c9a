"""`auralign data frames | av-manifest | mini-av`: audio-visual pairs for DALI (registered by data.commands).

The command line's paths are checked before any work: a missing folder, a text file that is not UTF-8 (a
CSV saved as Latin-1) or a class-labels CSV without its columns is one line naming the file.
"""

import argparse
import csv
from pathlib import Path

from auralign.errors import ConfigError, DataError


def add_av_verbs(sub: argparse._SubParsersAction) -> None:
    frames = sub.add_parser(
        "frames", help="extract frames (and optionally 16 kHz audio) from a folder of videos"
    )
    frames.add_argument("video_dir", type=Path)
    frames.add_argument(
        "out_dir", type=Path, help="writes OUT/frames/<video>/NNN.jpg (and OUT/audio/<video>.flac)"
    )
    how = frames.add_mutually_exclusive_group()
    how.add_argument(
        "--n", type=int, default=1, help="evenly spaced frames per video (default 1, the middle)"
    )
    how.add_argument("--fps", type=float, help="frames per second instead of --n")
    frames.add_argument("--audio", action="store_true", help="also write the audio track as 16 kHz mono FLAC")
    frames.set_defaults(handler=_frames)

    manifest = sub.add_parser(
        "av-manifest", help="an audio-visual JSONL manifest from an AudioSet-style layout"
    )
    manifest.add_argument(
        "segments", type=Path, help="AudioSet segments CSV, video_id,start,end CSV, or id list"
    )
    manifest.add_argument("audio_dir", type=Path)
    manifest.add_argument("frames_dir", type=Path)
    manifest.add_argument("out", type=Path, help="the manifest to write (.jsonl)")
    manifest.add_argument(
        "--skip-missing", action="store_true", help="leave out segments lacking audio/frames"
    )
    manifest.add_argument("--class-labels", type=Path, help="class_labels_indices.csv to name the labels")
    manifest.set_defaults(handler=_av_manifest)

    mini = sub.add_parser("mini-av", help="the offline audio-visual miniature from a built mini corpus")
    mini.add_argument("mini_dir", type=Path, help="a folder built by `auralign data mini`")
    mini.add_argument("out_dir", type=Path)
    mini.add_argument("--seed", type=int, default=0)
    mini.set_defaults(handler=_mini_av)


def _frames(args: argparse.Namespace) -> int:
    from auralign.data.audiovisual import extract_dir

    if not args.video_dir.is_dir():
        raise DataError(f"{args.video_dir}: no such folder of videos")

    count = extract_dir(
        args.video_dir, args.out_dir, n=None if args.fps else args.n, fps=args.fps, audio=args.audio
    )
    print(f"{count} videos -> {args.out_dir}")
    return 0


def _av_manifest(args: argparse.Namespace) -> int:
    from auralign.data.audiovisual import read_audioset_layout, write_av_manifest

    if args.segments.is_file():
        utf8_text(args.segments, "segments file")
    if args.class_labels is not None:
        header = utf8_text(args.class_labels, "class labels file").partition("\n")[0]
        if not {"mid", "display_name"} <= {cell.strip() for cell in next(csv.reader([header]), [])}:
            raise DataError(
                f"{args.class_labels}: expected a CSV with 'mid' and 'display_name' columns "
                "(AudioSet's class_labels_indices.csv)"
            )
    if args.out.is_dir():
        raise ConfigError(
            f"{args.out}: is a folder; name the manifest to write, e.g. {args.out / 'av.jsonl'}"
        )

    samples = read_audioset_layout(
        args.segments,
        args.audio_dir,
        args.frames_dir,
        on_missing="skip" if args.skip_missing else "error",
        class_labels=args.class_labels,
    )
    print(f"{write_av_manifest(args.out, samples)} samples -> {args.out}")
    return 0


def utf8_text(path: Path, what: str) -> str:
    """The text of `path`; DataError naming it (and the line of the first byte that is not UTF-8) otherwise."""
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: {what} is not UTF-8 text (save it as UTF-8)") from None


def _mini_av(args: argparse.Namespace) -> int:
    import json

    from auralign.data.mini.av import build_mini_av

    summary = build_mini_av(args.mini_dir, args.out_dir, seed=args.seed)
    print(json.dumps({k: summary[k] for k in ("scenes", "prefix_pairs", "captioner_images")}))
    return 0
