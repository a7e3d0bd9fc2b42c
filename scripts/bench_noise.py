"""Time the regeneration of the noise features of one sampled batch, per noise generator, and write
the numbers to a file.

What the noise-free replay buffer does at every gradient step: rebuild the noise of the batch's
observations and next observations (2 × batch rows) straight into the batch. Generators, measured
in interleaved rounds (so that load on the machine hits all alike): ``counter`` (the default,
native kernel), ``counter`` computed with numpy (what a machine without a C compiler gets, the
same numbers) and ``philox``. Usage::

    python scripts/bench_noise.py [--out docs/bench_noise.json] [--rounds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from sparse_rl.envs.noise import CounterNoise, IndexedNoise, NormalNoise
from sparse_rl.envs.noise.counter import counter_noise_numpy

#: (label, noise features, batch size): HalfCheetah-v5's 17 real features at f = 0.99 and 0.999
SETTINGS = (("f0.99-batch256", 1683, 256), ("f0.99-batch100", 1683, 100), ("f0.999-batch256", 16983, 256))


def generators(size: int) -> dict[str, Callable[[np.ndarray, np.ndarray], object]]:
    """Functions that write the noise of ``indices`` into ``out`` (rows × size), by generator name."""
    counter = CounterNoise(NormalNoise(), size, noise_seed=1)
    philox = IndexedNoise(NormalNoise(), size, noise_seed=1)
    return {
        "counter": lambda indices, out: counter.many(indices, out=out),
        "counter_numpy": lambda indices, out: counter_noise_numpy(counter.key, indices, size, "normal", out),
        "philox": lambda indices, out: philox.many(indices, out=out),
    }


def measure(size: int, batch: int, rounds: int) -> dict[str, float]:
    """Median milliseconds per sampled batch (2 × ``batch`` rows) of each generator."""
    rng = np.random.default_rng(0)
    functions = generators(size)
    out = np.empty((2 * batch, 17 + size), dtype=np.float32)
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(rounds):
        indices = rng.integers(0, 1_000_000, 2 * batch).astype(np.uint64)
        for name, function in functions.items():
            if name in ("philox", "counter_numpy") and size > 5000 and len(times[name]) >= 3:
                continue  # slow at 17,000 features: three rounds tell enough
            start = time.perf_counter()
            function(indices, out[:, 17:])
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(values) for name, values in times.items()}


def main() -> None:
    """Measure every setting and write the JSON file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/bench_noise.json"))
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    results = {}
    for label, size, batch in SETTINGS:
        results[label] = {"noise_features": size, "batch": batch, "ms_per_sampled_batch": measure(size, batch,
                                                                                                  args.rounds)}
        ms = results[label]["ms_per_sampled_batch"]
        print(label, {name: round(value, 3) for name, value in ms.items()},
              f"counter/philox = {ms['counter'] / ms['philox']:.2f}")
    report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.processor()
              or platform.machine(), "cpus": os.cpu_count(), "rounds": args.rounds,
              "note": "median ms to regenerate the noise of one sampled batch (observations and next observations)",
              "results": results}
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
