#!/usr/bin/env bash
# The speed checks for a machine with many cores and a CUDA GPU, as one prepared script (such time
# is scarce): the kernels' thread tests there, then scripts/bench_speed.py at every core and on the
# GPU, each part writing its JSON into OUT_DIR as it goes. Usage:
#   bash scripts/bench_device.sh smoke OUT_DIR     # ~1 minute: tests and one tiny run of each kind
#   bash scripts/bench_device.sh full OUT_DIR      # ~6 minutes: the tables of docs/performance.md
#   bash scripts/bench_device.sh threads OUT_DIR   # ~3 minutes: one thread against every core, same machine
# Wheels for packages the machine lacks can be put in .whl/ (installed into /tmp/site first).
set -uo pipefail
mode=${1:?smoke, full or threads}
out=${2:?output directory}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" SPARSE_RL_CACHE_DIR=/tmp/sparse_rl_cache
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 3
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
cores=$(nproc)
bench() { python3 scripts/bench_speed.py --learning-starts 300 "$@"; }
started=$SECONDS
left() { [ $((SECONDS - started)) -lt "$1" ]; }  # whether fewer than $1 seconds have passed
{
    echo "cores $cores; $(grep -m1 'model name' /proc/cpuinfo)"; command -v cc gcc; nvidia-smi -L
    python3 -c "import torch, gymnasium, stable_baselines3, mujoco; print(torch.__version__, torch.cuda.is_available())"
} 2>&1 | tee "$out/machine.txt"
if [ "$mode" = smoke ]; then
    python3 -m pytest -q -p no:cacheprovider --basetemp=/tmp/pt tests/sparse/test_native.py \
        tests/envs/test_counter_noise.py tests/envs/test_torch_noise.py tests/agents/test_cuda.py tests/sparse/test_csr.py \
        2>&1 | tee "$out/tests.txt"
    python3 scripts/bench_noise.py --rounds 10 --device cuda --out "$out/noise_cuda.json"
    bench --steps 20 --repeats 1 --settings f0.99 --agents dense_sb3 anf --threads all --out "$out/smoke_cpu.json"
    bench --steps 20 --repeats 1 --settings f0.99 --agents dense_sb3 anf anf_csr --device cuda \
        --out "$out/smoke_cuda.json"
    exit 0
fi
if [ "$mode" = threads ]; then
    pair() { bench --repeats 1 --agents dense_sb3 anf "$@" | grep '^round'; }
    pair --steps 300 --settings f0.99 --threads 1 all --out "$out/threads_f099.json"
    left 150 && pair --steps 250 --settings inputs17000 --threads 1 all --out "$out/threads_17k.json"
    left 170 && pair --steps 300 --settings f0 --threads 1 --out "$out/threads_f0.json"
    left 180 && pair --steps 300 --settings f0.99 --batch-size 100 --threads 1 all --out "$out/threads_f099_b100.json"
    echo "done in $((SECONDS - started)) s"
    exit 0
fi
# every core: f = 0.99 at batch 256 and 100, 17,000 inputs, f = 0; then the GPU; then the scaling curve
bench --steps 300 --repeats 2 --settings f0.99 --batch-size 256 100 --threads all --agents dense_sb3 anf \
    --out "$out/cores_f099.json"
bench --steps 250 --repeats 2 --settings inputs17000 --threads all --agents dense_sb3 anf --out "$out/cores_17k.json"
bench --steps 300 --repeats 2 --settings f0 --threads all --agents dense_sb3 anf --out "$out/cores_f0.json"
bench --steps 300 --repeats 1 --settings f0.99 inputs17000 --agents dense_sb3 anf anf_csr --device cuda \
    --out "$out/cuda.json"
left 330 && bench --steps 300 --repeats 1 --settings f0.99 --threads 1 4 --agents dense_sb3 anf \
    --out "$out/scaling.json"
left 400 && bench --steps 250 --repeats 1 --settings inputs17000 --threads all --agents anf --profile \
    --out "$out/profile_17k.json"
echo "done in $((SECONDS - started)) s"
