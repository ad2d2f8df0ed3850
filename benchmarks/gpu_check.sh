#!/usr/bin/env bash
# The prepared GPU check (issue 36): run it whenever a GPU machine is lent, in the repository root.
#
#   bash benchmarks/gpu_check.sh OUT_DIR
#
# Under 8 minutes on an H100 (the lent machine's limit is 10 per command and 15 per session, so a
# rerun still fits).  It writes to OUT_DIR:
#   device.txt         nvidia-smi, torch and CUDA versions
#   cuda_tests.txt     the CUDA tests (tests/test_cuda.py; they skip on a machine without CUDA)
#   engine.jsonl       benchmarks/gpu_engine.py: the paper's 20-layer 64-filter ReCNN over 256³, whole volume
#                      and streamed, fp32/bf16/fp16, seconds and peak GPU memory (goal: ≤ 2 s); one
#                      short training epoch of that network
#   upscale.tsv        whole-brain 2 mm → 1 mm and 1 mm → 0.5 mm upscales through the CLI in bf16 and fp16:
#                      wall seconds, inference seconds and peak GPU memory (from each sidecar)
#   summary.md         the rows for docs/benchmarks.md (section 'gpu')
#
# The lent machine reaches no package index: its image has torch, numpy, scipy, typer, rich,
# safetensors, pytest and hypothesis; nibabel comes as a wheel prepared here beforehand:
#   pip download --only-binary=:all: --no-deps --python-version 3.12 --platform manylinux2014_x86_64 \
#       -d .gpu-wheels nibabel && echo /.gpu-wheels/ >> .git/info/exclude
# and the run carries it:  device run with carry [".gpu-wheels"] and command
#   bash benchmarks/gpu_check.sh "$OUT"
# The brain volumes are made from the bundled 2 mm sample (share/data), so no data travels.
# DEVICE=cpu SIZE=24 TRAIN_STEPS=1 TRAIN_PATCH=8 QUICK=1 bash benchmarks/gpu_check.sh /tmp/out  checks the script on a CPU.
set -euo pipefail
OUT=${1:?usage: bash benchmarks/gpu_check.sh OUT_DIR}
DEVICE=${DEVICE:-cuda}
SIZE=${SIZE:-256}
TRAIN_STEPS=${TRAIN_STEPS:-50}
TRAIN_PATCH=${TRAIN_PATCH:-32}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PY" -c "import nibabel" 2>/dev/null; then
  [ -d .gpu-wheels ] || { echo "gpu_check: nibabel is missing and no .gpu-wheels folder was carried" >&2; exit 2; }
  "$PY" -m pip install -q --no-index --no-deps --target "$WORK/site" .gpu-wheels/*.whl
  export PYTHONPATH="$PYTHONPATH:$WORK/site"
fi

{ date -u; nvidia-smi 2>/dev/null || echo "no nvidia-smi";
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available()); \
print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA device')"; } > "$OUT/device.txt" 2>&1

echo "gpu_check: CUDA tests" >&2
"$PY" -m pytest -q -p no:cacheprovider tests/test_cuda.py > "$OUT/cuda_tests.txt" 2>&1 || echo "CUDA TESTS FAILED" >> "$OUT/cuda_tests.txt"

precisions="bf16 fp16"
[ "$DEVICE" = cpu ] && precisions="bf16"  # fp16 is a GPU precision
echo "gpu_check: engine at ${SIZE}^3 and a training epoch" >&2
timeout 300 "$PY" benchmarks/gpu_engine.py --device "$DEVICE" --size "$SIZE" --precisions "${precisions// /,}" \
  --train-steps "$TRAIN_STEPS" --train-patch "$TRAIN_PATCH" \
  > "$OUT/engine.jsonl" 2> "$OUT/engine.err" || echo '{"what": "engine", "error": "failed or timed out"}' >> "$OUT/engine.jsonl"

echo "gpu_check: whole-brain upscales" >&2
SAMPLE=share/data/sample_T1w_2mm.nii.gz
"$PY" -m mrsr_cli upscale "$SAMPLE" "$WORK/brain_1mm.nii.gz" --factor 2 --method spline -q
printf 'run\tprecision\twall_s\tinference_s\tpeak_device_mib\tpasses\n' > "$OUT/upscale.tsv"
runs="2mm-to-1mm:$SAMPLE 1mm-to-0.5mm:$WORK/brain_1mm.nii.gz"
[ -n "${QUICK:-}" ] && runs="2mm-to-1mm:$SAMPLE"
for run in $runs; do
  name=${run%%:*}; src=${run#*:}
  for precision in $precisions; do
    start=$(date +%s.%N)
    "$PY" -m mrsr_cli upscale "$src" "$WORK/sr.nii.gz" --factor 2 --device "$DEVICE" --precision "$precision" \
      --json --force -q > /dev/null
    end=$(date +%s.%N)
    "$PY" - "$WORK/sr.json" "$name" "$precision" "$start" "$end" >> "$OUT/upscale.tsv" <<'EOF'
import json, sys
sidecar = json.load(open(sys.argv[1]))
print("\t".join([sys.argv[2], sys.argv[3], f"{float(sys.argv[5]) - float(sys.argv[4]):.1f}",
                 str(sidecar.get("InferenceSeconds")), str(sidecar.get("PeakDeviceMemoryMiB")), str(sidecar.get("SelfEnsemble"))]))
EOF
  done
done

"$PY" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
device = (out / "device.txt").read_text().strip().splitlines()
lines = [f"GPU check ({device[0]}): {next((l for l in device if l.startswith('torch')), 'torch ?')}; "
         f"{device[-1]}.", "", "| what | precision | engine | seconds | peak GPU memory (MiB) | max abs diff vs fp32 whole |",
         "|---|---|---|---|---|---|"]
for row in map(json.loads, (out / "engine.jsonl").read_text().splitlines()):
    if row.get("what") == "engine" and "error" not in row:
        lines.append(f"| 20L-64f ReCNN over {row['size']}³ | {row['precision']} | {row['engine']} | {row['seconds']} | "
                     f"{row['peak_device_mib']} | {row['max_abs_diff_vs_fp32_whole']:.2e} |")
    elif row.get("what") == "training":
        lines.append(f"| training, {row['steps']} Adam steps of {row['batch']} × {row['patch']}³ patches (bf16) | bf16 | — | "
                     f"{row['seconds']} ({row['patches_per_second']} patches/s) | — | — |")
    else:
        lines.append(f"| engine | — | — | {row.get('error')} | — | — |")
lines += ["", "| upscale through the CLI | precision | wall (s) | inference (s) | peak GPU memory (MiB) | passes |", "|---|---|---|---|---|---|"]
for row in (out / "upscale.tsv").read_text().splitlines()[1:]:
    lines.append("| " + " | ".join(row.split("\t")) + " |")
tests = (out / "cuda_tests.txt").read_text().strip().splitlines()
lines += ["", f"CUDA tests: {tests[-1] if tests else 'no output'}"]
(out / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
