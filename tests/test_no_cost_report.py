"""scripts/no_cost_report.py on made-up sweeps: full, partial and one-seed sweeps, the identity
check of FI-SAC against the agent whose networks it builds, and goal verdicts that flip with the
numbers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import matplotlib
import numpy as np
import pytest

from sparse_rl.benchmark.results import write_record
from tests.conftest import load_script

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parent.parent
IDP, REACHER = "InvertedDoublePendulum-v5", "Reacher-v5"
PRESETS = {"SAC": "dense", "ANF-SAC": "anf", "SF-SAC": "strength_filter", "FI-SAC": "fit_input"}
#: a base final return per cell; each agent and seed adds a little
BASE = {(IDP, 0.0): 9000.0, (REACHER, 0.0): -5.0, (IDP, 0.8): 8000.0, (IDP, 0.98): 5000.0}


@pytest.fixture(scope="module")
def report() -> ModuleType:
    return load_script("no_cost_report")


def record(agent: str, env: str, fraction: float, seed: int, final: float,
           ratio: float | None = None) -> dict[str, Any]:
    """A finished run's record as the benchmark writes it (fields the report reads)."""
    run_id = f"{env}-f{fraction:g}-{agent}-s{seed}"
    sparse = agent != "SAC" and fraction > 0
    real = [51.0, 51.0 * (ratio or 1.0)] if sparse else [None, None]
    noise = [51.0, 51.0] if sparse else [None, None]
    return {"run_id": run_id, "agent": agent, "env": env, "noise_fraction": fraction, "seed": seed,
            "status": "finished", "algorithm": "sac", "sparsity": PRESETS[agent], "final_return": final,
            "auc": final / 2, "timesteps": 25_000, "run_dir": f"/nonexistent/{run_id}",
            "in_degree_ratio_actor": ratio if sparse else None, "in_degree_ratio_critic": ratio if sparse else None,
            "curve": {"timesteps": [2500, 25_000], "returns": [final / 2, final]},
            "filtering_curve": {f"in_degree_{kind}_{network}": values for kind, values in (("real", real),
                                                                                          ("noise", noise))
                                for network in ("actor", "critic")}}


def default_final(agent: str, cell: tuple[str, float], seed: int) -> float:
    """FI-SAC equals its twin (SAC at f = 0, SF-SAC at f = 0.98) seed for seed, as by construction."""
    env, fraction = cell
    twin = {0.0: "SAC", 0.98: "SF-SAC"}.get(fraction) if agent == "FI-SAC" else None
    offset = {"SAC": 3.0, "ANF-SAC": 1.0, "SF-SAC": 2.0, "FI-SAC": 2.5}[twin or agent]
    return BASE[cell] + offset * abs(BASE[cell]) / 100 + 0.5 * seed


PerRun = Callable[[str, tuple[str, float], int], float]


def default_ratio(agent: str, cell: tuple[str, float], seed: int) -> float:
    """The in-degree ratio at the end: the same for every sparse agent, rising with the seed."""
    return 2.0 + 0.1 * seed


def write_sweep(root: Path, cells: Mapping[tuple[str, float], Mapping[str, int]], final: PerRun = default_final,
                ratio: PerRun = default_ratio) -> None:
    """Records for ``cells``: per cell, per agent, its number of seeds."""
    for cell, agents in cells.items():
        for agent, seeds in agents.items():
            for seed in range(seeds):
                write_record(root, record(agent, *cell, seed, final(agent, cell, seed), ratio(agent, cell, seed)))


FULL = {cell: dict.fromkeys(PRESETS, 5) for cell in BASE}


