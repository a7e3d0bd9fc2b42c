"""YAML reading and composition: ``defaults:`` lists, deep merges, ``--set KEY=VALUE`` overrides.

A config file is YAML. It may start with a ``defaults:`` list of other YAML files (paths relative
to the including file), which are loaded (recursively), deep-merged in order, and then the file's
own keys are deep-merged on top; mappings merge key by key, anything else (lists, scalars) is
replaced. ``--set a.b=value`` overrides are applied last, each value parsed as YAML. Floats in
exponent notation without a dot (``1e-3``) are floats, not strings (PyYAML reads YAML 1.1, where
they would be strings).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from sparse_rl.experiment.config.typed import _one_line
from sparse_rl.experiment.errors import ConfigError


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, also reading ``1e-3`` / ``1e6`` as floats."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def parse_yaml(text: str, source: str = "<string>") -> Any:
    """Parse YAML text (with ``1e-3`` read as a float).

    :param text: the YAML text
    :param source: where it came from, for the error message
    :raises ConfigError: on a syntax error
    """
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise ConfigError(f"{source} is not valid YAML: {_one_line(str(error))}") from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read one YAML file holding a mapping (an empty file is an empty mapping).

    :param path: the file
    :raises ConfigError: if it is missing, unreadable, not YAML or not a mapping
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a config file" if path.is_dir() else "does not exist"
        raise ConfigError(f"config file {str(path)!r} {what}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config file {str(path)!r}: {error}") from None
    data = parse_yaml(text, source=f"config file {str(path)!r}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys, got {type(data).__name__}")
    return data


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay`` merged into a copy of ``base``: mappings key by key (recursively), anything else
    replaced.

    :param base: the lower layer
    :param overlay: the upper layer (wins)
    """
    merged = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def compose(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Load ``path`` with its ``defaults:`` resolved: each listed file (relative to ``path``'s
    directory) composed recursively and merged in order, then ``path``'s own keys on top.

    :param path: the config file
    :raises ConfigError: on a missing file, a cycle, or a malformed ``defaults`` list
    """
    path = Path(path)
    resolved = path.resolve()
    if resolved in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, resolved))
        raise ConfigError(f"config files include each other in a cycle: {cycle}")
    data = read_yaml(path)
    defaults = data.pop("defaults", None) or []
    if isinstance(defaults, str):
        defaults = [defaults]
    if not isinstance(defaults, list) or not all(isinstance(item, str) for item in defaults):
        raise ConfigError(f"'defaults' in {str(path)!r} must be a list of file paths, got {defaults!r}")
    merged: dict[str, Any] = {}
    for item in defaults:
        included = path.parent / item
        if not included.is_file():
            raise ConfigError(f"config file {str(included)!r} (listed in 'defaults' of {str(path)!r}) does not exist")
        merged = deep_merge(merged, compose(included, (*_chain, resolved)))
    return deep_merge(merged, data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into a key path and a YAML-parsed value.

    :param text: one ``--set`` argument
    :raises ConfigError: if there is no ``=`` or the key is empty
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    parts = key.split(".")
    if not sep or not key or not all(parts):
        raise ConfigError(f"--set expects KEY=VALUE with a dotted key (e.g. env.noise_fraction=0.98), got {text!r}")
    return parts, parse_yaml(raw, source=f"the value of --set {key}")


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``data`` with every ``KEY=VALUE`` override set (creating mappings on the way).

    :param data: the composed config
    :param overrides: ``--set`` arguments, applied in order
    :raises ConfigError: on a malformed override, or one that goes through a non-mapping value
    """
    result = copy.deepcopy(dict(data))
    for text in overrides:
        parts, value = parse_override(text)
        _set_path(result, parts, value)
    return result


def apply_settings(data: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with each dotted key of ``settings`` set to its (already parsed) value,
    like ``--set KEY=VALUE`` overrides given as a mapping (``{"env.noise_fraction": 0.98}``).

    :param data: the composed config
    :param settings: dotted keys and their values, applied in order
    :raises ConfigError: on an empty key part, or a key that goes through a non-mapping value
    """
    result = copy.deepcopy(dict(data))
    for key, value in settings.items():
        parts = str(key).split(".")
        if not all(parts):
            raise ConfigError(f"a setting needs a dotted key (e.g. env.noise_fraction), got {key!r}")
        _set_path(result, parts, copy.deepcopy(value))
    return result


def _set_path(result: dict[str, Any], parts: Sequence[str], value: Any) -> None:
    node = result
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            hint = f" (for a sparsity preset plus changes, set {where}.preset)" if where == "sparsity" else ""
            raise ConfigError(f"cannot set {'.'.join(parts)}: {where} is {child!r}, not a mapping{hint}")
        node = child
    node[parts[-1]] = value
