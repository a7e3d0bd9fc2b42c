"""Read a run directory once for the analysis: :func:`load_run` returns a :class:`LoadedRun`, which
holds everything the analysis computes from (the resolved config, the connectivity snapshots, the
final model's input layers, the env's real features, the configured permutation step), so that
:mod:`~sparse_rl.analysis.compute` never opens a file.

The run directory's layout, its validation and the verification of its checkpoints are
:class:`~sparse_rl._util.rundir.RunDir`'s (the same that resume uses); a model is loaded with the
one class that saved it (:func:`~sparse_rl.agents.loading.load_agent`). Nothing here needs the run
to have been made by this version of the runner: every piece is optional, and a missing or
unreadable one gives ``None`` (a damaged checkpoint raises, as it does for resume).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sparse_rl._util.rundir import RunDir
from sparse_rl.agents.loading import load_agent
from sparse_rl.analysis.metrics import FeatureConnectivity, input_layer_connectivity
from sparse_rl.analysis.snapshots import ConnectivitySeries, load_snapshots
from sparse_rl.envs import make_env

__all__ = [
    "EnvFeatures",
    "LoadedRun",
    "SavedModel",
    "load_model",
    "load_run",
    "model_connectivity",
    "read_env_features",
    "read_model",
]


@dataclass(frozen=True)
class SavedModel:
    """The input layers of a saved model, as read from its zip: per-feature vectors with no real
    mask yet (the analysis judges them against the one in force at ``env_step``).

    :param networks: per network (``actor``, ``qf0``…), its input layer's connectivity
    :param env_step: the model's ``num_timesteps``
    :param source: the zip it was read from
    """

    networks: dict[str, FeatureConnectivity]
    env_step: int
    source: str


@dataclass(frozen=True)
class EnvFeatures:
    """Which observation features of a run's env are real, as the env its config describes says.

    :param real_mask: boolean over the observation features, before any permutation
    :param permutation: the feature permutation the env applies from the config's
        ``permute_at_step`` (``None`` without one)
    """

    real_mask: np.ndarray
    permutation: np.ndarray | None = None


@dataclass(frozen=True)
class LoadedRun:
    """A run directory as read from disk, once: what the analysis computes from.

    :param path: the run directory
    :param name: its name (the resolved directory's)
    :param config: its ``config.yaml`` as plain data (``{}`` if missing or unreadable)
    :param series: its connectivity snapshots (empty without any)
    :param model: its final model's input layers (``model.zip``, else the latest checkpoint's), or
        ``None`` (none, one that did not load, or not asked for)
    :param env_features: the real features of the env its config describes, read only when the
        snapshots do not say what the final model needs (else ``None``)
    :param permute_at_step: the config's ``env.permute_at_step``, or ``None``
    """

    path: Path
    name: str
    config: Mapping[str, Any]
    series: ConnectivitySeries
    model: SavedModel | None = None
    env_features: EnvFeatures | None = None
    permute_at_step: int | None = None


def load_run(run_dir: str | Path, final_model: bool = True) -> LoadedRun:
    """Read a run directory for the analysis: its config, its snapshots, its final model's input
    layers and, when the snapshots leave them unknown, its env's real features; each once.

    :param run_dir: the run directory (``runs/<name>/``)
    :param final_model: also read the final model (``False``: snapshots and config only)
    :raises ValueError: if ``run_dir`` is not a run directory
    :raises CheckpointError: if the latest checkpoint, read for want of ``model.zip``, is damaged
    """
    run = RunDir.find(run_dir)
    config = run.config_data()
    series = load_snapshots(run.connectivity)
    permute_at = _permute_at_step(config)
    model = _read_final_model(run, config) if final_model else None
    features = None
    if model is not None and _snapshots_lack_real_features(series, permute_at):
        features = read_env_features(config, permute_at)
    return LoadedRun(path=run.path, name=run.path.resolve().name, config=config, series=series, model=model,
                     env_features=features, permute_at_step=permute_at)


def _read_final_model(run: RunDir, config: Mapping[str, Any]) -> SavedModel | None:
    """The run's final model (see :meth:`RunDir.find_model`); ``None``, with a warning, if it does not load."""
    path = run.find_model()
    if path is None:
        return None
    try:
        return read_model(path, _agent_setting(config, "algorithm"), _agent_setting(config, "implementation"))
    except ValueError as err:
        warnings.warn(str(err), stacklevel=3)
        return None


