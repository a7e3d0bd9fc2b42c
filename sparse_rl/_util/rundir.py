"""The run directory: the one owner of its layout (its name, file names and sub-directories), of
creating one, of the check "is this a run directory", and of reading its checkpoints back
verified. Plain files only (no torch, no SB3), so that the analysis (L3), the experiment (L4) and
the benchmark (L5) all read runs through it::

    runs/<env>-<agent>-<sparsity>-f<noise>-s<seed>-<YYYYmmdd-HHMMSS>/
      config.yaml      the resolved config (``sparse-rl train`` loads it again)
      metrics.csv      one row per evaluation
      topology.csv     one row per topology update
      tb/              TensorBoard events
      checkpoints/     ``step_<N>/`` atomic checkpoints (see :mod:`sparse_rl.experiment.checkpoint`)
      connectivity/    input-layer snapshots (:mod:`sparse_rl.analysis.snapshots`)
      plots/           what ``sparse-rl analyze`` writes
      model.zip        the final model
      evaluations.npz  every evaluation's episode returns and lengths (SB3's ``EvalCallback`` format)
      best_model.zip   the model at its best evaluation
      .lock            held while a process trains or resumes it

A checkpoint directory holds ``model.zip``, the replay buffer (``replay_buffer.npz`` +
``replay_buffer.json``; a pickled ``replay_buffer.pkl`` is never loaded), ``rng.json``, ``state.json`` and
``manifest.json`` (format version, sha256 and size of every other file); :func:`read_checkpoint`
checks the manifest, so a damaged file is reported, never loaded.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import re
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparse_rl._util.errors import RunWriteError, UserError

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"
TOPOLOGY_FILE = "topology.csv"
TB_DIR = "tb"
CHECKPOINTS = "checkpoints"
CONNECTIVITY_DIR = "connectivity"
PLOTS_DIR = "plots"
FINAL_MODEL = "model.zip"
EVALUATIONS_FILE = "evaluations.npz"
BEST_MODEL = "best_model.zip"
LOCK_FILE = ".lock"
#: what ``run.track`` makes: Weights & Biases' own files (its logs are links into ~/.cache/wandb)
WANDB_DIR = "wandb"
#: what makes a directory look like a run (one of them is enough for reading)
RUN_MARKERS = (CONFIG_FILE, FINAL_MODEL, CONNECTIVITY_DIR, CHECKPOINTS, METRICS_FILE)

# inside a checkpoint
FORMAT_VERSION = 2
#: the checkpoint formats this version reads: 2, arrays + JSON (only the replay buffer's filled rows
#: since issue 24; older ones hold every slot). Format 1 (a pickled replay_buffer.pkl) is refused as
#: made by an older version of sparse_rl
READABLE_VERSIONS = (2,)
MODEL_FILE = "model.zip"
BUFFER_FILE = "replay_buffer.pkl"
BUFFER_ARRAYS = "replay_buffer.npz"
BUFFER_META = "replay_buffer.json"
RNG_FILE = "rng.json"
STATE_FILE = "state.json"
MANIFEST_FILE = "manifest.json"
STEP_DIR = re.compile(r"^step_(\d+)$")


class NotARunDir(UserError, ValueError):
    """A path that is not a run directory (a :class:`UserError` for the CLI, a ``ValueError`` for
    the analysis functions that always raised one)."""


class CheckpointError(UserError):
    """A checkpoint that is missing, incomplete, damaged, or does not fit the run."""


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
    def model(self) -> Path:
        """Its ``model.zip``."""
        return self.path / MODEL_FILE

    @property
    def has_replay_buffer(self) -> bool:
        """Whether it holds the replay buffer."""
        return (self.path / BUFFER_META).is_file() or (self.path / BUFFER_FILE).is_file()


def checkpoint_dirs(directory: str | Path) -> list[tuple[int, Path]]:
    """The ``step_<N>`` directories in ``directory``, oldest first (no verification).

    :param directory: the ``checkpoints/`` directory
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = STEP_DIR.match(path.name)
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
    manifest = read_checkpoint_json(path / MANIFEST_FILE, path, "its manifest")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt: its manifest is malformed")
    if manifest.get("format_version") == 1:
        raise CheckpointError(f"checkpoint {str(path)!r} was made by an older version of sparse_rl (checkpoint format "
                              "1, its replay buffer pickled), which this version does not read; start the run again "
                              "from its config.yaml")
    if manifest.get("format_version") not in READABLE_VERSIONS:
        raise CheckpointError(f"checkpoint {str(path)!r} has format version {manifest.get('format_version')!r}; "
                              f"this version of sparse_rl reads versions {', '.join(map(str, READABLE_VERSIONS))}")
    for required in (MODEL_FILE, STATE_FILE, RNG_FILE):
        if required not in manifest["files"]:
            raise CheckpointError(f"checkpoint {str(path)!r} is corrupt: its manifest lists no {required}")
    for name, entry in manifest["files"].items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"checkpoint {str(path)!r} is corrupt: {name} is missing")
        if file.stat().st_size != entry.get("bytes") or sha256(file) != entry.get("sha256"):
            raise CheckpointError(f"checkpoint {str(path)!r} is corrupt: {name} does not match the sha256 "
                                  "recorded when it was written (the file was damaged or changed)")
    state = read_checkpoint_json(path / STATE_FILE, path, STATE_FILE)
    step = state.get("num_timesteps") if isinstance(state, dict) else None
    if isinstance(step, bool) or not isinstance(step, int) or step < 0 or step != manifest.get("step", step):
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt: {STATE_FILE}'s 'num_timesteps' is {step!r}, not "
                              f"the step its manifest records ({manifest.get('step')!r})")
    return Checkpoint(path=path, step=step, state=state)


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


