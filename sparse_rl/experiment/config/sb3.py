"""Stable-Baselines3 arguments: ``agent.hyperparams`` against the SB3 class's constructor and
``policy_kwargs`` against the policy's (names, plain-data types, numeric ranges)."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sparse_rl.experiment.config.schema import ACTIVATIONS, ExperimentConfig
from sparse_rl.experiment.config.typed import (
    _check_choice,
    _check_net_arch,
    _convert,
    _describe,
    _join,
    _type_error,
    _unknown_key,
)
from sparse_rl.experiment.errors import ConfigError

#: SB3 constructor arguments that the config sets elsewhere, and where.
RESERVED_HYPERPARAMS = {
    "policy": "the policy is always 'MlpPolicy'",
    "env": "set the environment under 'env'",
    "seed": "set the top-level 'seed'",
    "device": "set the top-level 'device'",
    "verbose": "set 'run.verbose'",
    "tensorboard_log": "TensorBoard events always go to the run directory's tb/",
    "sparsity": "set the top-level 'sparsity'",
    "action_noise": "set 'agent.action_noise' (e.g. {kind: normal, sigma: 0.1})",
    "_init_setup_model": "internal to Stable-Baselines3",
}


RESERVED_POLICY_KWARGS = {
    "sparsity": "set the top-level 'sparsity'",
    "observation_space": "taken from the environment",
    "action_space": "taken from the environment",
    "lr_schedule": "set 'agent.hyperparams.learning_rate'",
}


def accepted_arguments(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword arguments ``cls(...)`` accepts, following ``**kwargs`` up the MRO.

    :param cls: a class
    """
    accepted: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            signature = inspect.signature(init)
        except (TypeError, ValueError):
            break
        open_ended = False
        for name, parameter in signature.parameters.items():
            if name == "self" or parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                continue
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                open_ended = True
                continue
            accepted.setdefault(name, parameter)
        if not open_ended:
            break
    return accepted


def _annotation(function_owner: type, parameter: inspect.Parameter) -> Any:
    """The parameter's annotation evaluated in its module; ``Any`` if that is impossible."""
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        return Any
    if not isinstance(annotation, str):
        return annotation
    for klass in function_owner.__mro__:
        module = inspect.getmodule(klass)
        namespace = dict(vars(typing))
        namespace.update(vars(module) if module else {})
        try:
            return eval(annotation, namespace)  # noqa: S307 - annotations of installed SB3 code
        except Exception:  # noqa: BLE001,S112 - try the next class's module
            continue
    return Any


def _check_kwargs(owner: type, values: Mapping[str, Any], path: str, reserved: Mapping[str, str],
                  special: Mapping[str, Callable[[Any, str], Any]] | None = None) -> dict[str, Any]:
    """Check ``values`` against ``owner``'s constructor: names, then types where the annotation is
    a plain data type (callables and classes cannot come from YAML)."""
    accepted = accepted_arguments(owner)
    checked = {}
    for key, value in values.items():
        key_path = _join(path, str(key))
        if key in reserved:
            raise ConfigError(f"config key {key_path!r} cannot be set here: {reserved[key]}")
        if key not in accepted:
            valid = [name for name in accepted if name not in reserved and not name.startswith("_")]
            raise ConfigError(_unknown_key(key_path, str(key), valid))
        if special and key in special:
            checked[key] = special[key](value, key_path)
            continue
        hint = _annotation(owner, accepted[key])
        checked[key] = _convert(value, _data_part(hint, key_path, value), key_path)
    return checked


