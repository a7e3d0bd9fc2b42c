"""Taking connectivity snapshots from a model while it trains: :class:`ConnectivitySnapshotCallback`
writes one at the start, after every topology update (at the next flush) and, for dense agents,
periodically; the format and the reading side are in :mod:`sparse_rl.analysis.snapshots`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from sparse_rl.analysis.metrics import input_layer_connectivity
from sparse_rl.analysis.snapshots import (
    SNAPSHOT_KINDS,
    ConnectivitySnapshot,
    delete_snapshots_after,
    snapshot_step,
    write_snapshot,
)


def _env_attr(model: Any, name: str) -> Any:
    """Attribute ``name`` of the model's first training env (through its wrappers), or ``None``."""
    env = model.get_env() if hasattr(model, "get_env") else None
    if env is None:
        return None
    try:
        if not env.has_attr(name):
            return None
        return env.get_attr(name, indices=[0])[0]
    except (AttributeError, IndexError):
        return None


@dataclass(frozen=True)
class EnvState:
    """What the training env says about its features at one moment.

    :param real_mask: boolean over the observation features, or ``None``
    :param permuted: whether the features are permuted
    :param permuted_at_step: the model env step from which they are (``None``: not / unknown)
    """

    real_mask: np.ndarray | None
    permuted: bool
    permuted_at_step: int | None


def read_env_state(model: Any) -> EnvState:
    """Read the real-feature mask and the permutation state of the model's training env.

    The env's own ``permuted_at_step`` counts that env's ``step`` calls; with ``n_envs`` envs
    stepping together that is ``n_envs`` times as many model env steps.

    :param model: an SB3 model with a training env
    """
    mask = _env_attr(model, "real_feature_mask")
    permuted = bool(_env_attr(model, "permuted") or False)
    at_step = _env_attr(model, "permuted_at_step") if permuted else None
    n_envs = int(getattr(model, "n_envs", 1) or 1)
    return EnvState(
        real_mask=None if mask is None else np.asarray(mask, dtype=bool).copy(),
        permuted=permuted,
        permuted_at_step=None if at_step is None else int(at_step) * n_envs,
    )


def take_snapshot(model: Any, kind: str = "update", env_state: EnvState | None = None,
                  topology_step: int | None = None) -> ConnectivitySnapshot:
    """The current input-layer connectivity of ``model`` (an SB3 SAC/TD3, sparse or dense).

    :param model: the model
    :param kind: ``start``, ``update``, ``periodic`` or ``end``
    :param env_state: the env's real mask and permutation state (default: read it now)
    :param topology_step: the gradient step of the topology update this snapshot follows
    """
    if kind not in SNAPSHOT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(SNAPSHOT_KINDS)}, got {kind!r}")
    state = env_state if env_state is not None else read_env_state(model)
    real_mask = state.real_mask
    networks = input_layer_connectivity(model.policy, real_mask=None)
    n_obs = next(iter(networks.values())).n_observation
    if real_mask is not None and real_mask.size != n_obs:
        warnings.warn(f"the env's real_feature_mask has {real_mask.size} entries for {n_obs} observation "
                      "features; ignoring it", stacklevel=2)
        real_mask = None
    if real_mask is not None:
        networks = {name: conn.with_real_mask(real_mask) for name, conn in networks.items()}
    return ConnectivitySnapshot(
        env_step=int(model.num_timesteps),
        gradient_step=int(getattr(model, "_n_updates", 0)),
        networks=networks,
        real_mask=real_mask,
        permuted=state.permuted,
        permuted_at_step=state.permuted_at_step,
        kind=kind,
        topology_step=topology_step,
    )


class ConnectivitySnapshotCallback(BaseCallback):
    """Write a connectivity snapshot of the input layers at training start, after every topology
    update, optionally every ``every_n_steps`` env steps, and at training end.

    For agents with ``add_topology_listener`` (``SparseSAC``, ``SparseTD3``) the callback listens to
    the topology updates. The actor's and the critic's updaters fire one after the other within the
    same ``train`` call, so a snapshot taken at the first call would miss the second network's
    update: the listener only records that an update happened (and the env's real mask at that
    moment), and the snapshot is written when the next rollout starts (or training ends), before
    any weight changes again. One update thus gives one snapshot. Dense agents have no updates: give
    ``every_n_steps``. See the module docstring for the file format and how a resumed run keeps a
    consistent series.

    :param directory: where the snapshot files go (a run's ``connectivity/``)
    :param every_n_steps: also snapshot every this many env steps (``None``: only at updates)
    :param verbose: 1 prints a line per snapshot written
    """

    def __init__(self, directory: str | Path, every_n_steps: int | None = None, verbose: int = 0) -> None:
        super().__init__(verbose)
        if every_n_steps is not None and every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1 or None, got {every_n_steps}")
        self.directory = Path(directory)
        self.every_n_steps = every_n_steps
        self.written: list[Path] = []
        self._listening_to: list[Any] = []
        self._active = False
        self._pending: tuple[int, EnvState] | None = None
        self._next_periodic = 0

    def _on_training_start(self) -> None:
        step = int(self.model.num_timesteps)
        removed = delete_snapshots_after(self.directory, step)
        if removed and self.verbose:
            print(f"connectivity: removed {len(removed)} snapshots later than step {step} (resumed run)")
        if hasattr(self.model, "add_topology_listener") and not any(m is self.model for m in self._listening_to):
            self.model.add_topology_listener(self._on_topology_update)
            self._listening_to.append(self.model)
        self._active = True
        self._pending = None
        if self.every_n_steps:
            self._next_periodic = (step // self.every_n_steps + 1) * self.every_n_steps
        self._write(take_snapshot(self.model, kind="start"))

    def _on_topology_update(self, network: str, update: Any) -> None:
        """Topology listener: remember that the topology changed; written at the next flush."""
        if not self._active:
            return
        topology_step = int(getattr(update, "step", -1))
        if self._pending is None:
            self._pending = (topology_step, read_env_state(self.model))
        else:
            self._pending = (max(topology_step, self._pending[0]), self._pending[1])

    def _flush(self) -> None:
        if self._pending is None:
            return
        topology_step, state = self._pending
        self._pending = None
        self._write(take_snapshot(self.model, kind="update", env_state=state,
                                  topology_step=topology_step if topology_step >= 0 else None))

    def _on_rollout_start(self) -> None:
        self._flush()

    def _on_step(self) -> bool:
        self._flush()
        if self.every_n_steps and self.model.num_timesteps >= self._next_periodic:
            self._write(take_snapshot(self.model, kind="periodic"))
            step = int(self.model.num_timesteps)
            self._next_periodic = (step // self.every_n_steps + 1) * self.every_n_steps
        return True

    def _on_training_end(self) -> None:
        self._flush()
        if not self.written or snapshot_step(self.written[-1]) != int(self.model.num_timesteps):
            self._write(take_snapshot(self.model, kind="end"))
        self._active = False

    def _write(self, snapshot: ConnectivitySnapshot) -> None:
        path = write_snapshot(self.directory, snapshot)
        self.written.append(path)
        if self.verbose:
            print(f"connectivity: {snapshot.kind} snapshot at env step {snapshot.env_step} -> {path}")
