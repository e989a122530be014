#!/usr/bin/env bash
# GPU check: everything that needs CUDA, in one go, under 8 minutes on one modern GPU; prints one table at the end.
#
#   bash bench/gpu_check.sh            (from the repository root; PYTHON=... to choose the interpreter)
#
# 1. the notebook cells flagged `#| cuda` (nbdev_test --flags cuda, on the notebooks that have such cells)
# 2. pytest's CUDA tests (those skipped without CUDA)
# 3. one fp16 and one bf16 epoch of the MNIST lesson and of a U-Net, lesson 7's super-resolution step at 128 px
#    (bench/gpu_check.py)
# 4. with two or more GPUs, the distributed tests under torchrun with NCCL (tests/test_distributed.py, RESTORELAB_DDP_CUDA=1)
# Without CUDA it says so and exits 0 having run nothing.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=$(mktemp -d)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
NGPU=$($PY -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)' 2>/dev/null || echo 0)
if [ "$NGPU" = "0" ]; then echo "gpu_check: no CUDA device here: skipped (nothing was run)"; exit 0; fi
row() { printf '| %s | %s | %s |\n' "$1" "$2" "$3" >> "$OUT/table.md"; }
step() { local name=$1; shift; local t0=$SECONDS; "$@" > "$OUT/$name.log" 2>&1; local rc=$?
         row "$name" "$([ $rc = 0 ] && echo passed || echo "FAILED (rc $rc, see $OUT/$name.log)")" "$((SECONDS - t0)) s"; }

CUDA_NBS=$(grep -l '#| cuda' nbs/*.ipynb nbs/lessons/*.ipynb 2>/dev/null | tr '\n' ' ')
if [ -n "$CUDA_NBS" ] && command -v nbdev_test >/dev/null; then
  step "notebook cells flagged cuda" bash -c "for nb in $CUDA_NBS; do nbdev_test --flags cuda --n_workers 1 --path \$nb || exit 1; done"
else row "notebook cells flagged cuda" "not run (no nbdev_test, or no flagged cell)" "-"; fi
step "pytest CUDA tests" $PY -m pytest tests -q -k "cuda or fp16 or gpu" -p no:cacheprovider
step "epochs and step (gpu_check.py)" $PY bench/gpu_check.py
if [ "$NGPU" -ge 2 ]; then step "torchrun, 2 GPUs, NCCL" env RESTORELAB_DDP_CUDA=1 $PY -m pytest tests/test_distributed.py -q -p no:cacheprovider
else row "torchrun, 2 GPUs, NCCL" "not run: one GPU" "-"; fi

echo; echo "## GPU check: $($PY -c 'import torch; print(torch.cuda.get_device_name(0), "x", torch.cuda.device_count(), "| torch", torch.__version__)')"
echo; echo "| step | result | time |"; echo "| --- | --- | ---: |"; cat "$OUT/table.md"
echo; echo "| measurement | data | seconds | img/s | note |"; echo "| --- | --- | ---: | ---: | --- |"
$PY - "$OUT/epochs and step (gpu_check.py).log" <<'PYEOF'
import json, sys
for line in open(sys.argv[1]):
    try: r = json.loads(line)
    except ValueError: continue
    if r.get('what') == 'device': continue
    note = r.get('failed') or r.get('skipped') or r.get('note', '') + (f" valid acc {r['valid_acc']}" if 'valid_acc' in r else '')
    print(f"| {r['what']} | {r.get('data', '')} | {r.get('seconds', '')} | {r.get('img_s', '')} | {note} |")
PYEOF
