"""Issue 22's report, "no cost without noise": ``fit_input`` (FI-SAC) beside SB3's SAC (the dense
control), ANF-SAC and ``strength_filter`` (SF-SAC) on clean and noisy inputs.

Reads a sweep directory of ``configs/bench/no_cost.yaml`` (its ``results/*.json`` records; each
run's ``config.yaml`` where it can be read) and writes, into ``--out`` (default: the sweep directory):

- ``no_cost.md``: per cell (env, noise fraction f), each agent's mean final return with a 95%
  bootstrap CI, its seeds, FI-SAC / agent as a ratio of mean final returns with its CI, the input
  layers' density and, at f > 0, the in-degree ratio at the end (actor, critic); where FI-SAC builds
  the very networks of another agent, whether their records are identical seed by seed; then the
  issue's goals, each marked met, not met or not judged;
- ``no_cost_density.png``: the input layers' density per agent and cell, the in-degree ratio over
  training per noisy cell (mean over seeds), and the trade-off (mean return at f = 0 against f = 0.98,
  InvertedDoublePendulum-v5).

It works on a partial sweep: a missing agent or cell reads "not run yet", a comparison over fewer
than two seeds of either agent "not judged". Usage::

    python scripts/no_cost_report.py bench_runs/no_cost [--out docs/results/no_cost]

The goals, as judged here:

(a) f = 0, both tasks: FI-SAC's mean final return is at least SAC's minus 5% of |SAC's|
    (:data:`TOLERANCE`; doing better than SAC is no cost, and abs() keeps the sense for Reacher's
    negative returns), on the point estimates of the means, as the issue words the goal.
(b) f = 0.98: FI-SAC is no worse than SF-SAC in final return and in the in-degree ratio of the actor
    and of the critic, "no worse" as :func:`no_worse` defines it.
(c) f = 0.8: reported, not judged.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from matplotlib.axes import Axes
from matplotlib.figure import Figure  # the object API: Agg, no pyplot state
from torch import nn

from sparse_rl.agents.networks import planned_densities
from sparse_rl.agents.sparsity import resolve_sparsity
from sparse_rl.analysis.plots.saving import save_figure
from sparse_rl.analysis.plots.style import SERIES_COLORS
from sparse_rl.benchmark.plots import mean_curve
from sparse_rl.benchmark.results import read_records
from sparse_rl.benchmark.stats import (
    MIN_SEEDS_FOR_A_VERDICT,
    bootstrap_ci,
    difference_of_means_ci,
    mean_ci_text,
    ratio_of_means_ci,
)
from sparse_rl.envs.wrappers import noise_feature_count

Cell = tuple[str, float]
Record = Mapping[str, Any]

#: the sweep's agents (configs/bench/no_cost.yaml) and their sparsity presets
AGENT_PRESETS = {"SAC": "dense", "ANF-SAC": "anf", "SF-SAC": "strength_filter", "FI-SAC": "fit_input"}
AGENTS = tuple(AGENT_PRESETS)
FI, SAC, SF = "FI-SAC", "SAC", "SF-SAC"
#: the sweep's cells, in the order of the report
IDP, REACHER = "InvertedDoublePendulum-v5", "Reacher-v5"
CELLS: tuple[Cell, ...] = ((IDP, 0.0), (REACHER, 0.0), (IDP, 0.8), (IDP, 0.98))
#: goal (a): FI-SAC's mean final return may fall short of SAC's by this share of |SAC's|
TOLERANCE = 0.05
#: the trade-off panel: (env, clean f, noisy f)
TRADE_OFF = (IDP, 0.0, 0.98)
NETWORKS = ("actor", "critic")
#: hidden widths when a run's config.yaml cannot be read (the sweep's net_arch)
DEFAULT_HIDDEN = (256, 256)
COLORS = {agent: SERIES_COLORS[i % len(SERIES_COLORS)] for i, agent in enumerate(AGENTS)}


# --------------------------------------------------------------------------------------------------
# records


def by_cell(records: Iterable[Record]) -> dict[Cell, dict[str, list[Record]]]:
    """Finished records grouped by cell (env, noise fraction) and agent, seeds in order; the
    sweep's cells and agents first, in its order, then any others the records hold."""
    groups: dict[Cell, dict[str, list[Record]]] = {cell: {} for cell in CELLS}
    for record in sorted(records, key=lambda r: int(r["seed"])):
        if record.get("status", "finished") != "finished":
            continue
        cell = (str(record["env"]), float(record["noise_fraction"]))
        groups.setdefault(cell, {}).setdefault(str(record["agent"]), []).append(record)
    return {cell: {agent: runs[agent] for agent in _agent_order(runs)} for cell, runs in groups.items()}


