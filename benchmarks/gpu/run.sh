#!/usr/bin/env bash
# The training throughput run on a GPU machine: the shared reference and ours, same card, same job.
#
#   bash benchmarks/gpu/run.sh            (from the repository root; see benchmarks/gpu/README.md)
#
# Needs python3 with torch (CUDA), transformers, peft and accelerate (the device image has them; nothing is
# downloaded: the machine has no network). Optional: wheels in .whl/ (carried) are installed into /tmp/site.
# The reference script is taken from bench-ref/ (carried copy of ../shared/bench), shared/bench/ or
# ../shared/bench/. Writes under $OUT (default /tmp/fmops_gpu_bench): run.log, ref/results.json, fmops.json,
# fmops_extra_*.json, throughput.json, section.md and RESULTS.md (benchmarks/RESULTS.md with the new section).
# Total: about 6-8 minutes on an H100/H200 (DEADLINE seconds, default 450, bounds when stages may start).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
OUT="${OUT:-/tmp/fmops_gpu_bench}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error

{
  echo "== $(date -u +%FT%TZ) $(uname -m), $(nproc) CPUs"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
  if compgen -G ".whl/*.whl" >/dev/null; then
    echo "== installing carried wheels into /tmp/site"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
  fi
  missing=""
  for mod in torch transformers peft accelerate; do
    "$PY" -c "import $mod" 2>/dev/null || missing="$missing $mod"
  done
  if [ -n "$missing" ]; then
    echo "MISSING python packages:$missing (this machine cannot download them: carry wheels in .whl/, see benchmarks/gpu/README.md)"
    exit 2
  fi
  "$PY" - <<'PY'
import sys
import torch, transformers, peft, accelerate
print(f"== python {sys.version.split()[0]}, torch {torch.__version__} (CUDA {torch.version.cuda}), transformers "
      f"{transformers.__version__}, peft {peft.__version__}, accelerate {accelerate.__version__}")
if not torch.cuda.is_available():
    sys.exit("no CUDA device visible: this script is for the GPU machine (the CPU run is "
             "`python benchmarks/training_throughput.py`)")
print(f"== {torch.cuda.get_device_name(0)}, capability {torch.cuda.get_device_capability(0)}")
sys.path.insert(0, "training")
import benchmark  # noqa: F401  (fails here, in seconds, if our code does not import on this machine)
PY
  [ $? -eq 0 ] || exit 3
  ref=""
  for d in bench-ref shared/bench ../shared/bench; do
    [ -f "$d/gpu_finetune_baseline.py" ] && { ref="$d/gpu_finetune_baseline.py"; break; }
  done
  [ -n "$ref" ] && echo "== reference: $ref" || echo "== reference NOT found (copy ../shared/bench to bench-ref/ and carry it)"
  "$PY" benchmarks/training_throughput.py --out "$OUT" --deadline-s "${DEADLINE:-450}" --extras \
    ${ref:+--reference "$ref"} --command "bash benchmarks/gpu/run.sh"
  status=$?
  cp benchmarks/RESULTS.md "$OUT/RESULTS.md" 2>/dev/null
  echo "== done: status $status; files: $(cd "$OUT" && find . -type f | sort | tr '\n' ' ')"
  exit $status
} 2>&1 | tee "$OUT/run.log"
exit "${PIPESTATUS[0]}"
