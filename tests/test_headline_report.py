"""scripts/headline_report.py on a small made-up sweep: the table, the goals, the in-degree steps."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from sparse_rl.benchmark.results import write_record
from tests.conftest import load_script

REPO = Path(__file__).resolve().parent.parent


def _load_script() -> ModuleType:
    return load_script("headline_report")


def test_the_report_states_returns_goals_and_the_steps_to_filter(tmp_path: Path) -> None:
    report = _load_script()
    steps = [30, 40, 50, 60]
    for seed in range(3):
        for agent, scale in (("SAC", 1.0), ("ANF-SAC", 2.0)):
            run_dir = tmp_path / "runs" / f"{agent}-s{seed}"
            run_dir.mkdir(parents=True)
            (run_dir / "metrics.csv").write_text("timesteps,wall_time_s\n30,10\n60,40\n")
            if agent == "ANF-SAC":  # its ratio reaches 2x at training step 25 (env step 45), never 3x
                (run_dir / "topology.csv").write_text(
                    "timesteps," + ",".join(f"in_degree_ratio_{n}" for n in ("actor", "qf0", "qf1")) + "\n"
                    "35,1.2,1.2,1.2\n45,2.1,2.2,2.3\n55,2.5,2.5,2.5\n")
            returns = [scale * (100.0 + 10 * seed) * (i + 1) for i in range(len(steps))]
            write_record(tmp_path, {"run_id": f"{agent}-s{seed}", "agent": agent, "seed": seed, "status": "finished",
                                    "final_return": returns[-1], "auc": sum(returns) / len(returns),
                                    "timesteps": 60, "run_dir": str(run_dir),
                                    "in_degree_ratio_actor": 2.5 if agent == "ANF-SAC" else None,
                                    "curve": {"timesteps": steps, "returns": returns}})
    text = report.report(tmp_path, tmp_path / "out", warmup=20)
    assert "| ANF-SAC / SAC | 2.00 [" in text and "| 1.00 [" in text and "| yes |" in text  # 2x, P = 1, met
    assert "| ANF-SAC | actor | 2.50 [2.50, 2.50] | 25 (3/3) | – (0/3) |" in text
    assert "| SAC | 3 | 440 [" in text and "| 1.0 |" in text  # (60 - 30) / (40 - 10) steps/s
    assert (tmp_path / "out" / "headline_curves.png").is_file()
    assert (tmp_path / "out" / "headline_filtering.png").is_file()


def test_one_seed_gets_no_interval_and_no_verdict(tmp_path: Path) -> None:
    report = _load_script()
    for agent, final in (("SAC", 100.0), ("ANF-SAC", 300.0)):
        run_dir = tmp_path / "runs" / f"{agent}-s0"
        run_dir.mkdir(parents=True)
        (run_dir / "metrics.csv").write_text("timesteps,wall_time_s\n30,10\n60,40\n")
        write_record(tmp_path, {"run_id": f"{agent}-s0", "agent": agent, "seed": 0, "status": "finished",
                                "final_return": final, "auc": final / 2, "timesteps": 60, "run_dir": str(run_dir),
                                "curve": {"timesteps": [30, 60], "returns": [final / 2, final]}})
    text = report.report(tmp_path, tmp_path / "out", warmup=20)
    assert "| ANF-SAC / SAC | 3.00 (no CI: 1 seed) | – | ≥ 1.3× | not yet: needs ≥ 2 seeds of each |" in text
    assert "| SAC | 1 | 100 (one seed) |" in text
    assert "| yes |" not in text and "| no |" not in text
