"""Atomic, verifiable checkpoints of a training run, and what a resumed run restores from them.

A checkpoint is a directory ``checkpoints/step_<N>/`` (``N``: env steps done) holding

- ``model.zip``: SB3's ``save`` (networks, optimizers, counters, the topology updaters' state),
- ``replay_buffer.npz`` and ``replay_buffer.json``: the replay buffer's arrays (``np.savez``, read
  back with ``allow_pickle=False``; of the per-slot arrays only the rows filled so far, in the
  buffer's own dtype) and its counters and class name as JSON (left out with
  ``checkpoint.replay_buffer: false``, and for a buffer of another class than SB3's ``ReplayBuffer``
  and :class:`~sparse_rl.agents.buffers.NoiseFreeReplayBuffer`, with a warning: nothing is pickled;
  a pickled ``replay_buffer.pkl`` is never loaded),
- ``rng.json``: the states of Python's, NumPy's and torch's global generators and of the action space's,
- ``state.json``: counters (env steps, episodes, wall time, metrics rows), the env wrappers' state
  and the resolved config the run had,
- ``manifest.json``: format version and the sha256 and size of every other file.

It is written as ``checkpoints/.tmp-step_<N>/`` (every file flushed to disk) and then renamed with
``os.replace``: a run killed at any moment leaves either a complete checkpoint or a ``.tmp-``
directory, which is ignored (and removed by the next writer). Reading one checks the manifest, so
a damaged file is reported, never loaded. A write that fails (a full disk) removes its ``.tmp-``
directory and raises :class:`CheckpointWriteError`; the earlier checkpoints are untouched.

Only ``model.zip`` is unpickled, by SB3, when it loads: the manifest catches damage, not an
attacker. Open only runs you trust.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import time
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from sparse_rl._util.jsonutil import to_jsonable
from sparse_rl._util.rundir import (  # noqa: F401 - re-exported: the checkpoint API in one place
    BUFFER_ARRAYS,
    BUFFER_FILE,
    BUFFER_META,
    CHECKPOINTS,
    FORMAT_VERSION,
    MANIFEST_FILE,
    MODEL_FILE,
    READABLE_VERSIONS,
    RNG_FILE,
    STATE_FILE,
    Checkpoint,
    CheckpointError,
    checkpoint_dirs,
    latest_checkpoint,
    read_checkpoint,
    read_checkpoint_json,
    sha256,
)
from sparse_rl.agents.loading import model_algorithm  # noqa: F401 - re-exported (old path)
from sparse_rl.experiment.errors import RunWriteError


class CheckpointWriteError(RunWriteError):
    """A checkpoint could not be written; the earlier ones are intact."""


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
    try:
        if temporary.exists():
            shutil.rmtree(temporary)
        temporary.mkdir()
        _write_files(model, temporary, state, step, replay_buffer)
        if final.exists():  # the same step written again (e.g. the end of a resumed, finished run)
            shutil.rmtree(final)
        os.replace(temporary, final)
    except OSError as error:
        shutil.rmtree(temporary, ignore_errors=True)  # frees the space it took
        full = " (the disk is full)" if error.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        raise CheckpointWriteError(f"cannot write checkpoint {str(final)!r}: {error.strerror or error}{full}; the "
                                   "earlier checkpoints are intact") from None
    _fsync_dir(directory)
    return final


def _write_files(model: Any, temporary: Path, state: Mapping[str, Any], step: int, replay_buffer: bool) -> None:
    model.save(temporary / MODEL_FILE)
    buffer = getattr(model, "replay_buffer", None)
    if replay_buffer and buffer is not None and not save_replay_buffer(buffer, temporary):
        warnings.warn(f"the replay buffer ({type(buffer).__name__}) is not saved in checkpoints: only SB3's "
                      "ReplayBuffer and NoiseFreeReplayBuffer are saved (as plain arrays, never pickled); a run "
                      "resumed from one starts with an empty buffer", stacklevel=2)
    _write_json(temporary / RNG_FILE, capture_rng(model))
    _write_json(temporary / STATE_FILE, {**state, "num_timesteps": step, "format_version": FORMAT_VERSION,
                                         "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    files = sorted(p.name for p in temporary.iterdir() if p.is_file())
    manifest = {"format_version": FORMAT_VERSION, "step": step,
                "files": {name: {"sha256": sha256(temporary / name), "bytes": (temporary / name).stat().st_size}
                          for name in files}}
    _write_json(temporary / MANIFEST_FILE, manifest)
    for name in [*files, MANIFEST_FILE]:
        _fsync(temporary / name)


def _plain_buffer(buffer: Any) -> bool:
    """Whether ``buffer`` is a class whose whole state is its arrays and counters."""
    from stable_baselines3.common.buffers import ReplayBuffer

    from sparse_rl.agents.buffers import NoiseFreeReplayBuffer

    return type(buffer) in (ReplayBuffer, NoiseFreeReplayBuffer)


def save_replay_buffer(buffer: Any, directory: Path) -> bool:
    """Write a replay buffer without pickle: its arrays to ``replay_buffer.npz``, its class and
    counters to ``replay_buffer.json``.

    :param buffer: SB3's ``ReplayBuffer`` or a :class:`~sparse_rl.agents.buffers.NoiseFreeReplayBuffer`
    :param directory: where the two files go
    :return: ``False`` (and nothing written) for a buffer of another class
    """
    if not _plain_buffer(buffer):
        return False
    rows = _filled_rows(buffer)
    arrays = {name: value[:rows] if _per_slot(value, buffer.buffer_size) else value
              for name, value in vars(buffer).items() if isinstance(value, np.ndarray) and not value.dtype.hasobject}
    with (directory / BUFFER_ARRAYS).open("wb") as handle:
        np.savez(handle, **arrays)
    _write_json(directory / BUFFER_META, {"class": type(buffer).__name__, "pos": int(buffer.pos),
                                          "full": bool(buffer.full), "buffer_size": int(buffer.buffer_size),
                                          "n_envs": int(buffer.n_envs), "rows": rows, "arrays": sorted(arrays)})
    return True


def _per_slot(array: np.ndarray, buffer_size: int) -> bool:
    """Whether ``array`` holds a row per slot of the buffer (those are saved up to the filled rows)."""
    return array.ndim >= 1 and array.shape[0] == buffer_size


def _filled_rows(buffer: Any) -> int:
    """The rows of the buffer's arrays that hold transitions: all when it is full, else ``pos``
    (only those are saved: a checkpoint of 1,000 steps does not store a million empty slots)."""
    return int(buffer.buffer_size) if buffer.full else int(buffer.pos)


def load_replay_buffer(buffer: Any, directory: Path) -> None:
    """Fill ``buffer`` (freshly made by the loaded model, of the same class and sizes) from what
    :func:`save_replay_buffer` wrote; nothing is unpickled.

    :param buffer: the model's replay buffer
    :param directory: the checkpoint's directory
    :raises CheckpointError: if the saved buffer does not fit ``buffer``
    """
    meta = read_checkpoint_json(directory / BUFFER_META, directory, BUFFER_META)
    where = f"checkpoint {str(directory)!r}"
    if not isinstance(meta, dict) or meta.get("class") != type(buffer).__name__:
        raise CheckpointError(f"{where} holds a {meta.get('class') if isinstance(meta, dict) else '?'} replay buffer; "
                              f"this run's is a {type(buffer).__name__}")
    for key in ("buffer_size", "n_envs"):
        if meta.get(key) != int(getattr(buffer, key)):
            raise CheckpointError(f"{where} holds a replay buffer with {key} {meta.get(key)!r}; this run's has "
                                  f"{getattr(buffer, key)} (agent.hyperparams.buffer_size cannot change on resume)")
    pos, full, rows = _buffer_counters(meta, int(buffer.buffer_size), where)
    names = meta.get("arrays", [])
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise CheckpointError(f"{where} is corrupt: {BUFFER_META}'s 'arrays' is not a list of names")
    try:
        with np.load(directory / BUFFER_ARRAYS, allow_pickle=False) as data:
            for name in names:
                value, current = data[name], getattr(buffer, name, None)
                # format 2 before issue 24 saved every slot; now only the filled rows
                fits = isinstance(current, np.ndarray) and current.dtype == value.dtype and (
                    value.shape == current.shape or (_per_slot(current, int(buffer.buffer_size))
                                                     and value.shape == (rows, *current.shape[1:])))
                if not fits:
                    raise CheckpointError(f"{where}: the replay buffer's {name!r} in {BUFFER_ARRAYS} does not fit "
                                          "this run's buffer")
                current[:len(value)] = value
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"{where}: cannot read {BUFFER_ARRAYS} ({error})") from None
    buffer.pos, buffer.full = pos, full


def _buffer_counters(meta: Mapping[str, Any], buffer_size: int, where: str) -> tuple[int, bool, int]:
    """``pos``, ``full`` and the rows saved, from ``replay_buffer.json``, checked against the buffer's size."""
    pos, full = meta.get("pos"), meta.get("full")
    if isinstance(pos, bool) or not isinstance(pos, int) or not 0 <= pos < buffer_size:
        raise CheckpointError(f"{where} is corrupt: {BUFFER_META}'s 'pos' is {pos!r}, not an integer in "
                              f"[0, {buffer_size}) (the buffer's size)")
    if not isinstance(full, bool):
        raise CheckpointError(f"{where} is corrupt: {BUFFER_META}'s 'full' is {full!r}, not true or false")
    rows = buffer_size if full else pos
    if meta.get("rows", rows) != rows:
        raise CheckpointError(f"{where} is corrupt: {BUFFER_META}'s 'rows' is {meta.get('rows')!r}, but 'pos' and "
                              f"'full' say {rows}")
    return pos, full, rows


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
    if not (checkpoint.path / BUFFER_META).is_file() and (checkpoint.path / BUFFER_FILE).is_file():
        # planted (format 1 is refused by read_checkpoint): never unpickled
        raise CheckpointError(f"checkpoint {str(checkpoint.path)!r} holds its replay buffer as a pickle "
                              f"({BUFFER_FILE}), which sparse_rl does not load (a planted "
                              "pickle could run code); start the run again from its config.yaml")
    check_model_algorithm(checkpoint.path / MODEL_FILE, agent_class)
    try:
        model = agent_class.load(checkpoint.path / MODEL_FILE, env=env, device=device, **overrides)
        if (checkpoint.path / BUFFER_META).is_file():
            load_replay_buffer(model.replay_buffer, checkpoint.path)
    except CheckpointError:
        raise
    except Exception as error:  # noqa: BLE001 - anything SB3 raises means: this checkpoint does not fit
        message = " ".join(str(error).split()) or type(error).__name__
        raise CheckpointError(f"cannot load checkpoint {str(checkpoint.path)!r} as a {agent_class.__name__} "
                              f"on this environment: {message}") from None
    return model