def _agent_order(runs: Mapping[str, Any]) -> list[str]:
    return [a for a in AGENTS if a in runs] + [a for a in runs if a not in AGENTS]


def finals(runs: Sequence[Record]) -> np.ndarray:
    """The final returns of ``runs`` (one per seed; a missing one is ``nan``)."""
    return np.array([_float(r.get("final_return")) for r in runs], dtype=float)


def final_metric(runs: Sequence[Record], key: str) -> np.ndarray:
    """A record field of ``runs`` as floats, e.g. ``in_degree_ratio_actor`` (``nan`` where absent)."""
    return np.array([_float(r.get(key)) for r in runs], dtype=float)


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# --------------------------------------------------------------------------------------------------
# input layers: their sizes and densities, computed by the library's own rules


@dataclass(frozen=True)
class Setup:
    """What a run's input layers depend on: its sparsity, hidden widths and noise count."""

    sparsity: Any
    hidden: tuple[int, ...] = DEFAULT_HIDDEN
    count_rule: str = "exact"
    n_noise: int | None = None
    algorithm: str = "sac"


def run_setup(record: Record) -> Setup:
    """The setup of a finished run: from its ``config.yaml`` where readable, else from the record
    (its sparsity preset) and the sweep's defaults."""
    config = _read_yaml(Path(str(record.get("run_dir", ""))) / "config.yaml")
    algorithm = str(record.get("algorithm") or "sac")
    if not config:
        return Setup(sparsity=record.get("sparsity") or AGENT_PRESETS.get(str(record["agent"])), algorithm=algorithm)
    env = config.get("env") or {}
    return Setup(sparsity=config.get("sparsity"), hidden=_hidden(config.get("net_arch")),
                 count_rule=str(env.get("count_rule", "exact")), n_noise=env.get("n_noise"), algorithm=algorithm)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _hidden(net_arch: Any) -> tuple[int, ...]:
    if isinstance(net_arch, Mapping):  # SB3's {pi: [...], qf: [...]}: the actor's
        net_arch = net_arch.get("pi")
    if isinstance(net_arch, Sequence) and net_arch and all(isinstance(w, int) for w in net_arch):
        return tuple(net_arch)
    return DEFAULT_HIDDEN


@functools.cache
def env_dims(env_id: str) -> tuple[int, int] | None:
    """``(observation size, action size)`` of the env itself, from a throw-away instance; ``None``
    if it cannot be made here."""
    import gymnasium as gym

    try:
        env = gym.make(env_id)
    except Exception:  # noqa: BLE001 - gymnasium raises many kinds (unknown id, missing MuJoCo)
        return None
    try:
        return int(math.prod(env.observation_space.shape or (0,))), int(math.prod(env.action_space.shape or (0,)))
    finally:
        env.close()


def input_counts(env_id: str, fraction: float, setup: Setup) -> dict[str, int] | None:
    """The input count of the actor's and the critic's input layer (observation with its noise
    features; the critic's then the action), ``None`` if the env's sizes are unknown here."""
    dims = env_dims(env_id)
    if dims is None:
        return None
    n_obs, n_act = dims
    n_noise = int(setup.n_noise) if setup.n_noise is not None else (
        noise_feature_count(n_obs, fraction, setup.count_rule) if fraction > 0 else 0)
    return {"actor": n_obs + n_noise, "critic": n_obs + n_noise + n_act}


