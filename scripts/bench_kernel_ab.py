"""Kernel-level A/B of the native csr kernels: this checkout's against another checkout's.

Builds both ``native_kernels.c`` files (the other one from ``--baseline``, a checkout's root), loads
both in one process and times their product (``spmm``) and sampled gradient (``sddmm``) on the same
inputs at one thread, in interleaved repetitions with the order alternating; writes each
repetition's ratio new / baseline (median and quartiles) to a JSON file, and checks that both give
the same bits. Ratios from one run are the comparison; absolute times on a loaded machine are not::

    mkdir -p /tmp/before && git archive main | tar -x -C /tmp/before
    PYTHONPATH=$PWD python scripts/bench_kernel_ab.py --baseline /tmp/before --out docs/performance_kernel_ab.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from sparse_rl.sparse import SparseLinear
from sparse_rl.sparse.layers.csr import CSRSparseLinear
from sparse_rl.sparse.native import SOURCE, NativeKernels, load_library


class _Library:
    """A loaded library whose missing functions (a baseline's, from before a kernel was added) are
    placeholders, so that :class:`NativeKernels` can wrap it; only the kernels timed here are called."""

    def __init__(self, library: Any) -> None:
        self._library = library

    def __getattr__(self, name: str) -> Any:
        try:
            return getattr(self._library, name)
        except AttributeError:
            return SimpleNamespace()


def kernels_from(source: Path) -> NativeKernels:
    """The native kernels built from ``source``."""
    library, path = load_library(source)
    return NativeKernels(_Library(library), path)  # type: ignore[arg-type]


def calls(kernels: NativeKernels, layer: CSRSparseLinear, batch: int) -> dict[str, Callable[[], torch.Tensor]]:
    """The timed calls of ``kernels`` on ``layer``'s structure at ``batch`` (each returns its output)."""
    structure = layer.structure()
    generator = torch.Generator().manual_seed(batch)
    x_t = torch.randn(structure.head, batch, generator=generator)
    g = torch.randn(layer.out_features, batch, generator=generator)
    head = layer.values.detach()[: structure.block_slots.numel()]

    def spmm() -> torch.Tensor:
        y = torch.zeros(layer.out_features, batch)
        kernels.spmm_blocked(structure.block_crow, structure.block_col, head, structure.width, x_t, y, threads=1)
        return y

    def sddmm() -> torch.Tensor:
        return kernels.sddmm_blocked(structure.block_crow, structure.block_col, structure.width, x_t, g, threads=1)

    return {"spmm": spmm, "sddmm": sddmm}


def cpu_ms(function: Callable[[], torch.Tensor], count: int) -> float:
    """CPU milliseconds per call of ``function`` over ``count`` calls."""
    start = time.process_time()
    for _ in range(count):
        function()
    return (time.process_time() - start) / count * 1e3


def main() -> None:
    """Run the A/B and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="root of the checkout to compare against")
    parser.add_argument("--out", default="docs/performance_kernel_ab.json")
    parser.add_argument("--inputs", type=int, nargs="+", default=[850, 1700])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 100, 256])
    parser.add_argument("--density", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--calls", type=int, default=10, help="calls per timing")
    args = parser.parse_args()
    torch.set_num_threads(1)
    new = kernels_from(SOURCE)
    old = kernels_from(Path(args.baseline) / "sparse_rl" / "sparse" / "native_kernels.c")
    results = []
    for inputs in args.inputs:
        layer = SparseLinear(inputs, 256, args.density, backend="csr", generator=torch.Generator().manual_seed(0))
        assert isinstance(layer, CSRSparseLinear)
        for batch in args.batches:
            pairs = {name: (calls(old, layer, batch)[name], function)
                     for name, function in calls(new, layer, batch).items()}
            for name, (before, after) in pairs.items():
                same_bits = torch.equal(before(), after())
                ratios, times = [], {0: [], 1: []}
                for repeat in range(args.repeats):
                    order = (0, 1) if repeat % 2 == 0 else (1, 0)
                    spent = {which: cpu_ms((before, after)[which], args.calls) for which in order}
                    times[0].append(spent[0])
                    times[1].append(spent[1])
                    ratios.append(spent[1] / spent[0])
                quartiles = statistics.quantiles(ratios, n=4)
                row = {"kernel": name, "inputs": inputs, "batch": batch, "same_bits": same_bits,
                       "baseline_ms": statistics.median(times[0]), "new_ms": statistics.median(times[1]),
                       "ratio_median": statistics.median(ratios), "ratio_q1": quartiles[0], "ratio_q3": quartiles[2]}
                results.append(row)
                print(f"{name:>5} {inputs:>5} inputs batch {batch:>3}: baseline {row['baseline_ms']:.3f} ms, new "
                      f"{row['new_ms']:.3f} ms, new/baseline {row['ratio_median']:.3f} [{row['ratio_q1']:.3f}, "
                      f"{row['ratio_q3']:.3f}], same bits: {same_bits}", flush=True)
    meta = {"baseline": args.baseline, "out_features": 256, "density": args.density, "threads": 1,
            "repeats": args.repeats, "calls": args.calls, "timer": "process CPU time", "torch": torch.__version__,
            "machine": platform.processor() or platform.machine(), "date": time.strftime("%Y-%m-%d")}
    Path(args.out).write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
