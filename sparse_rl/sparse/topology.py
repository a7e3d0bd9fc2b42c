"""``TopologyUpdater``: prune-then-grow at constant density, with optimizer-state reset.

Call :meth:`TopologyUpdater.step` after each optimizer step (or with the number of gradient steps
done). On the schedule's update steps, for every sparse layer: drop the fraction ζ of active
connections with the lowest drop score, grow exactly as many at positions that were inactive
*before* this update (so a connection pruned now is never regrown now; an algorithm with
``regrow_dropped``, SET as ANF's code runs it, may draw a just-dropped one again, which then
stays as it was), set the regrown weights to zero, and reset the optimizer's per-parameter state
(Adam's ``exp_avg``, ``exp_avg_sq``) at every changed position. Note: Adam's ``step`` counter is
per tensor, so a regrown weight does not restart its bias correction; with zeroed moments its
first updates are small, not large.

The updater works on every storage backend of :class:`~sparse_rl.sparse.layers.SparseLinear`
through one interface: it chooses flat positions to drop and grow, and the layer moves the
connections (:meth:`~sparse_rl.sparse.layers.SparseLinear.replace_connections`), returning the
parameter and the indices of it whose optimizer state is reset (the masked ``weight`` at every
changed position, or the CSR ``values`` at the slots the grown connections took over).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from sparse_rl.sparse.algorithms import DSTAlgorithm, make_algorithm
from sparse_rl.sparse.layers import SparseLinear
from sparse_rl.sparse.schedules import UpdateSchedule


@dataclass(frozen=True)
class LayerUpdateStats:
    """What one update did to one layer."""

    pruned: int
    grown: int
    nnz: int
    density: float
    mean_abs_weight: float


@dataclass(frozen=True)
class TopologyUpdate:
    """What one update did: the step, the drop fraction used, and per-layer statistics."""

    step: int
    drop_fraction: float
    layers: dict[str, LayerUpdateStats] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        """Connections moved in all layers (pruned, and as many grown)."""
        return sum(stats.pruned for stats in self.layers.values())

    def as_dict(self) -> dict[str, Any]:
        """A plain dict, for logging."""
        return {"step": self.step, "drop_fraction": self.drop_fraction,
                "layers": {name: asdict(stats) for name, stats in self.layers.items()}}


def sparse_layers(module: nn.Module | Mapping[str, SparseLinear] | Sequence[SparseLinear]) -> dict[str, SparseLinear]:
    """The layers with inactive connections (density < 1), by name, from a module, a mapping or a list."""
    if isinstance(module, nn.Module):
        items: Iterable[tuple[str, Any]] = module.named_modules()
    elif isinstance(module, Mapping):
        items = module.items()
    else:
        items = ((str(i), layer) for i, layer in enumerate(module))
    return {
        name or "layer": layer
        for name, layer in items
        if isinstance(layer, SparseLinear) and layer.target_density < 1.0
    }


def reset_optimizer_state(
    optimizers: Sequence[torch.optim.Optimizer], param: torch.Tensor, flat_index: torch.Tensor
) -> None:
    """Zero, at ``flat_index``, every per-element state tensor (Adam moments, momentum buffers…)
    that any of ``optimizers`` holds for ``param``."""
    for optimizer in optimizers:
        state = optimizer.state.get(param)
        if not state:
            continue
        for value in state.values():
            if torch.is_tensor(value) and value.shape == param.shape:
                value.view(-1)[flat_index] = 0


class TopologyUpdater:
    """Runs a dynamic sparse training algorithm's topology updates on a set of sparse layers.

    :param layers: a module (its ``SparseLinear`` layers with density < 1 are updated), or the
        layers by name, or a list of layers
    :param optimizers: the optimizer(s) holding the layers' weights, whose state is reset at changed
        positions
    :param algorithm: a registered algorithm name (``set``, ``rigl``, ``static``…) or an instance
    :param schedule: when to update and the drop fraction
    :param followers: modules of the same structure (target networks) whose layers take the
        updated masks after each update
    :param seed: seed of the updater's own random generator (random growth)
    :param before_update: called right before each update (e.g. to give the layers the scale of
        their inputs, :attr:`~sparse_rl.sparse.layers.SparseLinear.input_scale`, for an algorithm
        that needs it)
    """

    def __init__(
        self,
        layers: nn.Module | Mapping[str, SparseLinear] | Sequence[SparseLinear],
        optimizers: torch.optim.Optimizer | Sequence[torch.optim.Optimizer] | None = None,
        algorithm: str | DSTAlgorithm = "set",
        schedule: UpdateSchedule | None = None,
        followers: Sequence[nn.Module] = (),
        seed: int | None = None,
        before_update: Callable[[], None] | None = None,
    ) -> None:
        self.layers = sparse_layers(layers)
        self.before_update = before_update
        if optimizers is None:
            optimizers = []
        elif isinstance(optimizers, torch.optim.Optimizer):
            optimizers = [optimizers]
        self.optimizers = list(optimizers)
        self.algorithm = make_algorithm(algorithm)
        self.schedule = schedule if schedule is not None else UpdateSchedule()
        self.followers = list(followers)
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)
        self.step_count = 0
        self.pending_step: int | None = None
        self.history: list[TopologyUpdate] = []
        self.prepare(1)

    @property
    def active(self) -> bool:
        """Whether this updater ever changes anything."""
        return self.algorithm.updates_topology and bool(self.layers)

    def prepare(self, n_steps: int) -> None:
        """Arm the layers to record dense gradients if an update falls within the next ``n_steps``
        steps and the algorithm needs them (call before running those steps)."""
        if not (self.active and self.algorithm.needs_dense_gradient):
            return
        due = self.pending_step is not None or bool(
            self.schedule.updates_between(self.step_count + 1, self.step_count + n_steps))
        if due:
            for layer in self.layers.values():
                if layer.dense_grad is None and not layer.capture_armed:
                    layer.capture_dense_gradient()

    def step(self, n_steps: int = 1) -> TopologyUpdate | None:
        """Advance the step counter by ``n_steps`` and run the update that falls in them, if any
        (at most one per call). Returns what the update did, or ``None``."""
        if n_steps < 0:
            raise ValueError(f"n_steps must be >= 0, got {n_steps}")
        first = self.step_count + 1
        self.step_count += n_steps
        if not self.active:
            return None
        due = self.schedule.updates_between(first, self.step_count)
        if due:
            self.pending_step = due[-1]
        result = None
        if self.pending_step is not None and self._ready():
            result = self.update(self.pending_step)
            self.pending_step = None
        self.prepare(1)
        return result

    def _ready(self) -> bool:
        if not self.algorithm.needs_dense_gradient:
            return True
        return all(layer.dense_grad is not None for layer in self.layers.values())

    @torch.no_grad()
    def update(self, at_step: int | None = None) -> TopologyUpdate:
        """Run one prune-and-grow update now, with the drop fraction of ``at_step`` (default: the
        current step), whatever the schedule says."""
        at_step = self.step_count if at_step is None else at_step
        drop_fraction = self.schedule.drop_fraction_at(at_step)
        if self.before_update is not None:
            self.before_update()
        stats = {name: self._update_layer(layer, drop_fraction) for name, layer in self.layers.items()}
        for follower in self.followers:
            self._sync_follower(follower)
        update = TopologyUpdate(step=at_step, drop_fraction=drop_fraction, layers=stats)
        self.history.append(update)
        return update

    def _sync_follower(self, follower: nn.Module) -> None:
        follower_layers = sparse_layers(follower)
        for name, layer in self.layers.items():
            follower_layers[name].follow_topology_(layer)

    def _update_layer(self, layer: SparseLinear, drop_fraction: float) -> LayerUpdateStats:
        nnz = layer.nnz
        numel = layer.in_features * layer.out_features
        k = min(round(drop_fraction * nnz), numel - nnz)
        moved = 0
        if k > 0:
            candidates = ~layer.mask
            dropped = self._drop(layer, k)
            if self.algorithm.regrow_dropped:
                candidates.view(-1)[dropped.to(candidates.device)] = True
            grown = self.algorithm.grow_indices(layer, candidates, k, self.generator)
            if grown.numel() != k:
                raise RuntimeError(f"{self.algorithm!r} grew {grown.numel()} connections instead of {k}")
            if self.algorithm.regrow_dropped:
                dropped, grown = _without_common(dropped, grown)
            moved = int(dropped.numel())
            if moved:
                param, changed = layer.replace_connections(dropped, grown)
                reset_optimizer_state(self.optimizers, param, changed)
                layer.order_for_kernels_(self.optimizers)
        layer.dense_grad = None
        return LayerUpdateStats(
            pruned=moved, grown=moved, nnz=nnz, density=nnz / numel,
            mean_abs_weight=layer.abs_weight_sum() / nnz if nnz else 0.0,
        )

    def _drop(self, layer: SparseLinear, k: int) -> torch.Tensor:
        return self.algorithm.drop_indices(layer, k)

    def state_dict(self) -> dict[str, Any]:
        """The updater's state (step counter, pending update, RNG), to save with a checkpoint."""
        return {"step_count": self.step_count, "pending_step": self.pending_step,
                "rng_state": self.generator.get_state(), "algorithm": self.algorithm.name}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        if state.get("algorithm", self.algorithm.name) != self.algorithm.name:
            raise ValueError(
                f"this topology state belongs to algorithm {state['algorithm']!r}, not {self.algorithm.name!r}")
        self.step_count = int(state["step_count"])
        self.pending_step = state["pending_step"]
        self.generator.set_state(state["rng_state"])
        self.prepare(1)


def _without_common(dropped: torch.Tensor, grown: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``dropped`` and ``grown`` less the positions in both (connections dropped and drawn again,
    which stay as they were); equally many of each remain."""
    grown = grown.to(dropped.device)
    both = torch.isin(dropped, grown)
    return dropped[~both], grown[~torch.isin(grown, dropped)]
