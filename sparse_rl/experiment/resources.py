"""What a run will need in memory, checked against the machine before anything big is built.

An extremely noisy env with ``noise_fraction`` close to 1 has ``ceil(n_real / (1 - f))`` inputs:
``f = 0.999999`` on Pendulum is three million. :func:`check_resources` estimates, from the config and
the env's real observation size, the bytes of the input layers (with their
gradients, Adam moments and index arrays), the replay buffer and the sampled batches, and refuses
the run (a :class:`~sparse_rl.experiment.config.ConfigError`, exit code 2) when they exceed the memory
available now. It counts the big allocations only (hidden layers, activations and transient copies
are left out): on Pendulum at 300,000 inputs (the quick ANF-SAC config, f = 0.99999) it estimates
2.5 GB where the run peaked at 2.9 GB (maximum resident set, 560 steps). A run it refuses cannot fit; one
it accepts may still be a little too big.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparse_rl.experiment.config import ExperimentConfig
from sparse_rl.experiment.errors import ConfigError

_FLOAT = 4
_GIB = float(1 << 30)
#: bytes per connection of a csr layer: online (values, gradient, Adam's two moments, flat index,
#: the kernels' slots and columns, the transposed pattern) and target (values and indices)
_CSR_ONLINE = 48
_CSR_TARGET = 36
#: Python, torch and Stable-Baselines3 themselves
BASELINE = 1 << 29
#: one more environment in a vector env (a MuJoCo model and data, the wrappers)
PER_ENV = 1 << 20
#: one more worker process of ``vec_env: subproc`` (a Python interpreter with numpy, gymnasium, torch)
PER_PROCESS = 1 << 27


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run needs at least, by part.

    :param inputs: observation size (real features plus noise)
    :param real: real features
    :param networks: the input layers' weights, gradients and Adam moments (targets included)
    :param buffer: the replay buffer
    :param batches: one sampled batch (observations and next observations, with the noise)
    :param envs: the training envs beyond the first (:data:`PER_ENV` each; a process each under
        ``vec_env: subproc``, :data:`PER_PROCESS`) and their observations
    """

    inputs: int
    real: int
    networks: int
    buffer: int
    batches: int
    envs: int = 0

    @property
    def total(self) -> int:
        """All parts together, and the libraries' own memory (:data:`BASELINE`)."""
        return self.networks + self.buffer + self.batches + self.envs + BASELINE


def available_memory(cgroup_root: Path = Path("/sys/fs/cgroup"), proc: Path = Path("/proc")) -> int | None:
    """Bytes of memory this process may still take: the least of the machine's (``MemAvailable``
    of ``/proc/meminfo``, else the free physical pages), what its cgroup's limit leaves
    (:func:`cgroup_memory_left`: a container's or a job's limit) and what ``RLIMIT_AS`` leaves;
    ``None`` if none is known.

    :param cgroup_root: where the cgroup file systems are mounted
    :param proc: the proc file system
    """
    found = [value for value in (_machine_available(proc), cgroup_memory_left(cgroup_root, proc),
                                 _rlimit_left(proc)) if value is not None]
    return min(found) if found else None


