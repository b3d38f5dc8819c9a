"""Peak memory and time of decoding a long file: `load_audio` (whole) against `load_audio_windows` (30 s at a time).

    .venv/bin/python benchmarks/bench_long_audio.py [--hours 2] [--rate 48000] [--channels 2]

Writes a 16-bit WAV of `--hours` of noise at `--rate` Hz with `--channels` channels into a temporary folder
(2 h at 48 kHz stereo: 1.4 GB), then decodes it to 16 kHz mono in a fresh process per method and reads the
child's peak RSS. Prints one JSON line per method, with the machine and the load average.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

DECODE = {
    "whole": "from auralign.audio import load_audio; n = load_audio(PATH).size",
    "windows": "from auralign.audio.io import load_audio_windows; n = sum(w.size for w in load_audio_windows(PATH, 30.0))",
}


def write_long_wav(path: Path, hours: float, rate: int, channels: int) -> None:
    rng = np.random.default_rng(0)
    minute = (rng.normal(0, 0.1, (60 * rate, channels)) * 32767).astype(np.int16)
    with sf.SoundFile(path, "w", rate, channels, "PCM_16") as handle:
        for _ in range(int(hours * 60)):
            handle.write(minute)


def measure(method: str, path: Path) -> dict:
    """Decode in a fresh process; its own peak RSS comes from wait4."""
    code = DECODE[method].replace("PATH", repr(str(path))) + "; print(n)"
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{method}: the decoding process failed")
    return {
        "method": method,
        "seconds": round(seconds, 1),
        "peak_rss_gb": round(usage.ru_maxrss / 2**20, 2),  # ru_maxrss is in KiB on Linux
        "samples_16k": int(out.strip()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--rate", type=int, default=48000)
    parser.add_argument("--channels", type=int, default=2)
    args = parser.parse_args()
    print(
        json.dumps(
            {
                "cpu": platform.processor() or platform.machine(),
                "cores": os.cpu_count(),
                "load": round(os.getloadavg()[0], 2),
                **vars(args),
            }
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        write_long_wav(path, args.hours, args.rate, args.channels)
        for method in ("whole", "windows"):
            print(json.dumps(measure(method, path)), flush=True)


if __name__ == "__main__":
    main()
