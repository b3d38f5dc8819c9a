"""scripts/gpu-check.sh --tiny: the prepared GPU check runs every part on CPU and writes what it promises."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_tiny_writes_every_part(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu-check.sh"), str(tmp_path), "--tiny"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {name: part["status"] for name, part in summary.items()} == {
        "qwen2audio": "ok",
        "dali-sinkhorn": "ok",
        "dali-ot_exact": "ok",
    }
    qwen = json.loads((tmp_path / "qwen2audio.json").read_text())
    assert {row["grad_ckpt"] for row in qwen["train"]} == {False, True}
    assert all(row["tokens_per_s"] > 0 for row in qwen["train"]) and qwen["generate"]
    for name in ("dali-sinkhorn", "dali-ot-exact"):
        figures = json.loads((tmp_path / f"{name}.json").read_text())["results"]["mini"]
        assert all(step["ms"] > 0 for step in figures.values())
    env_info = json.loads((tmp_path / "env.json").read_text())
    assert env_info["torch"].startswith("2.") and "gpu-check" in (tmp_path / "gpu-check.log").read_text()
