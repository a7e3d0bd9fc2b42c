"""Time one topology update of a large sparse layer (SET and RigL) and write the numbers to a file.

The layer is the input layer of an extremely noisy environment with 17,000 inputs (HalfCheetah's 17
real features at a noise fraction of 0.999) × 256 units at 5% density, with an Adam optimizer
whose state is reset at the changed positions. Usage::

    python scripts/bench_topology.py [--out docs/bench_topology.json] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from sparse_rl.sparse import SparseLinear, TopologyUpdater, UpdateSchedule


def time_updates(algorithm: str, in_features: int, out_features: int, density: float, drop_fraction: float,
                 repeats: int) -> list[float]:
    """Seconds per update of ``algorithm`` on one layer, ``repeats`` times (after one warm-up)."""
    torch.manual_seed(0)
    layer = SparseLinear(in_features, out_features, density=density)
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-3)
    x = torch.randn(256, in_features)
    layer(x).pow(2).mean().backward()
    optimizer.step()  # Adam state exists, as in training
    updater = TopologyUpdater(layer, optimizer, algorithm=algorithm,
                              schedule=UpdateSchedule(interval=1, drop_fraction=drop_fraction), seed=0)
    times = []
    for i in range(repeats + 1):
        if updater.algorithm.needs_dense_gradient:
            layer.capture_dense_gradient()
            layer(x).pow(2).mean().backward()
        start = time.perf_counter()
        updater.update()
        if i > 0:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    """Run the benchmark and write JSON (and print a summary)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="docs/bench_topology.json")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--in-features", type=int, default=17_000)
    parser.add_argument("--out-features", type=int, default=256)
    parser.add_argument("--density", type=float, default=0.05)
    parser.add_argument("--drop-fraction", type=float, default=0.3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {}
    for algorithm in ("set", "rigl"):
        times = time_updates(algorithm, args.in_features, args.out_features, args.density, args.drop_fraction,
                             args.repeats)
        results[algorithm] = {"median_ms": 1000 * statistics.median(times), "min_ms": 1000 * min(times),
                              "max_ms": 1000 * max(times)}
        print(f"{algorithm}: median {results[algorithm]['median_ms']:.1f} ms per update "
              f"({args.in_features}x{args.out_features}, density {args.density}, drop {args.drop_fraction})")
    report = {
        "layer": {"in_features": args.in_features, "out_features": args.out_features, "density": args.density},
        "drop_fraction": args.drop_fraction, "repeats": args.repeats, "torch_threads": 1,
        "machine": platform.machine(), "torch": torch.__version__,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
