"""Atomic, verifiable checkpoints of a training run, and what a resumed run restores from them.

A checkpoint is a directory ``checkpoints/step_<N>/`` (``N``: env steps done) holding

- ``model.zip``: SB3's ``save`` (networks, optimizers, counters, the topology updaters' state),
- ``replay_buffer.pkl``: SB3's ``save_replay_buffer`` (left out with ``checkpoint.replay_buffer: false``),
- ``rng.json``: the states of Python's, NumPy's and torch's global generators and of the action space's,
- ``state.json``: counters (env steps, episodes, wall time, metrics rows), the env wrappers' state
  and the resolved config the run had,
- ``manifest.json``: format version and the sha256 and size of every other file.

It is written as ``checkpoints/.tmp-step_<N>/`` (every file flushed to disk) and then renamed with
``os.replace``: a run killed at any moment leaves either a complete checkpoint or a ``.tmp-``
directory, which is ignored (and removed by the next writer). Reading one checks the manifest, so
a damaged file is reported, never loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sparse_rl.config import UserError

FORMAT_VERSION = 1
CHECKPOINTS = "checkpoints"
MODEL_FILE = "model.zip"
BUFFER_FILE = "replay_buffer.pkl"
RNG_FILE = "rng.json"
STATE_FILE = "state.json"
MANIFEST_FILE = "manifest.json"
_STEP_DIR = re.compile(r"^step_(\d+)$")


class CheckpointError(UserError):
    """A checkpoint that is missing, damaged, or does not belong to the run resuming from it."""


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint on disk.

    :param path: its directory
    :param step: env steps done when it was written
    :param state: the content of its ``state.json``
    """

    path: Path
    step: int
    state: dict[str, Any]

    @property
    def has_replay_buffer(self) -> bool:
        """Whether it holds the replay buffer."""
        return (self.path / BUFFER_FILE).is_file()


# --------------------------------------------------------------------------------------------------
# writing


def write_checkpoint(model: Any, directory: str | Path, state: Mapping[str, Any], *,
                     replay_buffer: bool = True) -> Path:
    """Write a checkpoint of ``model`` at its current step into ``directory``, atomically.

    :param model: an SB3 off-policy model (SparseSAC, SparseTD3…)
    :param directory: the run's ``checkpoints/`` directory (created if needed)
    :param state: JSON-able counters and metadata for ``state.json`` (``num_timesteps`` is added)
    :param replay_buffer: include the replay buffer
    :return: the checkpoint's directory ``step_<N>``
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    step = int(model.num_timesteps)
    final = directory / f"step_{step}"
    temporary = directory / f".tmp-step_{step}"
    if temporary.exists():
        shutil.rmtree(temporary)
    temporary.mkdir()
    model.save(temporary / MODEL_FILE)
    if replay_buffer and getattr(model, "replay_buffer", None) is not None:
        model.save_replay_buffer(temporary / BUFFER_FILE)
    _write_json(temporary / RNG_FILE, capture_rng(model))
    _write_json(temporary / STATE_FILE, {**state, "num_timesteps": step, "format_version": FORMAT_VERSION,
                                         "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    files = sorted(p.name for p in temporary.iterdir() if p.is_file())
    manifest = {"format_version": FORMAT_VERSION, "step": step,
                "files": {name: {"sha256": _sha256(temporary / name), "bytes": (temporary / name).stat().st_size}
                          for name in files}}
    _write_json(temporary / MANIFEST_FILE, manifest)
    for name in [*files, MANIFEST_FILE]:
        _fsync(temporary / name)
    if final.exists():  # the same step written again (e.g. the end of a resumed, finished run)
        shutil.rmtree(final)
    os.replace(temporary, final)
    _fsync_dir(directory)
    return final


def prune_checkpoints(directory: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints, and leftover ``.tmp-`` directories.

    :param directory: the ``checkpoints/`` directory
    :param keep: how many to keep (>= 1)
    :return: the deleted directories
    """
    directory = Path(directory)
    removed = []
    for _, path in checkpoint_dirs(directory)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    removed.extend(remove_partial(directory))
    return removed


def remove_partial(directory: str | Path) -> list[Path]:
    """Delete the ``.tmp-`` directories a killed writer left behind.

    :param directory: the ``checkpoints/`` directory
    :return: the deleted directories
    """
    directory = Path(directory)
    partial = sorted(directory.glob(".tmp-step_*")) if directory.is_dir() else []
    for path in partial:
        shutil.rmtree(path, ignore_errors=True)
    return partial


# --------------------------------------------------------------------------------------------------
# reading


def checkpoint_dirs(directory: str | Path) -> list[tuple[int, Path]]:
    """The ``step_<N>`` directories in ``directory``, oldest first (no verification).

    :param directory: the ``checkpoints/`` directory
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _STEP_DIR.match(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return sorted(found)


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Verify a checkpoint directory against its manifest and read its state.

    :param path: a ``step_<N>`` directory
    :raises CheckpointError: if it is missing, incomplete or damaged
    """
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    manifest = _read_json(path / MANIFEST_FILE, path, "its manifest")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt: its manifest is malformed")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {str(path)!r} has format version {manifest.get('format_version')!r}; "
                              f"this version of sparse_rl reads version {FORMAT_VERSION}")
    for required in (MODEL_FILE, STATE_FILE, RNG_FILE):
        if required not in manifest["files"]:
            raise CheckpointError(f"checkpoint {str(path)!r} is corrupt: its manifest lists no {required}")
    for name, entry in manifest["files"].items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"checkpoint {str(path)!r} is corrupt: {name} is missing")
        if file.stat().st_size != entry.get("bytes") or _sha256(file) != entry.get("sha256"):
            raise CheckpointError(f"checkpoint {str(path)!r} is corrupt: {name} does not match the sha256 "
                                  "recorded when it was written (the file was damaged or changed)")
    state = _read_json(path / STATE_FILE, path, STATE_FILE)
    return Checkpoint(path=path, step=int(state["num_timesteps"]), state=state)


