"""Write the connectivity analysis to TensorBoard: scalars per snapshot and the PNG plots as images."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from sparse_rl.analysis.snapshots import ConnectivitySeries
from sparse_rl.sparse.connectivity import filtering_keys

#: Summary keys written as TensorBoard scalars besides every registered filtering metric.
EXTRA_SCALAR_KEYS = ("strength_real_share", "in_degree_action")


def scalar_keys() -> tuple[str, ...]:
    """The summary keys written as TensorBoard scalars, under ``connectivity/<network>/<key>``: every
    registered filtering metric (:func:`~sparse_rl.sparse.connectivity.filtering_keys`), then
    :data:`EXTRA_SCALAR_KEYS`."""
    return (*filtering_keys(), *EXTRA_SCALAR_KEYS)


def clear_events(directory: str | Path) -> None:
    """Delete the TensorBoard event files directly in ``directory``, so that a re-run of the
    analysis replaces its curves instead of adding a second copy of them.

    :param directory: a TensorBoard log directory owned by the analysis
    """
    directory = Path(directory)
    if directory.is_dir():
        for path in directory.glob("events.out.tfevents.*"):
            path.unlink(missing_ok=True)


def write_tensorboard(
    directory: str | Path,
    series: ConnectivitySeries | None,
    final: Mapping[str, Mapping[str, object]] | None = None,
    images: Iterable[Path] = (),
    final_step: int = 0,
) -> Path:
    """Write scalars and images to a fresh TensorBoard log in ``directory``.

    :param directory: the log directory (a run's ``tb/analysis``); its old event files are removed
    :param series: snapshots: each gives ``connectivity/<network>/<metric>`` at its env step
    :param final: per network, the final model's summary: written at ``final_step`` under
        ``connectivity_final/<network>/<metric>``
    :param images: PNG files, each added as an image named after its file stem
    :param final_step: the env step of the final model
    :return: the directory
    """
    from matplotlib import image as mpimg
    from torch.utils.tensorboard import SummaryWriter

    directory = Path(directory)
    clear_events(directory)
    writer = SummaryWriter(log_dir=str(directory))
    keys = scalar_keys()
    try:
        if series is not None:
            for snap in series.snapshots:
                for name, conn in snap.networks.items():
                    summary = conn.summary()
                    for key in keys:
                        if _finite(summary.get(key)):
                            writer.add_scalar(f"connectivity/{name}/{key}", float(summary[key]), snap.env_step)
        for name, summary in (final or {}).items():
            for key in keys:
                value = summary.get(key)
                if _finite(value):
                    writer.add_scalar(f"connectivity_final/{name}/{key}", float(value), final_step)  # type: ignore[arg-type]
        for path in images:
            picture = mpimg.imread(path)
            if picture.dtype != np.uint8:
                picture = (np.clip(picture, 0, 1) * 255).astype(np.uint8)
            writer.add_image(f"connectivity/{Path(path).stem}", picture[..., :3], final_step, dataformats="HWC")
    finally:
        writer.close()
    return directory


def _finite(value: object) -> bool:
    """Whether a summary value is a finite number (``None`` and NaN are undefined; an infinite ratio
    has no point on a curve)."""
    return isinstance(value, (int, float)) and bool(np.isfinite(value))
