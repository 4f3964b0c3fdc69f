#!/usr/bin/env bash
# gpu-check.sh [--cpu-smoke] OUTDIR: cnnlab on the GPU machine in one go.
#
# Built into .device/ by `cargo xtask device-bundle`, with everything it needs beside
# it: bin/cnnlab (+ cnnlab-torch) linked against the GPU machine's PyTorch 2.11
# libtorch, data/cifar10-jpg.tar.gz, configs/cifar10/{seed3-final,fast94}.toml and
# ref/torch_ref.py (the PyTorch reference of `cargo xtask bench`). It writes to OUTDIR:
#   gpu-check.log        everything printed
#   nvidia-smi.txt       the GPU as the driver sees it
#   info.json            `cnnlab info --json`: libtorch, CUDA, device name, cuDNN
#   steps.jsonl          one JSON line per measurement (or per failed step)
#   gpu-check.json       the summary: throughput cnnlab vs PyTorch and their ratio,
#                        fast94 x seeds in fp32 and bf16 (wall time, test accuracy:
#                        mean and std), peak memory of each
# Peak memory is the most the driver showed in use (nvidia-smi, sampled every 0.2 s,
# minus what was in use before the step); with --cpu-smoke it is the process's peak
# resident memory instead.
#
# --cpu-smoke runs the same steps on this machine's CPU with tiny epochs (a few
# minutes), so the bundle is exercised where it is built.
#
# Environment: CNNLAB_PYTHON, the Python whose torch's lib/ the binary loads and which
# runs the PyTorch reference (default /opt/torch/.venv/bin/python3, the GPU machine's;
# with --cpu-smoke, the .venv-device/ python named in local-python when there is one);
# CNNLAB_WORK, scratch space for the data and runs (default $TMPDIR/cnnlab-gpu-check);
# GPU_CHECK_SEEDS, fast94 seeds per precision (default 5, 2 with --cpu-smoke).
set -uo pipefail

usage() {
  echo "usage: $0 [--cpu-smoke] OUTDIR" >&2
  exit 2
}
SMOKE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-smoke) SMOKE=1; shift ;;
    -h | --help) usage ;;
    -*) echo "gpu-check: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || usage

BUNDLE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1" || { echo "gpu-check: cannot create $1" >&2; exit 1; }
OUT=$(cd "$1" && pwd)
: > "$OUT/steps.jsonl"
exec > >(tee "$OUT/gpu-check.log") 2>&1
STARTED=$(date +%s.%N)
FAILED=0
say() { echo "gpu-check: $*"; }
fail() {
  say "FAILED: $2"
  FAILED=$((FAILED + 1))
  printf '{"step": "%s", "error": "%s"}\n' "$1" "$(echo "$2" | tr -d '"\\' | tr '\n' ' ')" >> "$OUT/steps.jsonl"
}

PY=${CNNLAB_PYTHON:-/opt/torch/.venv/bin/python3}
# A bundle built for the GPU machine names the build machine's torch 2.11 venv for
# --cpu-smoke runs there.
if [ -z "${CNNLAB_PYTHON:-}" ] && [ "$SMOKE" = 1 ] && [ -f "$BUNDLE/local-python" ]; then
  PY=$(cat "$BUNDLE/local-python")
fi
[ -x "$PY" ] || PY=$(command -v python3)
TORCH_LIB=$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))') || {
  say "$PY cannot import torch: set CNNLAB_PYTHON to a Python with PyTorch 2.11"
  exit 1
}
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
CNNLAB="$BUNDLE/bin/cnnlab"
WORK=${CNNLAB_WORK:-${TMPDIR:-/tmp}/cnnlab-gpu-check}
DATA="$WORK/data"
RUNS="$WORK/runs"
mkdir -p "$DATA" "$RUNS" "$WORK/configs"
if [ "$SMOKE" = 1 ]; then
  SEEDS=${GPU_CHECK_SEEDS:-2}
  TP_BATCHES=8
  REF_LIMIT=2000
  FAST94=(--quick --max-batches 2)
else
  SEEDS=${GPU_CHECK_SEEDS:-5}
  TP_BATCHES=400
  REF_LIMIT=20000
  FAST94=()
fi
say "bundle $BUNDLE, python $PY, torch lib $TORCH_LIB, work $WORK, smoke $SMOKE"

# --- 1. the machine and cnnlab's view of it ---------------------------------------
if [ "$SMOKE" = 0 ]; then
  nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || fail nvidia-smi "nvidia-smi failed (see nvidia-smi.txt)"
  cat "$OUT/nvidia-smi.txt"
else
  echo "cpu smoke: no nvidia-smi" > "$OUT/nvidia-smi.txt"
