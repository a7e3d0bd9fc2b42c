"""A SHA-256 of everything a short training run leaves behind: the check that a speed change is bit-identical.

Trains one of the papers' methods (:func:`~sparse_rl.agents.make_agent`) on HalfCheetah-v5 at a noise
fraction for ``--steps`` env steps (after ``--learning-starts`` random ones, one gradient step per env
step, topology updates every ``--update-interval`` gradient steps so that several happen), then hashes,
in a fixed order: every parameter and buffer of the policy (actor, critics, targets; the csr layers'
``values`` and ``flat_index``), every optimizer's state and hyperparameters, every array of the replay
buffer, the dense mask of every sparse layer, the topology updaters' counters and generators, and the
RNG states (torch, numpy, Python, the env's and its action space's). Run it before and after a change
with the same arguments: equal digests mean the change left every number as it was::

    PYTHONPATH=$PWD python scripts/digest_training.py --method anf_sac --noise-fraction 0.98 --batch-size 256
    PYTHONPATH=$PWD python scripts/digest_training.py --method anf_td3 --noise-fraction 0.98 --parts

``--parts`` also prints one digest per part (to find what differs).
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch


def train(method: str, noise_fraction: float, batch_size: int, steps: int, learning_starts: int,
          update_interval: int, seed: int = 0) -> Any:
    """The agent of ``method`` after ``learning_starts + steps`` env steps on HalfCheetah-v5 at
    ``noise_fraction``, its sparse layers rewired every ``update_interval`` gradient steps."""
    from sparse_rl.agents import make_agent
    from sparse_rl.envs import make_env

    setting = {"noise_fraction": noise_fraction} if noise_fraction > 0 else {}
    env = make_env({"id": "HalfCheetah-v5", **setting}, seed=seed)
    model = make_agent(method, env, seed=seed, batch_size=batch_size, learning_starts=learning_starts,
                       buffer_size=learning_starts + steps, sparsity={"preset": "anf",
                                                                      "update_interval": update_interval})
    model.learn(learning_starts + steps)
    return model


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    """A tensor's dtype, shape and raw bytes."""
    shape = tuple(tensor.shape)
    tensor = tensor.detach().cpu().contiguous().reshape(-1)
    header = f"{tensor.dtype}{tuple(shape)}".encode()
    return header + tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else header


def _value_bytes(value: Any) -> bytes:
    """Bytes of a tensor, array, or anything else picklable (nested containers walked in order)."""
    if isinstance(value, torch.Tensor):
        return _tensor_bytes(value)
    if isinstance(value, np.ndarray):
        return f"{value.dtype}{value.shape}".encode() + np.ascontiguousarray(value).tobytes()
    if isinstance(value, dict):
        return b"{" + b",".join(repr(key).encode() + b":" + _value_bytes(value[key]) for key in value) + b"}"
    if isinstance(value, (list, tuple)):
        return b"[" + b",".join(_value_bytes(item) for item in value) + b"]"
    return pickle.dumps(value, protocol=4)


def parts(model: Any) -> Iterator[tuple[str, bytes]]:
    """``(name, bytes)`` of every part of the run's state that the digest covers, in a fixed order."""
    from sparse_rl.sparse.layers import SparseLinear

    for name, tensor in model.policy.state_dict().items():
        yield f"policy/{name}", _tensor_bytes(tensor)
    for label in ("actor", "critic"):
        optimizer = getattr(model, label).optimizer
        yield f"optimizer/{label}", _value_bytes(optimizer.state_dict())
    if getattr(model, "ent_coef_optimizer", None) is not None:
        yield "optimizer/ent_coef", _value_bytes(model.ent_coef_optimizer.state_dict())
    buffer = model.replay_buffer
    for name in sorted(vars(buffer)):
        if isinstance(getattr(buffer, name), np.ndarray):
            yield f"replay/{name}", _value_bytes(getattr(buffer, name))
    yield "replay/pos", _value_bytes((buffer.pos, buffer.full))
    for name, module in model.policy.named_modules():
        if isinstance(module, SparseLinear):
            yield f"mask/{name}", _tensor_bytes(module.mask)
    for name, updater in model.topology_updaters.items():
        yield f"topology/{name}", _value_bytes((updater.step_count, updater.pending_step, len(updater.history),
                                                updater.generator.get_state()))
    yield "rng/torch", _tensor_bytes(torch.get_rng_state())
    yield "rng/numpy", _value_bytes(np.random.get_state())
    yield "rng/python", _value_bytes(random.getstate())
    env = model.get_env().envs[0]
    yield "rng/env", _value_bytes(env.unwrapped.np_random.bit_generator.state)
    yield "rng/action_space", _value_bytes(env.action_space.np_random.bit_generator.state)
    yield "counters", _value_bytes((model.num_timesteps, model._n_updates))


def digest(model: Any, show_parts: bool = False) -> str:
    """The SHA-256 (hex) over :func:`parts`; with ``show_parts`` each part's own is printed too."""
    total = hashlib.sha256()
    for name, data in parts(model):
        total.update(name.encode() + b"\0" + data)
        if show_parts:
            print(f"{hashlib.sha256(data).hexdigest()[:16]}  {name}")
    return total.hexdigest()


def main() -> None:
    """Train as the arguments say and print the digest."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="anf_sac", help="a method of sparse_rl.agents.methods.METHODS")
    parser.add_argument("--noise-fraction", type=float, default=0.98, help="the ENE's noise fraction f (0: clean)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=300, help="env steps after the warm-up, one gradient step each")
    parser.add_argument("--learning-starts", type=int, default=100)
    parser.add_argument("--update-interval", type=int, default=50, help="gradient steps between topology updates")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parts", action="store_true", help="also print each part's digest")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = train(args.method, args.noise_fraction, args.batch_size, args.steps, args.learning_starts,
                  args.update_interval, args.seed)
    print(f"{digest(model, args.parts)}  {args.method} f={args.noise_fraction} batch={args.batch_size} "
          f"steps={args.steps}")


if __name__ == "__main__":
    main()
