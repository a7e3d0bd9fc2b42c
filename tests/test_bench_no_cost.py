"""configs/bench/no_cost.yaml (issue 22): its plan, with the medium tier's budgets and settings."""

from __future__ import annotations

from pathlib import Path

from sparse_rl.benchmark import load_sweep, plan_runs

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "configs" / "bench"


def _settings(config: dict) -> dict:
    return {key: config[key] for key in ("total_timesteps", "eval", "checkpoint")} | {
        "learning_starts": config["agent"]["hyperparams"]["learning_starts"]}


def test_no_cost_plans_every_cell_with_the_medium_tiers_budgets(tmp_path: Path) -> None:
    tasks = plan_runs(load_sweep(BENCH / "no_cost.yaml"), BENCH / "no_cost.yaml", tmp_path)
    assert len(tasks) == 80
    medium = {task.run_id: task.config for task in plan_runs(load_sweep(BENCH / "medium.yaml"),
                                                             BENCH / "medium.yaml", tmp_path / "medium")}
    shared = [task for task in tasks if task.run_id in medium]
    assert len(shared) == 45  # SAC, ANF-SAC and SF-SAC at the three cells both tiers have
    for task in shared:
        assert task.config == {**medium[task.run_id], "run": task.config["run"]}, task.run_id
    fit = [task for task in tasks if task.agent == "FI-SAC"]
    assert len(fit) == 20 and all(task.config["sparsity"] == {"preset": "fit_input"} for task in fit)
    assert {_settings(task.config)["learning_starts"] for task in tasks} == {5000}
    sac = [task for task in tasks if task.agent == "SAC"]
    assert all(task.config["agent"]["implementation"] == "sparse_rl" for task in sac)