fi
if "$CNNLAB" info --json > "$OUT/info.json"; then
  cat "$OUT/info.json"
  if [ "$SMOKE" = 0 ] && ! grep -q '"cuda_available": *true' "$OUT/info.json"; then
    fail info "cnnlab does not see CUDA (info.json); the runs below use the CPU"
  fi
else
  fail info "cnnlab info failed (exit $?)"
fi

# --- helpers ----------------------------------------------------------------------
# used_mib: memory the driver shows in use now (GPU), or 0 on the CPU.
used_mib() {
  if [ "$SMOKE" = 0 ]; then
    local m
    m=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -1 | tr -dc 0-9)
    echo "${m:-0}"
  else
    echo 0
  fi
}
# measure NAME CMD...: runs CMD, sampling memory; sets SECONDS_TAKEN, PEAK_MIB, RC.
measure() {
  local name=$1 base peakfile t0 t1 pid sampler
  shift
  base=$(used_mib)
  peakfile="$WORK/$name.peak"
  echo 0 > "$peakfile"
  t0=$(date +%s.%N)
  "$@" &
  pid=$!
  (
    peak=0
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$SMOKE" = 0 ]; then
        m=$(($(used_mib) - base))
      else
        m=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$pid/status" 2>/dev/null || echo 0)
      fi
      [ -n "$m" ] && [ "$m" -gt "$peak" ] && peak=$m && echo "$peak" > "$peakfile"
      sleep 0.2
    done
  ) &
  sampler=$!
  wait "$pid"
  RC=$?
  wait "$sampler" 2>/dev/null
  t1=$(date +%s.%N)
  SECONDS_TAKEN=$(awk "BEGIN { print $t1 - $t0 }")
  PEAK_MIB=$(cat "$peakfile")
}
# status_field RUN KEY: a number from `cnnlab status --json RUN`.
status_field() {
  "$CNNLAB" status --json "$1" | "$PY" -c "import json, sys; v = json.load(sys.stdin).get('$2'); print('null' if v is None else v)"
}
# train_step STEP KEY FIELD JSON RUN ARGS...: `cnnlab -q train ARGS` into RUN, measured;
# appends {JSON, KEY: <FIELD of cnnlab status>, seconds, peak_mib} to steps.jsonl, or
# records STEP as failed.
train_step() {
  local step=$1 key=$2 field=$3 json=$4 run=$5 value
  shift 5
  measure "$step" "$CNNLAB" -q train "$@" --out "$run" --force --data-dir "$DATA"
  if [ "$RC" = 0 ]; then
    value=$(status_field "$run" "$field")
    say "  $key $value in $SECONDS_TAKEN s, peak $PEAK_MIB MiB"
    printf '{%s, "%s": %s, "seconds": %s, "peak_mib": %s}\n' "$json" "$key" "$value" "$SECONDS_TAKEN" "$PEAK_MIB" >> "$OUT/steps.jsonl"
  else
    fail "$step" "cnnlab train $* exited $RC"
  fi
}
# variant FILE BASE LINE: a config that extends BASE with one [train] line.
variant() {
  printf 'extends = "%s"\n\n[train]\n%s\n' "$BUNDLE/configs/cifar10/$2" "$3" > "$WORK/configs/$1"
  echo "$WORK/configs/$1"
}

# --- 2. the data -------------------------------------------------------------------
if [ ! -d "$DATA/cifar10-jpg/test" ]; then
  say "extracting CIFAR-10 (JPEG copy) into $DATA"
  tar -xzf "$BUNDLE/data/cifar10-jpg.tar.gz" -C "$DATA" || fail data "could not extract $BUNDLE/data/cifar10-jpg.tar.gz"
fi

# --- 3. training throughput: seed3-final, cnnlab (host and device feed) vs PyTorch ----
# Two epochs of TP_BATCHES batches; the second epoch's images/s (the first one
# includes cuDNN's autotuning and the first allocations).
HOST_CFG="$BUNDLE/configs/cifar10/seed3-final.toml"
DEVICE_CFG=$(variant seed3-final-device.toml seed3-final.toml 'pipeline = "device"')
for feed in host device; do
  cfg=$HOST_CFG
  [ "$feed" = device ] && cfg=$DEVICE_CFG
  say "seed3-final throughput, $feed feed, 2 x $TP_BATCHES batches"
  train_step "throughput-$feed" images_per_sec last_images_per_sec \
    "\"step\": \"throughput\", \"side\": \"cnnlab\", \"feed\": \"$feed\", \"batches\": $TP_BATCHES" \
    "$RUNS/throughput-$feed" "$cfg" --epochs 2 --max-batches "$TP_BATCHES"
