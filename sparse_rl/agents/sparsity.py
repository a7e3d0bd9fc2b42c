"""The sparsity configuration of an agent, and the named presets from the papers.

A :class:`SparsityConfig` says which algorithm runs (``dense``, ``static``, ``set``, ``rigl``…),
which layers of each network are sparse (by role: ``input``, ``hidden``, ``output``), how dense
they are (a global density spread by a distribution, ε per role, or a density per role), and when
the topology changes. Presets:

- ``anf``: Automatic Noise Filtering (Grooten et al., AAMAS 2023): only the input layers of the
  actor and the critics sparse, density 0.2; SET with ζ = 0.05 constant every 1000 gradient steps,
  never stopped; pruning by |w|, regrowth that may draw a just-dropped connection again
  (``regrow_dropped``) and the dense init as in their code; targets take the online
  mask (their code prunes targets by magnitude: see ``docs/fidelity.md``).
- ``all_layers``: every layer but the outputs sparse (Sokar et al., IJCAI 2022): Erdős–Rényi at a
  global density of 0.5; SET with ζ = 0.1 (SAC) or 0.05 (TD3) every 1000 gradient steps, stopping
  at 95% of training (50k steps before the end of 1M); SET's signed pruning (``set_signed``), the
  dense init, Polyak-then-prune targets and ``regrow_dropped`` as in their code.

Only the sparsity: the training settings (learning rate, batch size…) of the papers' methods are
in :mod:`sparse_rl.agents.methods`.
- ``rigl``: every layer but the outputs sparse at 90% sparsity, ERK; RigL with ζ = 0.5
  cosine-decayed to 0 at 80% of training, every 1000 gradient steps (Graesser et al., ICML 2022).
- ``strength_filter``: ``anf`` with another regrowth rule, sparse_rl's own (not from a paper):
  the ``strength_filter`` algorithm (drop by |w|·rms(x); regrow where the input columns are
  strong, weight ``(m_j / mean m)³ + 0.1``); every other setting is ANF's. It departs from ANF only in how
  connections are chosen, to filter noise faster (``docs/results.md``).
- ``fit_input``: ``strength_filter`` whose input layers' density fits their input count, sparse_rl's
  own (not from a paper): at least 32 active connections per hidden unit on average, density
  ``min(1, max(0.2, 32 / n_in))``. Clean inputs of up to 32 features get a dense input layer (the
  agent is then SB3's SAC / TD3, parameter for parameter); 160 inputs or more (a task with 4+ real
  features at f = 0.98) keep ``strength_filter``'s 0.2. It is never told which inputs are real:
  the rule reads only the number of columns (``docs/fidelity.md``, "Our own additions").
- ``static``: ``anf``'s topology, never updated (the static sparse control).
- ``dense``: no sparsity; the agent equals SB3's own SAC / TD3 (the dense control).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sparse_rl._util.validation import check_choice, check_density, check_keys
from sparse_rl.sparse.algorithms import DSTAlgorithm, make_algorithm
from sparse_rl.sparse.distributions import DISTRIBUTIONS, check_min_fan_in
from sparse_rl.sparse.layers import BACKENDS, INITS
from sparse_rl.sparse.schedules import UpdateSchedule

ROLES = ("input", "hidden", "output")
#: ``fit_input``'s floor: active connections per hidden unit of an input layer (on average).
#: Dense for clean inputs of up to 32 features (every MuJoCo locomotion and control task but Ant and
#: Humanoid, actions included for the critic); ANF's 0.2 from 160 inputs on (f = 0.98 and 4+ real
#: features). The choice is argued in docs/fidelity.md ("Our own additions").
FIT_INPUT_MIN_FAN_IN = 32
#: how target networks stay sparse (see :class:`SparsityConfig`)
TARGET_RULES = ("online_mask", "polyak_prune")


@dataclass(frozen=True)
class SparsityConfig:
    """How an agent's networks are sparse and how their topology evolves.

    :param algorithm: a registered algorithm: ``dense``, ``static``, ``set``, ``set_signed``, ``rigl``,
        ``strength_filter``…
    :param algorithm_kwargs: the algorithm's own hyperparameters (e.g. ``{"exploration": 0.1}``
        for ``strength_filter``)
    :param density: the global density of the sparse layers, spread by ``distribution``
    :param distribution: ``uniform``, ``erdos_renyi`` or ``erk`` (see :mod:`sparse_rl.sparse.distributions`)
    :param epsilon: the ER scale ε instead of a global density: one value, or one per role
    :param sparse_roles: which layers of each network are sparse: a subset of input, hidden, output
    :param role_densities: a density pinned per role (overrides the distribution for that role)
    :param min_fan_in: a floor under every sparse layer's density from its input count alone: at
        least this many active connections per output unit on average, density
        ``min(1, max(density, min_fan_in / n_in))`` (a layer with ``n_in <= min_fan_in`` is dense);
        ``None``: no floor (see :func:`~sparse_rl.sparse.distributions.fan_in_floor`)
    :param update_interval: gradient steps between topology updates
    :param update_start: first gradient step at which an update may happen
    :param update_stop: last update: a gradient step (int), a fraction of the training's gradient
        steps (float in (0, 1]), or ``None`` for never stopping
    :param drop_fraction: ζ, the fraction of each layer's active connections replaced per update
    :param drop_schedule: ``constant`` or ``cosine`` (decays to 0 at ``update_stop``)
    :param backend: how sparse layers are stored and computed: ``masked`` (dense weight × mask),
        ``csr`` (only active weights, sparse kernels) or ``auto`` (per layer, from its size and
        density; see :func:`sparse_rl.sparse.layers.resolve_backend`)
    :param init: ``active_fan_in`` (weights' bounds from the active fan-in) or ``dense_fan_in`` (the
        references': ``nn.Linear``'s initialisation, then masked); see
        :class:`~sparse_rl.sparse.layers.SparseLinear`
    :param target_rule: how target networks stay sparse: ``online_mask`` (they take the online
        network's mask after each topology update) or ``polyak_prune`` (the references' code:
        Polyak averaging on the dense tensors, then the target pruned by magnitude to the online
        network's count after every averaging step; needs the ``masked`` backend, which ``auto``
        then picks)
    """

    algorithm: str = "set"
    algorithm_kwargs: dict[str, Any] = field(default_factory=dict)
    density: float | None = 0.2
    distribution: str = "uniform"
    epsilon: float | dict[str, float] | None = None
    sparse_roles: tuple[str, ...] = ("input",)
    role_densities: dict[str, float] = field(default_factory=dict)
    min_fan_in: int | None = None
    update_interval: int = 1000
    update_start: int = 0
    update_stop: int | float | None = None
    drop_fraction: float = 0.05
    drop_schedule: str = "constant"
    backend: str = "auto"
    init: str = "active_fan_in"
    target_rule: str = "online_mask"

    def __post_init__(self) -> None:
        self.make_algorithm()
        check_choice(self.distribution, DISTRIBUTIONS, "distribution")
        check_choice(self.backend, BACKENDS, "sparse layer backend")
        check_choice(self.init, INITS, "init")
        check_choice(self.target_rule, TARGET_RULES, "target_rule")
        if self.target_rule == "polyak_prune" and self.backend == "csr":
            raise ValueError("target_rule 'polyak_prune' averages dense target tensors and needs backend 'masked' "
                             "(or 'auto'), got backend 'csr'")
        object.__setattr__(self, "sparse_roles", tuple(self.sparse_roles))
        for role in self.sparse_roles:
            check_choice(role, ROLES, "layer role in sparse_roles")
        for role, value in self.role_densities.items():
            check_choice(role, ROLES, "layer role in role_densities")
            check_density(value, f"role_densities[{role!r}]")
        check_min_fan_in(self.min_fan_in)
        if isinstance(self.epsilon, Mapping):
            for role in self.epsilon:
                check_choice(role, ROLES, "layer role in epsilon")
        if self.density is not None:
            check_density(self.density)
        elif self.epsilon is None and self.is_sparse:
            raise ValueError("a sparse configuration needs a density in (0, 1] or an epsilon")
        stop = self.update_stop
        if isinstance(stop, float) and not 0.0 < stop <= 1.0:
            raise ValueError(f"update_stop as a fraction of training must be in (0, 1], got {stop!r}")
        # Validates interval, start, drop fraction and schedule (cosine needs a stop).
        try:
            self.schedule(total_gradient_steps=1_000_000)
        except ValueError as error:
            raise ValueError(_schedule_message(str(error))) from None

    def make_algorithm(self) -> DSTAlgorithm:
        """The algorithm, built with its hyperparameters."""
        return make_algorithm(self.algorithm, **self.algorithm_kwargs)

    @property
    def layer_backend(self) -> str:
        """The backend the layers are built with: ``masked`` under ``polyak_prune``, else :attr:`backend`."""
        return "masked" if self.target_rule == "polyak_prune" else self.backend

    @property
    def is_sparse(self) -> bool:
        """Whether the networks have sparse layers at all."""
        return self.make_algorithm().sparse and bool(self.sparse_roles)

    def resolved_stop(self, total_gradient_steps: int | None) -> int | None:
        """``update_stop`` in gradient steps (a fraction is applied to ``total_gradient_steps``)."""
        stop = self.update_stop
        if isinstance(stop, float):
            if total_gradient_steps is None:
                return None
            return max(self.update_start, int(stop * total_gradient_steps))
        return stop

    def schedule(self, total_gradient_steps: int | None) -> UpdateSchedule:
        """The update schedule for a training of ``total_gradient_steps`` gradient steps."""
        stop = self.resolved_stop(total_gradient_steps)
        decay = self.drop_schedule
        if decay == "cosine" and stop is None:
            # Unknown length yet (before learn()): a placeholder until the stop is resolved.
            stop = max(self.update_start, 1)
        return UpdateSchedule(interval=self.update_interval, drop_fraction=self.drop_fraction,
                              start=self.update_start, stop=stop, decay=decay)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (YAML/JSON-friendly)."""
        data = dataclasses.asdict(self)
        data["sparse_roles"] = list(self.sparse_roles)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SparsityConfig:
        """Build from plain data; an unknown key raises ``ValueError`` naming the closest valid one."""
        valid = [f.name for f in dataclasses.fields(cls)]
        check_keys(data, valid, "unknown sparsity key {key}{hint}; valid keys: {accepted}")
        return cls(**dict(data))