def test_a_full_sweep_meets_both_goals_and_finds_the_twins_identical(report: ModuleType, tmp_path: Path) -> None:
    write_sweep(tmp_path, FULL)
    text = report.report(tmp_path, tmp_path / "out")
    assert "| not run yet |" not in text and "**not judged**" not in text
    assert "- **(a)** **met**" in text and "- **(b)** **met**" in text
    assert text.count("identical per seed: yes (5 seeds: 0, 1, 2, 3, 4)") == 3  # two clean cells, f = 0.98
    assert "FI-SAC builds the networks of SAC here" in text and "FI-SAC builds the networks of SF-SAC here" in text
    # fit_input's density from the input count: dense at 9 / 10 inputs, 32/45 and 32/46 at f = 0.8, 0.2 at 450
    assert "### InvertedDoublePendulum-v5, f = 0.8 (45 inputs, critic 46)" in text
    assert "| FI-SAC | 5 | 8,201.0 [" in text and "| 0.71 / 0.70 |" in text
    assert "| 1.00 / 1.00 |" in text and "| 0.20 / 0.20 |" in text
    assert "| SAC | 5 | 9,271.0 [" in text and "| 1.000 [1.000, 1.000] |" in text  # FI-SAC / SAC at f = 0
    assert "| 2.20 [" in text and "– (dense)" in text  # in-degree ratios: mean of 2.0…2.4; SAC has none
    assert (tmp_path / "out" / "no_cost_density.png").stat().st_size > 10_000


def test_a_partial_sweep_says_what_has_not_run(report: ModuleType, tmp_path: Path) -> None:
    write_sweep(tmp_path, {(IDP, 0.0): {"SAC": 3, "FI-SAC": 2}, (IDP, 0.8): {"FI-SAC": 1}})
    text = report.report(tmp_path, tmp_path / "out")
    assert "| FI-SAC | 2 |" in text and "| SAC | 3 |" in text
    assert "| ANF-SAC | 0 | not run yet |" in text
    assert "| (a) f = 0: FI-SAC within 5% of SAC | InvertedDoublePendulum-v5, f = 0: final return | **met**" in text
    assert "Reacher-v5, f = 0: final return | **not judged** (FI-SAC, SAC not run yet)" in text
    assert "- **(a)** **not judged**" in text and "- **(b)** **not judged**" in text
    assert "identical per seed: yes (2 seeds: 0, 1)" in text  # the seeds both have
    assert "identical per seed: not checked: FI-SAC, SF-SAC not run yet" in text
    assert (tmp_path / "out" / "no_cost_density.png").is_file()


def test_an_empty_sweep_still_reports(report: ModuleType, tmp_path: Path) -> None:
    text = report.report(tmp_path, tmp_path / "out")
    assert "0 runs finished." in text and "- **(a)** **not judged**" in text
    assert (tmp_path / "out" / "no_cost_density.png").is_file()


def test_one_seed_is_not_judged(report: ModuleType, tmp_path: Path) -> None:
    one = dict.fromkeys(PRESETS, 1)
    write_sweep(tmp_path, {cell: one for cell in BASE})
    text = report.report(tmp_path, tmp_path / "out")
    assert "**not judged** (FI-SAC 1 seed, SAC 1 seed: needs ≥ 2 of each)" in text
    assert "**not judged** (FI-SAC 1 seed, SF-SAC 1 seed: needs ≥ 2 of each)" in text
    assert "**met**" not in text and "**not met**" not in text
    assert "(one seed)" in text and "(no CI: one seed)" in text


def test_the_identity_check_can_fail(report: ModuleType, tmp_path: Path) -> None:
    def final(agent: str, cell: tuple[str, float], seed: int) -> float:
        drift = 0.001 if agent == "FI-SAC" and cell == (IDP, 0.0) and seed == 2 else 0.0
        return default_final(agent, cell, seed) + drift

    write_sweep(tmp_path, FULL, final=final)
    text = report.report(tmp_path, tmp_path / "out")
    assert "identical per seed: no: seed 2 of 5 differ (seed 2: final return 9271.001 vs 9271.0)" in text
    assert text.count("identical per seed: yes") == 2


