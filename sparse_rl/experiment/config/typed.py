"""A generic typed validator: plain data into annotated dataclasses, with messages that name the
key path, the closest valid key and the type expected (also used for the benchmark's sweep files)."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from sparse_rl._util.validation import close_matches, did_you_mean
from sparse_rl.experiment.errors import ConfigError


def build_dataclass(cls: type, data: Any, path: str = "") -> Any:
    """Validate plain data into the dataclass ``cls`` (recursively), with this module's messages:
    an unknown key names its path and the closest valid key, a wrong type names the type expected.
    For other typed YAML files (e.g. the benchmark's sweep files).

    :param cls: a dataclass whose fields are annotated with plain data types
    :param data: the parsed YAML (a mapping)
    :param path: the key path of ``data`` inside its file, for messages (``""``: the top level)
    :raises ConfigError: on an unknown key, a wrong type, a missing key or a bad value
    """
    return _build_dataclass(cls, data, path)


def _build_dataclass(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"config key {path or '<top level>'!r} must be a mapping, got {_describe(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = _type_hints(cls)
    for key in data:
        if key not in fields:
            raise ConfigError(_unknown_key(_join(path, str(key)), str(key), list(fields)))
    kwargs = {}
    for name, f in fields.items():
        key_path = _join(path, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:  # type: ignore[misc]
                raise ConfigError(f"config key {key_path!r} is missing; it is required")
            continue
        kwargs[name] = _convert(data[name], hints.get(name, Any), key_path)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{path or 'config'}: {_one_line(str(error))}") from None


def _type_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - an unresolvable annotation: check nothing for that class
        return {}


def _convert(value: Any, hint: Any, path: str) -> Any:
    """``value`` checked against (and lightly coerced to) the type ``hint``."""
    if hint is Any or hint is object:
        return value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _build_dataclass(hint, value, path)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(hint)
        if value is None:
            if type(None) in members:
                return None
            raise _type_error(path, hint, value)
        for member in members:
            if member is type(None):
                continue
            try:
                return _convert(value, member, path)
            except ConfigError as error:
                if _is_structural(member):
                    raise error from None
        raise _type_error(path, hint, value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _type_error(path, hint, value)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _type_error(path, hint, value)
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _type_error(path, hint, value)
    if hint is str:
        if isinstance(value, str):
            return value
        raise _type_error(path, hint, value)
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _type_error(path, hint, value)
        args = typing.get_args(hint)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise _type_error(path, hint, value)
            return tuple(_convert(v, a, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_convert(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or hint is tuple else items
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _type_error(path, hint, value)
        args = typing.get_args(hint)
        value_hint = args[1] if len(args) == 2 else Any
        return {k: _convert(v, value_hint, _join(path, str(k))) for k, v in value.items()}
    if origin is typing.Literal:
        if value in typing.get_args(hint):
            return value
        raise _type_error(path, hint, value)
    if isinstance(hint, type):
        if isinstance(value, hint):
            return value
        raise _type_error(path, hint, value)
    return value  # an annotation we do not understand: accept


def _is_structural(hint: Any) -> bool:
    """A dataclass member of a union reports its own (more precise) error."""
    return dataclasses.is_dataclass(hint)


def _type_name(hint: Any) -> str:
    if hint is type(None):
        return "null"
    if isinstance(hint, type) and not typing.get_args(hint):
        return {"dict": "mapping", "list": "list"}.get(hint.__name__, hint.__name__)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(member) for member in typing.get_args(hint))
    if origin in (list, Sequence):
        return f"list of {_type_name(typing.get_args(hint)[0])}" if typing.get_args(hint) else "list"
    if origin is tuple:
        return "list [" + ", ".join(_type_name(a) for a in typing.get_args(hint)) + "]"
    if origin in (dict, Mapping):
        return "mapping"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    return str(hint).replace("typing.", "")


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _type_error(path: str, hint: Any, value: Any) -> ConfigError:
    return ConfigError(f"config key {path!r} expects {_type_name(hint)}, got {_describe(value)}")


def _unknown_key(path: str, key: str, valid: Sequence[str]) -> str:
    close = close_matches(key, valid, cutoff=0.5)
    hint = f"; did you mean {_join(path.rpartition('.')[0], close[0])!r}?" if close else ""
    return f"unknown config key {path!r}{hint} (valid keys here: {', '.join(sorted(valid))})"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _check_choice(value: str, allowed: Sequence[str], path: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{path} must be one of {', '.join(allowed)}; got {value!r}{did_you_mean(value, allowed)}")


def _check_min(value: int, minimum: int, path: str) -> None:
    if value < minimum:
        raise ConfigError(f"{path} must be >= {minimum}, got {value!r}")


def _check_net_arch(value: Any, path: str) -> None:
    """Hidden layer sizes must be positive integers (a list, or a list per network)."""
    if value is None:
        return
    groups = value.items() if isinstance(value, Mapping) else [(None, value)]
    for name, sizes in groups:
        where = path if name is None else f"{path}.{name}"
        if not isinstance(sizes, (list, tuple)):
            raise ConfigError(f"{where} must be a list of layer sizes (positive integers), got {sizes!r}")
        for size in sizes:
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ConfigError(f"{where} must hold positive integers (hidden layer sizes), got {list(sizes)!r}")


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively (YAML-safe data)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