def _snapshots_lack_real_features(series: ConnectivitySeries, permute_at: int | None) -> bool:
    """Whether the final model's real features need the env: the last snapshot does not know its
    real mask, or a permutation is configured and no unpermuted snapshot knows the mask before it."""
    if not len(series) or series.snapshots[-1].real_mask is None:
        return True
    if permute_at is None or permute_at <= 0:
        return False
    return not any(s.real_mask is not None and not s.permuted for s in series.snapshots)


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


def read_model(path: str | Path, algorithm: str | None = None, implementation: str | None = None) -> SavedModel:
    """The input layers of a saved model (``model.zip`` or a checkpoint's), with no real mask.

    :param path: the model zip
    :param algorithm: ``sac``, ``td3`` or ``None`` (read from the zip)
    :param implementation: ``sparse_rl``, ``sb3`` or ``None`` (read from the zip)
    :raises ValueError: if it does not exist or does not load
    """
    model = load_model(path, algorithm, implementation=implementation)
    return SavedModel(input_layer_connectivity(model.policy, None), int(model.num_timesteps), str(path))


def model_connectivity(path: str | Path, real_mask: np.ndarray | None = None,
                       algorithm: str | None = None) -> dict[str, FeatureConnectivity]:
    """The input-layer connectivity of a saved model (``model.zip`` or a checkpoint's).

    :param path: the model zip
    :param real_mask: boolean over the observation features, or ``None``
    :param algorithm: ``sac``, ``td3`` or ``None``
    :raises ValueError: if the model does not load, or ``real_mask`` does not fit its observation
    """
    networks = read_model(path, algorithm).networks
    if real_mask is None:
        return networks
    return {name: conn.with_real_mask(np.asarray(real_mask, dtype=bool)) for name, conn in networks.items()}


def read_env_features(config: Mapping[str, Any], permute_at: int | None = None) -> EnvFeatures | None:
    """Which features of the env a run config describes are real, rebuilt with
    :func:`~sparse_rl.envs.make_env` (``None``, with a warning if it fails, when the config has no
    env, the env does not say, or it cannot be built).

    :param config: the run's config data
    :param permute_at: the env step of its feature permutation: read the permutation too
    """
    env_config = config.get("env")
    if not isinstance(env_config, Mapping):
        return None
    try:
        env = make_env(dict(env_config), seed=0)
        try:
            mask = _wrapper_array(env, "real_feature_mask")
            permuted = permute_at is not None and permute_at > 0
            permutation = _wrapper_array(env, "permutation") if permuted else None
        finally:
            env.close()
        return None if mask is None else EnvFeatures(mask.astype(bool), permutation)
    except Exception as err:  # noqa: BLE001 - the analysis goes on without the mask
        warnings.warn(f"could not rebuild the run's env to know its real features: {err}", stacklevel=2)
        return None


def _wrapper_array(env: Any, name: str) -> np.ndarray | None:
    """A copy of an array attribute of ``env``'s wrappers, or ``None`` if none has it."""
    try:
        return np.asarray(env.get_wrapper_attr(name)).copy()
    except AttributeError:
        return None


def _agent_setting(config: Mapping[str, Any], key: str) -> str | None:
    """``agent.<key>`` of a run config (``algorithm`` lower-cased), or ``None``."""
    agent = config.get("agent")
    value = agent.get(key) if isinstance(agent, Mapping) else None
    if not value:
        return None
    return str(value).lower() if key == "algorithm" else str(value)


def _permute_at_step(config: Mapping[str, Any]) -> int | None:
    """``env.permute_at_step`` of a run config, or ``None``."""
    env = config.get("env")
    step = env.get("permute_at_step") if isinstance(env, Mapping) else None
    return int(step) if step is not None else None