def _presets(agent: str) -> dict[str, dict[str, Any]]:
    sokar_drop = 0.1 if agent == "sac" else 0.05
    strength_filter = dict(algorithm="strength_filter", algorithm_kwargs={"sharpness": 3.0, "exploration": 0.1},
                           density=0.2, distribution="uniform", sparse_roles=("input",), update_interval=1000,
                           drop_fraction=0.05, drop_schedule="constant", update_stop=None, init="dense_fan_in")
    return {
        "anf": dict(algorithm="set", algorithm_kwargs={"regrow_dropped": True}, density=0.2, distribution="uniform",
                    sparse_roles=("input",),
                    update_interval=1000, drop_fraction=0.05, drop_schedule="constant", update_stop=None,
                    init="dense_fan_in"),
        "static": dict(algorithm="static", density=0.2, distribution="uniform", sparse_roles=("input",),
                       init="dense_fan_in"),
        "all_layers": dict(algorithm="set_signed", algorithm_kwargs={"regrow_dropped": True},
                           density=0.5, distribution="erdos_renyi",
                           sparse_roles=("input", "hidden"), update_interval=1000, drop_fraction=sokar_drop,
                           drop_schedule="constant", update_stop=0.95, init="dense_fan_in",
                           target_rule="polyak_prune"),
        "rigl": dict(algorithm="rigl", density=0.1, distribution="erk", sparse_roles=("input", "hidden"),
                     update_interval=1000, drop_fraction=0.5, drop_schedule="cosine", update_stop=0.8),
        "strength_filter": strength_filter,
        "fit_input": dict(strength_filter, min_fan_in=FIT_INPUT_MIN_FAN_IN),
        "dense": dict(algorithm="dense", density=None, sparse_roles=()),
    }