def input_densities(env_id: str, fraction: float, setup: Setup) -> dict[str, float] | None:
    """The density of the actor's and the critic's input layer, as the policies build them
    (:func:`~sparse_rl.agents.networks.planned_densities` on an MLP of the run's widths; fit_input's
    floor is applied there, by :func:`~sparse_rl.sparse.distributions.fan_in_floor`). Only the
    input layer is read: exact for every preset whose input density does not depend on the other
    layers' shapes (all four of this sweep)."""
    counts = input_counts(env_id, fraction, setup)
    if counts is None:
        return None
    sparsity = resolve_sparsity(setup.sparsity, agent=setup.algorithm)
    outputs = {"actor": env_dims(env_id)[1], "critic": 1}  # type: ignore[index]
    return {network: next(iter(planned_densities(_meta_mlp(counts[network], setup.hidden, outputs[network]),
                                                 sparsity).values()))
            for network in NETWORKS}


def _meta_mlp(n_in: int, hidden: Sequence[int], n_out: int) -> nn.Module:
    """An MLP of these widths on the ``meta`` device (shapes only: no memory, no RNG draw)."""
    widths = [n_in, *hidden, n_out]
    layers: list[nn.Module] = []
    for n, m in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(n, m, device="meta"), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def cell_densities(cell: Cell, runs: Mapping[str, Sequence[Record]]) -> dict[str, dict[str, float] | None]:
    """Per agent of the sweep (and any other with runs), its input densities in ``cell``: from its
    first run's setup, or from the agent's preset in the sweep's design if it has not run yet."""
    out: dict[str, dict[str, float] | None] = {}
    for agent in _agent_order({**dict.fromkeys(AGENTS), **runs}):
        if runs.get(agent):
            setup = run_setup(runs[agent][0])
        elif agent in AGENT_PRESETS:
            setup = Setup(sparsity=AGENT_PRESETS[agent])
        else:
            continue
        out[agent] = input_densities(cell[0], cell[1], setup)
    return out


def twin_of_fi(densities: Mapping[str, Mapping[str, float] | None]) -> str | None:
    """The agent whose networks FI-SAC builds in a cell, if any: SAC where fit_input's floor makes
    every input layer dense (fit_input is then SB3's SAC, parameter for parameter), SF-SAC where the
    floor does not bind (fit_input is strength_filter plus the floor: the same networks, bit for
    bit). Both are tested in tests/agents/test_fit_input.py."""
    fi = densities.get(FI)
    if not fi:
        return None
    if all(value == 1.0 for value in fi.values()):
        return SAC
    if densities.get(SF) == fi:
        return SF
    return None


# --------------------------------------------------------------------------------------------------
# verdicts


@dataclass(frozen=True)
class Verdict:
    """One goal's (or one part's) outcome: ``met``, ``not met`` or ``not judged``, and why."""

    status: str
    detail: str = ""

    def __str__(self) -> str:
        return f"**{self.status}**" + (f" ({self.detail})" if self.detail else "")


def missing(runs: Mapping[str, Sequence[Record]], agents: Sequence[str]) -> Verdict | None:
    """``not judged`` if an agent has not run yet or has fewer than :data:`MIN_SEEDS_FOR_A_VERDICT`
    seeds, else ``None``."""
    absent = [a for a in agents if not runs.get(a)]
    if absent:
        return Verdict("not judged", f"{', '.join(absent)} not run yet")
    counts = {a: int(np.isfinite(finals(runs[a])).sum()) for a in agents}
    if min(counts.values()) < MIN_SEEDS_FOR_A_VERDICT:
        seeds = ", ".join(f"{a} {_n_seeds(n)}" for a, n in counts.items())
        return Verdict("not judged", f"{seeds}: needs ≥ {MIN_SEEDS_FOR_A_VERDICT} of each")
    return None


