#!/usr/bin/env bash
# Wheels that scripts/gpu-check.sh installs on a GPU machine where they are missing (it has no network):
# auralign's imports beyond torch / transformers / peft / accelerate, at the versions of this checkout's venv,
# for CPython 3.10-3.13 on x86-64 Linux, into .gpu-wheels/ (git-ignored; carried with the working tree).
# POT and scipy (exact OT's solver; ~33 + ~35 MB a version) only for GPU_PY (e.g. GPU_PY=3.12): a device call
# carries at most 64 MiB, so without them gpu-check skips the exact-OT part and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
pip=.venv/bin/pip
pins=$($pip freeze | grep -iE '^(pydantic|pydantic[-_]core|annotated[-_]types|typing[-_]inspection|typing[-_]extensions|pyyaml|soundfile|cffi|pycparser|soxr)==' )
mkdir -p .gpu-wheels
for v in 3.10 3.11 3.12 3.13; do
    for pin in $pins; do  # one at a time: a pin this Python cannot take is reported, the rest still come
        $pip download -q --no-deps --only-binary=:all: --python-version "$v" --implementation cp \
            --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
            -d .gpu-wheels "$pin" 2>/dev/null || echo "no wheel of $pin for Python $v"
    done
done
if [[ -n "${GPU_PY:-}" ]]; then
    $pip download -q --no-deps --only-binary=:all: --python-version "$GPU_PY" --implementation cp \
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 -d .gpu-wheels \
        "scipy==$($pip show scipy | sed -n 's/^Version: //p')" "pot==$($pip show pot | sed -n 's/^Version: //p')"
fi
du -sh .gpu-wheels
