"""Time one linear layer, forward + backward + Adam step, dense vs the masked and csr sparse backends.

For each size on the grid (inputs 17, 256, 1,700, 17,000; 256 outputs; densities 1.0, 0.3, 0.2, 0.1,
0.05, 0.02) and batch 256, on one torch thread, with the input feature-major in memory as the agents give it
(a replay batch, another CSR layer's output), it times a dense ``nn.Linear`` and a
``SparseLinear`` on each backend, in interleaved repetitions (dense, masked, csr, dense, …, with the
order rotated each round) so that the ratios to dense are measured under the same machine load.
Two cases: the input of the layer needs no gradient (an input layer) or does (a hidden layer, or a
critic's input layer when the actor's loss backpropagates into the action). It also times one SET
and one RigL topology update of a 17,000 × 256 layer at 5% density on both backends. Writes JSON
(``docs/bench_layer.json`` by default) and prints a table. Usage::

    python scripts/bench_layer.py [--out docs/bench_layer.json] [--repeats 15] [--quick]
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

import torch
from torch import nn

from sparse_rl.sparse import SparseLinear, TopologyUpdater, UpdateSchedule
from sparse_rl.sparse.layers import resolve_backend
from sparse_rl.sparse.native import feature_major_stride

IMPLEMENTATIONS = ("dense", "masked", "csr")


def make_layer(kind: str, in_features: int, out_features: int, density: float) -> nn.Module:
    """A dense ``nn.Linear`` (``kind == "dense"``) or a ``SparseLinear`` on backend ``kind``."""
    if kind == "dense":
        return nn.Linear(in_features, out_features)
    return SparseLinear(in_features, out_features, density=density, backend=kind)


def step_timer(layer: nn.Module, x: torch.Tensor) -> Callable[[], tuple[float, float]]:
    """A function that runs one training step of ``layer`` on ``x`` and returns the seconds spent in
    forward + backward and in Adam's step."""
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-4)

    def run() -> tuple[float, float]:
        optimizer.zero_grad(set_to_none=False)
        start = time.perf_counter()
        layer(x).square().mean().backward()
        middle = time.perf_counter()
        optimizer.step()
        return middle - start, time.perf_counter() - middle

    return run


def time_size(in_features: int, out_features: int, density: float, batch: int, input_grad: bool,
              repeats: int, warmup: int = 2) -> dict[str, dict[str, float]]:
    """Median milliseconds of forward + backward, Adam step and their sum for each implementation,
    interleaved."""
    torch.manual_seed(0)
    # Feature-major in memory, as the agents give it to their layers (a replay batch of
    # NoiseFreeReplayBuffer, another CSR layer's output): x is the transpose of a padded
    # (in_features × batch) matrix. Every implementation gets the same tensor.
    x_t = torch.empty(in_features, feature_major_stride(batch))[:, :batch].copy_(torch.randn(in_features, batch))
    x = x_t.t().requires_grad_(input_grad)
    runners = {kind: step_timer(make_layer(kind, in_features, out_features, density), x)
               for kind in IMPLEMENTATIONS}
    samples: dict[str, list[tuple[float, float]]] = {kind: [] for kind in IMPLEMENTATIONS}
    kinds = list(IMPLEMENTATIONS)
    for round_ in range(warmup + repeats):
        order = kinds[round_ % len(kinds):] + kinds[:round_ % len(kinds)]
        for kind in order:
            result = runners[kind]()
            if round_ >= warmup:
                samples[kind].append(result)
    report = {}
    for kind, values in samples.items():
        report[kind] = {
            "forward_backward_ms": 1000 * statistics.median(v[0] for v in values),
            "adam_ms": 1000 * statistics.median(v[1] for v in values),
            "step_ms": 1000 * statistics.median(v[0] + v[1] for v in values),
        }
    for kind in IMPLEMENTATIONS:
        for key in ("forward_backward", "step"):
            report[kind][f"{key}_vs_dense"] = report[kind][f"{key}_ms"] / report["dense"][f"{key}_ms"]
    return report


