#!/usr/bin/env bash
# One thread against every core on the same machine (dense SB3 and anf, interleaved), for a machine
# with many cores, as one prepared script: the same-machine comparison docs/performance.md quotes.
#   bash scripts/bench_device_threads.sh OUT_DIR
set -uo pipefail
out=${1:?output directory}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" SPARSE_RL_CACHE_DIR=/tmp/sparse_rl_cache
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 3
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
started=$SECONDS
left() { [ $((SECONDS - started)) -lt "$1" ]; }
bench() { python3 scripts/bench_speed.py --learning-starts 300 --repeats 1 --agents dense_sb3 anf "$@" | grep '^round'; }
bench --steps 300 --settings f0.99 --threads 1 all --out "$out/threads_f099.json"
left 150 && bench --steps 250 --settings inputs17000 --threads 1 all --out "$out/threads_17k.json"
left 170 && bench --steps 300 --settings f0 --threads 1 --out "$out/threads_f0.json"
left 180 && bench --steps 300 --settings f0.99 --batch-size 100 --threads 1 all --out "$out/threads_f099_b100.json"
echo "done in $((SECONDS - started)) s"
