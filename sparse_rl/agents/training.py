"""Dynamic sparse training inside SB3's off-policy loop, shared by SparseSAC and SparseTD3.

SB3 has no callback after each gradient step, so :meth:`SparseTrainingMixin.train` wraps SB3's
``train``: it arms RigL's dense-gradient capture before, and advances the topology updaters by the
number of gradient steps after. With SB3's defaults (one gradient step per ``train`` call) an
update happens exactly every ``update_interval`` gradient steps; with several gradient steps per
call it happens at the end of the call in which the interval is crossed.

The actor and the critic have one :class:`~sparse_rl.sparse.topology.TopologyUpdater` each, each
resetting its own optimizer's state. The target networks follow their online network's masks
after every update (their weights at dropped positions are zeroed; ``target_rule="online_mask"``),
or, as in the references' code (``target_rule="polyak_prune"``), are Polyak-averaged on the dense
tensors and pruned back to the online count by magnitude after every gradient step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.type_aliases import MaybeCallback

from sparse_rl._util.validation import check_choice
from sparse_rl.agents.buffers import REPLAY_NOISE, NoiseFreeReplayBuffer, noise_free_buffer_args
from sparse_rl.agents.networks import input_layers, linear_layers, policy_networks
from sparse_rl.agents.policies import SparsePolicyMixin
from sparse_rl.agents.sparsity import SparsityConfig, resolve_sparsity
from sparse_rl.sparse.connectivity import FilteringMetrics, filtering_metrics
from sparse_rl.sparse.layers import SparseLinear, layers_built_for
from sparse_rl.sparse.topology import TopologyUpdate, TopologyUpdater, sparse_layers

TopologyListener = Callable[[str, TopologyUpdate], None]


class SparseTrainingMixin:
    """Turns an SB3 off-policy actor-critic (SAC, TD3) into its dynamic sparse version.

    :param sparsity: a preset name (``anf``, ``all_layers``, ``rigl``, ``static``, ``dense``), a
        dict (optionally ``preset: NAME`` plus overrides) or a :class:`SparsityConfig`
    :param store_noise: on an extremely noisy env, store the noise features in the replay buffer
        like SB3 does (default ``False``: store the real features and regenerate the noise, see
        :class:`~sparse_rl.agents.buffers.NoiseFreeReplayBuffer`)
    :param replay_noise: on an extremely noisy env, the noise of a replayed observation: ``stored``
        (the default: the noise the agent saw) or ``fresh`` (new noise each time it is sampled, as
        Grooten et al.'s code draws it inside the network; the papers' methods use it)
    """

    agent_kind: str = "sac"
    sparsity: SparsityConfig
    topology_updaters: dict[str, TopologyUpdater]
    topology_state: dict[str, Any] | None = None
    _scales_measured_at: int | None = None
    planned_gradient_steps: int | None = None

    def __init__(self, policy: Any, env: Any, *args: Any,
                 sparsity: str | dict[str, Any] | SparsityConfig | None = "anf", store_noise: bool = False,
                 replay_noise: str = "stored", **kwargs: Any) -> None:
        self.sparsity = resolve_sparsity(sparsity, agent=self.agent_kind)
        self.store_noise = store_noise
        self.replay_noise = check_choice(replay_noise, REPLAY_NOISE, "replay_noise")
        if isinstance(policy, type) and not issubclass(policy, SparsePolicyMixin):
            raise ValueError(
                f"{type(self).__name__} needs a sparse policy (e.g. 'MlpPolicy'), got {policy.__name__}; "
                "use stable_baselines3's own algorithm for a plain dense policy")
        policy_kwargs = dict(kwargs.pop("policy_kwargs", None) or {})
        policy_kwargs["sparsity"] = self.sparsity.to_dict()
        self._topology_listeners: list[TopologyListener] = []
        super().__init__(policy, env, *args, policy_kwargs=policy_kwargs, **kwargs)  # type: ignore[call-arg]

    # -- construction -------------------------------------------------------------------------
    def _setup_model(self) -> None:
        self._choose_replay_buffer()
        with layers_built_for(self.device):  # type: ignore[attr-defined]  # `auto` backends pick for it
            super()._setup_model()  # type: ignore[misc]
        if not hasattr(self, "_topology_listeners"):
            self._topology_listeners = []
        for optimizer in self._optimizers():
            prefer_foreach(optimizer)
        self._build_topology_updaters()
        if self.topology_state:
            for name, state in self.topology_state.items():
                self.topology_updaters[name].load_state_dict(state)
        self._logged_initial_sparsity = False

    def _choose_replay_buffer(self) -> None:
        """Use :class:`NoiseFreeReplayBuffer` on an extremely noisy env unless told to store the noise
        (``store_noise=True``) or given another buffer class."""
        if self.replay_buffer_class is not None or self.env is None:  # type: ignore[attr-defined]
            return
        replay_noise = getattr(self, "replay_noise", "stored")  # models saved before the option: stored
        args = noise_free_buffer_args(self.env, self.store_noise, replay_noise)  # type: ignore[attr-defined]
        if args:
            self.replay_buffer_class = args["replay_buffer_class"]
            self.replay_buffer_kwargs = {**self.replay_buffer_kwargs, **args["replay_buffer_kwargs"]}  # type: ignore[has-type]

    def _build_topology_updaters(self) -> None:
        schedule = self.sparsity.schedule(self.planned_gradient_steps)
        base_seed = None if self.seed is None else int(self.seed) * 7919  # type: ignore[attr-defined]
        self.topology_updaters = {}
        algorithm = self.sparsity.make_algorithm()
        for offset, (name, online, target) in enumerate(self._online_and_target()):
            self.topology_updaters[name] = TopologyUpdater(
                online,
                optimizers=[online.optimizer],
                algorithm=algorithm,
                before_update=self._measure_input_scales if algorithm.uses_input_scale else None,
                schedule=schedule,
                followers=[target] if target is not None and self.sparsity.target_rule == "online_mask" else [],
                seed=None if base_seed is None else base_seed + offset,
            )

    def _optimizers(self) -> list[torch.optim.Optimizer]:
        """The agent's optimizers: the actor's, the critic's and SAC's temperature's, if any."""
        candidates = (self.actor.optimizer, self.critic.optimizer, getattr(self, "ent_coef_optimizer", None))  # type: ignore[attr-defined]
        return [optimizer for optimizer in candidates if optimizer is not None]

    def _online_and_target(self) -> list[tuple[str, Any, Any]]:
        return [
            ("actor", self.actor, getattr(self, "actor_target", None)),  # type: ignore[attr-defined]
            ("critic", self.critic, self.critic_target),  # type: ignore[attr-defined]
        ]

    def add_topology_listener(self, listener: TopologyListener) -> None:
        """Call ``listener(network_name, update)`` after every topology update (e.g. to snapshot
        the connectivity). Listeners are not saved with the model."""
        self._topology_listeners.append(listener)

    # -- training -----------------------------------------------------------------------------
    def _setup_learn(self, total_timesteps: int, callback: MaybeCallback = None,
                     reset_num_timesteps: bool = True, tb_log_name: str = "run",
                     progress_bar: bool = False) -> tuple[int, Any]:
        total, callback = super()._setup_learn(  # type: ignore[misc]
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)
        if isinstance(self.replay_buffer, NoiseFreeReplayBuffer):  # type: ignore[has-type]
            self.replay_buffer.bind_to(self.env)  # type: ignore[has-type, attr-defined]
        fractional_stop = isinstance(self.sparsity.update_stop, float)
        if fractional_stop and (reset_num_timesteps or self.planned_gradient_steps is None):
            self.planned_gradient_steps = self._estimate_gradient_steps(total)
            schedule = self.sparsity.schedule(self.planned_gradient_steps)
            for updater in self.topology_updaters.values():
                updater.schedule = schedule
        return total, callback

    def _estimate_gradient_steps(self, total_timesteps: int) -> int:
        """Gradient steps that ``learn(total_timesteps)`` will run (to place a fractional stop)."""
        n_envs = self.n_envs  # type: ignore[attr-defined]
        frequency = self.train_freq.frequency  # type: ignore[attr-defined]
        per_call = self.gradient_steps if self.gradient_steps > 0 else frequency * n_envs  # type: ignore[attr-defined]
        env_steps = max(0, total_timesteps - self.learning_starts)  # type: ignore[attr-defined]
        return max(1, int(env_steps / (frequency * n_envs) * per_call))

    def train(self, gradient_steps: int, *args: Any, **kwargs: Any) -> None:
        """SB3's gradient steps, then the topology updates that fall in them."""
        for updater in self.topology_updaters.values():
            updater.prepare(gradient_steps)
        super().train(gradient_steps, *args, **kwargs)  # type: ignore[misc]
        if self.sparsity.target_rule == "polyak_prune":
            self._prune_targets()
        if not self._logged_initial_sparsity:
            self._record_sparsity()
            self._logged_initial_sparsity = True
        updated = False
        for name, updater in self.topology_updaters.items():
            update = updater.step(gradient_steps)
            if update is not None:
                updated = True
                self.logger.record(f"sparsity/{name}/changed", update.changed)  # type: ignore[attr-defined]
                self.logger.record(f"sparsity/{name}/drop_fraction", update.drop_fraction)  # type: ignore[attr-defined]
                for listener in self._topology_listeners:
                    listener(name, update)
        if updated:  # once per call, however many updaters moved connections
            self._record_sparsity()

    @torch.no_grad()
    def _measure_input_scales(self, samples: int = 1024) -> None:
        """Give each input layer the root mean square of its inputs (observations; for the critics
        the actions after them), measured on a batch of the replay buffer."""
        buffer = getattr(self, "replay_buffer", None)
        if buffer is None or buffer.size() == 0 or self._scales_measured_at == self.num_timesteps:  # type: ignore[attr-defined]
            return  # measured already for this step (the actor's and the critic's updates share it)
        self._scales_measured_at = self.num_timesteps  # type: ignore[attr-defined]
        batch = buffer.sample(min(samples, buffer.size() * buffer.n_envs))
        observations = batch.observations.float()
        observation_rms = observations.pow(2).mean(dim=0).sqrt()
        action_rms = batch.actions.float().pow(2).mean(dim=0).sqrt()
        for layer in input_layers(self.policy).values():  # type: ignore[attr-defined]
            if not isinstance(layer, SparseLinear):
                continue
            scale = observation_rms if layer.in_features == observation_rms.numel() else torch.cat(
                [observation_rms, action_rms])
            if scale.numel() == layer.in_features:
                layer.input_scale = scale.to(next(layer.parameters()).device)

    @torch.no_grad()
    def _prune_targets(self) -> None:
        """The references' target rule (ANF's and DS-TD3's code): after Polyak averaging on the dense
        tensors (SB3's ``polyak_update``, over the masked layers' full weights), keep in each target
        layer the online layer's number of connections, those of largest magnitude. With several
        gradient steps per ``train`` call this runs once, after the last."""
        for _, online, target in self._online_and_target():
            if target is None:
                continue
            online_layers = sparse_layers(online)
            for name, layer in sparse_layers(target).items():
                keep = online_layers[name].nnz
                magnitude = layer.weight.detach().abs().reshape(-1)
                mask = torch.zeros_like(magnitude, dtype=torch.bool)
                mask[torch.topk(magnitude, keep, sorted=False).indices] = True
                layer.set_mask_(mask.view_as(layer.weight))

    # -- logging ------------------------------------------------------------------------------
    def network_densities(self) -> dict[str, float]:
        """Fraction of weights that exist in each online network (actor, qf0, qf1…)."""
        densities = {}
        for name, network in policy_networks(self.policy).items():  # type: ignore[attr-defined]
            layers = linear_layers(network).values()
            active = sum(int(layer.mask.sum()) if isinstance(layer, SparseLinear) else layer.weight.numel()
                         for layer in layers)
            densities[name] = active / sum(layer.weight.numel() for layer in layers)
        return densities

    def real_feature_mask(self) -> np.ndarray | None:
        """Which observation features are real, as the training env reports it (``None`` if it
        does not, e.g. an env without noise wrappers)."""
        env = self.get_env()  # type: ignore[attr-defined]
        if env is None:
            return None
        # has_attr rather than catching AttributeError: SubprocVecEnv raises other errors.
        if not env.has_attr("real_feature_mask"):
            return None
        mask = env.get_attr("real_feature_mask", indices=[0])[0]
        return None if mask is None else np.asarray(mask, dtype=bool)

    def input_filtering(self) -> dict[str, FilteringMetrics]:
        """How well each sparse input layer (actor, qf0, qf1…) has found the real features: mean
        in-degree of real vs noise columns, real fill, top-n_real strength precision, real share
        (:class:`~sparse_rl.sparse.connectivity.FilteringMetrics`). Empty when the env does not
        say which features are real."""
        observation_mask = self.real_feature_mask()
        if observation_mask is None:
            return {}
        metrics = {}
        for name, layer in input_layers(self.policy).items():  # type: ignore[attr-defined]
            if isinstance(layer, SparseLinear) and layer.in_features >= observation_mask.size:
                metrics[name] = filtering_metrics(layer.mask, layer.weight, observation_mask)
        return metrics

    def input_real_shares(self) -> dict[str, float]:
        """Share of each sparse input layer's connections that sit on real features (actions
        count as real for the critics' input layers)."""
        return {name: metrics.real_share for name, metrics in self.input_filtering().items()}

    def _record_sparsity(self) -> None:
        """Record densities and filtering metrics, and write them out at once (every logger
        format, at this step): called at the first gradient step and after every topology
        update, which SB3's own dumps would otherwise sample."""
        values = {f"sparsity/{name}/density": density for name, density in self.network_densities().items()}
        for name, metrics in self.input_filtering().items():
            values.update({f"sparsity/{name}/{key}": value for key, value in metrics.as_dict().items()})
        _dump_now(self.logger, values, step=self.num_timesteps)  # type: ignore[attr-defined]

    # -- saving -------------------------------------------------------------------------------
    def _excluded_save_params(self) -> list[str]:
        return super()._excluded_save_params() + ["topology_updaters", "_topology_listeners"]  # type: ignore[misc]

    def save(self, path: Any, exclude: Any = None, include: Any = None) -> None:
        """SB3's ``save``, with the topology updaters' state (step counters, RNG) included."""
        self.topology_state = {name: updater.state_dict() for name, updater in self.topology_updaters.items()}
        super().save(path, exclude=exclude, include=include)  # type: ignore[misc]


