#!/usr/bin/env bash
# GPU benchmark + CUDA checks for one short lease: bash bench/gpu.sh [OUTDIR] [--smoke]
# (OUTDIR: bench/results/gpu by default; a temporary folder for --smoke alone)
#
# Runs bench.gpu_e2e (JPEG files -> embeddings at batch 256 vs the model alone) first, then
# bench.gpu_bench's parts in order, each under a hard time limit taken from what is left of
# TOTAL seconds (default 450), then the CUDA-relevant test files, then torch.compile variants
# with whatever time is left. Writes OUTDIR/e2e/e2e.md, OUTDIR/results.md, results.json,
# results.jsonl, tests.txt (and the caller's log). PARTS="e2e tests" (say) runs only those
# steps (default: all). Carried wheels in .whl/ (diffusers, plotly, gradio_client) are
# installed into /tmp/site when a package is missing. --smoke: tiny sizes, runs on a CPU.
# ONLY=sweep: just the UNet sweep measurement (bench.unet_sweep: the app's sweep of the
# teaching set with SD 1.5's architecture, random weights) in OUTDIR/unet_sweep/.
set -u
if [ "${1:-}" = "--smoke" ]; then set -- "$(mktemp -d)" --smoke; fi  # a smoke run keeps out of results/
OUT=${1:-bench/results/gpu}
SMOKE=${2:-}
TOTAL=${TOTAL:-450}
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_DISABLE_TELEMETRY=1
unset PYTORCH_CUDA_ALLOC_CONF   # the default caching allocator: plain cudaMalloc, no VMM tricks
PY=${PYTHON:-python3}

if ! $PY -c "import diffusers, plotly, gradio_client" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
    echo "== installing carried wheels: $(ls .whl)"
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || echo "wheel install failed"
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi

PARTS=${PARTS:-all}
want() { [ "$PARTS" = all ] || [[ " $PARTS " == *" $1 "* ]]; }
left() { echo $(( TOTAL - SECONDS )); }
# step NAME CAP_SECONDS RESERVE_SECONDS cmd...: run under min(CAP, left - RESERVE), at least 15 s
step() {
    local name=$1 cap=$2 reserve=$3; shift 3
    want "${name%%-*}" || return 0
    local t=$(( $(left) - reserve )); (( t > cap )) && t=$cap
    if (( t < 15 )); then echo "== skip $name: no time left"; return 0; fi
    echo "== $name (limit ${t}s, ${SECONDS}s elapsed)"
    timeout -k 5 "$t" "$@"; local rc=$?
    (( rc == 124 || rc == 137 )) && echo "== $name: hit its ${t}s limit"
    echo "== $name done rc=$rc at ${SECONDS}s"
}
B=($PY -m bench.gpu_bench --out "$OUT" $SMOKE)
SWEEP=($PY -m bench.unet_sweep --out "$OUT/unet_sweep" ${SMOKE:+--smoke})
if [ "${ONLY:-}" = "sweep" ]; then
    step sweep $(( TOTAL - 15 )) 10 "${SWEEP[@]}" --budget $(( TOTAL - 150 ))
    cat "$OUT/unet_sweep/unet_sweep.md" 2>/dev/null
    echo "== total ${SECONDS}s"; exit 0
fi

# files -> embeddings end to end against the model alone: first, so that
# a short lease measures it
step e2e    120 300 $PY -m bench.gpu_e2e --out "$OUT/e2e" $SMOKE
step info    45 250 "${B[@]}" --part info
step vae    140 250 "${B[@]}" --part vae --budget 105
step embed   50 200 "${B[@]}" --part embed --budget 30
step oom     50 150 "${B[@]}" --part oom
# the UNet sweep: one (timestep, draw, prompt) pass over the teaching set timed, the whole
# 9,408-pass sweep extrapolated, and run when it fits (ONLY=sweep gives it the whole lease)
step sweep  120 130 "${SWEEP[@]}" --budget 60
# the app's paths vs the bare library calls (section 1), on the card
[ -z "$SMOKE" ] && step vsref   60 110 $PY -m bench.vs_reference --out "$OUT/vs_reference" --device cuda \
    --vae-size 512 --kl-size 512 --vae-batch 8 --embed-batch 64 --repeats 5 --parts vae,embed

# CUDA-relevant tests: no gradio app, no umap; the device is picked automatically (cuda > cpu).
TESTS=""
for f in fast_preprocess faults vae registry embeddings taesd cache lab latents metrics; do
    TESTS="$TESTS tests/test_$f.py"
done
PYTEST="$PY -m pytest -p no:cacheprovider -v --tb=short -rfEs --durations=8 --continue-on-collection-errors -m 'not app and not weights' -k 'not offline' --timeout 60$TESTS"
$PY -c "from explorer.models.device import pick_device; print('tests will run on:', pick_device())" \
    2>&1 | tee "$OUT/tests.txt"
if [ -n "$SMOKE" ]; then
    TESTS="tests/test_latents.py tests/test_metrics.py tests/test_fast_preprocess.py"
    PYTEST="$PY -m pytest -p no:cacheprovider -v --tb=short -rfEs --durations=8 $TESTS"
fi
echo "$PYTEST" >> "$OUT/tests.txt"
step tests 150 40 bash -c "$PYTEST" >> "$OUT/tests.txt" 2>&1
tail -n 40 "$OUT/tests.txt"
want tests && "${B[@]}" --part tests,report --summary "$OUT/tests.txt" --command "$PYTEST" >/dev/null

# torch.compile with what is left: default mode first, then max-autotune-no-cudagraphs.
step compile-default 150 50 "${B[@]}" --part compile --mode default --ops encode
step compile-autotune 150 20 "${B[@]}" --part compile --mode max-autotune-no-cudagraphs --ops encode
step compile-default-decode 120 10 "${B[@]}" --part compile --mode default --ops decode

"${B[@]}" --part report >/dev/null
echo "== total ${SECONDS}s"
sed -n '1,400p' "$OUT/results.md" | grep -E '^\*\*Best|OK|FAILED|passed|failed' || true