def read_checkpoint_json(path: Path, checkpoint: Path, what: str) -> Any:
    """A JSON file of a checkpoint; a :class:`CheckpointError` naming ``what`` if it is missing or
    unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {str(checkpoint)!r} is corrupt or incomplete: {what} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"checkpoint {str(checkpoint)!r} is corrupt: cannot read {what} ({error})") from None


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file with a header (``metrics.csv``, ``topology.csv``).

    :raises UserError: naming the file if it is not UTF-8 CSV text (a damaged file)
    """
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except (UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"{str(path)!r} is damaged: it is not a CSV table ({' '.join(str(error).split())[:120]}); "
                        "move it away (a resumed run starts a new one)") from None


def read_csv_header(path: Path) -> list[str]:
    """The header of a CSV file (``[]`` if it is empty).

    :raises UserError: naming the file if it is not UTF-8 CSV text (a damaged file)
    """
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return next(csv.reader(handle), [])
    except (UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"{str(path)!r} is damaged: it is not a CSV table ({' '.join(str(error).split())[:120]}); "
                        "move it away (a resumed run starts a new one)") from None


def sha256(path: Path) -> str:
    """The hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class RunDir:
    """A run directory: where each of its files is, and reading them back.

    :param path: the directory
    """

    path: Path

    @classmethod
    def require(cls, path: str | Path) -> RunDir:
        """``path`` if it is a run directory made by ``sparse-rl train`` (it holds ``config.yaml``),
        else :class:`NotARunDir` (what ``train --resume`` and ``evaluate`` need).

        :param path: the directory given by the user
        """
        run = cls._existing(path)
        if not run.config.is_file():
            raise NotARunDir(f"{str(run.path)!r} is not a run directory: it has no {CONFIG_FILE}. Give a directory "
                             "made by 'sparse-rl train', e.g. runs/<name>")
        escaping = run.escaping_links()
        if escaping:
            more = f" (and {len(escaping) - 1} more)" if len(escaping) > 1 else ""
            raise UserError(f"run directory {str(run.path)!r} holds a symbolic link that leaves it: {escaping[0]}"
                            f"{more}; sparse-rl reads and writes a run only inside its directory. Remove the link (or "
                            "copy the run without it)")
        return run

    def escaping_links(self) -> list[str]:
        """The symbolic links in the run directory (at any depth) whose target lies outside it, as
        ``name -> target``; a link inside the run (or a run directory that is itself a link) is fine,
        and so are the links W&B makes inside ``wandb/`` to its own logs (sparse_rl never reads them).
        """
        import os

        root = self.path.resolve()
        found = []
        for directory, names, files in os.walk(self.path):
            for name in [*names, *files]:
                entry = Path(directory) / name
                if entry.is_symlink():
                    target = entry.resolve()
                    if target != root and root not in target.parents:
                        found.append(f"{entry.relative_to(self.path)} -> {target}")
            if Path(directory) == self.path:
                names[:] = [name for name in names if name != WANDB_DIR]  # W&B's own files
        return sorted(found)

    @classmethod
    def find(cls, path: str | Path) -> RunDir:
        """``path`` if it looks like a run directory (it holds one of :data:`RUN_MARKERS`; what the
        analysis needs), else :class:`NotARunDir`.

        :param path: the directory
        """
        run = cls._existing(path)
        if not any((run.path / marker).exists() for marker in RUN_MARKERS):
            raise NotARunDir(
                f"{str(run.path)!r} is not a run directory: it holds none of {', '.join(RUN_MARKERS)} "
                "(give a directory made by 'sparse-rl train', e.g. runs/<name>/)")
        return run

    @classmethod
    def _existing(cls, path: str | Path) -> RunDir:
        path = Path(path)
        if not path.exists():
            raise NotARunDir(f"run directory {str(path)!r} does not exist")
        if not path.is_dir():
            raise NotARunDir(f"{str(path)!r} is a file, not a directory: give a run directory (runs/<name>/); to "
                             f"start a run from a config file use: sparse-rl train {path}")
        return cls(path)

    @property
    def config(self) -> Path:
        """``config.yaml``: the resolved config."""
        return self.path / CONFIG_FILE

    @property
    def metrics(self) -> Path:
        """``metrics.csv``: one row per evaluation."""
        return self.path / METRICS_FILE

    @property
    def topology(self) -> Path:
        """``topology.csv``: one row per topology update."""
        return self.path / TOPOLOGY_FILE

    @property
    def tb(self) -> Path:
        """``tb/``: TensorBoard events."""
        return self.path / TB_DIR

    @property
    def checkpoints(self) -> Path:
        """``checkpoints/``."""
        return self.path / CHECKPOINTS

    @property
    def connectivity(self) -> Path:
        """``connectivity/``: the snapshots."""
        return self.path / CONNECTIVITY_DIR

    @property
    def plots(self) -> Path:
        """``plots/``: the analysis."""
        return self.path / PLOTS_DIR

    @property
    def final_model(self) -> Path:
        """``model.zip``: the final model."""
        return self.path / FINAL_MODEL

    @property
    def best_model(self) -> Path:
        """``best_model.zip``: the model at its best evaluation."""
        return self.path / BEST_MODEL

    @property
    def evaluations(self) -> Path:
        """``evaluations.npz``."""
        return self.path / EVALUATIONS_FILE

    @property
    def lock(self) -> Path:
        """``.lock``."""
        return self.path / LOCK_FILE

    def config_data(self) -> dict[str, Any]:
        """``config.yaml`` as plain data, unvalidated (``{}`` if missing or unreadable, with a warning
        for the latter); :func:`sparse_rl.experiment.session.load_run_config` validates it."""
        if not self.config.is_file():
            return {}
        import yaml

        try:
            data = yaml.safe_load(self.config.read_text())
        except (OSError, yaml.YAMLError) as err:
            warnings.warn(f"could not read {self.config}: {err}", stacklevel=2)
            return {}
        return data if isinstance(data, dict) else {}

    def metrics_rows(self) -> list[dict[str, str]]:
        """The rows of ``metrics.csv`` (strings, by column), ``[]`` if it has none."""
        return read_csv_rows(self.metrics) if self.metrics.is_file() else []

    def checkpoint_dirs(self) -> list[tuple[int, Path]]:
        """The ``step_<N>`` directories, oldest first (no verification)."""
        return checkpoint_dirs(self.checkpoints)

    def latest_checkpoint(self) -> Checkpoint | None:
        """The newest checkpoint, verified (see :func:`latest_checkpoint`)."""
        return latest_checkpoint(self.path)

    def find_model(self) -> Path | None:
        """The final ``model.zip``, else the model of the newest checkpoint (verified against its
        manifest, as resume does: a damaged one raises :class:`CheckpointError`), else ``None``."""
        if self.final_model.is_file():
            return self.final_model
        found = self.latest_checkpoint()
        return found.model if found is not None else None


@dataclass(frozen=True)
class RunVerification:
    """What :func:`verify_run` found.

    :param checkpoints: the checkpoints that match their manifests
    :param models: the SB3 model files (``model.zip``, ``best_model.zip``, each checkpoint's), by
        path relative to the run: their sha256 and the number of pickled values in their ``data``
    :param problems: what is wrong (empty: nothing found)
    """

    checkpoints: list[str]
    models: dict[str, tuple[str, int]]
    problems: list[str]


def verify_run(path: str | Path) -> RunVerification:
    """Check a run without loading anything of it: no symbolic link leaves it, every checkpoint
    matches its manifest (sha256 and size of each file), and every model file is a zip archive;
    list the sha256 of each model file (what loading one unpickles), to compare with digests you trust.

    :param path: the run directory
    :raises NotARunDir: if it is not one
    """
    run = RunDir._existing(path)
    if not run.config.is_file():
        raise NotARunDir(f"{str(run.path)!r} is not a run directory: it has no {CONFIG_FILE}")
    problems = [f"symbolic link leaving the run: {link}" for link in run.escaping_links()]
    checkpoints: list[str] = []
    for _, directory in run.checkpoint_dirs():
        try:
            read_checkpoint(directory)
            checkpoints.append(directory.name)
        except CheckpointError as error:
            problems.append(str(error))
    models: dict[str, tuple[str, int]] = {}
    files = [run.final_model, run.best_model, *(directory / MODEL_FILE for _, directory in run.checkpoint_dirs())]
    for file in files:
        if not file.is_file() or file.is_symlink():
            continue
        name = file.relative_to(run.path).as_posix()
        pickled = _pickled_values(file)
        if pickled is None:
            problems.append(f"{name} is not an SB3 model archive (a zip holding 'data')")
            continue
        models[name] = (sha256(file), pickled)
    return RunVerification(checkpoints, models, problems)


def _pickled_values(path: Path) -> int | None:
    """How many values of an SB3 model's ``data`` are pickled (``:serialized:``); ``None`` if the
    file is not such an archive. Nothing is unpickled."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data").decode("utf-8"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    if not isinstance(data, dict):
        return None
    return sum(1 for value in data.values() if isinstance(value, dict) and ":serialized:" in value)


# --------------------------------------------------------------------------------------------------
# naming and creating a run directory (``config``: an
# :class:`~sparse_rl.experiment.config.ExperimentConfig`, read for its fields only)


def run_name(config: Any, now: float | None = None) -> str:
    """``<env>-<agent>-<sparsity>-f<noise>-s<seed>-<YYYYmmdd-HHMMSS>`` (or ``run.name``).

    :param config: the experiment (its ``run.name``, ``env``, ``agent``, ``sparsity_name``, ``seed``)
    :param now: the time stamp (seconds since the epoch; default: now)
    """
    if config.run.name:
        return str(config.run.name)
    env = "".join(c if c.isalnum() or c in "-_." else "_" for c in config.env.id)
    noise = f"{config.env.noise_fraction:g}" if config.env.n_noise is None else f"{config.env.n_noise}n"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    sparsity = "sb3" if config.agent.implementation == "sb3" else config.sparsity_name
    return f"{env}-{config.agent.algorithm}-{sparsity}-f{noise}-s{config.seed}-{stamp}"


def create_run_dir(config: Any) -> Path:
    """Make a new, empty run directory under ``run.root`` (a ``-2``, ``-3``… suffix if the name is
    taken) with its sub-directories, and write ``config.yaml`` into it.

    :param config: the experiment (its ``run.root``, ``run.name``, what :func:`run_name` reads, and
        ``to_yaml()``)
    :raises UserError: if ``run.name`` is given and already exists
    """
    root = Path(config.run.root)
    base = run_name(config)
    for attempt in range(1, 1000):
        path = root / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            path.mkdir(parents=True, exist_ok=False)
            break
        except FileExistsError:
            if config.run.name:
                raise UserError(f"run directory {str(path)!r} already exists; choose another run.name, or resume it "
                                f"with: sparse-rl train --resume {path}") from None
        except OSError as error:
            raise UserError(f"cannot create the run directory {str(path)!r}: {error}") from None
    else:  # pragma: no cover - a thousand runs in one second
        raise UserError(f"cannot find a free run directory name under {str(root)!r}")
    try:
        for sub in (TB_DIR, CHECKPOINTS, CONNECTIVITY_DIR):
            (path / sub).mkdir()
        write_config(config, path)
    except OSError as error:
        shutil.rmtree(path, ignore_errors=True)  # new and empty: nothing of a run is lost
        full = " (the disk is full)" if error.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        raise RunWriteError(f"cannot write the run directory {str(path)!r}: {error.strerror or error}{full}; it was "
                            "removed again. Make room (or give a writable run.root), then start the run again") \
            from None
    return path


def write_config(config: Any, run_dir: Path) -> None:
    """Write the resolved config to ``run_dir/config.yaml`` (atomically).

    :param config: the experiment (its ``to_yaml()``)
    :param run_dir: the run directory
    """
    temporary = run_dir / f".{CONFIG_FILE}.tmp"
    temporary.write_text(config.to_yaml(), encoding="utf-8")
    os.replace(temporary, run_dir / CONFIG_FILE)


def require_run_dir(path: str | Path) -> Path:
    """``path`` if it is a run directory (it holds ``config.yaml``), else :class:`NotARunDir`.

    :param path: the directory given by the user
    """
    return RunDir.require(path).path
