#!/usr/bin/env bash
# One command for a lent GPU machine (or any host): the CUDA tests, decode+score, the one_class
# stages on the device and, where a broker can run, streaming through Kafka; every result as
# JSON under one folder.
#
#   bash bench/gpu.sh [OUT_DIR]        default: $OUT, else bench/results/gpu-<UTC time>
#   VIGIL_GPU_BENCH_LIMIT_S=480        the whole run's time limit (each part gets what is left)
#   VIGIL_GPU_BENCH_DEVICE=cpu         force the CPU (proves the script end to end without CUDA)
#
# It needs only what the repository carries and the host's own torch/torchvision: nothing is
# installed. Each part first checks what it imports; a part that cannot run (no CUDA, no Java
# for a Kafka broker, a module the host lacks) is written to summary.json as skipped, with why,
# and the script goes on. Exit status: 0 unless a part that ran failed.
set -uo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_DIR"
OUT_DIR="${1:-${OUT:-bench/results/gpu-$(date -u +%Y%m%dT%H%M%SZ)}}"
mkdir -p "$OUT_DIR"
LIMIT_S="${VIGIL_GPU_BENCH_LIMIT_S:-480}"
DEADLINE=$(( $(date +%s) + LIMIT_S ))
PY="${PYTHON:-python3}"
export PYTHONPATH="$REPO_DIR:$REPO_DIR/shared:$REPO_DIR/services/inference:$REPO_DIR/services/trainer:$REPO_DIR/services/api:$REPO_DIR/services/ingest:$REPO_DIR/cli${PYTHONPATH:+:$PYTHONPATH}"
SUMMARY="$OUT_DIR/summary.jsonl"
: > "$SUMMARY"
FAILED=0

note() {  # part status detail: one JSON line per part
    "$PY" -c 'import json, sys; print(json.dumps({"part": sys.argv[1], "status": sys.argv[2], "detail": sys.argv[3]}))' \
        "$1" "$2" "$3" >> "$SUMMARY"
    echo "[gpu.sh] $1: $2 ($3)"
}

left() { echo $(( DEADLINE - $(date +%s) )); }

run_part() {  # name json_out command...: within the time left; notes ok / failed / timed out
    local name="$1"; shift
    local budget; budget=$(left)
    if (( budget < 20 )); then note "$name" skipped "the time limit (${LIMIT_S} s) is spent"; return; fi
    timeout --kill-after=10 "$budget" "$@" > "$OUT_DIR/$name.log" 2>&1
    local rc=$?
    if (( rc == 0 )); then note "$name" ok "log: $name.log"
    elif (( rc == 124 || rc == 137 )); then note "$name" "timed out" "after ${budget} s"; FAILED=1
    else note "$name" failed "exit $rc, log: $name.log"; FAILED=1; fi
}

# --- what this host has -------------------------------------------------------------------
"$PY" - "$OUT_DIR/host.json" <<'EOF'
import importlib.util, json, os, platform, shutil, sys
mods = ["torch", "torchvision", "pydantic", "pydantic_settings", "kafka", "minio", "cv2",
        "safetensors", "prometheus_client", "pytest", "PIL", "av"]
host = {"python": sys.version.split()[0], "platform": platform.platform(),
        "cpus": len(os.sched_getaffinity(0)), "java": shutil.which("java"),
        "missing_modules": [m for m in mods if importlib.util.find_spec(m) is None]}
try:
    import torch
    host |= {"torch": torch.__version__, "cuda": torch.cuda.is_available(),
             "device": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
except ImportError:
    host |= {"torch": None, "cuda": False, "device": None}
json.dump(host, open(sys.argv[1], "w"), indent=2)
print(json.dumps(host))
EOF
CUDA=$("$PY" -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["cuda"]))' "$OUT_DIR/host.json")
MISSING=$("$PY" -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["missing_modules"]))' "$OUT_DIR/host.json")
DEVICE="${VIGIL_GPU_BENCH_DEVICE:-$([[ $CUDA == 1 ]] && echo cuda || echo cpu)}"
needs() {  # part module...: true when every module is importable, else notes the part skipped
    local part="$1"; shift
    for module in "$@"; do
        if [[ " $MISSING " == *" $module "* ]]; then
            note "$part" skipped "this host lacks the Python module $module"; return 1
        fi
    done
}