def within_tolerance(candidate: np.ndarray, baseline: np.ndarray, tolerance: float = TOLERANCE) -> Verdict:
    """Goal (a) on one task: ``mean(candidate) >= mean(baseline) - tolerance · abs(mean(baseline))``
    (point estimates of the mean final returns); the relative gap and its 95% CI in the detail.

    :param candidate: FI-SAC's final returns, one per seed (≥ 2)
    :param baseline: SAC's, one per seed (≥ 2)
    :param tolerance: the share of abs(SAC's mean) FI-SAC may fall short by
    """
    x, y = _finite(candidate), _finite(baseline)
    scale = abs(y.mean())
    if scale == 0:
        return Verdict("not judged", "SAC's mean final return is 0: no relative gap")
    gap = (x.mean() - y.mean()) / scale
    low, high = difference_of_means_ci(x, y)
    met = x.mean() >= y.mean() - tolerance * scale
    return Verdict("met" if met else "not met",
                   f"(FI − SAC) / abs(SAC) {gap:+.1%} [{low / scale:+.1%}, {high / scale:+.1%}], "
                   f"allowed ≥ {-tolerance:.0%}")


def no_worse(candidate: np.ndarray, reference: np.ndarray, spec: str = ",.0f") -> Verdict:
    """Goal (b)'s "no worse" (higher is better): met unless the seeds show the candidate worse,
    i.e. unless the 95% percentile-bootstrap CI of ``mean(candidate) - mean(reference)`` (seeds
    resampled within each agent) lies entirely below 0. In symbols: met iff ``high >= 0``.

    Why not "candidate's mean ≥ reference's mean": at f = 0.98 FI-SAC and SF-SAC build the same
    networks, so the question is whether the data show a difference at all; with 5 seeds, two
    equally good agents' means fall either way by chance, and that rule would fail an equal agent
    half the time. The CI rule fails it only when the difference is real at the 95% level; the
    point difference and the interval are printed beside it, so a wide interval is seen as such.
    Applied alike to the final return and to the actor's and critic's in-degree ratios.

    :param candidate: FI-SAC's values, one per seed (≥ 2)
    :param reference: SF-SAC's, one per seed (≥ 2)
    :param spec: the number format of the detail
    """
    x, y = _finite(candidate), _finite(reference)
    if x.size == 0 or y.size == 0:
        return Verdict("not judged", "no values")
    low, high = difference_of_means_ci(x, y)
    difference = x.mean() - y.mean()
    return Verdict("met" if high >= 0 else "not met",
                   f"FI − SF {difference:+{spec}} [{low:+{spec}}, {high:+{spec}}]")


def combine(verdicts: Iterable[Verdict]) -> Verdict:
    """One verdict of several parts: ``not met`` if any part is not met, else ``not judged`` if any
    is not judged, else ``met``."""
    statuses = [v.status for v in verdicts]
    for status in ("not met", "not judged"):
        if status in statuses:
            return Verdict(status)
    return Verdict("met")


def identical_per_seed(first: Sequence[Record], second: Sequence[Record]) -> str:
    """Whether two agents' records are exactly equal seed by seed: the final return, every
    evaluation return of the curve and the final in-degree ratios (where either has them), over the
    seeds both have run. The text starts with ``yes``, ``no`` or ``not checked``."""
    a, b = {int(r["seed"]): r for r in first}, {int(r["seed"]): r for r in second}
    common = sorted(set(a) & set(b))
    if not common:
        return "not checked: no seed run by both yet"
    differ = [seed for seed in common if _fingerprint(a[seed]) != _fingerprint(b[seed])]
    if not differ:
        return f"yes ({_n_seeds(len(common))}: {_seeds(common)})"
    first_seed = differ[0]
    return (f"no: seed{'s' if len(differ) != 1 else ''} {_seeds(differ)} of {len(common)} differ "
            f"(seed {first_seed}: final return {a[first_seed].get('final_return')!r} vs "
            f"{b[first_seed].get('final_return')!r})")


