"""Training speed and memory of SparseSAC against dense SB3 SAC, on the same machine, interleaved.

Each measurement is a fresh subprocess with ``--threads`` torch threads (1, the condition of a
sweep's workers, by default; ``all`` is every core, what a single run gets from torch): it builds
the agent on HalfCheetah-v5 wrapped in an extremely noisy environment, fills ``learning_starts``
transitions, then times ``--steps`` env steps with one gradient step each, and reports env steps/s
and its peak resident memory. Agents are run round-robin (dense, anf, all_layers-90%, dense, …)
``--repeats`` times, for each setting, batch size and thread count, and each sparse run's speed is
divided by the dense run of the same round, setting, batch size and thread count, so that the
machine's load drifts out of the ratios. Each run's speed is also divided by dense SB3's on the
clean task (setting ``f0``) of the same round, batch size and thread count ("× clean dense": what
the noise costs, issue 25), when ``f0`` and ``dense_sb3`` are among the runs. Writes JSON and a
markdown table::

    python scripts/bench_speed.py                      # quick: f = 0, 0.99 and 17,000 inputs
    python scripts/bench_speed.py --threads 1 all --batch-size 256 100
    python scripts/bench_speed.py --settings f0 f0.98 f0.99 --agents dense_sb3 anf_sac   # what the noise costs
    python scripts/bench_speed.py --agents dense_sb3 anf_sac --baseline /tmp/before   # also anf_sac@baseline:
                                   # the same agent from another checkout's package, in the same rounds
    python scripts/bench_speed.py --scale              # also 100,000 inputs (sparse only by default)
    python scripts/bench_speed.py --device cuda --agents dense_sb3 anf_masked anf_csr
    python scripts/bench_speed.py --out docs/performance.json --markdown docs/performance.md

``--profile`` adds each run's 15 costliest operations (torch profiler, self CPU time) to the JSON;
``--phases`` adds each run's CPU time per env step split by phase of SB3's loop (replay sample,
actor, critics, target, backward passes, optimizer steps, Polyak, env step…; see :func:`phase_timer`).

Agents: ``dense_sb3`` is ``stable_baselines3.SAC`` with its defaults; ``anf`` is SparseSAC with the
``anf`` sparsity preset and SB3's training settings; ``anf_sac`` is the shipped ANF-SAC method
(``sparse-rl train --method anf_sac``: :func:`~sparse_rl.agents.make_agent`, with the method's
fresh replay noise, weight decay, fixed temperature, critic loss scale and Xavier init), its batch
size, warm-up and buffer size set by this script like every agent's.
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
    # the shipped method (`sparse-rl train --method anf_sac`): make_agent("anf_sac", ...)
    "anf_sac": {"method": "anf_sac"},
    # the same with torch's fused Adam (one kernel per tensor; not the same bits: docs/performance.md)
    "anf_sac_fused": {"method": "anf_sac", "optimizer_kwargs": {"fused": True}},
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
    "f0.98": {"noise_fraction": 0.98},  # 850 inputs
    "f0.99": {"noise_fraction": 0.99},  # 1,700 inputs
    "inputs17000": {"n_noise": 17_000 - 17},
}
SCALE_SETTING = {"inputs100000": {"n_noise": 100_000 - 17}}
#: timed steps of a setting, as a fraction of ``--steps`` (big inputs are slow; their ratios are stable sooner)
STEPS_SCALE = {"f0": 1.0, "f0.98": 1.0, "f0.99": 1.0, "inputs17000": 0.2, "inputs100000": 0.05}
#: the scale setting runs with the replay buffer of a real 1M-step run: there dense SB3 cannot allocate it
SCALE_BUFFER_SIZE = 1_000_000
#: the setting and agent every run is also compared with ("× clean dense"): dense SB3 on the clean task
CLEAN_SETTING, DENSE_AGENT = "f0", "dense_sb3"


def measure(agent: str, setting: dict[str, Any], steps: int, learning_starts: int, buffer_size: int,
            batch_size: int = 256, threads: int = 1, device: str = "cpu", profile: bool = False,
            phases: bool = False) -> dict[str, Any]:
    """Run one measurement in this process (the child side) and return its numbers."""
    import torch

    torch.set_num_threads(threads)
    from sparse_rl.envs import make_env

    env = make_env({"id": "HalfCheetah-v5", **setting}, seed=0)
    model = build_agent(agent, env, learning_starts=learning_starts, buffer_size=buffer_size, batch_size=batch_size,
                        device=device)
    model.learn(learning_starts + 10)  # warm-up: buffer filled, first gradient steps done
    synchronize = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)
    synchronize()
    phase_times = phase_timer(model) if phases else None
    start, start_cpu = time.perf_counter(), time.process_time()
    if profile:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
            model.learn(steps, reset_num_timesteps=False)
    else:
        model.learn(steps, reset_num_timesteps=False)
    synchronize()
    elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    buffer = model.replay_buffer
    # Every array the buffer holds (observations, actions, rewards, noise indices, …), per transition.
    buffer_bytes = sum(value.nbytes for value in vars(buffer).values() if isinstance(value, np.ndarray))
    backends = sorted({module.backend for module in model.policy.modules() if hasattr(module, "target_density")})
    result = {
        "steps_per_second": steps / elapsed,
        # the process's CPU time (all its threads): on a loaded machine less drowned in waiting than wall time
        "cpu_ms_per_step": elapsed_cpu / steps * 1e3,
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
    if phase_times is not None:
        phase_times["rest of learn"] = elapsed_cpu - sum(phase_times.values())
        result["phases_cpu_ms_per_step"] = {name: seconds / steps * 1e3 for name, seconds in
                                            sorted(phase_times.items(), key=lambda item: -item[1])}
    return result


def build_agent(agent: str, env: Any, **kwargs: Any) -> Any:
    """The agent named ``agent`` (:data:`AGENTS`) on ``env``, seed 0, with ``kwargs`` (warm-up, buffer,
    batch size, device) set as for every agent."""
    from stable_baselines3 import SAC

    from sparse_rl.agents import SparseSAC, make_agent
    from sparse_rl.agents.methods import METHODS

    if "method" in AGENTS[agent]:  # the shipped method, its own net_arch and policy_kwargs included
        method = AGENTS[agent]["method"]
        if "optimizer_kwargs" in AGENTS[agent]:  # added to the method's own (its weight decay stays)
            policy_kwargs = dict(METHODS[method].hyperparams.get("policy_kwargs", {}))
            policy_kwargs["optimizer_kwargs"] = {**policy_kwargs.get("optimizer_kwargs", {}),
                                                 **AGENTS[agent]["optimizer_kwargs"]}
            kwargs["policy_kwargs"] = policy_kwargs
        return make_agent(method, env, seed=0, **kwargs)
    kwargs.update(seed=0, policy_kwargs={"net_arch": [256, 256]})
    sparsity = AGENTS[agent]["sparsity"]
    return SAC("MlpPolicy", env, **kwargs) if sparsity is None else SparseSAC("MlpPolicy", env, sparsity=sparsity,
                                                                              **kwargs)


def phase_timer(model: Any) -> dict[str, float]:
    """Wrap the parts of SB3's SAC loop that ``model`` runs (replay sample, actor passes, critic and
    target passes, backward passes, optimizer steps, Polyak averaging, env step, buffer add, topology
    updates…) so that each adds its own CPU time (``time.process_time``, less that of the wrapped
    parts it calls) to the returned dict, by name, from then on. A profiling aid: it patches the
    model's objects and SB3's ``polyak_update`` for the rest of the process."""
    import stable_baselines3.sac.sac as sac_module
    import torch

    seconds: dict[str, float] = {}
    inner: list[float] = []

    def wrap(owner: Any, attribute: str, name: str) -> None:
        function = getattr(owner, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.process_time()
            inner.append(0.0)
            try:
                return function(*args, **kwargs)
            finally:
                spent = time.process_time() - began
                seconds[name] = seconds.get(name, 0.0) + spent - inner.pop()
                if inner:
                    inner[-1] += spent
        setattr(owner, attribute, timed)

    wrap(model, "collect_rollouts", "collect_rollouts (rest)")
    wrap(model, "train", "train (rest)")
    wrap(model.env, "step", "env step")
    wrap(model.replay_buffer, "add", "replay add")
    wrap(model.replay_buffer, "sample", "replay sample")
    wrap(model.policy, "set_training_mode", "set_training_mode")
    wrap(model.actor, "forward", "actor predict")
    wrap(model.actor, "action_log_prob", "actor action_log_prob")
    wrap(model.critic, "forward", "critic forward")
    wrap(model.critic_target, "forward", "critic_target forward")
    wrap(torch.Tensor, "backward", "backward")
    wrap(sac_module, "polyak_update", "polyak_update")
    optimizers = {"actor": model.actor.optimizer, "critic": model.critic.optimizer,
                  "ent_coef": getattr(model, "ent_coef_optimizer", None)}
    for name, optimizer in optimizers.items():
        if optimizer is not None:
            wrap(optimizer, "step", f"{name} optimizer step")
            wrap(optimizer, "zero_grad", "zero_grad")
    for updater in getattr(model, "topology_updaters", {}).values():
        wrap(updater, "step", "topology step")
        wrap(updater, "prepare", "topology step")
    return seconds


def run_child(agent: str, setting_name: str, setting: dict[str, Any], batch_size: int, threads: int,
              args: argparse.Namespace) -> dict[str, Any]:
    """Run :func:`measure` in a fresh subprocess; a failure (e.g. out of memory) is reported, not raised."""
    steps = max(10, round(args.steps * STEPS_SCALE.get(setting_name, 1.0)))
    buffer_size = SCALE_BUFFER_SIZE if setting_name in SCALE_SETTING else args.buffer_size
    name, _, code = agent.partition(BASELINE_SUFFIX)
    spec = {"agent": name, "setting": setting, "steps": steps, "learning_starts": args.learning_starts,
            "buffer_size": buffer_size, "batch_size": batch_size, "threads": threads, "device": args.device,
            "profile": args.profile, "phases": args.phases}
    labels = {"agent": agent, "setting": setting_name, "batch_size": batch_size, "threads": threads}
    environment = {**os.environ, **{variable: str(threads) for variable in THREAD_VARIABLES}}
    if agent.endswith(BASELINE_SUFFIX):  # the same agent built from the --baseline checkout's package
        environment["PYTHONPATH"] = str(Path(args.baseline).resolve())
    try:
        result = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                                text=True, timeout=args.timeout, env=environment)
    except subprocess.TimeoutExpired:
        return {**labels, "error": f"no result within --timeout {args.timeout} s"}
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["(no output)"]
        return {**labels, "error": f"exit {result.returncode}: {lines[-1]}"}
    return {**labels, **json.loads(result.stdout.strip().splitlines()[-1])}


#: the label's ending of an agent run from the ``--baseline`` checkout
BASELINE_SUFFIX = "@baseline"


def run_list(agents: list[str], baseline: str | None) -> list[str]:
    """The agents of a round, in order: each of ``agents`` and, with a ``baseline`` checkout, right
    after it the same agent built from that checkout's package (``anf_sac@baseline``), except dense
    SB3, which is SB3's either way."""
    runs = []
    for agent in agents:
        runs.append(agent)
        if baseline and agent != DENSE_AGENT:
            runs.append(agent + BASELINE_SUFFIX)
    return runs


