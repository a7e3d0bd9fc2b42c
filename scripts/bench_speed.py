"""Training speed and memory of SparseSAC against dense SB3 SAC, on the same machine, interleaved.

Each measurement is a fresh subprocess with one torch thread: it builds the agent on
HalfCheetah-v5 wrapped in an extremely noisy environment, fills ``learning_starts`` transitions,
then times ``--steps`` env steps with one gradient step each, and reports env steps/s and its peak
resident memory. Agents are run round-robin (dense, anf, all_layers-90%, dense, …) ``--repeats``
times, and each sparse run's speed is divided by the dense run of the same round, so that the
machine's load drifts out of the ratios. Writes JSON and a markdown table::

    python scripts/bench_speed.py                      # quick: f = 0, 0.99 and 17,000 inputs
    python scripts/bench_speed.py --scale              # also 100,000 inputs (sparse only by default)
    python scripts/bench_speed.py --out docs/performance.json --markdown docs/performance.md
"""

from __future__ import annotations

import argparse
import json
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
            batch_size: int = 256) -> dict[str, Any]:
    """Run one measurement in this process (the child side) and return its numbers."""
    import torch

    torch.set_num_threads(1)
    from stable_baselines3 import SAC

    from sparse_rl.agents import SparseSAC
    from sparse_rl.envs import make_env

    env = make_env({"id": "HalfCheetah-v5", **setting}, seed=0)
    kwargs = dict(learning_starts=learning_starts, buffer_size=buffer_size, batch_size=batch_size, seed=0, device="cpu",
                  policy_kwargs={"net_arch": [256, 256]})
    sparsity = AGENTS[agent]["sparsity"]
    model = SAC("MlpPolicy", env, **kwargs) if sparsity is None else SparseSAC("MlpPolicy", env, sparsity=sparsity,
                                                                                **kwargs)
    model.learn(learning_starts + 10)  # warm-up: buffer filled, first gradient steps done
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    elapsed = time.perf_counter() - start
    buffer = model.replay_buffer
    # Every array the buffer holds (observations, actions, rewards, noise indices, …), per transition.
    buffer_bytes = sum(value.nbytes for value in vars(buffer).values() if isinstance(value, np.ndarray))
    return {
        "steps_per_second": steps / elapsed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "observation_size": int(env.observation_space.shape[0]),
        "buffer_bytes_per_transition": buffer_bytes / buffer.buffer_size,
        "buffer_class": type(buffer).__name__,
    }


def run_child(agent: str, setting_name: str, setting: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Run :func:`measure` in a fresh subprocess; a failure (e.g. out of memory) is reported, not raised."""
    steps = max(10, round(args.steps * STEPS_SCALE.get(setting_name, 1.0)))
    buffer_size = SCALE_BUFFER_SIZE if setting_name in SCALE_SETTING else args.buffer_size
    command = [sys.executable, __file__, "--child", json.dumps({"agent": agent, "setting": setting, "steps": steps,
                                                                "learning_starts": args.learning_starts,
                                                                "buffer_size": buffer_size,
                                                                "batch_size": args.batch_size})]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"agent": agent, "setting": setting_name, "error": f"no result within --timeout {args.timeout} s"}
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["(no output)"]
        return {"agent": agent, "setting": setting_name, "error": f"exit {result.returncode}: {lines[-1]}"}
    return {"agent": agent, "setting": setting_name, **json.loads(result.stdout.strip().splitlines()[-1])}


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (setting, agent): median steps/s, median ratio to dense of the same round, peak memory."""
    rows = []
    for setting in dict.fromkeys(run["setting"] for run in runs):
        for agent in dict.fromkeys(run["agent"] for run in runs):
            mine = [run for run in runs if run["setting"] == setting and run["agent"] == agent]
            ok = [run for run in mine if "error" not in run]
            row: dict[str, Any] = {"setting": setting, "agent": agent, "runs": len(mine), "failed": len(mine) - len(ok)}
            if ok:
                row["steps_per_second"] = statistics.median(run["steps_per_second"] for run in ok)
                row["peak_rss_mb"] = max(run["peak_rss_mb"] for run in ok)
                row["observation_size"] = ok[0]["observation_size"]
                row["buffer_bytes_per_transition"] = ok[0]["buffer_bytes_per_transition"]
                ratios = [run["steps_per_second"] / dense["steps_per_second"] for run in ok
                          for dense in runs if dense["agent"] == "dense_sb3" and dense["setting"] == setting
                          and dense.get("round") == run.get("round") and "error" not in dense]
                if ratios:
                    row["ratio_vs_dense"] = statistics.median(ratios)
            else:
                row["error"] = mine[0]["error"] if mine else "not run"
            rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]], command: str, date: str) -> str:
    """The results as a markdown table, with the command that made them."""
    lines = [f"Measured {date} with `{command}` (one torch thread per run, runs interleaved).", "",
             "| setting | inputs | agent | env steps/s | × dense SB3 | peak RSS (MB) | buffer bytes/transition "
             "| buffer of 1M transitions (GB) |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['setting']} | | {row['agent']} | failed: {row['error']} | | | | |")
            continue
        ratio = f"{row['ratio_vs_dense']:.2f}" if "ratio_vs_dense" in row else "–"
        lines.append(f"| {row['setting']} | {row['observation_size']} | {row['agent']} | "
                     f"{row['steps_per_second']:.3g} | {ratio} | {row['peak_rss_mb']:.0f} | "
                     f"{row['buffer_bytes_per_transition']:.0f} | {row['buffer_bytes_per_transition'] / 1e3:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Parse arguments, run the interleaved measurements, write JSON and markdown."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=300, help="timed env steps (one gradient step each)")
    parser.add_argument("--learning-starts", type=int, default=300)
    parser.add_argument("--buffer-size", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256, help="gradient batch (Grooten et al. use 100)")
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
        table = markdown(summarise(report["runs"]), report["command"], report["date"])
        print(table)
        if args.markdown:
            write_table(Path(args.markdown), table)
        return
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(measure(spec["agent"], spec["setting"], spec["steps"], spec["learning_starts"],
                                 spec["buffer_size"], spec.get("batch_size", 256))))
        return
    settings = {name: SETTINGS.get(name) or SCALE_SETTING[name] for name in args.settings}
    if args.scale:
        settings.update(SCALE_SETTING)
    runs = []
    for round_index in range(args.repeats):
        for setting_name, setting in settings.items():
            for agent in args.agents:
                run = run_child(agent, setting_name, setting, args)
                run["round"] = round_index
                runs.append(run)
                speed = f"{run['steps_per_second']:.1f} steps/s" if "error" not in run else run["error"]
                print(f"round {round_index} {setting_name:12s} {agent:14s} {speed}", flush=True)
    rows = summarise(runs)
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    command = "python scripts/bench_speed.py " + " ".join(sys.argv[1:])
    report = {"date": date, "command": command, "machine": platform.machine(), "python": platform.python_version(),
              "batch_size": args.batch_size, "steps": args.steps, "learning_starts": args.learning_starts,
              "runs": runs, "summary": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(rows, command.strip(), date)
    print(table)
    if args.markdown:
        write_table(Path(args.markdown), table)


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
