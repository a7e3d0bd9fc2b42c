"""Cheap connectivity snapshots of the input layers during training, and reading them back.

**Format.** One small ``.npz`` file per snapshot, ``<directory>/snapshot_<env_step:010d>.npz``,
written atomically (a temporary file, then a rename), holding:

- ``format_version`` (int), ``kind`` (``start``, ``update``, ``periodic`` or ``end``),
  ``env_step`` (``model.num_timesteps``), ``gradient_step`` (``model._n_updates``),
  ``topology_step`` (the updater's gradient step of the topology update, -1 if none);
- ``permuted`` (bool) and ``permuted_at_step`` (the env step from which the features are permuted,
  -1 if not, or unknown), read from a :class:`~sparse_rl.envs.wrappers.FeaturePermutation` in the
  training env;
- ``real_feature_mask`` (bool over the observation features, the one in force at that step) and
  ``has_real_mask`` (False when the env does not say which features are real);
- ``n_observation`` and ``networks`` (names, e.g. ``actor``, ``qf0``, ``qf1``), and per network
  ``<name>.strength`` (float32, sum of ``|w|`` per input column), ``<name>.in_degree`` (uint16 per
  input column, int32 for layers wider than 65,535; absent for a dense layer) and
  ``<name>.out_features``.

That is two numbers per input feature and network, zip-compressed, never a full mask: ~15 kB per
snapshot for HalfCheetah at f = 0.98 (850 inputs, actor and two critics), ~220 kB at 17,000 inputs.
An ANF run updates every 1000 gradient steps, so 1M steps write 1000 snapshots (15 MB, or 220 MB
at 17,000 inputs).

**Resuming.** A run killed after step ``T`` and resumed from a checkpoint at step ``S < T`` would
leave snapshots of the abandoned steps ``S+1…T``. On training start the callback *deletes* every
snapshot later than the model's current ``num_timesteps`` and writes a new one at ``S``
(overwriting any there), so the directory always holds one consistent series: the history that led
to the current model. A fresh ``learn`` (``reset_num_timesteps=True``) into the same directory thus
starts a new series.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from sparse_rl.analysis.metrics import FeatureConnectivity

FORMAT_VERSION = 1
SNAPSHOT_PATTERN = re.compile(r"^snapshot_(\d+)\.npz$")
SNAPSHOT_KINDS = ("start", "update", "periodic", "end")


@dataclass(frozen=True)
class ConnectivitySnapshot:
    """The input-layer connectivity of every network at one moment of training.

    :param env_step: the model's ``num_timesteps``
    :param gradient_step: gradient steps done (``model._n_updates``)
    :param networks: per network (``actor``, ``qf0``…), its :class:`FeatureConnectivity`
    :param real_mask: boolean over the observation features in force at that step, or ``None``
    :param permuted: whether the env's features were permuted at that step
    :param permuted_at_step: the env step from which they are permuted (``None``: not / unknown)
    :param kind: why it was taken: ``start``, ``update``, ``periodic`` or ``end``
    :param topology_step: the gradient step of the topology update it follows, if any
    """

    env_step: int
    gradient_step: int
    networks: dict[str, FeatureConnectivity]
    real_mask: np.ndarray | None = None
    permuted: bool = False
    permuted_at_step: int | None = None
    kind: str = "update"
    topology_step: int | None = None


def snapshot_path(directory: str | Path, env_step: int) -> Path:
    """Where the snapshot of ``env_step`` lives in ``directory``."""
    return Path(directory) / f"snapshot_{int(env_step):010d}.npz"


def snapshot_step(path: str | Path) -> int | None:
    """The env step in a snapshot's file name, or ``None`` if the name is not a snapshot's."""
    match = SNAPSHOT_PATTERN.match(Path(path).name)
    return int(match.group(1)) if match else None


def snapshot_files(directory: str | Path) -> list[Path]:
    """The snapshot files of ``directory`` in env-step order (empty if it does not exist)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(step, path) for path in directory.iterdir() if (step := snapshot_step(path)) is not None]
    return [path for _, path in sorted(found)]


