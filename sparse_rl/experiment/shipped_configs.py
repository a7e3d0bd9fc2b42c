"""The configs shipped with the package (``sparse_rl/configs``, the repository's ``configs/``), for
``sparse-rl configs`` and for config names given instead of paths (``sparse-rl train quick/pendulum_sac_anf``).

A config is named by its path under ``configs/`` without ``.yaml`` (``quick/pendulum_sac_anf``).
:func:`compose_run` builds a run without a config file of its own: the shipped ``base.yaml``, a
method, an env id and a noise fraction (``sparse-rl train --method anf_sac --env HalfCheetah-v5
--noise 0.98``).
Configs refer to their parts by relative paths, so :func:`copy_config` copies a config with the parts it
uses (the whole ``configs`` tree when the destination is a directory name that does not exist yet).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparse_rl._util.validation import close_matches
from sparse_rl.experiment.errors import UserError

if TYPE_CHECKING:
    from sparse_rl.experiment.config import ExperimentConfig

#: the shipped config every composed run starts from (seed, budget, evaluation, checkpoints, logging)
BASE_CONFIG = "base"


def configs_root() -> Path:
    """The directory of the shipped configs (inside the installed package)."""
    return Path(__file__).resolve().parents[1] / "configs"


def list_configs() -> list[str]:
    """The names of all shipped configs, sorted."""
    root = configs_root()
    return sorted(path.relative_to(root).with_suffix("").as_posix() for path in root.rglob("*.yaml"))


def find_config(name: str) -> Path:
    """The file of the shipped config ``name`` (with or without ``.yaml``, with or without a
    leading ``configs/``).

    :raises UserError: naming the closest configs if there is none of that name
    """
    key = name[len("configs/"):] if name.startswith("configs/") else name
    key = key[: -len(".yaml")] if key.endswith(".yaml") else key
    path = configs_root() / f"{key}.yaml"
    if path.is_file():
        return path
    names = list_configs()
    close = close_matches(key, names, n=3, cutoff=0.4) or [n for n in names if key in n][:3]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UserError(f"no shipped config named {name!r}{hint} (list them with: sparse-rl configs list)")


def resolve_config_path(text: str) -> str:
    """``text`` if it names an existing file, else the shipped config of that name if there is one
    (so that ``sparse-rl train quick/pendulum_sac_anf`` works outside a checkout), else ``text``."""
    if Path(text).exists():
        return text
    try:
        return str(find_config(text))
    except UserError:
        return text


def compose_run(paths: Sequence[str] = (), *, method: str | None = None, env: str | None = None,
                noise: float | None = None, sparsity: str | None = None,
                overrides: Sequence[str] = ()) -> ExperimentConfig:
    """A run's config composed at load time: the config files ``paths`` (file paths or shipped
    names) merged in order, or the shipped ``base`` config when there are none; then ``method``
    (a paper's method: its agent, training settings, sparsity and per-task values), ``env`` (a
    gymnasium id), ``noise`` (the noise fraction) and ``sparsity`` (another preset, e.g. ``dense``
    for the control with the method's training settings); then the ``KEY=VALUE`` overrides.

    :raises UserError: (a :class:`~sparse_rl.experiment.errors.ConfigError`) naming what is missing
        or wrong
    """
    from sparse_rl.experiment.config import compose, config_from_dict, deep_merge
    from sparse_rl.experiment.config.compose import apply_overrides, apply_settings

    if not paths and method is None:
        raise UserError("give a config file or name (e.g. sparse-rl train quick/pendulum_sac_anf), or a method and "
                        "an env (e.g. sparse-rl train --method anf_sac --env HalfCheetah-v5 --noise 0.98)")
    data: dict[str, Any] = {}
    for path in paths or [str(find_config(BASE_CONFIG))]:
        resolved = resolve_config_path(path)
        if not Path(resolved).is_file():
            find_config(path)  # raises with the closest shipped names
        data = deep_merge(data, compose(resolved))
    settings: dict[str, Any] = {}
    if method is not None:
        settings["method"] = method
    if env is not None:
        settings["env.id"] = env
    if noise is not None:
        settings["env.noise_fraction"] = noise
    if sparsity is not None:
        settings["sparsity"] = sparsity
    data = apply_overrides(apply_settings(data, settings), overrides)
    if not isinstance(data.get("env"), dict) or "id" not in data["env"]:
        raise UserError("no env: give --env ID (e.g. --env HalfCheetah-v5) or a config with env.id")
    return config_from_dict(data)


def copy_config(name: str, destination: str | Path) -> Path:
    """Copy the shipped configs to ``destination`` to start from: a directory that does not exist
    yet gets the whole tree (the config keeps its relative references to its parts); an existing
    directory or a file name gets the one config, fully resolved into a single self-contained YAML.

    :param name: a shipped config's name
    :param destination: a directory or a ``.yaml`` file
    :return: the path of the copied config
    :raises UserError: if the destination file exists
    """
    import yaml

    from sparse_rl.experiment.config import compose

    source = find_config(name)
    destination = Path(destination)
    if not destination.exists() and destination.suffix not in (".yaml", ".yml"):
        shutil.copytree(configs_root(), destination)
        return destination / source.relative_to(configs_root())
    target = destination / source.name if destination.is_dir() else destination
    if target.exists():
        raise UserError(f"{str(target)!r} already exists; give another destination")
    target.parent.mkdir(parents=True, exist_ok=True)
    resolved = compose(source)
    text = f"# sparse_rl config {source.relative_to(configs_root()).with_suffix('').as_posix()}, its parts merged in\n"
    target.write_text(text + yaml.safe_dump(resolved, sort_keys=False), encoding="utf-8")
    return target
