"""`auralign data frames | av-manifest | mini-av`: audio-visual pairs for DALI (registered by data.commands)."""

import argparse
from pathlib import Path


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

    count = extract_dir(
        args.video_dir, args.out_dir, n=None if args.fps else args.n, fps=args.fps, audio=args.audio
    )
    print(f"{count} videos -> {args.out_dir}")
    return 0


def _av_manifest(args: argparse.Namespace) -> int:
    from auralign.data.audiovisual import read_audioset_layout, write_av_manifest

    samples = read_audioset_layout(
        args.segments,
        args.audio_dir,
        args.frames_dir,
        on_missing="skip" if args.skip_missing else "error",
        class_labels=args.class_labels,
    )
    print(f"{write_av_manifest(args.out, samples)} samples -> {args.out}")
    return 0


def _mini_av(args: argparse.Namespace) -> int:
    import json

    from auralign.data.mini.av import build_mini_av

    summary = build_mini_av(args.mini_dir, args.out_dir, seed=args.seed)
    print(json.dumps({k: summary[k] for k in ("scenes", "prefix_pairs", "captioner_images")}))
    return 0
