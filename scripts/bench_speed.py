"""Training speed and memory of SparseSAC against dense SB3 SAC, on the same machine, interleaved.

Each measurement is a fresh subprocess with ``--threads`` torch threads (1, the condition of a
sweep's workers, by default; ``all`` is every core, what a single run gets from torch): it builds
the agent on HalfCheetah-v5 wrapped in an extremely noisy environment, fills ``learning_starts``
transitions, then times ``--steps`` env steps with one gradient step each, and reports env steps/s
and its peak resident memory. Agents are run round-robin (dense, anf, all_layers-90%, dense, …)
``--repeats`` times, for each setting, batch size and thread count, and each sparse run's speed is
divided by the dense run of the same round, setting, batch size and thread count, so that the
machine's load drifts out of the ratios. Writes JSON and a markdown table::

    python scripts/bench_speed.py                      # quick: f = 0, 0.99 and 17,000 inputs
    python scripts/bench_speed.py --threads 1 all --batch-size 256 100
    python scripts/bench_speed.py --scale              # also 100,000 inputs (sparse only by default)
    python scripts/bench_speed.py --device cuda --agents dense_sb3 anf_masked anf_csr
    python scripts/bench_speed.py --out docs/performance.json --markdown docs/performance.md

``--profile`` adds each run's 15 costliest operations (torch profiler, self CPU time) to the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

AGENTS: dict[str, dict[str, Any]] = {
    "dense_sb3": {"sparsity": None},
    "anf": {"sparsity": "anf"},
    "all_layers_90": {"sparsity": {"preset": "all_layers", "density": 0.1}},
    # Not a preset: the ANF topology at 95% sparsity, to show the regime where CSR kernels pay.
    "anf_95": {"sparsity": {"preset": "anf", "density": 0.05}},
    # ANF with each storage backend by name (``anf`` itself is ``auto``: csr on the CPU, masked on a GPU)
    "anf_masked": {"sparsity": {"preset": "anf", "backend": "masked"}},
    "anf_csr": {"sparsity": {"preset": "anf", "backend": "csr"}},
}
DEFAULT_AGENTS = ["dense_sb3", "anf", "all_layers_90"]
# HalfCheetah-v5 has 17 real features.
SETTINGS: dict[str, dict[str, Any]] = {
    "f0": {"noise_fraction": 0.0},
    "f0.99": {"noise_fraction": 0.99},
    "inputs17000": {"n_noise": 17_000 - 17},
}
SCALE_SETTING = {"inputs100000": {"n_noise": 100_000 - 17}}
#: timed steps of a setting, as a fraction of ``--steps`` (big inputs are slow; their ratios are stable sooner)
STEPS_SCALE = {"f0": 1.0, "f0.99": 1.0, "inputs17000": 0.2, "inputs100000": 0.05}
#: the scale setting runs with the replay buffer of a real 1M-step run: there dense SB3 cannot allocate it
SCALE_BUFFER_SIZE = 1_000_000


def measure(agent: str, setting: dict[str, Any], steps: int, learning_starts: int, buffer_size: int,
            batch_size: int = 256, threads: int = 1, device: str = "cpu", profile: bool = False) -> dict[str, Any]:
    """Run one measurement in this process (the child side) and return its numbers."""
    import torch

    torch.set_num_threads(threads)
    from stable_baselines3 import SAC

    from sparse_rl.agents import SparseSAC
    from sparse_rl.envs import make_env

    env = make_env({"id": "HalfCheetah-v5", **setting}, seed=0)
    kwargs = dict(learning_starts=learning_starts, buffer_size=buffer_size, batch_size=batch_size, seed=0,
                  device=device, policy_kwargs={"net_arch": [256, 256]})
    sparsity = AGENTS[agent]["sparsity"]
    model = SAC("MlpPolicy", env, **kwargs) if sparsity is None else SparseSAC("MlpPolicy", env, sparsity=sparsity,
                                                                                **kwargs)
    model.learn(learning_starts + 10)  # warm-up: buffer filled, first gradient steps done
    synchronize = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)
    synchronize()
    start = time.perf_counter()
    if profile:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
            model.learn(steps, reset_num_timesteps=False)
    else:
        model.learn(steps, reset_num_timesteps=False)
    synchronize()
    elapsed = time.perf_counter() - start
    buffer = model.replay_buffer
    # Every array the buffer holds (observations, actions, rewards, noise indices, …), per transition.
    buffer_bytes = sum(value.nbytes for value in vars(buffer).values() if isinstance(value, np.ndarray))
    backends = sorted({module.backend for module in model.policy.modules() if hasattr(module, "target_density")})
    result = {
        "steps_per_second": steps / elapsed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "observation_size": int(env.observation_space.shape[0]),
        "buffer_bytes_per_transition": buffer_bytes / buffer.buffer_size,
        "buffer_class": type(buffer).__name__,
        "threads": torch.get_num_threads(),
        "device": str(model.device),
        "layer_backends": backends,
    }
    if profile:
        events = sorted(profiler.key_averages(), key=lambda event: event.self_cpu_time_total, reverse=True)
        result["profile_ms_per_step"] = {event.key: event.self_cpu_time_total / 1e3 / steps for event in events[:15]}
    return result


def run_child(agent: str, setting_name: str, setting: dict[str, Any], batch_size: int, threads: int,
              args: argparse.Namespace) -> dict[str, Any]:
    """Run :func:`measure` in a fresh subprocess; a failure (e.g. out of memory) is reported, not raised."""
    steps = max(10, round(args.steps * STEPS_SCALE.get(setting_name, 1.0)))
    buffer_size = SCALE_BUFFER_SIZE if setting_name in SCALE_SETTING else args.buffer_size
    spec = {"agent": agent, "setting": setting, "steps": steps, "learning_starts": args.learning_starts,
            "buffer_size": buffer_size, "batch_size": batch_size, "threads": threads, "device": args.device,
            "profile": args.profile}
    labels = {"agent": agent, "setting": setting_name, "batch_size": batch_size, "threads": threads}
    environment = {**os.environ, **{name: str(threads) for name in THREAD_VARIABLES}}
    try:
        result = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                                text=True, timeout=args.timeout, env=environment)
    except subprocess.TimeoutExpired:
        return {**labels, "error": f"no result within --timeout {args.timeout} s"}
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["(no output)"]
        return {**labels, "error": f"exit {result.returncode}: {lines[-1]}"}
    return {**labels, **json.loads(result.stdout.strip().splitlines()[-1])}


#: what the BLAS and OpenMP libraries read for their thread counts (set per child like torch's)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _cell(run: dict[str, Any]) -> tuple[Any, ...]:
    return run["setting"], run.get("batch_size", 256), run.get("threads", 1)


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (setting, batch size, threads, agent): median steps/s, median ratio to dense of the same
    round and cell, peak memory."""
    rows = []
    for cell in dict.fromkeys(_cell(run) for run in runs):
        for agent in dict.fromkeys(run["agent"] for run in runs):
            mine = [run for run in runs if _cell(run) == cell and run["agent"] == agent]
            if not mine:
                continue
            ok = [run for run in mine if "error" not in run]
            row: dict[str, Any] = {"setting": cell[0], "batch_size": cell[1], "threads": cell[2], "agent": agent,
                                   "runs": len(mine), "failed": len(mine) - len(ok)}
            if ok:
                row["steps_per_second"] = statistics.median(run["steps_per_second"] for run in ok)
                row["peak_rss_mb"] = max(run["peak_rss_mb"] for run in ok)
                row["observation_size"] = ok[0]["observation_size"]
                row["buffer_bytes_per_transition"] = ok[0]["buffer_bytes_per_transition"]
                ratios = [run["steps_per_second"] / dense["steps_per_second"] for run in ok
                          for dense in runs if dense["agent"] == "dense_sb3" and _cell(dense) == cell
                          and dense.get("round") == run.get("round") and "error" not in dense]
                if ratios:
                    row["ratio_vs_dense"] = statistics.median(ratios)
                    row["ratios_per_round"] = ratios
            else:
                row["error"] = mine[0]["error"]
            rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]], command: str, date: str, where: str = "") -> str:
    """The results as a markdown table, with the command that made them."""
    lines = [f"Measured {date} with `{command}` (runs interleaved{where}).", "",
             "| setting | inputs | batch | threads | agent | env steps/s | × dense SB3 (rounds) | peak RSS (MB) "
             "| buffer bytes/transition | buffer of 1M transitions (GB) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        head = f"| {row['setting']} | {row.get('observation_size', '')} | {row['batch_size']} | {row['threads']} | "
        if "error" in row:
            lines.append(f"{head}{row['agent']} | failed: {row['error']} | | | | |")
            continue
        ratio = "–"
        if "ratio_vs_dense" in row:
            rounds = ", ".join(f"{value:.2f}" for value in row["ratios_per_round"])
            ratio = f"{row['ratio_vs_dense']:.2f}" + (f" ({rounds})" if len(row["ratios_per_round"]) > 1 else "")
        lines.append(f"{head}{row['agent']} | {row['steps_per_second']:.3g} | {ratio} | {row['peak_rss_mb']:.0f} | "
                     f"{row['buffer_bytes_per_transition']:.0f} | {row['buffer_bytes_per_transition'] / 1e3:.2f} |")
    return "\n".join(lines) + "\n"


def _threads(value: str) -> int:
    """A ``--threads`` value: a positive count, or ``all`` (every core this process may use)."""
    if value == "all":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    count = int(value)
    if count < 1:
        raise argparse.ArgumentTypeError(f"threads must be a positive count or 'all', got {value!r}")
    return count


def main() -> None:
    """Parse arguments, run the interleaved measurements, write JSON and markdown."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=300, help="timed env steps (one gradient step each)")
    parser.add_argument("--learning-starts", type=int, default=300)
    parser.add_argument("--buffer-size", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, nargs="+", default=[256],
                        help="gradient batch sizes (Grooten et al. use 100)")
    parser.add_argument("--threads", type=_threads, nargs="+", default=[1],
                        help="torch threads per run: counts, or 'all' for every core (default 1: a sweep's workers)")
    parser.add_argument("--device", default="cpu", help="torch device of the agents (cpu, cuda)")
    parser.add_argument("--profile", action="store_true", help="add each run's costliest operations to the JSON")
    parser.add_argument("--agents", nargs="+", default=DEFAULT_AGENTS, choices=list(AGENTS))
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS) + list(SCALE_SETTING))
    parser.add_argument("--scale", action="store_true", help="add the 100,000-input setting")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per run before it counts as failed")
    parser.add_argument("--out", default="docs/performance.json")
    parser.add_argument("--markdown", default=None, help="also write the table to this markdown file")
    parser.add_argument("--render", metavar="JSON", help="only write the table of an earlier run's JSON")
    args = parser.parse_args()
    if args.render:
        report = json.loads(Path(args.render).read_text())
        for run in report["runs"]:  # earlier versions kept the last three lines of a failure
            if "error" in run:
                run["error"] = run["error"].split(" | ")[-1].strip()
        table = markdown(summarise(report["runs"]), report["command"], report["date"], _where(report))
        print(table)
        if args.markdown:
            write_table(Path(args.markdown), table)
        return
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(measure(spec["agent"], spec["setting"], spec["steps"], spec["learning_starts"],
                                 spec["buffer_size"], spec["batch_size"], spec["threads"], spec["device"],
                                 spec["profile"])))
        return
    settings = {name: SETTINGS.get(name) or SCALE_SETTING[name] for name in args.settings}
    if args.scale:
        settings.update(SCALE_SETTING)
    runs = []
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    command = "python scripts/bench_speed.py " + " ".join(sys.argv[1:])
    report = {"date": date, "command": command, "machine": platform.machine(), "processor": _processor(),
              "cores": _threads("all"), "python": platform.python_version(), "device": args.device,
              "batch_sizes": args.batch_size, "threads": args.threads, "steps": args.steps,
              "learning_starts": args.learning_starts, "runs": runs}
    for round_index in range(args.repeats):
        for setting_name, setting in settings.items():
            for batch_size in args.batch_size:
                for threads in args.threads:
                    for agent in args.agents:
                        run = run_child(agent, setting_name, setting, batch_size, threads, args)
                        run["round"] = round_index
                        runs.append(run)
                        speed = f"{run['steps_per_second']:.1f} steps/s" if "error" not in run else run["error"]
                        print(f"round {round_index} {setting_name:12s} batch {batch_size:4d} threads {threads:3d} "
                              f"{agent:14s} {speed}", flush=True)
                        _write(args.out, report)  # partial results survive an interrupted benchmark
    rows = summarise(runs)
    report["summary"] = rows
    _write(args.out, report)
    table = markdown(rows, command.strip(), date, _where(report))
    print(table)
    if args.markdown:
        write_table(Path(args.markdown), table)


def _write(path: str, report: dict[str, Any]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=2) + "\n")


def _processor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _where(report: dict[str, Any]) -> str:
    """The machine, as the table's caption says it."""
    if "cores" not in report:  # an earlier version: one thread, the CPU
        return "; one torch thread per run"
    where = f"; {report['cores']} cores, {report.get('processor') or 'CPU'}"
    return where + (f"; agents on {report['device']}" if report.get("device", "cpu") != "cpu" else "")


START, END = "<!-- bench_speed:start -->", "<!-- bench_speed:end -->"


def write_table(path: Path, table: str) -> None:
    """Put ``table`` between the ``bench_speed`` markers of ``path`` (the prose around them stays), or
    write a new file holding only the marked table."""
    block = f"{START}\n{table}{END}"
    text = path.read_text() if path.exists() else ""
    if START in text and END in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        text = block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