def _data_part(hint: Any, path: str, value: Any) -> Any:
    """The part of ``hint`` that YAML data can satisfy (drops callables and classes)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        members = [m for m in typing.get_args(hint) if _is_data(m)]
        if not members or (members == [type(None)] and value is not None):
            raise ConfigError(f"config key {path!r} cannot be set from a config file (it needs a Python object)")
        return typing.Union[tuple(members)] if len(members) > 1 else members[0]  # noqa: UP007
    if not _is_data(hint):
        raise ConfigError(f"config key {path!r} cannot be set from a config file (it needs a Python object), "
                          f"got {_describe(value)}")
    return hint


def _is_data(hint: Any) -> bool:
    if hint is Any or hint is type(None):
        return True
    origin = typing.get_origin(hint) or hint
    if origin is typing.Literal:
        return True
    return origin in (bool, int, float, str, list, tuple, dict, Mapping, Sequence)


def _check_activation(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"config key {path!r} expects an activation name ({', '.join(ACTIVATIONS)}), "
                          f"got {_describe(value)}")
    _check_choice(value, ACTIVATIONS, path)
    return value


def _check_optimizer_kwargs(value: Any, path: str) -> dict[str, Any]:
    import torch

    if not isinstance(value, Mapping):
        raise _type_error(path, dict, value)
    return _check_kwargs(torch.optim.Adam, value, path, {"params": "the network's parameters"})


def _check_hyperparams(config: ExperimentConfig) -> None:
    from sparse_rl.agents.loading import agent_class as sparse_agent_class

    agent_class = sparse_agent_class(config.agent.algorithm)
    path = "agent.hyperparams"
    hyperparams = dict(config.agent.hyperparams)
    policy_kwargs = hyperparams.pop("policy_kwargs", None)
    checked = _check_kwargs(agent_class, hyperparams, path, RESERVED_HYPERPARAMS)
    if policy_kwargs is not None:
        if not isinstance(policy_kwargs, Mapping):
            raise _type_error(f"{path}.policy_kwargs", dict, policy_kwargs)
        policy_class = agent_class.policy_aliases["MlpPolicy"]
        if "net_arch" in policy_kwargs and config.net_arch is not None:
            raise ConfigError(f"net_arch is set twice, as 'net_arch' and as '{path}.policy_kwargs.net_arch'; "
                              "keep one (the top-level 'net_arch')")
        special: dict[str, Callable[[Any, str], Any]] = {"activation_fn": _check_activation}
        if "optimizer_class" not in policy_kwargs:
            special["optimizer_kwargs"] = _check_optimizer_kwargs
        checked["policy_kwargs"] = _check_kwargs(policy_class, policy_kwargs, f"{path}.policy_kwargs",
                                                 RESERVED_POLICY_KWARGS, special)
        _check_net_arch(checked["policy_kwargs"].get("net_arch"), f"{path}.policy_kwargs.net_arch")
    _check_hyperparam_values(checked, path)
    config.agent.hyperparams = checked


def _range(low: float | None, high: float | None, low_open: bool = False,
           integer: bool = False) -> Callable[[Any], str]:
    """A check of a number in a range: returns what is allowed when ``value`` is outside, else ``""``."""

    def check(value: Any) -> str:
        kind = "an integer" if integer else "a number"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            return kind
        infinite = value in (float("inf"), float("-inf"))
        if value != value or infinite or (low is not None and (value <= low if low_open else value < low)) or \
                (high is not None and value > high):
            bounds = [f"{'>' if low_open else '>='} {low:g}" if low is not None else "",
                      f"<= {high:g}" if high is not None else ""]
            kind = f"a finite {kind[2:]}" if infinite or value != value else kind
            return f"{kind} " + " and ".join(b for b in bounds if b)
        return ""

    return check


def _train_freq(value: Any) -> str:
    allowed = "an integer >= 1, or [N >= 1, 'step' or 'episode']"
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and not _range(1, None, integer=True)(value[0]) and value[1] in ("step", "episode"):
            return ""
        return allowed
    return allowed if _range(1, None, integer=True)(value) else ""


def _gradient_steps(value: Any) -> str:
    return "" if value == -1 and not isinstance(value, bool) else (
        "an integer >= 1, or -1 (as many as env steps)" if _range(1, None, integer=True)(value) else "")


def _ent_coef(value: Any) -> str:
    if isinstance(value, str):
        ok = value == "auto" or (value.startswith("auto_") and not _range(0, None, low_open=True)(_float(value[5:])))
        return "" if ok else "'auto', 'auto_<initial value > 0>' or a number > 0"
    return "'auto', 'auto_<initial value > 0>' or a number > 0" if _range(0, None, low_open=True)(value) else ""


def _target_entropy(value: Any) -> str:
    return "" if value == "auto" or not _range(None, None)(value) else "'auto' or a number"


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


#: checks of SB3's numeric hyperparameters: name -> returns what is allowed ("" if the value is fine)
HYPERPARAM_RANGES: dict[str, Callable[[Any], str]] = {
    "learning_rate": _range(0, None, low_open=True),
    "batch_size": _range(1, None, integer=True),
    "buffer_size": _range(1, None, integer=True),
    "learning_starts": _range(0, None, integer=True),
    "tau": _range(0, 1, low_open=True),
    "gamma": _range(0, 1),
    "train_freq": _train_freq,
    "gradient_steps": _gradient_steps,
    "policy_delay": _range(1, None, integer=True),
    "target_policy_noise": _range(0, None),
    "target_noise_clip": _range(0, None),
    "target_update_interval": _range(1, None, integer=True),
    "ent_coef": _ent_coef,
    "target_entropy": _target_entropy,
    "sde_sample_freq": _range(-1, None, integer=True),
}


def _check_hyperparam_values(hyperparams: Mapping[str, Any], path: str) -> None:
    """SB3's numeric hyperparameters in their ranges (SB3 would accept many bad ones and fail, or
    diverge, much later)."""
    for name, check in HYPERPARAM_RANGES.items():
        if name in hyperparams:
            allowed = check(hyperparams[name])
            if allowed:
                raise ConfigError(f"{path}.{name} must be {allowed}, got {hyperparams[name]!r}")
