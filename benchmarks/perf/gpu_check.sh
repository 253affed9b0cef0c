#!/usr/bin/env bash
# The GPU checks of the throughput benchmarks, in one go on a CUDA machine (a few minutes on an
# H100), after `pip install -e ".[dev]"`:
#
#   bash benchmarks/perf/gpu_check.sh [OUT_DIR]      # OUT_DIR defaults to $OUT, else gpu-check
#
# 1. `latentbench bench --suite quick --device cuda`: float32, then bf16 with channels-last, then
#    one model with --compile; the same JSON compared with itself must pass the gate;
# 2. the gpu-marked tests (pytest -m gpu), the perf cases run once each;
# 3. the CUDA cases of the perf suite with benchmarks enabled, and the harness-overhead benchmark
#    (which trains on CUDA when there is one; it fails below 95% of a bare loop).
# Everything printed goes to OUT_DIR/gpu_check.log; the JSON files land beside it. The exit code
# is 0 only when every step passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${1:-${OUT:-gpu-check}}"
mkdir -p "$out"
log="$out/gpu_check.log"
: >"$log"
export PYTHONUNBUFFERED=1
PYTHON="${PYTHON:-python3}"
failed=()

step() {  # step NAME COMMAND...: run, log, remember a failure, go on
  local name="$1"
  shift
  echo "=== $name: $*" | tee -a "$log"
  local started=$SECONDS
  "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: exit $rc after $((SECONDS - started)) s" | tee -a "$log"
  [ "$rc" -eq 0 ] || failed+=("$name")
}

latentbench() { "$PYTHON" -m latentbench.benchmarks.cli "$@"; }

if ! "$PYTHON" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  echo "gpu_check: torch sees no CUDA device" | tee -a "$log"
  exit 2
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 \
  | tee -a "$log"

step bench-fp32 latentbench bench --suite quick --device cuda --json "$out/bench-quick.json"
step bench-bf16 latentbench bench --suite quick --device cuda --amp bf16 --channels-last \
  --json "$out/bench-bf16.json"
step bench-fp16 latentbench bench --model dcgan --device cuda --amp fp16 --repeats 5
step bench-compile timeout 300 "$PYTHON" -m latentbench.benchmarks.cli bench --device cuda \
  --model vae --compile --repeats 5 --warmup 2 --json "$out/bench-compile.json"
step compare-self latentbench compare "$out/bench-quick.json" "$out/bench-quick.json"
step gpu-tests "$PYTHON" -m pytest -q -p no:cacheprovider -m gpu tests benchmarks/perf
step perf-gpu "$PYTHON" -m pytest -q -p no:cacheprovider -m gpu --benchmark-enable \
  --benchmark-json "$out/perf-gpu.json" --benchmark-columns=min,median,iqr,ops \
  benchmarks/perf/test_train_step.py benchmarks/perf/test_encode_decode.py \
  benchmarks/perf/test_features.py
step overhead "$PYTHON" -m pytest -q -p no:cacheprovider --benchmark-enable \
  --benchmark-json "$out/overhead.json" -s benchmarks/perf/test_harness_overhead.py
"$PYTHON" - "$out/overhead.json" <<'EOF' 2>&1 | tee -a "$log"
import json, sys
for bench in json.load(open(sys.argv[1]))["benchmarks"]:
    info = bench["extra_info"]
    print(f"harness/bare on {info['device']}, {info['case']}: {info['harness_over_bare']}"
          f" (bare {info['bare_img_s']} img/s, harness {info['harness_img_s']} img/s)")
EOF

if [ ${#failed[@]} -eq 0 ]; then
  echo "gpu_check: all steps passed; outputs in $out" | tee -a "$log"
else
  echo "gpu_check: FAILED: ${failed[*]}; see $log" | tee -a "$log"
  exit 1
fi
