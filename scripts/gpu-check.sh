#!/usr/bin/env bash
# The prepared GPU check: scripts/gpu-check.sh OUT_DIR [--tiny]
#
# At most 8 minutes on one H100/H200, with the packages such a machine already has (torch, transformers, peft,
# accelerate) plus, where missing, the small pure or binary wheels that `make gpu-wheels` put in .gpu-wheels/
# (carried with the working tree; nothing is fetched from the network). It writes to OUT_DIR:
#   env.json                  GPU, driver, Python, torch / CUDA, package versions
#   qwen2audio.json           Qwen2-Audio-7B architecture, random weights, bf16: the LoRA step at the paper's
#                             settings (batch 1, with and without gradient checkpointing; peak memory against the
#                             paper's 24 GB), tokens/s and MFU up to the largest batch that fits, batched
#                             generation captions/s (benchmarks/bench_qwen2audio_gpu.py)
#   dali-sinkhorn-gpu.json    one DALI alignment step at batch 256, LLaVA-1.5 / CAV-MAE token shapes (512 x 768
#                             audio -> 1024, 576 x 1024 image), Sinkhorn on the GPU (benchmarks/bench_dali_align.py)
#   dali-ot-exact.json        the same step with exact OT: tokens on the GPU, transport solved on the CPU threads
#   summary.json              each part's status (ok, timeout, failed, skipped: why) and wall seconds
#   gpu-check.log             everything printed
# --tiny runs the same parts on CPU with tiny shapes in about a minute: it checks the script, not speed.
set -uo pipefail

out=${1:?usage: scripts/gpu-check.sh OUT_DIR [--tiny]}
tiny=0
[[ "${2:-}" == "--tiny" ]] && tiny=1
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
exec > >(tee -a "$out/gpu-check.log") 2>&1
py=${PYTHON:-python3}
export PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}"
export TOKENIZERS_PARALLELISM=false
cd "$root"
echo "gpu-check $(date -u +%FT%TZ) tiny=$tiny python=$($py --version 2>&1)"

# What auralign imports beyond the GPU stack; installed from .gpu-wheels/ only, into a venv that sees the
# machine's own packages (so its torch is used as is).
needed=(pydantic yaml soundfile soxr ot scipy)
missing=$($py - "${needed[@]}" <<'EOF'
import importlib.util, sys
print(" ".join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))
EOF
)
if [[ -n "$missing" ]]; then
    echo "missing modules: $missing"
    if [[ -d .gpu-wheels ]]; then
        venv=${TMPDIR:-/tmp}/auralign-gpu-check-venv
        $py -m venv --system-site-packages "$venv" && py="$venv/bin/python"
        declare -A pkg=([pydantic]=pydantic [yaml]=pyyaml [soundfile]=soundfile [soxr]=soxr [ot]=pot [scipy]=scipy)
        for m in $missing; do
            $py -m pip install -q --no-index --find-links .gpu-wheels "${pkg[$m]}" || echo "no wheel for ${pkg[$m]} here"
        done
    else
        echo "no .gpu-wheels/ folder (make gpu-wheels): parts that need them are skipped"
    fi
fi

$py - "$out/env.json" <<'EOF'
import importlib, json, platform, subprocess, sys
info = {"python": sys.version.split()[0], "platform": platform.platform()}
try:
    import torch
    info |= {"torch": torch.__version__, "cuda": torch.version.cuda, "gpus": torch.cuda.device_count()}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info |= {"gpu": p.name, "gpu_memory_gib": round(p.total_memory / 2**30, 1)}
except ImportError as exc:
    info["torch"] = f"missing: {exc}"
for name in ("transformers", "peft", "accelerate", "pydantic", "soundfile", "soxr", "ot", "scipy"):
    try:
        info[name] = importlib.import_module(name).__version__
    except Exception as exc:  # a missing or broken package is a fact to record, not a reason to stop
        info[name] = f"missing: {type(exc).__name__}"
try:
    info["nvidia_smi"] = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm", "--format=csv,noheader"],
        capture_output=True, text=True, timeout=20).stdout.strip()
except (OSError, subprocess.SubprocessError):
    info["nvidia_smi"] = "unavailable"
json.dump(info, open(sys.argv[1], "w"), indent=2)
print(json.dumps(info))
EOF

declare -A status seconds
part() {  # part NAME TIMEOUT_S NEEDS_MODULES COMMAND...
    local name=$1 limit=$2 needs=$3
    shift 3
    for m in $needs; do
        if ! $py -c "import $m" 2>/dev/null; then
            status[$name]="skipped: module $m missing"
            echo "== $name: ${status[$name]}"
            return
        fi
    done
    echo "== $name (limit ${limit}s): $*"
    local start=$SECONDS
    timeout --kill-after=10 "$limit" "$@"
    local rc=$?
    seconds[$name]=$((SECONDS - start))
    case $rc in
        0) status[$name]=ok ;;
        124 | 137) status[$name]="timeout after ${limit}s" ;;
        *) status[$name]="failed: exit $rc" ;;
    esac
    echo "== $name: ${status[$name]} in ${seconds[$name]}s"
}

threads=$(nproc)
if ((tiny)); then
    part qwen2audio 300 "pydantic soundfile soxr" $py benchmarks/bench_qwen2audio_gpu.py --tiny --steps 1 \
        --max-batch 2 --gen-batch 1 2 --new-tokens 4 --out "$out/qwen2audio.json"
    for method in sinkhorn ot_exact; do
        part "dali-$method" 120 "pydantic ot scipy" $py benchmarks/bench_dali_align.py --shapes mini \
            --methods $method --batch 8 --reps 1 --threads 1 --device cpu --out "$out/dali-${method//_/-}.json"
    done
else
    part qwen2audio 300 "pydantic soundfile soxr" $py benchmarks/bench_qwen2audio_gpu.py \
        --out "$out/qwen2audio.json"
    part dali-sinkhorn 60 "pydantic" $py benchmarks/bench_dali_align.py --shapes dali --methods sinkhorn \
        --batch 256 --reps 5 --threads "$threads" --device cuda --out "$out/dali-sinkhorn-gpu.json"
    part dali-ot_exact 90 "pydantic ot scipy" $py benchmarks/bench_dali_align.py --shapes dali \
        --methods ot_exact --batch 256 --reps 3 --threads "$threads" --device cuda --out "$out/dali-ot-exact.json"
fi

{
    echo "{"
    first=1
    for name in qwen2audio dali-sinkhorn dali-ot_exact; do
        ((first)) || echo ","
        first=0
        printf '  "%s": {"status": "%s", "seconds": %s}' "$name" "${status[$name]:-not run}" "${seconds[$name]:-null}"
    done
    echo
    echo "}"
} > "$out/summary.json"
cat "$out/summary.json"
for name in qwen2audio dali-sinkhorn dali-ot_exact; do
    [[ "${status[$name]:-}" == ok ]] || exit 1
done