def _fingerprint(record: Record) -> tuple[Any, ...]:
    curve = (record.get("curve") or {}).get("returns")
    return (record.get("final_return"), tuple(curve or ()),
            *(record.get(f"in_degree_ratio_{network}") for network in NETWORKS))


def _seeds(seeds: Sequence[int]) -> str:
    return ", ".join(str(s) for s in seeds)


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


# --------------------------------------------------------------------------------------------------
# the markdown


def cell_title(cell: Cell) -> str:
    """``env, f = x``."""
    return f"{cell[0]}, f = {cell[1]:g}"


def cell_section(cell: Cell, runs: Mapping[str, Sequence[Record]],
                 densities: Mapping[str, Mapping[str, float] | None]) -> list[str]:
    """One cell's heading, table and identity check."""
    noisy = cell[1] > 0
    counts = input_counts(cell[0], cell[1], Setup(sparsity="dense"))
    inputs = f" ({counts['actor']} inputs, critic {counts['critic']})" if counts else ""
    lines = [f"### {cell_title(cell)}{inputs}", ""]
    header = ("| agent | seeds | final return: mean [95% CI] | FI-SAC / agent: ratio of means [95% CI] "
              "| input density actor / critic |")
    rule = "|---|---:|---:|---:|---:|"
    if noisy:
        header += " in-degree ratio at the end, actor | critic |"
        rule += "---:|---:|"
    lines += [header, rule]
    for agent, density in densities.items():
        lines.append(_agent_row(agent, runs, density, noisy))
    twin = twin_of_fi(densities)
    if twin is not None:
        lines += ["", identity_line(twin, runs)]
    return [*lines, ""]


def identity_line(twin: str, runs: Mapping[str, Sequence[Record]]) -> str:
    """The sentence on whether FI-SAC's records equal those of ``twin``, the agent whose networks
    it builds in this cell."""
    absent = [agent for agent in (FI, twin) if not runs.get(agent)]
    check = (f"not checked: {', '.join(absent)} not run yet" if absent
             else identical_per_seed(runs[FI], runs[twin]))
    return f"FI-SAC builds the networks of {twin} here; identical per seed: {check}."


def _agent_row(agent: str, runs: Mapping[str, Sequence[Record]], density: Mapping[str, float] | None,
               noisy: bool) -> str:
    density_text = "–" if not density else f"{density['actor']:.2f} / {density['critic']:.2f}"
    own = runs.get(agent, [])
    if not own:
        return f"| {agent} | 0 | not run yet | – | {density_text} |" + (" – | – |" if noisy else "")
    values = finals(own)
    ratio = "–" if agent == FI or not runs.get(FI) else ratio_text(finals(runs[FI]), values)
    row = f"| {agent} | {len(own)} | {mean_ci_text(values)} | {ratio} | {density_text} |"
    if noisy:
        for network in NETWORKS:
            ratios = final_metric(own, f"in_degree_ratio_{network}")
            row += " – (dense) |" if not np.isfinite(ratios).any() else f" {mean_ci_text(ratios, '.2f')} |"
    return row



def ratio_text(candidate: np.ndarray, baseline: np.ndarray) -> str:
    """``mean(candidate) / mean(baseline)`` with its 95% CI (none below 2 seeds of either)."""
    x, y = _finite(candidate), _finite(baseline)
    if x.size == 0 or y.size == 0:
        return "–"
    if y.mean() == 0:
        return "– (mean 0)"
    ratio = x.mean() / y.mean()
    if min(x.size, y.size) < MIN_SEEDS_FOR_A_VERDICT:
        return f"{ratio:.3f} (no CI: one seed)"
    low, high = ratio_of_means_ci(x, y)
    return f"{ratio:.3f} [{low:.3f}, {high:.3f}]"


