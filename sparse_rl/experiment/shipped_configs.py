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


#: the kinds of shipped configs (:func:`config_kind`)
KINDS = ("trainable", "sweep", "fragment")


def config_kind(path: str | Path) -> str:
    """What a config file is: ``sweep`` (a file for ``sparse-rl benchmark``: it has ``agents`` and
    ``envs``), ``trainable`` (with its ``defaults`` merged in it names an env and an agent or a
    method: a file
    for ``sparse-rl train``) or ``fragment`` (a part other configs include, e.g. ``base`` or
    ``sparsity/anf``; not trainable alone).

    :param path: a YAML config file
    """
    from sparse_rl.experiment.config import compose
    from sparse_rl.experiment.config.compose import read_yaml

    try:
        data = read_yaml(path)
        if "agents" in data and "envs" in data:
            return "sweep"
        composed = compose(path)
    except UserError:
        return "fragment"
    env = composed.get("env")
    agent = isinstance(composed.get("agent"), dict) or composed.get("method") is not None
    return "trainable" if isinstance(env, dict) and env.get("id") and agent else "fragment"


def read_config_data(path: str | Path) -> dict[str, Any]:
    """A config file's own keys (its ``defaults`` not merged in)."""
    from sparse_rl.experiment.config.compose import read_yaml

    return read_yaml(path)


def list_configs_by_kind() -> dict[str, list[str]]:
    """The shipped configs' names by :func:`config_kind` (every kind of :data:`KINDS`, sorted names)."""
    kinds: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for name in list_configs():
        kinds[config_kind(configs_root() / f"{name}.yaml")].append(name)
    return kinds


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


def resolve_config_path(text: str, kind: str | None = None) -> str:
    """``text`` if it names an existing file, else the shipped config of that name (so that
    ``sparse-rl train quick/pendulum_sac_anf`` and ``sparse-rl benchmark bench/quick`` work outside a
    checkout).

    :param text: a file or a shipped config's name
    :param kind: with ``trainable`` or ``sweep`` (:func:`config_kind`), a shipped config of another
        kind is refused, saying what it is
    :raises UserError: if it is neither a file nor a shipped config (naming the closest ones), or a
        shipped config of another kind
    """
    if Path(text).exists():
        return text
    try:
        path = find_config(text)
    except UserError:
        names = list_configs()
        key = text.removeprefix("configs/").removesuffix(".yaml")
        close = close_matches(key, names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UserError(f"config file {text!r} does not exist, and no shipped config has that name{hint} (list "
                        "them with: sparse-rl configs list)") from None
    found = config_kind(path)
    if kind is not None and found != kind:
        use = {"trainable": "sparse-rl train", "sweep": "sparse-rl benchmark"}
        what = {"fragment": "a fragment (a part that other configs include), not a config to run alone",
                "sweep": "a sweep: run it with sparse-rl benchmark",
                "trainable": "a single run's config: train it with sparse-rl train"}[found]
        raise UserError(f"shipped config {text!r} is {what}; {use.get(kind, 'this command')} takes the "
                        f"{kind} ones listed by: sparse-rl configs list")
    return str(path)


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
    alone = len(paths) == 1 and method is None and env is None  # one config that must be a run by itself
    for path in paths or [str(find_config(BASE_CONFIG))]:
        data = deep_merge(data, compose(resolve_config_path(path, "trainable" if alone else None)))
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


def copy_config(name: str, destination: str | Path) -> tuple[Path, int]:
    """Copy the shipped configs to ``destination`` to start from: a directory that does not exist
    yet gets the whole tree (the config keeps its relative references to its parts); an existing
    directory or a file name gets the one config, fully resolved into a single self-contained YAML.

    :param name: a shipped config's name
    :param destination: a directory or a ``.yaml`` file
    :return: the path of the copied config, and the number of files copied
    :raises UserError: if the destination file exists or cannot be written
    """
    import yaml

    from sparse_rl._util.outputs import check_output_file, describe_os_error
    from sparse_rl.experiment.config import compose

    source = find_config(name)
    destination = Path(destination)
    try:
        if not destination.exists() and destination.suffix not in (".yaml", ".yml"):
            check_output_file(destination, "the destination")  # its parent exists and is writable
            shutil.copytree(configs_root(), destination)
            copied = sum(1 for path in destination.rglob("*") if path.is_file())
            return destination / source.relative_to(configs_root()), copied
        target = destination / source.name if destination.is_dir() else destination
        if target.exists():
            raise UserError(f"{str(target)!r} already exists; give another destination")
        check_output_file(target, "the destination")
        resolved = compose(source)
        text = f"# sparse_rl config {source.relative_to(configs_root()).with_suffix('').as_posix()}, its parts " \
               "merged in\n"
        target.write_text(text + yaml.safe_dump(resolved, sort_keys=False), encoding="utf-8")
        return target, 1
    except (OSError, shutil.Error) as error:
        reason = describe_os_error(error) if isinstance(error, OSError) else str(error)
        raise UserError(f"cannot copy the configs to {str(destination)!r}: {reason}") from None