def write_snapshot(directory: str | Path, snapshot: ConnectivitySnapshot) -> Path:
    """Write ``snapshot`` to ``directory`` (created if needed), atomically; returns its path.

    :param directory: the snapshot directory (a run's ``connectivity/``)
    :param snapshot: what to write
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    n_observation = next(iter(snapshot.networks.values())).n_observation if snapshot.networks else 0
    arrays: dict[str, Any] = {
        "format_version": np.int64(FORMAT_VERSION),
        "kind": np.str_(snapshot.kind),
        "env_step": np.int64(snapshot.env_step),
        "gradient_step": np.int64(snapshot.gradient_step),
        "topology_step": np.int64(-1 if snapshot.topology_step is None else snapshot.topology_step),
        "permuted": np.bool_(snapshot.permuted),
        "permuted_at_step": np.int64(-1 if snapshot.permuted_at_step is None else snapshot.permuted_at_step),
        "has_real_mask": np.bool_(snapshot.real_mask is not None),
        "real_feature_mask": np.zeros(0, dtype=bool) if snapshot.real_mask is None
        else np.asarray(snapshot.real_mask, dtype=bool),
        "n_observation": np.int64(n_observation),
        "networks": np.array(list(snapshot.networks), dtype=np.str_),
    }
    for name, conn in snapshot.networks.items():
        arrays[f"{name}.strength"] = conn.strength.astype(np.float32)
        arrays[f"{name}.out_features"] = np.int64(conn.out_features)
        if conn.in_degree is not None:
            small = conn.out_features <= np.iinfo(np.uint16).max
            arrays[f"{name}.in_degree"] = conn.in_degree.astype(np.uint16 if small else np.int32)
    path = snapshot_path(directory, snapshot.env_step)
    handle, tmp_name = tempfile.mkstemp(prefix=".snapshot_", suffix=".npz.tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez_compressed(file, **arrays)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def read_snapshot(path: str | Path) -> ConnectivitySnapshot:
    """Read one snapshot file written by :func:`write_snapshot`.

    :param path: the ``.npz`` file
    :raises ValueError: if it is not a readable snapshot
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            version = int(data["format_version"])
            if version > FORMAT_VERSION:
                raise ValueError(f"{path}: snapshot format {version} is newer than this reader ({FORMAT_VERSION})")
            real_mask = data["real_feature_mask"].astype(bool) if bool(data["has_real_mask"]) else None
            n_observation = int(data["n_observation"])
            networks = {}
            for name in (str(n) for n in data["networks"]):
                degree_key = f"{name}.in_degree"
                networks[name] = FeatureConnectivity(
                    network=name,
                    strength=data[f"{name}.strength"].astype(np.float32),
                    in_degree=data[degree_key].astype(np.int64) if degree_key in data.files else None,
                    out_features=int(data[f"{name}.out_features"]),
                    n_observation=n_observation,
                    real_mask=real_mask,
                )
            topology_step = int(data["topology_step"])
            permuted_at = int(data["permuted_at_step"])
            return ConnectivitySnapshot(
                env_step=int(data["env_step"]),
                gradient_step=int(data["gradient_step"]),
                networks=networks,
                real_mask=real_mask,
                permuted=bool(data["permuted"]),
                permuted_at_step=None if permuted_at < 0 else permuted_at,
                kind=str(data["kind"]),
                topology_step=None if topology_step < 0 else topology_step,
            )
    except ValueError:
        raise
    except (OSError, KeyError, EOFError) as err:
        raise ValueError(f"{path} is not a readable connectivity snapshot: {err}") from err