def goal_a(groups: Mapping[Cell, Mapping[str, Sequence[Record]]]) -> tuple[Verdict, list[tuple[str, Verdict]]]:
    """Goal (a): FI-SAC within :data:`TOLERANCE` of SAC at f = 0 on every clean task of the sweep."""
    parts = []
    for cell in (c for c in CELLS if c[1] == 0.0):
        runs = groups.get(cell, {})
        verdict = missing(runs, (FI, SAC)) or within_tolerance(finals(runs[FI]), finals(runs[SAC]))
        parts.append((f"{cell_title(cell)}: final return", verdict))
    return combine(v for _, v in parts), parts


def goal_b(groups: Mapping[Cell, Mapping[str, Sequence[Record]]]) -> tuple[Verdict, list[tuple[str, Verdict]]]:
    """Goal (b): FI-SAC no worse than SF-SAC at f = 0.98 in final return and in-degree ratio."""
    cell = (IDP, 0.98)
    runs = groups.get(cell, {})
    parts = []
    for label, key, spec in (("final return", "final_return", ",.0f"),
                             ("in-degree ratio, actor", "in_degree_ratio_actor", ".2f"),
                             ("in-degree ratio, critic", "in_degree_ratio_critic", ".2f")):
        verdict = missing(runs, (FI, SF)) or no_worse(final_metric(runs[FI], key), final_metric(runs[SF], key), spec)
        parts.append((f"{cell_title(cell)}: {label}", verdict))
    return combine(v for _, v in parts), parts


def goals_section(groups: Mapping[Cell, Mapping[str, Sequence[Record]]]) -> list[str]:
    """The goals, each part and each goal marked met / not met / not judged, with the rules."""
    a, a_parts = goal_a(groups)
    b, b_parts = goal_b(groups)
    lines = ["## Goals", "",
             "| goal | part | verdict |", "|---|---|---|"]
    for name, parts in (("(a) f = 0: FI-SAC within 5% of SAC", a_parts),
                        ("(b) f = 0.98: FI-SAC no worse than SF-SAC", b_parts)):
        lines += [f"| {name} | {label} | {verdict} |" for label, verdict in parts]
    lines += ["", f"- **(a)** {a}: met when, on both tasks, FI-SAC's mean final return ≥ SAC's − "
                  f"{TOLERANCE:.0%} of abs(SAC's) (the point estimates of the means, as the issue words it; doing "
                  "better than SAC is no cost; abs() keeps the sense for Reacher's negative returns). The gap is "
                  "(FI − SAC) / abs(SAC), the means', with the 95% bootstrap CI of the difference of means over "
                  "the same denominator.",
              f"- **(b)** {b}: \"no worse\" = the 95% bootstrap CI of mean(FI-SAC) − mean(SF-SAC) (seeds resampled "
                  "within each agent, 10,000 resamples) does not lie entirely below 0, i.e. the seeds do not show "
                  "FI-SAC worse; the same rule for the final return and the actor's and critic's in-degree ratios "
                  "(higher is better for all three), and all three must hold. \"FI's mean ≥ SF's mean\" would fail "
                  "an equally good agent half the time by the chance of 5 seeds.",
              "- **(c)** f = 0.8: reported above, no goal.",
              f"- A part is not judged while either agent has fewer than {MIN_SEEDS_FOR_A_VERDICT} seeds (one seed "
                  "has no interval) or has not run yet; a goal is not met if any part is not met, else not "
                  "judged if any part is not judged.", ""]
    return lines


