"""The configs shipped with the package (``sparse_rl/configs``, the repository's ``configs/``), for
``sparse-rl configs`` and for config names given instead of paths (``sparse-rl train quick/pendulum_sac_anf``).

A config is named by its path under ``configs/`` without ``.yaml`` (``experiments/halfcheetah/sac_anf``).
Configs refer to their parts by relative paths, so :func:`copy_config` copies a config with the parts it
uses (the whole ``configs`` tree when the destination is a directory name that does not exist yet).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sparse_rl._util.validation import close_matches
from sparse_rl.experiment.errors import UserError


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
