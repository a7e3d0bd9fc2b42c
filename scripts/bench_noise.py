"""Time the regeneration of the noise features of one sampled batch, per noise generator, and write
the numbers to a file.

What the noise-free replay buffer does at every gradient step: rebuild the noise of the batch's
observations and next observations (2 × batch rows) straight into the batch. Generators, measured
in interleaved rounds (so that load on the machine hits all alike): ``counter`` (the default,
native kernel), ``counter`` computed with numpy (what a machine without a C compiler gets, the
same numbers) and ``philox``. With ``--device`` (e.g. ``cuda``), two more: ``counter_to_device`` (the native kernel,
then the batch copied to the device: the noise crosses the bus) and ``counter_on_device`` (the
indices copied to the device and the noise made there with torch, as a GPU agent's replay buffer
does; the same numbers). Usage::

    python scripts/bench_noise.py [--out docs/bench_noise.json] [--rounds 30] [--device cuda]
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
import torch

from sparse_rl.envs.noise import CounterNoise, IndexedNoise, NormalNoise
from sparse_rl.envs.noise.counter import counter_noise_numpy
from sparse_rl.envs.noise.on_device import stream_noise_torch

#: (label, noise features, batch size): HalfCheetah-v5's 17 real features at f = 0.99 and 0.999
SETTINGS = (("f0.99-batch256", 1683, 256), ("f0.99-batch100", 1683, 100), ("f0.999-batch256", 16983, 256))


def generators(size: int, batch: int, device: torch.device | None = None,
               ) -> dict[str, Callable[[np.ndarray, np.ndarray], object]]:
    """Functions that write the noise of ``indices`` into ``out`` (rows × size), by generator name;
    with ``device``, also into a batch (2 × ``batch`` rows) on that device."""
    counter = CounterNoise(NormalNoise(), size, noise_seed=1)
    philox = IndexedNoise(NormalNoise(), size, noise_seed=1)
    functions: dict[str, Callable[[np.ndarray, np.ndarray], object]] = {
        "counter": lambda indices, out: counter.many(indices, out=out),
        "counter_numpy": lambda indices, out: counter_noise_numpy(counter.key, indices, size, "normal", out),
        "philox": lambda indices, out: philox.many(indices, out=out),
    }
    if device is not None:
        on_device = torch.empty((2 * batch, 17 + size), device=device)
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

        def to_device(indices: np.ndarray, out: np.ndarray) -> None:
            on_device[:, 17:].copy_(torch.from_numpy(counter.many(indices, out=out)))
            sync()

        def made_there(indices: np.ndarray, out: np.ndarray) -> None:
            stream_noise_torch(counter, indices, out=on_device[:, 17:])
            sync()

        functions.update(counter_to_device=to_device, counter_on_device=made_there)
    return functions


def measure(size: int, batch: int, rounds: int, device: torch.device | None = None) -> dict[str, float]:
    """Median milliseconds per sampled batch (2 × ``batch`` rows) of each generator."""
    rng = np.random.default_rng(0)
    functions = generators(size, batch, device)
    out = np.empty((2 * batch, 17 + size), dtype=np.float32)
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(rounds):
        indices = rng.integers(0, 1_000_000, 2 * batch).astype(np.uint64)
        for name, function in functions.items():
            slow = ("philox", "counter_numpy") + (("counter_on_device",) if device and device.type == "cpu" else ())
            if name in slow and size > 5000 and len(times[name]) >= 3:
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
    parser.add_argument("--device", default=None, help="also time the noise made on this torch device (e.g. cuda)")
    args = parser.parse_args()
    device = torch.device(args.device) if args.device else None
    results = {}
    for label, size, batch in SETTINGS:
        results[label] = {"noise_features": size, "batch": batch, "ms_per_sampled_batch": measure(size, batch,
                                                                                                  args.rounds, device)}
        ms = results[label]["ms_per_sampled_batch"]
        print(label, {name: round(value, 3) for name, value in ms.items()},
              f"counter/philox = {ms['counter'] / ms['philox']:.2f}")
    report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.processor()
              or platform.machine(), "cpus": os.cpu_count(), "rounds": args.rounds, "device": args.device,
              "note": "median ms to regenerate the noise of one sampled batch (observations and next observations)",
              "results": results}
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