def test_the_identity_check_reads_the_in_degree_ratio_too(report: ModuleType, tmp_path: Path) -> None:
    write_sweep(tmp_path, FULL, ratio=lambda agent, cell, seed: 2.5 if agent == "FI-SAC" else 2.0)
    text = report.report(tmp_path, tmp_path / "out")
    assert "identical per seed: no: seeds 0, 1, 2, 3, 4 of 5 differ" in text  # f = 0.98: same returns


@pytest.mark.parametrize(("shortfall", "status"), [(0.03, "met"), (0.10, "not met")])
def test_goal_a_flips_with_the_gap(report: ModuleType, tmp_path: Path, shortfall: float, status: str) -> None:
    def final(agent: str, cell: tuple[str, float], seed: int) -> float:
        value = default_final("SAC" if agent == "FI-SAC" else agent, cell, seed)
        return value - shortfall * abs(value) if agent == "FI-SAC" else value

    write_sweep(tmp_path, FULL, final=final)
    text = report.report(tmp_path, tmp_path / "out")
    assert f"- **(a)** **{status}**" in text
    assert f"Reacher-v5, f = 0: final return | **{status}** ((FI − SAC) / abs(SAC) {-shortfall:+.1%}" in text
    assert "identical per seed: no" in text  # no longer SAC's runs


def test_goal_b_flips_with_the_return_and_with_the_in_degree_ratio(report: ModuleType, tmp_path: Path) -> None:
    def worse(agent: str, cell: tuple[str, float], seed: int) -> float:
        return default_final(agent, cell, seed) - (1000.0 if agent == "FI-SAC" and cell[1] == 0.98 else 0.0)

    write_sweep(tmp_path / "return", FULL, final=worse)
    text = report.report(tmp_path / "return", tmp_path / "out")
    assert "- **(b)** **not met**" in text and "f = 0.98: final return | **not met** (FI − SF -1,000 [" in text
    assert "in-degree ratio, actor | **met** (FI − SF +0.00 [" in text

    def lower(agent: str, cell: tuple[str, float], seed: int) -> float:
        return 1.2 + 0.1 * seed if agent == "FI-SAC" else 2.0 + 0.1 * seed

    write_sweep(tmp_path / "ratio", FULL, ratio=lower)
    text = report.report(tmp_path / "ratio", tmp_path / "out")
    assert "- **(b)** **not met**" in text and "in-degree ratio, critic | **not met** (FI − SF -0.80 [" in text
    assert "f = 0.98: final return | **met**" in text


def test_no_worse_is_judged_on_the_interval_of_the_difference(report: ModuleType) -> None:
    reference = np.array([10.0, 12.0, 14.0, 16.0, 18.0])
    assert report.no_worse(reference - 1.0, reference).status == "met"  # lower mean, CI reaches 0
    assert report.no_worse(reference - 20.0, reference).status == "not met"
    assert report.no_worse(reference, reference).status == "met"


def test_within_tolerance_keeps_its_sense_for_negative_returns(report: ModuleType) -> None:
    sac = np.array([-4.0, -4.1, -3.9])
    assert report.within_tolerance(sac * 1.04, sac).status == "met"  # 4% more negative
    assert report.within_tolerance(sac * 1.10, sac).status == "not met"
    assert report.within_tolerance(sac * 0.5, sac).status == "met"  # better than SAC is no cost


def test_twins_follow_from_the_densities(report: ModuleType) -> None:
    dense, sparse = {"actor": 1.0, "critic": 1.0}, {"actor": 0.2, "critic": 0.2}
    assert report.twin_of_fi({"FI-SAC": dense, "SF-SAC": sparse}) == "SAC"
    assert report.twin_of_fi({"FI-SAC": sparse, "SF-SAC": sparse}) == "SF-SAC"
    assert report.twin_of_fi({"FI-SAC": {"actor": 0.71, "critic": 0.7}, "SF-SAC": sparse}) is None