@dataclass(frozen=True)
class ConnectivitySeries:
    """Snapshots in env-step order, with their per-feature vectors stacked over time.

    :param snapshots: the snapshots, sorted by env step, all with the same networks and shapes
    """

    snapshots: list[ConnectivitySnapshot] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.snapshots)

    @property
    def env_steps(self) -> np.ndarray:
        """The env step of each snapshot."""
        return np.array([s.env_step for s in self.snapshots], dtype=np.int64)

    @property
    def gradient_steps(self) -> np.ndarray:
        """The gradient step of each snapshot."""
        return np.array([s.gradient_step for s in self.snapshots], dtype=np.int64)

    @property
    def networks(self) -> list[str]:
        """The network names (those of the first snapshot)."""
        return list(self.snapshots[0].networks) if self.snapshots else []

    def is_sparse(self, network: str) -> bool:
        """Whether ``network``'s input layer is sparse (has in-degrees)."""
        return all(s.networks[network].is_sparse for s in self.snapshots)

    def matrix(self, network: str, what: str = "in_degree") -> np.ndarray:
        """A (time, input column) matrix of ``in_degree`` or ``strength`` for ``network``.

        :param network: a network name
        :param what: ``in_degree`` or ``strength``
        """
        if what not in ("in_degree", "strength"):
            raise ValueError(f"what must be 'in_degree' or 'strength', got {what!r}")
        rows = [getattr(s.networks[network], what) for s in self.snapshots]
        if any(row is None for row in rows):
            raise ValueError(f"{network}'s input layer is dense: it has no in-degree")
        return np.stack(rows).astype(np.float64 if what == "strength" else np.int64)

    def real_masks(self) -> np.ndarray | None:
        """A (time, observation feature) boolean matrix of the real mask in force at each snapshot,
        or ``None`` when no snapshot knows it."""
        if not self.snapshots or all(s.real_mask is None for s in self.snapshots):
            return None
        n_obs = next(iter(self.snapshots[0].networks.values())).n_observation
        return np.stack([s.real_mask if s.real_mask is not None else np.ones(n_obs, dtype=bool)
                         for s in self.snapshots])

    def permutation_step(self) -> int | None:
        """The env step from which the features are permuted, if the run had a permutation: the
        recorded one, else the first snapshot that reports permuted features (``None`` if none
        does, or if all do: a run permuted from the start has no switch to mark)."""
        permuted = [s for s in self.snapshots if s.permuted]
        if not permuted or len(permuted) == len(self.snapshots):
            return None
        recorded = [s.permuted_at_step for s in permuted if s.permuted_at_step is not None]
        return recorded[0] if recorded else permuted[0].env_step

    @cached_property
    def summaries(self) -> dict[str, dict[str, np.ndarray]]:
        """Per network, each scalar of :meth:`FeatureConnectivity.summary` over the snapshots, as a
        float array (NaN where undefined); computed once."""
        table: dict[str, dict[str, list[float]]] = {}
        for snap in self.snapshots:
            for name, conn in snap.networks.items():
                for key, value in conn.summary().items():
                    if isinstance(value, (bool, str)) or key == "network":
                        continue
                    table.setdefault(name, {}).setdefault(key, []).append(np.nan if value is None else float(value))
        return {name: {key: np.array(values, dtype=np.float64) for key, values in columns.items()}
                for name, columns in table.items()}

    def metrics_rows(self) -> list[dict[str, Any]]:
        """One row per (snapshot, network): the steps and :meth:`FeatureConnectivity.summary`."""
        rows = []
        for snap in self.snapshots:
            for conn in snap.networks.values():
                rows.append({"env_step": snap.env_step, "gradient_step": snap.gradient_step, "kind": snap.kind,
                             "permuted": snap.permuted, **conn.summary()})
        return rows


def load_snapshots(directory: str | Path) -> ConnectivitySeries:
    """Read every snapshot of ``directory`` into a :class:`ConnectivitySeries`.

    Unreadable files, and snapshots whose networks or shapes differ from the first one, are skipped
    with a warning.

    :param directory: a run's ``connectivity/`` directory
    """
    snapshots: list[ConnectivitySnapshot] = []
    for path in snapshot_files(directory):
        try:
            snap = read_snapshot(path)
        except ValueError as err:
            warnings.warn(f"skipping {path}: {err}", stacklevel=2)
            continue
        if snapshots and not _same_layout(snapshots[0], snap):
            warnings.warn(f"skipping {path}: its networks or input sizes differ from the first snapshot's",
                          stacklevel=2)
            continue
        snapshots.append(snap)
    return ConnectivitySeries(snapshots)


def _same_layout(a: ConnectivitySnapshot, b: ConnectivitySnapshot) -> bool:
    if list(a.networks) != list(b.networks):
        return False
    return all(a.networks[n].n_inputs == b.networks[n].n_inputs for n in a.networks)


def delete_snapshots_after(directory: str | Path, env_step: int) -> list[Path]:
    """Delete the snapshots of ``directory`` later than ``env_step`` (see the module docstring);
    returns what was deleted.

    :param directory: the snapshot directory
    :param env_step: the last step to keep
    """
    removed = []
    for path in snapshot_files(directory):
        step = snapshot_step(path)
        if step is not None and step > env_step:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def series_from_snapshots(snapshots: Iterable[ConnectivitySnapshot]) -> ConnectivitySeries:
    """A :class:`ConnectivitySeries` from snapshots in memory, sorted by env step (the last one
    wins for equal steps, as on disk)."""
    by_step: dict[int, ConnectivitySnapshot] = {}
    for snap in snapshots:
        by_step[snap.env_step] = snap
    return ConnectivitySeries([by_step[step] for step in sorted(by_step)])