#: what the BLAS and OpenMP libraries read for their thread counts (set per child like torch's)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _cell(run: dict[str, Any]) -> tuple[Any, ...]:
    return run["setting"], run.get("batch_size", 256), run.get("threads", 1)


#: where a summary row keeps each ratio's values per round
PER_ROUND = {"ratio_vs_dense": "ratios_per_round", "ratio_vs_clean_dense": "clean_ratios_per_round"}


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (setting, batch size, threads, agent): median steps/s, median ratio to dense SB3 of the same
    round and cell, median ratio to dense SB3 on the clean task (setting ``f0``) of the same round,
    batch size and thread count, peak memory."""
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
                if all("cpu_ms_per_step" in run for run in ok):
                    row["cpu_ms_per_step"] = statistics.median(run["cpu_ms_per_step"] for run in ok)
                clean_cell = (CLEAN_SETTING, *cell[1:])
                for key, reference_cell in (("ratio_vs_dense", cell), ("ratio_vs_clean_dense", clean_cell)):
                    ratios = _ratios(ok, runs, reference_cell)
                    if ratios:
                        row[key] = statistics.median(ratios)
                        row[PER_ROUND[key]] = ratios
            else:
                row["error"] = mine[0]["error"]
            rows.append(row)
    return rows


def _ratios(ok: list[dict[str, Any]], runs: list[dict[str, Any]], reference_cell: tuple[Any, ...]) -> list[float]:
    """Each of ``ok``'s speeds over that of dense SB3 in ``reference_cell`` in the same round."""
    return [run["steps_per_second"] / dense["steps_per_second"] for run in ok
            for dense in runs if dense["agent"] == DENSE_AGENT and _cell(dense) == reference_cell
            and dense.get("round") == run.get("round") and "error" not in dense]


