"""Run a sweep: plan its runs, skip the finished ones, execute the rest on a backend, write the
reports. The sweep's output directory::

    <out>/
      sweep.yaml        the sweep file as run
      plan.json         every run's resolved config (a re-run must plan the same configs)
      runs/<run id>/    the run directories (sparse_rl.experiment.runner's layout)
      results/<run id>.json   the record of each finished run (its numbers and learning curve)
      results.csv       a row per finished run
      summary.md        a row per cell: statistics over seeds, and the plots
      plots/            learning curves per env and noise fraction

Running the same command again resumes: runs with a record are skipped, a run whose directory holds
a checkpoint (the sweep was killed while it trained) continues from it, the others start.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparse_rl._util.outputs import check_creatable_dir
from sparse_rl._util.rundir import RunDir
from sparse_rl.benchmark.aggregates import seed_warning, write_aggregates
from sparse_rl.benchmark.backends import Backend, make_backend
from sparse_rl.benchmark.plots import PLOTS_DIR, plot_filtering_curves, plot_learning_curves
from sparse_rl.benchmark.results import (
    RESULTS_CSV,
    SUMMARY_MD,
    read_records,
    write_record,
    write_results_csv,
    write_summary,
)
from sparse_rl.benchmark.spec import RunTask, SweepSpec, load_sweep, plan_runs
from sparse_rl.experiment.config import config_from_dict
from sparse_rl.experiment.errors import ConfigError, UserError

PLAN_FILE = "plan.json"
SWEEP_COPY = "sweep.yaml"
DEFAULT_ROOT = "bench_runs"
#: config keys that may differ between a sweep's plan and a re-run of it (``run.root`` follows the
#: output directory, which may have moved or been given as another path)
IGNORED_CHANGES = ("description", "run.root")

Log = Callable[[str], None]


class SweepIncomplete(UserError):
    """Some runs of the sweep failed; the others' results are written, and a re-run retries them."""

    exit_code = 1


@dataclass
class SweepOutcome:
    """What :func:`run_sweep` did.

    :param out_dir: the sweep's output directory
    :param planned: every run of the sweep
    :param skipped: run ids already finished before this call
    :param finished: run ids finished by this call
    :param failed: run id -> error, for runs that failed in this call
    :param files: the reports written (results.csv, summary.md, plots)
    :param wall_time_s: seconds this call took
    """

    out_dir: Path
    planned: list[RunTask]
    skipped: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    wall_time_s: float = 0.0


def default_out_dir(spec: SweepSpec) -> Path:
    """``bench_runs/<sweep name>``.

    :param spec: the sweep
    """
    return Path(DEFAULT_ROOT) / str(spec.name)


def run_sweep(sweep_file: str | Path, out_dir: str | Path | None = None, backend: str | Backend = "local",
              workers: int | None = None, address: str | None = None, overrides: Sequence[str] = (),
              dry_run: bool = False, report_only: bool = False, log: Log | None = None) -> SweepOutcome:
    """Run (or resume) the sweep of ``sweep_file`` and write its reports.

    :param sweep_file: the sweep's YAML file
    :param out_dir: its output directory (default: ``bench_runs/<name>``)
    :param backend: ``local``, ``ray`` or a :class:`~sparse_rl.benchmark.backends.Backend`
    :param workers: runs at once (local) or CPUs of a local Ray instance (default: CPU cores)
    :param address: a Ray cluster's address (with ``backend="ray"``)
    :param overrides: ``KEY=VALUE`` settings for every run
    :param dry_run: only print the plan (which runs are done, which would run); write nothing
    :param report_only: train nothing; write the reports from the runs finished so far
    :param log: where progress lines go (default: stderr)
    :raises UserError: on a bad sweep file or setting (exit code 2); :class:`SweepIncomplete` when
        some runs failed (exit code 1), after the reports are written
    """
    say = log or _stderr
    started = time.perf_counter()
    spec = load_sweep(sweep_file)
    out = Path(out_dir) if out_dir is not None else default_out_dir(spec)
    if not dry_run:  # a read-only or impossible --out fails here, before any run is planned or trained
        check_creatable_dir(out, "the sweep directory (--out)")
    tasks = plan_runs(spec, sweep_file, out, overrides)
    check_plan(out, tasks)
    done = read_records(out, [task.run_id for task in tasks])
    todo = [task for task in tasks if task.run_id not in done]
    outcome = SweepOutcome(out, tasks, skipped=sorted(done))
    if dry_run:
        for task in tasks:
            state = "done" if task.run_id in done else ("resume" if _has_checkpoint(task) else "to run")
            say(f"{state:>7}  {task.run_id}  ({task.config['total_timesteps']} steps)")
        say(f"{len(tasks)} runs: {len(done)} done, {len(todo)} to run (dry run: nothing trained)")
        return outcome
    executor: Backend | None = None
    if isinstance(backend, Backend):
        executor = backend
    elif not report_only:
        executor = make_backend(backend, workers, address)
    out.mkdir(parents=True, exist_ok=True)
    _write_text(out / SWEEP_COPY, Path(sweep_file).read_text(encoding="utf-8"))
    write_plan(out, tasks)
    if executor is not None and not report_only and todo:
        say(f"sweep {spec.name}: {len(tasks)} runs, {len(done)} already done, {len(todo)} to run on the "
            f"{executor.describe()}; output in {out}")
        order = {task.run_id: i for i, task in enumerate(tasks)}

        def on_result(record: dict[str, Any]) -> None:
            number = len(outcome.finished) + len(outcome.failed) + 1
            elapsed = _duration(time.perf_counter() - started)
            if record.get("status") == "finished":
                write_record(out, record)
                outcome.finished.append(record["run_id"])
                records = read_records(out, list(order))
                write_results_csv(sorted(records.values(), key=lambda r: order[r["run_id"]]), out / RESULTS_CSV)
                say(f"[{number}/{len(todo)}] {record['run_id']}: final return {record['final_return']:.1f}, "
                    f"{record['steps_per_second']:.0f} steps/s{' (resumed)' if record.get('resumed') else ''}; "
                    f"{elapsed} elapsed")
            else:
                outcome.failed[record["run_id"]] = str(record.get("error"))
                say(f"[{number}/{len(todo)}] {record['run_id']} FAILED: {record.get('error')}")

        executor.run([task.to_dict() for task in todo], on_result)
    outcome.files = write_reports(out, spec, tasks)
    outcome.wall_time_s = time.perf_counter() - started
    finished = read_records(out, [t.run_id for t in tasks])
    say(f"sweep {spec.name}: {len(finished)} of {len(tasks)} runs finished "
        f"({_duration(outcome.wall_time_s)}); results in {out / RESULTS_CSV}, {out / SUMMARY_MD}, {out / PLOTS_DIR}")
    warning = seed_warning(list(finished.values()))
    if warning:
        say(warning)
    if outcome.failed:
        names = ", ".join(sorted(outcome.failed)[:5]) + (" …" if len(outcome.failed) > 5 else "")
        first = next(iter(outcome.failed.values()))
        raise SweepIncomplete(f"{len(outcome.failed)} of {len(todo)} runs failed ({names}); the first error: "
                              f"{first}. The other runs' results are written; run the same command again to retry "
                              "the failed ones (finished runs are skipped)")
    return outcome


