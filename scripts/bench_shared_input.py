"""Kernel-level A/B of a critic's input layers: one call per Q-network vs one call for both.

Times, at one thread, two csr layers of ANF-SAC's critic at f = 0.98 on HalfCheetah-v5 (850
observation inputs + 6 action inputs, 256 outputs, density 0.2) on the same observation, both ways
in interleaved repetitions (the order alternating), and writes each repetition's ratio shared /
separate (median and quartiles) to a JSON file. What is timed:

- ``spmm``, ``sddmm``: the native kernels alone (two calls vs one shared call);
- ``forward_no_grad``: the layers' forward pass without autograd (the target critic);
- ``forward_backward``: forward and backward with weight gradients (the critic's loss);
- ``forward_action_grad``: forward and backward to the action only, weights frozen (the actor's loss).

Ratios from one run are the comparison (the same machine state for both); absolute times on a
loaded machine are not. Usage::

    PYTHONPATH=$PWD python scripts/bench_shared_input.py --out docs/performance_issue25c_kernels.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from sparse_rl.sparse import SparseLinear
from sparse_rl.sparse.layers.csr import CSRSparseLinear, forward_concat_shared
from sparse_rl.sparse.native import native_kernels


def make_layers(head: int, tail: int, out_features: int, density: float) -> list[CSRSparseLinear]:
    """Two csr layers (a critic's Q-networks' input layers) prepared for a head of ``head`` inputs."""
    layers = []
    for seed in (0, 1):
        layer = SparseLinear(head + tail, out_features, density, backend="csr",
                             generator=torch.Generator().manual_seed(seed))
        assert isinstance(layer, CSRSparseLinear)
        layer.expect_concat_(head)
        layers.append(layer)
    return layers


def cases(layers: list[CSRSparseLinear], batch: int) -> dict[str, tuple[Callable[[], None], Callable[[], None]]]:
    """Each case's (separate, shared) callables."""
    x = torch.randn(batch, layers[0].structure().head)
    tail = torch.randn(batch, layers[0].in_features - x.shape[1])
    x_t = x.t().contiguous()
    structures = [layer.structure() for layer in layers]
    values = [layer.values.detach() for layer in layers]
    kernels = native_kernels()
    assert kernels is not None, "the native kernels are needed"
    ys = [torch.zeros(layer.out_features, batch) for layer in layers]
    gs = [torch.randn(layer.out_features, batch) for layer in layers]
    outs = [torch.zeros(s.block_slots.numel()) for s in structures]
    heads = [v[: s.block_slots.numel()] for v, s in zip(values, structures, strict=True)]

    def spmm_separate() -> None:
        for s, v, y in zip(structures, heads, ys, strict=True):
            kernels.spmm_blocked(s.block_crow, s.block_col, v, s.width, x_t, y)

    def spmm_shared() -> None:
        kernels.spmm_blocked_shared([s.block_crow for s in structures], [s.block_col for s in structures], heads,
                                    structures[0].width, x_t, ys)

    def sddmm_separate() -> None:
        for s, g, out in zip(structures, gs, outs, strict=True):
            kernels.sddmm_blocked(s.block_crow, s.block_col, s.width, x_t, g, out=out.zero_())

    def sddmm_shared() -> None:
        kernels.sddmm_blocked_shared([s.block_crow for s in structures], [s.block_col for s in structures],
                                     structures[0].width, x_t, gs, [out.zero_() for out in outs])

    def separate(x_in: torch.Tensor, a: torch.Tensor) -> list[torch.Tensor]:
        return [layer.forward_concat(x_in, a) for layer in layers]

    def shared(x_in: torch.Tensor, a: torch.Tensor) -> list[torch.Tensor]:
        return forward_concat_shared(layers, x_in, a)

    def no_grad(forward: Callable) -> Callable[[], None]:
        def run() -> None:
            with torch.no_grad():
                forward(x, tail)
        return run

    def backward(forward: Callable) -> Callable[[], None]:
        def run() -> None:
            sum(y.sum() for y in forward(x, tail)).backward()
            for layer in layers:
                layer.zero_grad(set_to_none=True)
        return run

    def action_grad(forward: Callable) -> Callable[[], None]:
        def run() -> None:
            a = tail.clone().requires_grad_(True)
            for layer in layers:
                layer.requires_grad_(False)
            sum(y.sum() for y in forward(x, a)).backward()
            for layer in layers:
                layer.requires_grad_(True)
        return run

    return {"spmm": (spmm_separate, spmm_shared), "sddmm": (sddmm_separate, sddmm_shared),
            "forward_no_grad": (no_grad(separate), no_grad(shared)),
            "forward_backward": (backward(separate), backward(shared)),
            "forward_action_grad": (action_grad(separate), action_grad(shared))}


def cpu_ms(function: Callable[[], None], calls: int) -> float:
    """CPU milliseconds per call of ``function`` over ``calls`` calls."""
    start = time.process_time()
    for _ in range(calls):
        function()
    return (time.process_time() - start) / calls * 1e3


def measure(pair: tuple[Callable[[], None], Callable[[], None]], repeats: int, calls: int) -> dict[str, float]:
    """Interleaved repetitions of (separate, shared), the order alternating; the ratio per repetition."""
    for function in pair:  # warm-up
        cpu_ms(function, 3)
    separate_ms, shared_ms, ratios = [], [], []
    for repeat in range(repeats):
        order = (0, 1) if repeat % 2 == 0 else (1, 0)
        times = {}
        for which in order:
            times[which] = cpu_ms(pair[which], calls)
        separate_ms.append(times[0])
        shared_ms.append(times[1])
        ratios.append(times[1] / times[0])
    quartiles = statistics.quantiles(ratios, n=4)
    return {"separate_ms": statistics.median(separate_ms), "shared_ms": statistics.median(shared_ms),
            "ratio_median": statistics.median(ratios), "ratio_q1": quartiles[0], "ratio_q3": quartiles[2]}


def main() -> None:
    """Run the A/B and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="docs/performance_issue25c_kernels.json")
    parser.add_argument("--batches", type=int, nargs="+", default=[100, 256])
    parser.add_argument("--inputs", type=int, default=850, help="observation inputs (head)")
    parser.add_argument("--actions", type=int, default=6, help="action inputs (tail)")
    parser.add_argument("--density", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--calls", type=int, default=20, help="calls per timing")
    parser.add_argument("--cases", nargs="+", default=None, help="only these cases (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    layers = make_layers(args.inputs, args.actions, 256, args.density)
    results = []
    for batch in args.batches:
        for name, pair in cases(layers, batch).items():
            if args.cases is not None and name not in args.cases:
                continue
            row = {"case": name, "batch": batch, **measure(pair, args.repeats, args.calls)}
            results.append(row)
            print(f"{name:>20} batch {batch:>3}: separate {row['separate_ms']:.3f} ms, shared {row['shared_ms']:.3f} "
                  f"ms, shared/separate {row['ratio_median']:.3f} [{row['ratio_q1']:.3f}, {row['ratio_q3']:.3f}]",
                  flush=True)
    meta = {"inputs": args.inputs, "actions": args.actions, "out_features": 256, "density": args.density,
            "threads": 1, "repeats": args.repeats, "calls": args.calls, "timer": "process CPU time",
            "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
            "date": time.strftime("%Y-%m-%d")}
    Path(args.out).write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