def report(sweep: Path, out: Path) -> str:
    """The markdown report of a sweep directory (and its figure, written into ``out``)."""
    records = list(read_records(sweep).values())
    groups = by_cell(records)
    densities = {cell: cell_densities(cell, runs) for cell, runs in groups.items()}
    out.mkdir(parents=True, exist_ok=True)
    figure = density_figure(groups, densities)
    save_figure(figure, out / "no_cost_density.png")
    lines = [f"# No cost without noise: fit_input ({sweep.name})", "", progress_line(sweep, records), "",
             "Final return: the last evaluation's mean return; mean over seeds with a 95% percentile-bootstrap "
             "CI (10,000 resamples). FI-SAC / agent: the ratio of mean final returns, seeds resampled within each "
             "agent (with negative returns, as on Reacher, a ratio above 1 means FI-SAC is worse). Input density: "
             "the input layers' share of active weights (actor / critic), from each run's sparsity by the "
             "library's rule (fit_input: min(1, max(0.2, 32 / n_in)), fixed from the input count). In-degree "
             "ratio: mean active connections of a real input column over those of a noise column, at the end "
             "(1.0 at the start, Grooten et al.'s metric).", "",
             "![input density, in-degree ratio and trade-off](no_cost_density.png)", "", "## Cells", ""]
    for cell, runs in groups.items():
        lines += cell_section(cell, runs, densities[cell])
    lines += goals_section(groups)
    return "\n".join(lines)