def latest_checkpoint(run_dir: str | Path) -> Checkpoint | None:
    """The newest checkpoint of a run, verified; ``None`` if it has none.

    The newest one must be intact: if it is damaged this raises (naming the previous checkpoint,
    which ``--checkpoint`` can select) rather than silently going back further.

    :param run_dir: the run directory
    :raises CheckpointError: if the newest checkpoint is damaged
    """
    found = checkpoint_dirs(Path(run_dir) / CHECKPOINTS)
    if not found:
        return None
    try:
        return read_checkpoint(found[-1][1])
    except CheckpointError as error:
        older = f" The previous one is {str(found[-2][1])!r}: resume from it with --checkpoint {found[-2][1]}" \
            if len(found) > 1 else " There is no older checkpoint to fall back on."
        raise CheckpointError(f"{error}.{older} (or delete the damaged one).") from None


def load_model(checkpoint: Checkpoint, agent_class: type, env: Any, device: str = "auto",
               **overrides: Any) -> Any:
    """Load the model (and the replay buffer, if saved) of a verified checkpoint onto ``env``.

    :param checkpoint: from :func:`read_checkpoint`
    :param agent_class: SparseSAC or SparseTD3
    :param env: the training env (a VecEnv), whose spaces must match
    :param device: torch device
    :param overrides: attributes set on the model before it is rebuilt (changed hyperparameters)
    :raises CheckpointError: if SB3 cannot load it onto this env
    """
    try:
        model = agent_class.load(checkpoint.path / MODEL_FILE, env=env, device=device, **overrides)
        if checkpoint.has_replay_buffer:
            model.load_replay_buffer(checkpoint.path / BUFFER_FILE)
    except Exception as error:  # noqa: BLE001 - anything SB3 raises means: this checkpoint does not fit
        message = " ".join(str(error).split()) or type(error).__name__
        raise CheckpointError(f"cannot load checkpoint {str(checkpoint.path)!r} as a {agent_class.__name__} "
                              f"on this environment: {message}") from None
    return model


# --------------------------------------------------------------------------------------------------
# random generators


def capture_rng(model: Any | None = None) -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's global generators (and the action space's), as
    JSON-able data.

    :param model: an SB3 model whose ``action_space`` generator to include
    """
    version, internal, gauss = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    data: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": _jsonable(numpy_state),
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        data["torch_cuda"] = [state.tolist() for state in torch.cuda.get_rng_state_all()]
    space = getattr(model, "action_space", None)
    if space is not None and getattr(space, "_np_random", None) is not None:
        data["action_space"] = _jsonable(space.np_random.bit_generator.state)
    return data


def restore_rng(data: Mapping[str, Any], model: Any | None = None) -> None:
    """Put back what :func:`capture_rng` returned.

    :param data: the captured states
    :param model: the model whose action space generator to restore
    """
    version, internal, gauss = data["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = dict(data["numpy"])
    numpy_state["state"] = {key: (np.array(value, dtype=np.uint32) if key == "key" else value)
                            for key, value in numpy_state["state"].items()}
    np.random.set_state(numpy_state)
    torch.set_rng_state(torch.tensor(data["torch"], dtype=torch.uint8))
    if "torch_cuda" in data and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in data["torch_cuda"]])
    space = getattr(model, "action_space", None)
    if space is not None and "action_space" in data:
        space.np_random.bit_generator.state = data["action_space"]


# --------------------------------------------------------------------------------------------------
# env wrapper state



def env_state(env: Any) -> list[dict[str, Any]]:
    """The progress state of each wrapper of ``env`` (a gym env, or the first env of a VecEnv):
    ``state_dict()`` of every wrapper that has one (the library's wrappers do).

    :param env: the environment
    """
    states = []
    for depth, wrapper in enumerate(_wrapper_chain(env)):
        name = type(wrapper).__name__
        if callable(getattr(wrapper, "state_dict", None)):
            states.append({"depth": depth, "wrapper": name, "state": _jsonable(wrapper.state_dict())})
    return states


def restore_env_state(env: Any, states: list[Mapping[str, Any]]) -> None:
    """Put back what :func:`env_state` returned, wrapper by wrapper.

    :param env: the environment (built from the same config)
    :param states: the saved states
    :raises CheckpointError: if the wrapper chain differs
    """
    chain = _wrapper_chain(env)
    for entry in states:
        depth, name = int(entry["depth"]), entry["wrapper"]
        if depth >= len(chain) or type(chain[depth]).__name__ != name:
            raise CheckpointError(f"the checkpoint's environment has a {name} wrapper that this run's environment "
                                  "lacks: the env config changed since it was written")
        wrapper = chain[depth]
        try:
            wrapper.load_state_dict(entry["state"])
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"the checkpoint's {name} state cannot be restored: {error}") from error


def _wrapper_chain(env: Any) -> list[Any]:
    if hasattr(env, "envs"):  # an SB3 DummyVecEnv
        env = env.envs[0]
    chain = []
    while env is not None:
        chain.append(env)
        env = getattr(env, "env", None)
    return chain


# --------------------------------------------------------------------------------------------------
# files


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def _read_json(path: Path, checkpoint: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {str(checkpoint)!r} is corrupt or incomplete: {what} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"checkpoint {str(checkpoint)!r} is corrupt: cannot read {what} ({error})") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