def prefer_foreach(optimizer: torch.optim.Optimizer) -> None:
    """Let ``optimizer`` update all its tensors per operation (``foreach``) where it left the choice to
    torch (``foreach=None``, which on the CPU means one tensor at a time, each operation a Python
    call): the same operations on the same numbers, bit for bit (torch's CPU ``_foreach_`` kernels
    apply the per-tensor operation to each tensor; ``tests/agents/test_training.py`` checks Adam's
    results, with weight decay), with fewer Python calls per step. An explicit ``foreach`` or
    ``fused`` choice, and optimizers without the option, are left as they are. Not saved with a model
    in any way that matters: a loaded optimizer takes its saved groups, and both paths give the same
    numbers."""
    for group in optimizer.param_groups:
        if "foreach" in group and group["foreach"] is None and not group.get("fused"):
            group["foreach"] = True


def _dump_now(logger: Any, values: dict[str, Any], step: int) -> None:
    """Write ``values`` to every output format of SB3's ``logger`` at ``step`` now, leaving what
    else was recorded since the last dump (losses the NaN guard reads, SB3's own scalars) to be
    dumped as usual."""
    pending = (dict(logger.name_to_value), dict(logger.name_to_count), dict(logger.name_to_excluded))
    logger.name_to_value.clear(), logger.name_to_count.clear(), logger.name_to_excluded.clear()
    for key, value in values.items():
        logger.record(key, value)
    logger.dump(step=step)
    for store, saved in zip((logger.name_to_value, logger.name_to_count, logger.name_to_excluded), pending):
        store.update({key: value for key, value in saved.items() if key not in values})
