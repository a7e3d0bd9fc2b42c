"""configs/bench/no_cost.yaml (issue 22): the cells it shares with the medium tier have the medium
tier's configs exactly, so that their finished runs (docs/results/medium/) can be reused."""

from __future__ import annotations

import json
from pathlib import Path

from sparse_rl.benchmark import load_sweep, plan_runs
from sparse_rl.experiment.config import config_from_dict

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "configs" / "bench"


def _without_run_dir(config: dict) -> dict:
    config = dict(config)
    config["run"] = {key: value for key, value in config["run"].items() if key not in ("root", "name")}
    return config


def test_no_cost_reuses_exactly_the_medium_runs_it_says(tmp_path: Path) -> None:
    tasks = plan_runs(load_sweep(BENCH / "no_cost.yaml"), BENCH / "no_cost.yaml", tmp_path)
    planned = {task.run_id: task.config for task in tasks}
    assert len(planned) == 80
    medium = plan_runs(load_sweep(BENCH / "medium.yaml"), BENCH / "medium.yaml", tmp_path / "medium")
    shared = {task.run_id for task in medium} & set(planned)
    cells = {f"{env}-f{f}-{agent}" for env, f in (("InvertedDoublePendulum-v5", "0"),
                                                   ("InvertedDoublePendulum-v5", "0.98"), ("Reacher-v5", "0"))
             for agent in ("SAC", "ANF-SAC", "SF-SAC")}
    assert shared == {f"{cell}-s{seed}" for cell in cells for seed in range(5)}  # 45 runs
    for task in medium:
        if task.run_id in shared:
            assert _without_run_dir(planned[task.run_id]) == _without_run_dir(task.config), task.run_id
    # ... and the configs the medium tier actually ran (its plan, read back with today's defaults).
    ran = json.loads((REPO / "docs" / "results" / "medium" / "plan.json").read_text(encoding="utf-8"))["runs"]
    for run_id in shared:
        assert _without_run_dir(config_from_dict(ran[run_id]).to_dict()) == _without_run_dir(planned[run_id]), run_id
        assert (REPO / "docs" / "results" / "medium" / "results" / f"{run_id}.json").is_file()
    fit = [task for task in tasks if task.agent == "FI-SAC"]
    assert len(fit) == 20 and all(task.config["sparsity"] == {"preset": "fit_input"} for task in fit)