def check_model_algorithm(path: str | Path | IO[bytes], agent_class: type) -> None:
    """A :class:`CheckpointError` if the model in ``path`` is of another algorithm (a TD3 model in
    a SAC run, or the reverse) than ``agent_class``.

    :param path: an SB3 ``model.zip``
    :param agent_class: the class that is to load it (SparseSAC, SparseTD3, SB3's SAC or TD3)
    """
    from stable_baselines3 import TD3

    expected = "td3" if issubclass(agent_class, TD3) else "sac"
    found = model_algorithm(path)
    if hasattr(path, "seek"):
        path.seek(0)  # type: ignore[union-attr]
    if found is not None and found != expected:
        where = "the model" if hasattr(path, "seek") else repr(str(path))
        raise CheckpointError(f"{where} holds a {found.upper()} model, but this run trains {expected.upper()} "
                              f"(agent.algorithm: {expected}); give a model of a {expected.upper()} run")


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
        "numpy": to_jsonable(numpy_state, finite=False),
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        data["torch_cuda"] = [state.tolist() for state in torch.cuda.get_rng_state_all()]
    space = getattr(model, "action_space", None)
    if space is not None and getattr(space, "_np_random", None) is not None:
        data["action_space"] = to_jsonable(space.np_random.bit_generator.state, finite=False)
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
            states.append({"depth": depth, "wrapper": name, "state": to_jsonable(wrapper.state_dict(), finite=False)})
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


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


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
