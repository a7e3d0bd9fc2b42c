"""Building what a run trains: the vectorized env (:func:`build_env`) and the agent
(:func:`agent_class`, :func:`agent_kwargs`, :func:`build_model`) from an
:class:`~sparse_rl.experiment.config.ExperimentConfig`."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from sparse_rl.agents.buffers import noise_free_buffer_args
from sparse_rl.experiment.config import ExperimentConfig
from sparse_rl.experiment.errors import ConfigError

#: config keys a resumed run may change (anything else must equal the checkpoint's config)



def build_env(config: ExperimentConfig, seed: int, permuted: bool | None = None, training: bool = False,
              render_mode: str | None = None) -> Any:
    """A VecEnv (each env with SB3's ``Monitor``) of the configured environment: one env in a
    ``DummyVecEnv``, or for training (``training=True``) the config's ``n_envs`` in its ``vec_env``
    class, env ``i`` seeded with ``seed + i``.

    The noise of an extremely noisy env is seeded apart from the resets: env ``i`` of the training
    envs draws ``derive_noise_seed(seed, "train", i)`` and an evaluation env
    ``derive_noise_seed(seed, "eval", 0)`` (:func:`~sparse_rl.envs.noise.streams.derive_noise_seed`), so
    no two envs of any runs share a noise stream.

    :param config: the experiment
    :param seed: seeds its resets, action space and noise
    :param permuted: for an env with a feature permutation, force the phase (``True``: permuted from
        the start, ``False``: never); ``None`` keeps the config's schedule
    :param training: build the training envs (``n_envs``, ``vec_env``) instead of one
    :param render_mode: gymnasium's ``render_mode`` (e.g. ``rgb_array`` for videos)
    :raises ConfigError: if the env cannot be built
    """
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    env_config = config.env
    if permuted is not None and env_config.permute_at_step is not None:
        env_config = dataclasses.replace(env_config, permute_at_step=0 if permuted else None)
    if render_mode is not None:
        env_config = dataclasses.replace(env_config, make_kwargs={**env_config.make_kwargs, "render_mode": render_mode})
    n_envs = config.n_envs if training else 1
    role = "train" if training else "eval"
    first = _make_one_env(config.env.id, env_config, seed, role, 0)  # built here: a config error shows first
    factories = [lambda: Monitor(first)] + [
        (lambda i=i: Monitor(_make_one_env(config.env.id, env_config, seed, role, i))) for i in range(1, n_envs)]
    if training and config.vec_env == "subproc":
        first.close()
        factories[0] = lambda: Monitor(_make_one_env(config.env.id, env_config, seed, role, 0))
        vec_env = SubprocVecEnv(factories)
    else:
        vec_env = DummyVecEnv(factories)
    vec_env.seed(seed)
    return vec_env


def _make_one_env(env_id: str, env_config: Any, seed: int, role: str, index: int) -> Any:
    """Env ``index`` of ``role`` (``train``/``eval``): reset and action-space seed ``seed + index``,
    its noise seeded by ``(seed, role, index)``."""
    from sparse_rl.envs.factory import make_env
    from sparse_rl.envs.noise.streams import derive_noise_seed

    try:
        return make_env(env_config, seed=seed + index, noise_seed=derive_noise_seed(seed, role, index))
    except (ValueError, TypeError, ImportError) as error:
        raise ConfigError(f"env: cannot build {env_id!r}: {' '.join(str(error).split())}") from None
    except Exception as error:  # noqa: BLE001 - gymnasium raises many kinds (e.g. a missing dependency)
        raise ConfigError(f"env: cannot build {env_id!r}: {type(error).__name__}: {error}") from None


def agent_class(config: ExperimentConfig) -> type:
    """:class:`~sparse_rl.agents.SparseSAC` or :class:`~sparse_rl.agents.SparseTD3`; with
    ``agent.implementation: sb3``, ``stable_baselines3.SAC`` or ``TD3``.

    :param config: the experiment
    """
    from sparse_rl.agents.loading import agent_class as _agent_class

    return _agent_class(config.agent.algorithm, config.agent.implementation)


def agent_kwargs(config: ExperimentConfig, n_actions: int) -> dict[str, Any]:
    """Keyword arguments of the agent's constructor from the config (``policy``/``env`` aside).

    :param config: the experiment
    :param n_actions: the action dimension (for the exploration noise)
    """
    import torch.nn as nn

    kwargs = {key: value for key, value in config.agent.hyperparams.items() if key != "policy_kwargs"}
    policy_kwargs = dict(config.agent.hyperparams.get("policy_kwargs") or {})
    if config.net_arch is not None:
        policy_kwargs["net_arch"] = config.net_arch
    activations = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU,
                   "silu": nn.SiLU}
    if isinstance(policy_kwargs.get("activation_fn"), str):
        policy_kwargs["activation_fn"] = activations[policy_kwargs["activation_fn"]]
    if isinstance(policy_kwargs.get("net_arch"), tuple):
        policy_kwargs["net_arch"] = list(policy_kwargs["net_arch"])
    if isinstance(kwargs.get("train_freq"), list):
        kwargs["train_freq"] = tuple(kwargs["train_freq"])
    kwargs.update(policy_kwargs=policy_kwargs, action_noise=action_noise(config, n_actions),
                  sparsity=config.sparsity, seed=config.seed, device=config.device, verbose=config.run.verbose)
    if config.agent.implementation == "sb3":
        del kwargs["sparsity"]
        kwargs.pop("store_noise", None)
        kwargs.pop("replay_noise", None)
        _drop_sparse_rl_only(kwargs)
    return kwargs


#: sparse_rl's training options that SB3's own SAC / TD3 do not take, with the value that is SB3's
#: behaviour: (where, key, SB3's value)
_SPARSE_RL_ONLY = (("agent.hyperparams", "critic_loss_scale", 0.5),
                   ("agent.hyperparams.policy_kwargs", "weight_init", "torch"))


def _drop_sparse_rl_only(kwargs: dict[str, Any]) -> None:
    """For ``agent.implementation: sb3``: remove the options SB3 does not take where they ask for
    SB3's own behaviour; a :class:`ConfigError` where they ask for another (a method's
    ``critic_loss_scale: 1.0`` or ``weight_init: xavier_uniform``), since SB3 would ignore it."""
    for where, key, sb3_value in _SPARSE_RL_ONLY:
        holder = kwargs["policy_kwargs"] if where.endswith("policy_kwargs") else kwargs
        if key not in holder:
            continue
        value = holder.pop(key)
        if value != sb3_value:
            raise ConfigError(
                f"{where}.{key} is {value!r}, which SB3's own {'SAC/TD3'} cannot do (agent.implementation: sb3); "
                f"use sparse_rl's agent with sparsity: dense (SB3's algorithm, parameter-identical to it at "
                f"{key}: {sb3_value!r}), or set {where}.{key}: {sb3_value!r}")


def sb3_replay_buffer(config: ExperimentConfig, env: Any) -> dict[str, Any]:
    """For ``agent.implementation: sb3`` on an extremely noisy env: the ``replay_buffer_class`` /
    ``replay_buffer_kwargs`` that keep SB3's agent from storing the noise (as SparseSAC/SparseTD3
    do by themselves), replaying the noise as ``agent.hyperparams.replay_noise`` says; empty without
    noise or with ``agent.hyperparams.store_noise: true``.

    :param config: the experiment
    :param env: the training VecEnv
    """
    hyperparams = config.agent.hyperparams
    return noise_free_buffer_args(env, bool(hyperparams.get("store_noise")), hyperparams.get("replay_noise", "stored"))


def action_noise(config: ExperimentConfig, n_actions: int) -> Any:
    """The exploration noise object for ``agent.action_noise`` (``None`` if not set).

    :param config: the experiment
    :param n_actions: the action dimension
    """
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    noise = config.agent.action_noise
    if noise is None:
        return None
    kind = {"normal": NormalActionNoise, "ornstein_uhlenbeck": OrnsteinUhlenbeckActionNoise}[noise.kind]
    return kind(mean=np.zeros(n_actions), sigma=noise.sigma * np.ones(n_actions))


def build_model(config: ExperimentConfig, env: Any) -> Any:
    """A new agent for ``config`` on ``env``.

    :param config: the experiment
    :param env: the training VecEnv
    :raises ConfigError: if SB3 rejects a hyperparameter value
    """
    cls = agent_class(config)
    kwargs = agent_kwargs(config, int(np.prod(env.action_space.shape)))
    if config.agent.implementation == "sb3":
        kwargs.update(sb3_replay_buffer(config, env))
    try:
        return cls("MlpPolicy", env, **kwargs)
    except (ValueError, TypeError, AssertionError, KeyError) as error:
        raise ConfigError(f"cannot build a {cls.__name__} from agent.hyperparams / sparsity / net_arch: "
                          f"{type(error).__name__}: {' '.join(str(error).split())}") from None


def _set_threads(config: ExperimentConfig) -> None:
    """Set torch's threads, and check the device (before anything is built)."""
    check_device(config)
    if config.torch_threads is not None:
        import torch

        torch.set_num_threads(config.torch_threads)


def check_device(config: ExperimentConfig) -> None:
    """A :class:`ConfigError` if ``device`` names an accelerator this machine lacks (torch would
    otherwise fail late, or SB3 fall back to the CPU without a word).

    :param config: the experiment
    """
    import torch

    device = config.device
    if device.startswith("cuda"):
        index = int(device.split(":")[1]) if ":" in device else 0
        if not torch.cuda.is_available():
            raise ConfigError(f"device is {device!r} but torch finds no CUDA GPU here (torch {torch.__version__}); "
                              "use device: cpu, or auto")
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device is {device!r} but this machine has {torch.cuda.device_count()} CUDA GPU(s); "
                              f"use cuda:0..cuda:{torch.cuda.device_count() - 1}")
    if device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ConfigError("device is 'mps' but torch finds no Apple GPU (MPS) here; use device: cpu, or auto")
