"""Which class a saved model is, and loading it: the one way a ``model.zip`` becomes an agent
(the runner, the checkpoints, the analysis and the benchmark all load through here).

A model's algorithm is read from the JSON part of SB3's zip (nothing is unpickled); whether it is
this library's agent or SB3's own comes from the run's config (``agent.implementation``) or, for a
bare zip, from the module of its saved policy class.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path
from typing import IO, Any

from sparse_rl._util.validation import check_choice

#: the agent kinds (``agent.algorithm``): one list, read by the config, the runner and the sweeps
AGENT_KINDS = ("sac", "td3")
#: ``agent.implementation``: this library's agents, or Stable-Baselines3's own classes (dense only)
IMPLEMENTATIONS = ("sparse_rl", "sb3")

#: a key only each algorithm's saved data has (SB3's ``model.zip`` holds its attributes as JSON)
_ALGORITHM_KEYS = {"td3": "policy_delay", "sac": "target_entropy"}


def agent_class(algorithm: str, implementation: str = "sparse_rl") -> type:
    """:class:`~sparse_rl.agents.SparseSAC` or :class:`~sparse_rl.agents.SparseTD3`; with
    ``implementation="sb3"``, ``stable_baselines3.SAC`` or ``TD3``.

    :param algorithm: one of :data:`AGENT_KINDS`
    :param implementation: one of :data:`IMPLEMENTATIONS`
    """
    check_choice(algorithm, AGENT_KINDS, "agent")
    check_choice(implementation, IMPLEMENTATIONS, "agent implementation")
    if implementation == "sb3":
        from stable_baselines3 import SAC, TD3

        return {"sac": SAC, "td3": TD3}[algorithm]
    from sparse_rl.agents.sac import SparseSAC
    from sparse_rl.agents.td3 import SparseTD3

    return {"sac": SparseSAC, "td3": SparseTD3}[algorithm]


def _saved_data(path: str | Path | IO[bytes]) -> dict[str, Any] | None:
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    finally:
        if hasattr(path, "seek"):
            path.seek(0)  # type: ignore[union-attr]
    return data if isinstance(data, dict) else None


def model_algorithm(path: str | Path | IO[bytes]) -> str | None:
    """``sac`` or ``td3``: the algorithm of an SB3 ``model.zip``, read from its JSON part (nothing
    is unpickled); ``None`` if it cannot tell.

    :param path: the zip file (a path or an open binary file)
    """
    data = _saved_data(path)
    found = [name for name, key in _ALGORITHM_KEYS.items() if data is not None and key in data]
    return found[0] if len(found) == 1 else None


def model_implementation(path: str | Path | IO[bytes]) -> str | None:
    """``sparse_rl`` or ``sb3``: whose class saved the model, from the module of its saved policy
    class (JSON, nothing unpickled); ``None`` if it cannot tell.

    :param path: the zip file
    """
    data = _saved_data(path)
    policy = data.get("policy_class") if data is not None else None
    module = policy.get("__module__") if isinstance(policy, dict) else None
    if not isinstance(module, str):
        return None
    return "sparse_rl" if module.startswith("sparse_rl.") else "sb3"


def load_agent(path: str | Path | IO[bytes], algorithm: str | None = None, implementation: str | None = None,
               device: str = "cpu", **kwargs: Any) -> Any:
    """Load a saved model with the one class that saved it.

    :param path: a ``model.zip`` (a run's or a checkpoint's), or an open binary file
    :param algorithm: ``sac``/``td3`` (``None``: read from the zip)
    :param implementation: ``sparse_rl``/``sb3`` (``None``: read from the zip)
    :param device: where to load it
    :param kwargs: passed to SB3's ``load`` (``env``, ``custom_objects``…)
    :raises ValueError: if the file is missing or its class cannot be told or cannot load it
    """
    if isinstance(path, (str, Path)) and not Path(path).is_file():
        raise ValueError(f"model file {str(path)!r} does not exist")
    algorithm = algorithm or model_algorithm(path)
    implementation = implementation or model_implementation(path) or "sparse_rl"
    if algorithm is None:
        raise ValueError(f"cannot tell whether {path} holds a SAC or a TD3 model (it is not an SB3 model.zip)")
    cls = agent_class(algorithm, implementation)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cls.load(path, device=device, **kwargs)
    except Exception as err:  # noqa: BLE001 - reported as what it is: this file does not load
        raise ValueError(f"could not load {path} as a {cls.__name__}: {type(err).__name__}: {err}") from err