def _ratio_cell(row: dict[str, Any], key: str) -> str:
    """``median (round, round…)`` of a ratio of ``row``, or ``–``."""
    if key not in row:
        return "–"
    per_round = row[PER_ROUND[key]]
    rounds = ", ".join(f"{value:.2f}" for value in per_round)
    return f"{row[key]:.2f}" + (f" ({rounds})" if len(per_round) > 1 else "")


def markdown(rows: list[dict[str, Any]], command: str, date: str, where: str = "") -> str:
    """The results as a markdown table, with the command that made them."""
    lines = [f"Measured {date} with `{command}` (runs interleaved{where}).", "",
             "| setting | inputs | batch | threads | agent | env steps/s | × dense SB3 (rounds) "
             "| × clean dense SB3 (rounds) | peak RSS (MB) | buffer bytes/transition | buffer of 1M transitions (GB) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        head = f"| {row['setting']} | {row.get('observation_size', '')} | {row['batch_size']} | {row['threads']} | "
        if "error" in row:
            lines.append(f"{head}{row['agent']} | failed: {row['error']} | | | | | |")
            continue
        lines.append(f"{head}{row['agent']} | {row['steps_per_second']:.3g} | {_ratio_cell(row, 'ratio_vs_dense')} | "
                     f"{_ratio_cell(row, 'ratio_vs_clean_dense')} | {row['peak_rss_mb']:.0f} | "
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
    parser.add_argument("--phases", action="store_true",
                        help="add each run's CPU time per step split by phase of the training loop to the JSON")
    parser.add_argument("--agents", nargs="+", default=DEFAULT_AGENTS, choices=list(AGENTS))
    parser.add_argument("--baseline", metavar="DIR",
                        help="also run each sparse agent from the sparse_rl package in this checkout (its PYTHONPATH), "
                             "labelled AGENT@baseline, interleaved in the same rounds: before/after in one run")
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
                                 spec["profile"], spec.get("phases", False))))
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
              "learning_starts": args.learning_starts, "baseline": _describe_checkout(args.baseline), "runs": runs}
    for round_index in range(args.repeats):
        for setting_name, setting in settings.items():
            for batch_size in args.batch_size:
                for threads in args.threads:
                    for agent in run_list(args.agents, args.baseline):
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


def _describe_checkout(directory: str | None) -> str | None:
    """``DIR (commit)`` of a ``--baseline`` checkout (its git commit where it has one), or ``None``."""
    if directory is None:
        return None
    try:
        commit = subprocess.run(["git", "-C", directory, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{directory} ({commit})" if commit else directory


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