done
WORKERS=$(( $(nproc) / 2 ))
[ "$WORKERS" -lt 2 ] && WORKERS=2
say "seed3-final throughput, PyTorch reference ($WORKERS DataLoader workers, $((2 * TP_BATCHES)) batches)"
measure tp-pytorch sh -c "exec \"$PY\" \"$BUNDLE/ref/torch_ref.py\" train seed3-final \"$DATA/cifar10-jpg/train\" --batches $((2 * TP_BATCHES)) --workers $WORKERS --limit $REF_LIMIT > \"$WORK/torch_ref.json\""
if [ "$RC" = 0 ]; then
  ref_field() { "$PY" -c "import json; v = json.loads(open('$WORK/torch_ref.json').read().splitlines()[-1]).get('$1'); print('null' if v is None else v)"; }
  ips=$(ref_field images_per_sec)
  say "  $ips images/s, peak $PEAK_MIB MiB"
  printf '{"step": "throughput", "side": "pytorch", "feed": "host", "images_per_sec": %s, "batches": %s, "workers": %s, "seconds": %s, "peak_mib": %s, "cuda_max_allocated_mib": %s}\n' \
    "$ips" "$((2 * TP_BATCHES))" "$WORKERS" "$SECONDS_TAKEN" "$PEAK_MIB" "$(ref_field cuda_max_allocated_mib)" >> "$OUT/steps.jsonl"
else
  fail throughput-pytorch "torch_ref.py exited $RC"
fi

# --- 4. fast94 x seeds, fp32 and bf16 -------------------------------------------------
for precision in fp32 bf16; do
  cfg=$(variant "fast94-$precision.toml" fast94.toml "precision = \"$precision\"")
  for seed in $(seq 0 $((SEEDS - 1))); do
    say "fast94 $precision seed $seed"
    train_step "fast94-$precision-$seed" accuracy accuracy \
      "\"step\": \"fast94\", \"precision\": \"$precision\", \"seed\": $seed" \
      "$RUNS/fast94-$precision/seed-$seed" "$cfg" --seed "$seed" "${FAST94[@]}"
  done
done

# --- 5. the summary -----------------------------------------------------------------
"$PY" - "$OUT" "$SMOKE" "$STARTED" <<'EOF'
import json, os, statistics, sys, time
out, smoke, started = sys.argv[1], sys.argv[2] == "1", float(sys.argv[3])
steps = [json.loads(line) for line in open(os.path.join(out, "steps.jsonl")) if line.strip()]
info = {}
try:
    info = json.load(open(os.path.join(out, "info.json")))
except Exception:
    pass
tp = {(s["side"], s["feed"]): s for s in steps if s.get("step") == "throughput"}
ref = tp.get(("pytorch", "host"), {}).get("images_per_sec")
throughput = {}
for (side, feed), s in tp.items():
    throughput[f"{side}_{feed}"] = {k: s[k] for k in ("images_per_sec", "peak_mib", "seconds", "cuda_max_allocated_mib") if k in s}
    if side == "cnnlab" and ref:
        throughput[f"{side}_{feed}"]["ratio_to_pytorch"] = s["images_per_sec"] / ref
fast94 = {}
for precision in ("fp32", "bf16"):
    runs = [s for s in steps if s.get("step") == "fast94" and s["precision"] == precision]
    if not runs:
        continue
    acc = [r["accuracy"] for r in runs if r["accuracy"] is not None]
    sec = [r["seconds"] for r in runs]
    sd = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0
    fast94[precision] = {
        "runs": len(runs), "seeds": [r["seed"] for r in runs],
        "accuracy_mean": statistics.mean(acc) if acc else None, "accuracy_std": sd(acc) if acc else None,
        "seconds_mean": statistics.mean(sec), "seconds_std": sd(sec),
        "peak_mib_max": max(r["peak_mib"] for r in runs), "per_run": runs,
    }
summary = {
    "mode": "cpu-smoke" if smoke else "gpu",
    "cnnlab_info": info,
    "throughput_seed3_final": throughput,
    "fast94": fast94,
    "peak_memory": "GPU memory in use (nvidia-smi) above the start of each step, MiB" if not smoke
                   else "peak resident memory of the process, MiB",
    "errors": [s for s in steps if "error" in s],
    "wall_seconds": time.time() - started,
}
json.dump(summary, open(os.path.join(out, "gpu-check.json"), "w"), indent=2)
print(json.dumps({k: summary[k] for k in ("mode", "throughput_seed3_final", "errors", "wall_seconds")}, indent=1))
for p, f in fast94.items():
    print(f"fast94 {p}: {f['runs']} runs, accuracy {f['accuracy_mean']} +- {f['accuracy_std']}, "
          f"{f['seconds_mean']:.1f} +- {f['seconds_std']:.1f} s, peak {f['peak_mib_max']} MiB")
EOF
[ $? = 0 ] || fail summary "writing gpu-check.json failed"
say "done in $(awk "BEGIN { print $(date +%s.%N) - $STARTED }") s, $FAILED failed step(s); results in $OUT"
[ "$FAILED" = 0 ]