# --- tests marked gpu (they skip themselves without CUDA) ------------------------------------
if needs pytest-gpu pytest torch pydantic safetensors cv2; then
    [[ $CUDA == 1 ]] || note pytest-gpu info "no CUDA device: the gpu tests will report skipped"
    run_part pytest-gpu "$PY" -m pytest -m gpu -q -p no:cacheprovider \
        --junitxml="$OUT_DIR/pytest-gpu.xml" tests/unit
fi

# --- decode + score, in process ------------------------------------------------------------
[[ $DEVICE == cuda ]] || note decode-score info "device $DEVICE: figures are not GPU figures"
BATCH=$([[ $DEVICE == cuda ]] && echo 256 || echo 16)
FRAMES=$([[ $DEVICE == cuda ]] && echo 2000 || echo 64)
if needs decode-score torch torchvision pydantic pydantic_settings safetensors cv2 prometheus_client; then
    run_part decode-score-warmup "$PY" -m bench.decode_score --model warmup --device "$DEVICE" \
        --batch-size "$BATCH" --frames "$FRAMES" --json "$OUT_DIR/decode-score-warmup.json"
    for motion in farneback lucas_kanade dis; do  # the default first: on CUDA, in torch
        run_part "decode-score-one-class-$motion" "$PY" -m bench.decode_score --model one_class \
            --motion "$motion" --device "$DEVICE" --batch-size "$BATCH" --frames "$FRAMES" \
            --json "$OUT_DIR/decode-score-one-class-$motion.json"
    done
    # Where a one_class frame's time goes on the device: decode, backbone, kNN, Farneback.
    if [[ $DEVICE == cuda ]]; then STAGES=(--batch-sizes 64,256 --rounds 3)
    else STAGES=(--batch-sizes 4 --rounds 1); fi
    run_part one-class-stages "$PY" -m bench.one_class_stages --device "$DEVICE" --threads 1 \
        "${STAGES[@]}" --json "$OUT_DIR/one-class-stages.json"
fi

# --- streaming through Kafka (needs a broker: Java, and the stack's servers) ---------------
PED2="$REPO_DIR/../shared/datasets/ucsd-ped2"
if [[ $DEVICE == cuda ]]; then STREAM=(--cameras 50 --frames 5000 --seconds 20 --batch-size 256)
else STREAM=(--cameras 4 --frames 120 --seconds 5 --batch-size 16); fi
if ! command -v java > /dev/null; then
    note stream skipped "no Java runtime on this host: no Kafka broker can run here"
elif [[ ! -d $PED2 ]]; then
    note stream skipped "UCSD Ped2 is not at $PED2 (the stream bench publishes its frames)"
elif needs stream kafka minio pydantic prometheus_client; then
    if timeout 120 bash scripts/stack.sh start kafka s3 > "$OUT_DIR/stack.log" 2>&1; then
        set -a; . "${VIGIL_STACK_DIR:-.stack}/env"; set +a
        for model in warmup one_class; do
            run_part "stream-$model" "$PY" -m bench.stream --model "$model" --device "$DEVICE" \
                "${STREAM[@]}" --image-size 160 --train-clips 3 --json "$OUT_DIR/stream-$model.json"
        done
    else
        note stream skipped "the stack's Kafka and S3 did not start (see stack.log)"
    fi
fi

"$PY" - "$SUMMARY" "$OUT_DIR/summary.json" <<'EOF'
import json, sys
parts = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
json.dump({"parts": parts}, open(sys.argv[2], "w"), indent=2)
EOF
echo "[gpu.sh] results in $OUT_DIR (summary.json)"
exit "$FAILED"
