"""Read what the analysis needs from a run directory: its config, its final model (or latest
checkpoint), the real-feature mask, and the connectivity of a saved model.

A run directory (``runs/<name>/``) holds ``config.yaml``, ``model.zip`` (the final model),
``checkpoints/step_<N>/model.zip``, ``connectivity/`` (snapshots), ``tb/`` and ``metrics.csv``;
see :mod:`sparse_rl.runner`. Nothing here needs the run to have been made by this version of the
runner: every piece is optional, and a missing or unreadable one gives ``None``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sparse_rl.analysis.metrics import FeatureConnectivity, input_layer_connectivity

RUN_MARKERS = ("config.yaml", "model.zip", "connectivity", "checkpoints", "metrics.csv")
_STEP_DIR = re.compile(r"^step_(\d+)$")


def check_run_dir(run_dir: str | Path) -> Path:
    """``run_dir`` as a path, if it looks like a run directory (it holds at least one of
    ``config.yaml``, ``model.zip``, ``connectivity/``, ``checkpoints/``, ``metrics.csv``).

    :param run_dir: the directory
    :raises ValueError: if it does not exist, is not a directory, or holds none of those
    """
    path = Path(run_dir)
    if not path.exists():
        raise ValueError(f"run directory {str(path)!r} does not exist")
    if not path.is_dir():
        raise ValueError(f"{str(path)!r} is not a directory; give a run directory (runs/<name>/)")
    if not any((path / marker).exists() for marker in RUN_MARKERS):
        raise ValueError(
            f"{str(path)!r} is not a run directory: it holds none of {', '.join(RUN_MARKERS)} "
            "(give a directory made by 'sparse-rl train', e.g. runs/<name>/)")
    return path


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's ``config.yaml`` as plain data (``{}`` if missing or unreadable, with a warning for
    the latter).

    :param run_dir: the run directory
    """
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        warnings.warn(f"could not read {path}: {err}", stacklevel=2)
        return {}
    return data if isinstance(data, dict) else {}


def find_model(run_dir: str | Path) -> Path | None:
    """The run's final ``model.zip``, else the model of its latest checkpoint, else ``None``.

    :param run_dir: the run directory
    """
    run = Path(run_dir)
    if (run / "model.zip").is_file():
        return run / "model.zip"
    checkpoints = run / "checkpoints"
    if not checkpoints.is_dir():
        return None
    found = []
    for child in checkpoints.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and (child / "model.zip").is_file():
            found.append((int(match.group(1)), child / "model.zip"))
    return max(found)[1] if found else None


def _candidate_classes(algorithm: str | None) -> list[type]:
    from stable_baselines3 import SAC, TD3

    from sparse_rl.agents import SparseSAC, SparseTD3

    by_name: dict[str, list[type]] = {"sac": [SparseSAC, SAC], "td3": [SparseTD3, TD3]}
    if algorithm in by_name:
        return by_name[algorithm]
    return [SparseSAC, SparseTD3, SAC, TD3]


def load_model(path: str | Path, algorithm: str | None = None, device: str = "cpu") -> Any:
    """Load an SB3 model zip (a run's ``model.zip`` or a checkpoint's) without its env.

    Tries ``SparseSAC`` then SB3's ``SAC`` for ``algorithm="sac"`` (``SparseTD3``, ``TD3`` for
    ``td3``; all four when ``None``) and returns the first that loads.

    :param path: the ``.zip`` file
    :param algorithm: ``sac``, ``td3`` or ``None`` (unknown)
    :param device: where to load it
    :raises ValueError: if no class can load it
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model file {str(path)!r} does not exist")
    errors = []
    for cls in _candidate_classes(algorithm):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return cls.load(path, device=device)
        except Exception as err:  # noqa: BLE001 - any failure means: try the next class
            errors.append(f"{cls.__name__}: {type(err).__name__}: {err}")
    raise ValueError(f"could not load {path} as a SAC or TD3 model:\n  " + "\n  ".join(errors))


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
