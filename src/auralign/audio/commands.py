"""`auralign audio check FILE...`: validate audio files the way every loader in auralign will read them."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path


def register(verbs: argparse._SubParsersAction) -> None:
    audio = verbs.add_parser("audio", help="inspect and validate audio files")
    sub = audio.add_subparsers(dest="audio_command", required=True, metavar="STEP")
    check = sub.add_parser(
        "check", help="decode each file as training would; one line per file, exit 2 if any fails"
    )
    check.add_argument("files", type=Path, nargs="+")
    check.add_argument("--sr", type=int, default=16000, help="target sample rate (default 16000)")
    check.add_argument("--max-seconds", type=float, default=None, help="reject files longer than this")
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    from auralign.audio.io import MAX_RATE, MIN_RATE, AudioError, AudioWarning, audio_info, load_audio
    from auralign.errors import ConfigError

    if not MIN_RATE <= args.sr <= MAX_RATE:
        raise ConfigError(f"--sr {args.sr}: a target sample rate must lie in {MIN_RATE}..{MAX_RATE} Hz")
    if args.max_seconds is not None and not args.max_seconds > 0:
        raise ConfigError(f"--max-seconds {args.max_seconds:g}: must be more than 0")

    failed = 0
    for path in args.files:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", AudioWarning)
                rate, _, channels = audio_info(path)
                samples = load_audio(path, sr=args.sr, max_seconds=args.max_seconds)
        except AudioError as exc:
            failed += 1
            print(f"auralign: error: {exc}", file=sys.stderr)
            continue
        notes = "".join(f"; warning: {w.message}" for w in caught)
        print(f"{path}: ok, {rate} Hz, {channels} ch, {samples.size / args.sr:.2f} s{notes}")
    return 2 if failed else 0