def time_topology(backend: str, algorithm: str, in_features: int, out_features: int, density: float,
                  drop_fraction: float, repeats: int) -> dict[str, float]:
    """Median milliseconds of one topology update of one layer with an Adam optimizer, and (csr) of
    the rebuild of the kernels' index structure that the next forward pass does."""
    torch.manual_seed(0)
    layer = SparseLinear(in_features, out_features, density=density, backend=backend)
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-3)
    x = torch.randn(256, in_features)
    layer(x).square().mean().backward()
    optimizer.step()
    updater = TopologyUpdater(layer, optimizer, algorithm=algorithm,
                              schedule=UpdateSchedule(interval=1, drop_fraction=drop_fraction), seed=0)
    updates, rebuilds = [], []
    for i in range(repeats + 1):
        if updater.algorithm.needs_dense_gradient:
            layer.capture_dense_gradient()
            layer(x).square().mean().backward()
        start = time.perf_counter()
        updater.update()
        middle = time.perf_counter()
        structure = getattr(layer, "structure", None)
        if structure is not None:
            structure()
        if i > 0:
            updates.append(middle - start)
            rebuilds.append(time.perf_counter() - middle)
    return {"update_ms": 1000 * statistics.median(updates), "structure_rebuild_ms": 1000 * statistics.median(rebuilds)}


def print_table(rows: list[dict[str, object]]) -> None:
    """Print step time ratios to dense (forward + backward + Adam), both input-gradient cases."""
    print(f"{'inputs':>7} {'density':>7} | {'dense ms':>9} {'masked':>7} {'csr':>7} | "
          f"{'dense ms':>9} {'masked':>7} {'csr':>7} | auto (faster)")
    print(f"{'':>7} {'':>7} | {'(input layer: no ∂x)':^25} | {'(hidden layer: with ∂x)':^25} |")
    for row in rows:
        cells = []
        for case in ("input_layer", "hidden_layer"):
            r = row[case]
            assert isinstance(r, dict)
            cells.append(f"{r['dense']['step_ms']:9.2f} {r['masked']['step_vs_dense']:7.2f} "
                         f"{r['csr']['step_vs_dense']:7.2f}")
        faster = sorted({str(row["faster_input_layer"]), str(row["faster_hidden_layer"])})
        print(f"{row['in_features']:>7} {row['density']:>7} | {cells[0]} | {cells[1]} | {row['auto']} "
              f"({'/'.join(faster)})")


def main() -> None:
    """Run the benchmark, print the table and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="docs/bench_layer.json")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--out-features", type=int, default=256)
    parser.add_argument("--inputs", type=int, nargs="+", default=[17, 256, 1700, 17_000])
    parser.add_argument("--densities", type=float, nargs="+", default=[1.0, 0.3, 0.2, 0.1, 0.05, 0.02])
    parser.add_argument("--topology-repeats", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="3 repeats and no topology timing")
    args = parser.parse_args()
    torch.set_num_threads(1)
    repeats = 3 if args.quick else args.repeats
    rows: list[dict[str, object]] = []
    for in_features in args.inputs:
        for density in args.densities:
            row: dict[str, object] = {"in_features": in_features, "out_features": args.out_features,
                                      "density": density,
                                      "auto": resolve_backend("auto", in_features, args.out_features, density)}
            for case, input_grad in (("input_layer", False), ("hidden_layer", True)):
                timing = time_size(in_features, args.out_features, density, args.batch, input_grad, repeats)
                row[case] = timing
                row[f"faster_{case}"] = min(("masked", "csr"), key=lambda kind: timing[kind]["step_ms"])
            rows.append(row)
            print_table([row])
    topology: dict[str, dict[str, dict[str, float]]] = {}
    if not args.quick:
        for backend in ("masked", "csr"):
            topology[backend] = {algorithm: time_topology(backend, algorithm, 17_000, 256, 0.05, 0.3,
                                                          args.topology_repeats)
                                 for algorithm in ("set", "rigl")}
            print(f"topology update 17000x256 at 5%, drop 0.3, {backend}: "
                  + ", ".join(f"{a} {t['update_ms']:.1f} ms (+ structure rebuild {t['structure_rebuild_ms']:.1f} ms)"
                              for a, t in topology[backend].items()))
    print()
    print_table(rows)
    report = {
        "what": f"one layer, batch {args.batch}, {args.out_features} outputs: median ms of forward+backward, "
                "Adam step and their sum; ratios to a dense nn.Linear timed in the same interleaved rounds",
        "batch": args.batch, "repeats": repeats, "torch_threads": 1, "machine": platform.machine(),
        "cpus": os.cpu_count(), "load_average_at_end": os.getloadavg(), "torch": torch.__version__,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "results": rows,
        "topology_update_17000x256_density0.05_drop0.3_ms": topology,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