PRESETS = tuple(_presets("sac"))


#: UpdateSchedule's argument names in its messages -> the SparsityConfig keys they come from
_SCHEDULE_KEYS = (("interval", "update_interval"), ("start", "update_start"), ("stop", "update_stop"),
                  ("drop_fraction", "drop_fraction"))


def _schedule_message(message: str) -> str:
    """An :class:`~sparse_rl.sparse.schedules.UpdateSchedule` error in the words of this config's keys."""
    for argument, key in _SCHEDULE_KEYS:
        if message.startswith(f"{argument} "):
            return key + message[len(argument):]
    if "drop-fraction decay" in message:
        return "drop_schedule: " + message.replace("drop-fraction decay", "drop schedule")
    if "'cosine' decay" in message:
        return "drop_schedule 'cosine' needs update_stop (where the drop fraction reaches 0); set one"
    return message


def resolve_sparsity(spec: str | Mapping[str, Any] | SparsityConfig | None, agent: str = "sac") -> SparsityConfig:
    """A :class:`SparsityConfig` from a preset name, a dict (optionally ``preset: NAME`` plus
    overrides), or a config; ``None`` means ``dense``. Overriding a preset's ``algorithm`` drops
    the preset's ``algorithm_kwargs`` (they are its algorithm's), unless given too.

    :param spec: what the user gave
    :param agent: ``sac`` or ``td3`` (presets differ slightly, following the papers)
    """
    if isinstance(spec, SparsityConfig):
        return spec
    if spec is None:
        spec = "dense"
    if not isinstance(spec, (str, Mapping)):
        raise ValueError(f"sparsity must be a preset name ({', '.join(PRESETS)}), a dict (e.g. {{'preset': 'anf', "
                         f"'density': 0.1}}) or a SparsityConfig, got {spec!r}")
    presets = _presets(agent)
    if isinstance(spec, str):
        check_choice(spec, presets, "sparsity preset")
        return SparsityConfig(**presets[spec])
    data = dict(spec)
    base: dict[str, Any] = {}
    if "preset" in data:
        name = data.pop("preset")
        check_choice(name, presets, "sparsity preset")
        base = dict(presets[name])
        if data.get("algorithm", base.get("algorithm")) != base.get("algorithm") and "algorithm_kwargs" not in data:
            base.pop("algorithm_kwargs", None)  # the preset's hyperparameters are its own algorithm's
    base.update(data)
    return SparsityConfig.from_dict(base)
