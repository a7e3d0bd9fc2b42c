"""The papers' whole methods: sparsity *and* training settings, in one place.

A sparsity preset (``sparsity="anf"``) says only which layers are sparse and how they rewire; the
paper's method also fixes the learning rate, batch size, warm-up, temperature, weight decay and
exploration noise. :data:`METHODS` holds both, and is the one source that the Python API
(:func:`make_agent`) and the YAML configs (a top-level ``method: anf_sac``, which
``configs/agents/*.yaml`` use) read::

    from sparse_rl.agents import make_agent

    model = make_agent("anf_sac", "HalfCheetah-v5", seed=0)            # ANF-SAC as in the paper
    control = make_agent("anf_sac", "HalfCheetah-v5", sparsity="static")  # same training, static topology
    model = make_agent("anf_td3", env, learning_starts=5_000)           # any SB3 argument overrides

What each contains (``METHODS[name]`` holds the exact values, ``departures`` where it differs
from its paper; ``docs/fidelity.md`` lists every departure of the library):

- ``anf_sac`` — Grooten et al. (AAMAS 2023), as their code runs it: sparsity preset ``anf``
  (input layers at density 0.2, SET ζ 0.05 every 1000 gradient steps, never stopped, a dropped
  connection may be drawn again); lr 1e-3, batch 100, 25k random warm-up, buffer 1M, τ 0.005,
  γ 0.99, weight decay 2e-4, fixed temperature 0.2, 2×256; every layer Xavier-uniform with zero
  biases; critic loss mse(Q1) + mse(Q2).
- ``anf_td3`` — the same with TD3: policy delay 2, target noise 0.2 clipped at 0.5, Gaussian
  exploration noise 0.1; torch's default init, as their TD3 code.
- ``ds_sac`` — Sokar et al. (IJCAI 2022): preset ``all_layers`` with ζ 0.1 and the paper's ε per
  MuJoCo task (:data:`DS_SAC_EPSILON`); ANF-SAC's training settings (the paper's SAC settings are
  not in our references).
- ``ds_td3`` — preset ``all_layers`` with ζ 0.05 and ε 7 (input) / 64 (hidden), their code's
  defaults (their README's command: 7 / 20); DS-TD3's code's training settings, which equal
  ANF-TD3's.
- ``rigl_sac`` — Graesser et al. (ICML 2022) as their gin files run it: preset ``rigl`` (ERK at
  90% sparsity, RigL cosine-decayed to 0 at 80%) with ζ 0.1 and sparse output layers, Glorot init,
  1k initial collect steps; rl-zoo3's MuJoCo SAC otherwise (lr 3e-4, batch 256, automatic
  temperature).

The dense control with a method's training settings is ``make_agent(name, env, sparsity="dense")``
(for ``anf_sac``: the authors' own dense SAC, Xavier init and summed critic loss included).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.noise import NormalActionNoise

from sparse_rl._util.validation import check_choice
from sparse_rl.agents.sac import SparseSAC
from sparse_rl.agents.td3 import SparseTD3

#: DS-SAC's Erdős–Rényi ε (input layer, hidden layer) per MuJoCo task (Sokar et al., IJCAI 2022,
#: appendix); other tasks get the global density of the ``all_layers`` preset
DS_SAC_EPSILON: dict[str, tuple[int, int]] = {
    "HalfCheetah": (12, 80), "Hopper": (7, 20), "Walker2d": (12, 80), "Ant": (30, 64), "Humanoid": (61, 64),
}
#: DS-TD3's ε (input, hidden): the default of Sokar et al.'s TD3 experiments, about 50% sparsity at 2×256
DS_TD3_EPSILON = (7, 64)

#: DS-TD3's ε as the command in Sokar et al.'s README runs it (about 81% sparse at 2×256)
DS_TD3_README_EPSILON = (7, 20)

#: Grooten et al. (AAMAS 2023), ANF-SAC and ANF-TD3 (their code's values); Sokar et al.'s DS-TD3
#: code uses the same TD3 settings (lr 1e-3, weight decay 2e-4, batch 100, 25k warm-up)
_GROOTEN_COMMON: dict[str, Any] = {
    "learning_rate": 1e-3, "buffer_size": 1_000_000, "learning_starts": 25_000, "batch_size": 100,
    "tau": 0.005, "gamma": 0.99, "train_freq": 1, "gradient_steps": 1, "replay_noise": "fresh",
    "policy_kwargs": {"optimizer_kwargs": {"weight_decay": 2e-4}},
}
#: their SAC code (ANF-SAC and the dense SAC alike): every layer Xavier-uniform with zero biases, and
#: the critic's loss mse(Q1) + mse(Q2) (SB3's is half that)
_GROOTEN_SAC = {**_GROOTEN_COMMON, "ent_coef": 0.2, "critic_loss_scale": 1.0,
                "policy_kwargs": {"optimizer_kwargs": {"weight_decay": 2e-4}, "weight_init": "xavier_uniform"}}
#: their TD3 code keeps torch's default init; its critic loss is already SB3's TD3's (mse + mse)
_GROOTEN_TD3 = {**_GROOTEN_COMMON, "policy_delay": 2, "target_policy_noise": 0.2, "target_noise_clip": 0.5}
#: SAC as Graesser et al.'s released gin files run it: Glorot init, 1k initial collect steps; the
#: rest rl-zoo3's MuJoCo SAC (lr 3e-4, batch 256, automatic temperature)
_GRAESSER_SAC: dict[str, Any] = {
    "learning_rate": 3e-4, "buffer_size": 1_000_000, "learning_starts": 1_000, "batch_size": 256,
    "tau": 0.005, "gamma": 0.99, "train_freq": 1, "gradient_steps": 1, "ent_coef": "auto",
    "policy_kwargs": {"weight_init": "xavier_uniform"},
}

#: Where every method based on Grooten et al.'s code departs from it (docs/fidelity.md has the reasons).
_GROOTEN_DEPARTURES = (
    "Optimizer: their default is plain Adam, whose moments keep collecting the gradients of inactive "
    "weights (the mask is reapplied after each step), so a regrown weight starts at 0 with live moments; "
    "here inactive weights get no gradient and the moments of regrown weights are zeroed (their "
    "'maskadam' option, which the released checkpoint's name shows; the csr backend stores no inactive "
    "weights). Adam's step counter is per tensor in both.",
    "Budget: their 1M training steps come after the 25k random steps; total_timesteps counts both "
    "(SB3's convention): the paper's protocol is total_timesteps 1,025,000.",
    "Targets take the online mask after each update (their code: Polyak on the dense tensors, then "
    "pruned by magnitude); sparsity.target_rule: polyak_prune gives theirs.",
    "Topology updates every 1000 gradient steps from step 1000 (theirs at steps 2, 1002, 2002...), "
    "dropping round(0.05 nnz) (theirs int(0.05 nnz) + 1).",
    "Noise: the env emits it with the observation and every replayed observation gets fresh noise "
    "(replay_noise: fresh); theirs is drawn afresh inside the network at every forward pass, so within one "
    "gradient step their actor and critics see different noise for the same state, ours the same.",
    "Inputs ceil(n_real / (1 - f)) exactly (env.count_rule: float gives their float arithmetic, one more "
    "input at some levels).",
)
@dataclass(frozen=True)
class Method:
    """One paper's method: agent, sparsity and training settings.

    :param name: the registry name (``anf_sac``…)
    :param title: the paper's name for it (``ANF-SAC``…)
    :param agent: ``sac`` or ``td3``
    :param sparsity: a sparsity preset with overrides (``{"preset": "anf"}``), see
        :func:`~sparse_rl.agents.sparsity.resolve_sparsity`
    :param hyperparams: keyword arguments of SB3's ``SAC`` / ``TD3`` (``policy_kwargs`` included)
    :param action_noise_sigma: Gaussian exploration noise (TD3), ``None`` for none
    :param net_arch: hidden layers of actor and critics
    :param source: the paper
    :param departures: where this method departs from the paper's code, in one sentence each
    :param per_task_sparsity: sparsity overrides per task name (DS-SAC's ε per MuJoCo task)
    """

    name: str
    title: str
    agent: str
    sparsity: dict[str, Any]
    hyperparams: dict[str, Any]
    action_noise_sigma: float | None = None
    net_arch: tuple[int, ...] = (256, 256)
    source: str = ""
    departures: tuple[str, ...] = field(default_factory=tuple)
    per_task_sparsity: dict[str, dict[str, Any]] = field(default_factory=dict)

    def sparsity_for(self, env_id: str | None) -> dict[str, Any]:
        """The sparsity for a task: :attr:`sparsity`, updated by :attr:`per_task_sparsity` for the
        task's name (the env id before its version, ``HalfCheetah`` of ``HalfCheetah-v5``)."""
        sparsity = copy.deepcopy(self.sparsity)
        if env_id:
            sparsity.update(copy.deepcopy(self.per_task_sparsity.get(env_id.split("-")[0], {})))
        return sparsity

    def config_fragment(self, env_id: str | None = None) -> dict[str, Any]:
        """The part of an experiment config this method fixes (``agent``, ``sparsity``,
        ``net_arch``): what a top-level ``method:`` key in a YAML config expands to."""
        noise = None if self.action_noise_sigma is None else {"kind": "normal", "sigma": self.action_noise_sigma}
        agent = {"algorithm": self.agent, "hyperparams": copy.deepcopy(self.hyperparams), "action_noise": noise}
        return {"agent": agent, "sparsity": self.sparsity_for(env_id), "net_arch": list(self.net_arch)}


METHODS: dict[str, Method] = {method.name: method for method in (
    Method("anf_sac", "ANF-SAC", "sac", {"preset": "anf"}, _GROOTEN_SAC,
           source="Grooten et al., Automatic Noise Filtering with Dynamic Sparse Training in Deep RL (AAMAS 2023)",
           departures=_GROOTEN_DEPARTURES),
    Method("anf_td3", "ANF-TD3", "td3", {"preset": "anf"}, _GROOTEN_TD3, action_noise_sigma=0.1,
           source="Grooten et al. (AAMAS 2023)",
           departures=_GROOTEN_DEPARTURES),
    Method("ds_sac", "DS-SAC", "sac", {"preset": "all_layers", "drop_fraction": 0.1}, _GROOTEN_SAC,
           per_task_sparsity={task: {"density": None, "epsilon": {"input": eps[0], "hidden": eps[1]}}
                              for task, eps in DS_SAC_EPSILON.items()},
           source="Sokar et al., Dynamic Sparse Training for Deep Reinforcement Learning (IJCAI 2022)",
           departures=("Training settings: the paper's SAC appendix is not in our references; we use ANF-SAC's "
                       "(Grooten et al. build on Sokar et al.'s code).",
                       "Adam's moments are reset at regrown weights (their code does not).",
                       "Updates stop at 95% of training (their 50k steps before the end of 1M).")),
    Method("ds_td3", "DS-TD3", "td3",
           {"preset": "all_layers", "drop_fraction": 0.05, "density": None,
            "epsilon": {"input": DS_TD3_EPSILON[0], "hidden": DS_TD3_EPSILON[1]}},
           _GROOTEN_TD3, action_noise_sigma=0.1, source="Sokar et al. (IJCAI 2022)",
           departures=("Adam's moments are reset at regrown weights (their code does not).",
                       "Updates stop at 95% of training (their 50k steps before the end of 1M).",
                       "ε 7 (input) / 64 (hidden) are their code's defaults (about 50% sparse); the command "
                       "in their README runs 7 / 20 (about 81% sparse): sparsity.epsilon: {input: 7, "
                       "hidden: 20} gives that.")),
    Method("rigl_sac", "RigL-SAC", "sac",
           {"preset": "rigl", "drop_fraction": 0.1, "sparse_roles": ["input", "hidden", "output"]}, _GRAESSER_SAC,
           source="Graesser et al., The State of Sparse Training in Deep Reinforcement Learning (ICML 2022)",
           departures=("Reward scale: their gin files scale rewards by 0.1; not offered here (use a gymnasium "
                       "TransformReward wrapper).",
                       "Learning rate, batch size and automatic temperature: rl-zoo3's MuJoCo SAC; their "
                       "gin's optimizer settings are not in our references.",
                       "RigL grows among positions free before the update (their code may regrow a "
                       "connection it just dropped, with weight zero).")),
)}


def get_method(name: str | Method) -> Method:
    """The method registered as ``name`` (an instance passes through); an unknown name raises
    ``ValueError`` listing the known ones."""
    if isinstance(name, Method):
        return name
    check_choice(name, METHODS, "method")
    return METHODS[name]


def method_kwargs(method: str | Method, env_id: str | None, n_actions: int | None,
                  sparsity: Any = None, **overrides: Any) -> dict[str, Any]:
    """The constructor arguments of ``SparseSAC`` / ``SparseTD3`` for a method: its
    hyperparameters, ``net_arch`` in ``policy_kwargs``, its exploration noise, its sparsity (or
    ``sparsity`` instead), then ``overrides`` (``policy_kwargs`` merged key by key)."""
    method = get_method(method)
    kwargs = copy.deepcopy(method.hyperparams)
    policy_kwargs = {**kwargs.pop("policy_kwargs", {}), "net_arch": list(method.net_arch)}
    policy_kwargs.update(overrides.pop("policy_kwargs", None) or {})
    kwargs.update(policy_kwargs=policy_kwargs, sparsity=method.sparsity_for(env_id) if sparsity is None else sparsity)
    if method.action_noise_sigma is not None and n_actions is not None:
        kwargs["action_noise"] = NormalActionNoise(mean=np.zeros(n_actions),
                                                   sigma=method.action_noise_sigma * np.ones(n_actions))
    kwargs.update(overrides)
    return kwargs


def make_agent(method: str | Method, env: Any, sparsity: Any = None, **overrides: Any) -> Any:
    """A ``SparseSAC`` / ``SparseTD3`` set up as a paper's method (:data:`METHODS`).

    :param method: ``anf_sac``, ``anf_td3``, ``ds_sac``, ``ds_td3`` or ``rigl_sac``
    :param env: an env, a VecEnv or a gymnasium id
    :param sparsity: another sparsity than the method's (``"static"``, ``"dense"`` for the
        controls with the same training settings), or ``None``
    :param overrides: any argument of SB3's ``SAC`` / ``TD3`` (``seed``, ``learning_starts``…)
    :return: the agent, not trained yet
    """
    method = get_method(method)
    agent_class = SparseSAC if method.agent == "sac" else SparseTD3
    env_id = env if isinstance(env, str) else _env_id(env)
    model_env = env
    if isinstance(env, str):
        model_env = gym.make(env)
    n_actions = int(np.prod(model_env.action_space.shape))
    return agent_class("MlpPolicy", model_env, **method_kwargs(method, env_id, n_actions, sparsity, **overrides))


def _env_id(env: Any) -> str | None:
    spec = getattr(getattr(env, "unwrapped", env), "spec", None)
    if spec is None and hasattr(env, "get_attr"):
        try:
            spec = env.get_attr("spec", indices=[0])[0]
        except Exception:  # noqa: BLE001 - a VecEnv that cannot say: no per-task values
            spec = None
    return getattr(spec, "id", None)