def progress_line(sweep: Path, records: Sequence[Record]) -> str:
    """How many runs have finished, out of the sweep's plan where ``plan.json`` says."""
    finished = sum(1 for r in records if r.get("status", "finished") == "finished")
    try:
        planned = len(json.loads((sweep / "plan.json").read_text(encoding="utf-8"))["runs"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"{finished} runs finished."
    return f"{finished} of {planned} runs finished."


# --------------------------------------------------------------------------------------------------
# the figure


def density_figure(groups: Mapping[Cell, Mapping[str, Sequence[Record]]],
                   densities: Mapping[Cell, Mapping[str, Mapping[str, float] | None]]) -> Figure:
    """The input densities per cell, the in-degree ratio over training per noisy cell, and the
    trade-off of the clean against the noisiest cell."""
    noisy = [cell for cell in groups if cell[1] > 0]
    n_panels = 2 + len(noisy)
    rows = math.ceil(n_panels / 2)
    figure = Figure(figsize=(12.0, 4.2 * rows))
    axes = list(figure.subplots(rows, 2, squeeze=False).ravel())
    draw_densities(axes[0], densities)
    for ax, cell in zip(axes[1:], noisy):
        draw_in_degree_ratio(ax, cell, groups[cell])
    draw_trade_off(axes[1 + len(noisy)], groups)
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    figure.tight_layout()
    return figure


def draw_densities(ax: Axes, densities: Mapping[Cell, Mapping[str, Mapping[str, float] | None]]) -> None:
    """Grouped bars: the actor's input density per agent and cell; a black tick marks the critic's."""
    cells = list(densities)
    agents = _agent_order({a: None for by_agent in densities.values() for a in by_agent})
    width = 0.8 / max(1, len(agents))
    for i, agent in enumerate(agents):
        labelled = False
        for j, cell in enumerate(cells):
            value = densities[cell].get(agent)
            if not value:
                continue
            x = j + (i - (len(agents) - 1) / 2) * width
            ax.bar(x, value["actor"], width * 0.9, color=COLORS.get(agent, "gray"), label=None if labelled else agent)
            labelled = True
            ax.plot([x - width * 0.4, x + width * 0.4], [value["critic"]] * 2, color="black", linewidth=1.5)
            ax.text(x, value["actor"] + 0.02, f"{value['actor']:.2f}", ha="center", fontsize=6)
    ax.set_xticks(range(len(cells)), [f"{_short(env)}\nf = {f:g}" for env, f in cells], fontsize=8)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("input-layer density (bar: actor, tick: critic)")
    ax.set_title("input density per agent (constant over training)", fontsize=10, loc="left")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")


def _short(env_id: str) -> str:
    """``InvertedDoublePendulum-v5`` → ``Inverted Double\nPendulum``: a tick label that fits."""
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", env_id.rsplit("-v", 1)[0])
    return textwrap.fill(words, width=16)


def draw_in_degree_ratio(ax: Axes, cell: Cell, runs: Mapping[str, Sequence[Record]]) -> None:
    """The mean over seeds of the in-degree ratio over training, per sparse agent (actor solid,
    critic dashed)."""
    for agent, own in runs.items():
        with_ratios = [with_ratio_curves(r) for r in own if r.get("filtering_curve")]
        for network, style in zip(NETWORKS, ("-", "--")):
            curve = mean_curve(with_ratios, f"in_degree_ratio_{network}")
            if curve is not None:
                ax.plot(curve[0], curve[1], style, color=COLORS.get(agent, "gray"),
                        label=f"{agent} {network} ({_n_seeds(len(own))})")
    ax.axhline(1.0, color="gray", linewidth=0.8)
    ax.set_title(f"{cell_title(cell)}: in-degree ratio, mean over seeds", fontsize=10, loc="left")
    ax.set_xlabel("env steps")
    ax.set_ylabel("real / noise column in-degree")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "not run yet", transform=ax.transAxes, ha="center", color="gray")


def with_ratio_curves(record: Record) -> Record:
    """``record`` with ``in_degree_ratio_<network>`` in its ``filtering_curve``: as recorded, or
    else the real columns' mean in-degree over the noise columns' at each evaluation (records of
    older sweeps hold only those two; for the critic it is then the ratio of its Q-networks' mean
    in-degrees rather than the mean of their ratios)."""
    curves = dict(record.get("filtering_curve") or {})
    for network in NETWORKS:
        key = f"in_degree_ratio_{network}"
        real, noise = curves.get(f"in_degree_real_{network}"), curves.get(f"in_degree_noise_{network}")
        if key not in curves and real is not None and noise is not None:
            curves[key] = [_float(r) / _float(n) if _float(n) > 0 else math.nan for r, n in zip(real, noise)]
    return {**record, "filtering_curve": curves}


def draw_trade_off(ax: Axes, groups: Mapping[Cell, Mapping[str, Sequence[Record]]]) -> None:
    """Per agent, its mean final return at the clean (x) against the noisy (y) cell of
    :data:`TRADE_OFF`, with 95% bootstrap CIs as error bars."""
    env, clean, noisy = TRADE_OFF
    x_runs, y_runs = groups.get((env, clean), {}), groups.get((env, noisy), {})
    plotted = False
    for agent in _agent_order({**x_runs, **y_runs}):
        x, y = _finite(finals(x_runs.get(agent, []))), _finite(finals(y_runs.get(agent, [])))
        if x.size == 0 or y.size == 0:
            continue
        ax.errorbar([x.mean()], [y.mean()], xerr=_error_bar(x), yerr=_error_bar(y), fmt="o", capsize=3,
                    color=COLORS.get(agent, "gray"), label=f"{agent} ({x.size} / {_n_seeds(y.size)})")
        plotted = True
    ax.set_title(f"{env}: the trade-off", fontsize=10, loc="left")
    ax.set_xlabel(f"mean final return at f = {clean:g}")
    ax.set_ylabel(f"mean final return at f = {noisy:g}")
    ax.grid(alpha=0.3)
    if plotted:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "not run yet", transform=ax.transAxes, ha="center", color="gray")


def _n_seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def _error_bar(values: np.ndarray) -> np.ndarray:
    low, high = bootstrap_ci(values)
    return np.array([[values.mean() - low], [high - values.mean()]])


def main(argv: Sequence[str] | None = None) -> int:
    """Write ``no_cost.md`` and ``no_cost_density.png`` for a sweep directory."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path, help="the sweep directory (bench_runs/no_cost)")
    parser.add_argument("--out", type=Path, default=None, help="where no_cost.md and the figure go")
    args = parser.parse_args(argv)
    out = args.out or args.sweep
    text = report(args.sweep, out)
    (out / "no_cost.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