def _machine_available(proc: Path) -> int | None:
    try:
        with (proc / "meminfo").open(encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


#: a cgroup limit at least this large means "no limit" (v1 writes 2**63 rounded to pages)
_UNLIMITED = 1 << 60


def cgroup_memory_left(cgroup_root: Path = Path("/sys/fs/cgroup"), proc: Path = Path("/proc")) -> int | None:
    """Bytes the memory limit of this process's cgroup leaves (limit minus usage; cgroup v2's
    ``memory.max`` and ``memory.current``, v1's ``memory.limit_in_bytes`` and ``memory.usage_in_bytes``),
    the smallest over the cgroup's directory and the mount's root; ``None`` without a limit.

    :param cgroup_root: where the cgroup file systems are mounted
    :param proc: the proc file system (``self/cgroup`` names the process's cgroups)
    """
    paths: dict[str, str] = {}
    try:
        for line in (proc / "self" / "cgroup").read_text(encoding="ascii").splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                paths[controller] = path.lstrip("/")
    except (OSError, ValueError):
        pass
    candidates = []
    for base, limit_name, usage_name, path in ((cgroup_root, "memory.max", "memory.current", paths.get("", "")),
                                               (cgroup_root / "memory", "memory.limit_in_bytes",
                                                "memory.usage_in_bytes", paths.get("memory", ""))):
        for directory in {base / path, base}:
            limit, usage = _read_int(directory / limit_name), _read_int(directory / usage_name)
            if limit is not None and limit < _UNLIMITED:
                candidates.append(max(0, limit - (usage or 0)))
    return min(candidates) if candidates else None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _rlimit_left(proc: Path) -> int | None:
    """What ``RLIMIT_AS`` (the address space's limit, ``ulimit -v``) leaves, ``None`` without one."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return None
        pages = int((proc / "self" / "statm").read_text(encoding="ascii").split()[0])
        return max(0, soft - pages * int(os.sysconf("SC_PAGE_SIZE")))
    except (ImportError, OSError, ValueError, IndexError):
        return None


def real_observation_size(config: ExperimentConfig) -> int | None:
    """The size of the env's own observation (before any noise), from a throw-away instance;
    ``None`` if the env cannot be made (building it for the run then says why).

    :param config: the experiment
    """
    import gymnasium as gym

    try:
        env = gym.make(config.env.id, **dict(config.env.make_kwargs or {}))
    except Exception:  # noqa: BLE001 - gymnasium raises many kinds (unknown id, missing dependency)
        return None
    try:
        shape = env.observation_space.shape or (0,)
        return int(math.prod(shape))
    finally:
        env.close()


def estimate_memory(config: ExperimentConfig, n_real: int) -> MemoryEstimate:
    """A lower bound of the memory ``config`` needs, with ``n_real`` real observation features.

    :param config: the experiment
    :param n_real: the env's own observation size
    """
    from sparse_rl.agents.sparsity import resolve_sparsity
    from sparse_rl.envs.wrappers import noise_feature_count

    env = config.env
    n_noise = 0
    if env.n_noise is not None:
        n_noise = int(env.n_noise)
    elif env.noise_fraction > 0:
        n_noise = noise_feature_count(n_real, env.noise_fraction, env.count_rule)
    inputs = n_real + n_noise
    hyper = config.agent.hyperparams
    hidden = _first_hidden(config)
    positions = inputs * hidden  # of one input layer (actor, each critic and its target)
    density, backend = 1.0, "dense"
    if config.agent.implementation != "sb3":
        sparsity = resolve_sparsity(config.sparsity, agent=config.agent.algorithm)
        if sparsity.is_sparse and "input" in sparsity.sparse_roles:
            value = sparsity.role_densities.get("input", sparsity.density)
            density = float(value) if value is not None else 0.0  # ε-based: tiny at many inputs; not counted
            if sparsity.min_fan_in is not None:  # the floor from the input count (e.g. fit_input)
                density = max(density, min(1.0, sparsity.min_fan_in / inputs))  # fan_in_floor's rule
            csr = sparsity.backend == "csr" or (sparsity.backend == "auto" and inputs >= 256 and density <= 0.3)
            backend = "csr" if csr else "masked"
    if backend == "csr":
        # values, gradient, two Adam moments, positions and the kernels' index arrays per connection
        # (online layers); values and indices (targets); one dense score per position in an update
        networks = int(positions * density * (3 * _CSR_ONLINE + 2 * _CSR_TARGET) + positions * 8)
    else:
        # weight, gradient, two Adam moments (and a mask) per position; weight (and mask) of the targets
        networks = positions * (3 * 17 + 2 * 5)
    buffer_size = int(hyper.get("buffer_size", 1_000_000))
    noise_free = (n_noise > 0 and not hyper.get("store_noise", False))
    if noise_free:
        per_transition = 2 * n_real * _FLOAT + 64
    else:
        per_transition = (1 if hyper.get("optimize_memory_usage") else 2) * inputs * _FLOAT + 64
    batch = int(hyper.get("batch_size", 256))
    # observations and next observations, each as drawn (noise regenerated), as a tensor, feature-major
    n_envs = int(getattr(config, "n_envs", 1))
    envs = (n_envs - 1) * (PER_PROCESS if getattr(config, "vec_env", "dummy") == "subproc" else PER_ENV) + \
        4 * n_envs * inputs * _FLOAT  # observations, next observations, and their copies in SB3's loop
    return MemoryEstimate(inputs=inputs, real=n_real, networks=networks,
                          buffer=buffer_size * per_transition, batches=3 * 2 * batch * inputs * _FLOAT, envs=envs)


def check_resources(config: ExperimentConfig, available: int | None = None) -> MemoryEstimate | None:
    """Refuse a run that cannot fit in memory (not an env that cannot be made, which building it
    reports).

    :param config: the experiment
    :param available: bytes available (default: :func:`available_memory`)
    :return: the estimate (``None`` when nothing was checked)
    :raises ConfigError: naming the setting and the sizes, when the estimate exceeds ``available``
    """
    n_real = real_observation_size(config)
    if n_real is None:
        return None
    estimate = estimate_memory(config, n_real)
    available = available_memory() if available is None else available
    if available is None or estimate.total <= available:
        return estimate
    if config.env.has_noise:
        key = (f"env.n_noise={config.env.n_noise}" if config.env.n_noise is not None
               else f"env.noise_fraction={config.env.noise_fraction!r}")
    else:
        key = f"n_envs={config.n_envs}" if estimate.envs > estimate.buffer else \
            f"agent.hyperparams.buffer_size={config.agent.hyperparams.get('buffer_size', 1_000_000)}"
    raise ConfigError(
        f"{key} makes {estimate.inputs:,} inputs ({estimate.real} real): the run needs at least "
        f"{estimate.total / _GIB:.1f} GiB (input layers "
        f"{estimate.networks / _GIB:.1f}, replay buffer {estimate.buffer / _GIB:.1f}, batches "
        f"{estimate.batches / _GIB:.1f}, envs {estimate.envs / _GIB:.1f}) but {available / _GIB:.1f} GiB of memory "
        f"is available (the least of the machine's, this process's cgroup limit and its ulimit); lower "
        f"{key.split('=')[0]}, n_envs, agent.hyperparams.buffer_size, batch_size or net_arch")


def _first_hidden(config: ExperimentConfig) -> int:
    """The width of the first hidden layer (of the actor or the critics, the larger)."""
    arch: Any = config.net_arch
    if arch is None:
        arch = (config.agent.hyperparams.get("policy_kwargs") or {}).get("net_arch")
    if arch is None:
        return 256  # SB3's default for SAC and TD3 ([256, 256]; the paper's TD3 [400, 300] is larger)
    if isinstance(arch, dict):
        firsts = [int(layers[0]) for layers in arch.values() if layers]
        return max(firsts) if firsts else 0
    return int(arch[0]) if arch else 0