def write_reports(out_dir: str | Path, spec: SweepSpec, tasks: Sequence[RunTask]) -> list[Path]:
    """Write ``results.csv``, the learning-curve plots and ``summary.md`` from the finished runs.

    :param out_dir: the sweep's output directory
    :param spec: the sweep
    :param tasks: its planned runs (the order of the rows)
    :return: the files written
    """
    out = Path(out_dir)
    order = {task.run_id: i for i, task in enumerate(tasks)}
    records = sorted(read_records(out, list(order)).values(), key=lambda r: order[r["run_id"]])
    agents = list(spec.agents)
    files = [write_results_csv(records, out / RESULTS_CSV)]
    plots = plot_learning_curves(records, out / PLOTS_DIR, agents) if records else []
    plots += plot_filtering_curves(records, out / PLOTS_DIR, agents) if records else []
    summary = write_summary(records, out / SUMMARY_MD, name=str(spec.name), description=spec.description,
                            agents=agents, planned=len(tasks),
                            plots=[Path(PLOTS_DIR) / plot.name for plot in plots])
    aggregates = write_aggregates(records, out, agents, PLOTS_DIR)  # aggregates.md, performance profile
    return [*files, summary, *plots, *aggregates]


def check_plan(out_dir: str | Path, tasks: Sequence[RunTask]) -> None:
    """Refuse to reuse ``out_dir`` for a sweep whose runs have other configs than those it holds
    (a run may be added: more seeds, another env; not changed).

    :param out_dir: the sweep's output directory
    :param tasks: the planned runs
    :raises ConfigError: naming the first run and keys that differ
    """
    path = Path(out_dir) / PLAN_FILE
    if not path.is_file():
        return
    try:
        saved = json.loads(path.read_text(encoding="utf-8")).get("runs", {})
    except (OSError, json.JSONDecodeError, AttributeError):
        raise ConfigError(f"{str(path)!r} is damaged; delete it to plan the sweep afresh") from None
    for task in tasks:
        before = saved.get(task.run_id)
        if before is None:
            continue
        # a plan written before a config key existed gets its default (not a change)
        with contextlib.suppress(ConfigError, TypeError, ValueError):
            before = config_from_dict(before).to_dict()
        flat_before, flat_after = _flatten(before), _flatten(task.config)
        changed = sorted(key for key in set(flat_before) | set(flat_after)
                         if flat_before.get(key) != flat_after.get(key) and not key.startswith(IGNORED_CHANGES))
        if changed:
            details = "; ".join(f"{key} is {flat_before.get(key)!r} there, {flat_after.get(key)!r} here"
                                for key in changed[:3])
            raise ConfigError(f"{str(out_dir)!r} holds run {task.run_id} with another config ({details}); a sweep "
                              "directory resumes only the same sweep. Use another --out, or delete that run's "
                              f"directory and record and {PLAN_FILE} to redo it")


def write_plan(out_dir: str | Path, tasks: Sequence[RunTask]) -> Path:
    """Write ``plan.json`` (merged with the runs an earlier plan had).

    :param out_dir: the sweep's output directory
    :param tasks: the planned runs
    """
    path = Path(out_dir) / PLAN_FILE
    runs: dict[str, Any] = {}
    if path.is_file():
        try:
            runs = dict(json.loads(path.read_text(encoding="utf-8")).get("runs", {}))
        except (OSError, json.JSONDecodeError, AttributeError, TypeError):
            runs = {}
    runs.update({task.run_id: task.config for task in tasks})
    _write_text(path, json.dumps({"runs": runs}, indent=1))
    return path


def _has_checkpoint(task: RunTask) -> bool:
    checkpoints = RunDir(Path(task.run_dir)).checkpoints
    return checkpoints.is_dir() and any(p.name.startswith("step_") for p in checkpoints.iterdir())


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
