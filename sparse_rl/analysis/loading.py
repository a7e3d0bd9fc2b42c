"""Read what the analysis needs from a run directory: its config, its final model (or latest
checkpoint), the real-feature mask, and the connectivity of a saved model.

The run directory's layout, its validation and the verification of its checkpoints are
:class:`~sparse_rl._util.rundir.RunDir`'s (the same that resume uses); a model is loaded with the
one class that saved it (:func:`~sparse_rl.agents.loading.load_agent`). Nothing here needs the run
to have been made by this version of the runner: every piece is optional, and a missing or
unreadable one gives ``None`` (a damaged checkpoint raises, as it does for resume).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sparse_rl._util.rundir import RUN_MARKERS, RunDir
from sparse_rl.agents.loading import load_agent
from sparse_rl.analysis.metrics import FeatureConnectivity, input_layer_connectivity

__all__ = [
    "RUN_MARKERS",
    "check_run_dir",
    "config_algorithm",
    "config_permutation_step",
    "find_model",
    "load_model",
    "model_connectivity",
    "read_run_config",
    "real_mask_from_config",
]


def check_run_dir(run_dir: str | Path) -> Path:
    """``run_dir`` as a path, if it looks like a run directory (:meth:`RunDir.find`: it holds at
    least one of ``config.yaml``, ``model.zip``, ``connectivity/``, ``checkpoints/``, ``metrics.csv``).

    :param run_dir: the directory
    :raises ValueError: if it does not exist, is not a directory, or holds none of those
    """
    return RunDir.find(run_dir).path


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's ``config.yaml`` as plain data (``{}`` if missing or unreadable, with a warning for
    the latter).

    :param run_dir: the run directory
    """
    return RunDir(Path(run_dir)).config_data()


def find_model(run_dir: str | Path) -> Path | None:
    """The run's final ``model.zip``, else the model of its latest checkpoint (verified against
    its manifest, as resume does), else ``None``.

    :param run_dir: the run directory
    :raises CheckpointError: if the latest checkpoint is damaged
    """
    return RunDir(Path(run_dir)).find_model()


def load_model(path: str | Path, algorithm: str | None = None, device: str = "cpu",
               implementation: str | None = None) -> Any:
    """Load an SB3 model zip (a run's ``model.zip`` or a checkpoint's) without its env, with the
    class that saved it (:func:`~sparse_rl.agents.loading.load_agent`).

    :param path: the ``.zip`` file
    :param algorithm: ``sac``, ``td3`` or ``None`` (read from the zip)
    :param device: where to load it
    :param implementation: ``sparse_rl``, ``sb3`` or ``None`` (read from the zip)
    :raises ValueError: if it does not exist or does not load
    """
    return load_agent(path, algorithm, implementation, device=device)

def model_connectivity(path: str | Path, real_mask: np.ndarray | None = None,
                       algorithm: str | None = None) -> dict[str, FeatureConnectivity]:
    """The input-layer connectivity of a saved model (``model.zip`` or a checkpoint's).

    :param path: the model zip
    :param real_mask: boolean over the observation features, or ``None``
    :param algorithm: ``sac``, ``td3`` or ``None``
    """
    return input_layer_connectivity(load_model(path, algorithm), real_mask)


def config_algorithm(config: Mapping[str, Any]) -> str | None:
    """``agent.algorithm`` of a run config (``sac``/``td3``), or ``None``."""
    agent = config.get("agent")
    algorithm = agent.get("algorithm") if isinstance(agent, Mapping) else None
    return str(algorithm).lower() if algorithm else None


def config_permutation_step(config: Mapping[str, Any]) -> int | None:
    """``env.permute_at_step`` of a run config, or ``None``."""
    env = config.get("env")
    step = env.get("permute_at_step") if isinstance(env, Mapping) else None
    return int(step) if step is not None else None


def real_mask_from_config(config: Mapping[str, Any], env_step: int) -> np.ndarray | None:
    """The real-feature mask in force at ``env_step`` of the env a run config describes, rebuilt
    with :func:`~sparse_rl.envs.make_env` (``None`` if the config has no env or it cannot be built).

    With a permutation at ``permute_at_step <= env_step`` (one env), the mask is permuted.

    :param config: the run's config data
    :param env_step: the step the mask should hold at
    """
    env_config = config.get("env")
    if not isinstance(env_config, Mapping):
        return None
    try:
        from sparse_rl.envs import make_env

        env = make_env(dict(env_config), seed=0)
        try:
            mask = env.get_wrapper_attr("real_feature_mask")
        except AttributeError:
            return None
        mask = np.asarray(mask, dtype=bool).copy()
        at_step = config_permutation_step(config)
        if at_step is not None and 0 < at_step <= env_step:
            mask = mask[np.asarray(env.get_wrapper_attr("permutation"))]
        env.close()
        return mask
    except Exception as err:  # noqa: BLE001 - the analysis goes on without the mask
        warnings.warn(f"could not rebuild the run's env to know its real features: {err}", stacklevel=2)
        return None
