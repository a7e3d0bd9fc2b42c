"""The CSV logs of a run: ``metrics.csv`` (a row per evaluation) and ``topology.csv`` (a row per
topology update of a sparse agent, with the filtering metrics at that moment). Rows are appended
and flushed as they come; a resumed run drops those written after its checkpoint.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sparse_rl._util.rundir import read_csv_header, read_csv_rows

METRICS_FIELDS = ("timesteps", "eval_return_mean", "eval_return_std", "eval_length_mean", "episodes",
                  "steps_per_second", "wall_time_s")


# --------------------------------------------------------------------------------------------------
# metrics.csv


class MetricsLog:
    """``metrics.csv``: one row per evaluation, appended and flushed as it comes.

    :param path: the CSV file
    :param fields: its columns (the header of an existing file wins)
    """

    def __init__(self, path: str | Path, fields: Sequence[str] = METRICS_FIELDS) -> None:
        self.path = Path(path)
        if self.path.is_file() and self.path.stat().st_size > 0:
            self.fields = tuple(read_csv_header(self.path))
        else:
            self.fields = tuple(fields)
            with self.path.open("w", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerow(self.fields)

    def rows(self) -> list[dict[str, str]]:
        """All rows written so far."""
        return read_csv_rows(self.path)

    def append(self, row: Mapping[str, Any]) -> None:
        """Append one row (missing columns empty, unknown ones dropped), flushed to disk.

        :param row: values by column
        """
        with self.path.open("a", newline="", encoding="utf-8") as handle:
            csv.DictWriter(handle, fieldnames=self.fields, extrasaction="ignore").writerow(
                {key: _format(row.get(key)) for key in self.fields})
            handle.flush()
            os.fsync(handle.fileno())

    def truncate_after(self, timesteps: int) -> int:
        """Drop the rows of evaluations after ``timesteps`` (those a resumed run will redo).

        :param timesteps: the step of the checkpoint being resumed
        :return: the number of rows dropped
        """
        rows = self.rows()
        kept = [row for row in rows if _complete(row) and _step(row) <= timesteps]
        if len(kept) != len(rows):
            temporary = self.path.with_suffix(".csv.tmp")
            with temporary.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=self.fields)
                writer.writeheader()
                writer.writerows(kept)
            os.replace(temporary, self.path)
        return len(rows) - len(kept)


def _complete(row: Mapping[str, Any]) -> bool:
    """Whether a row has all its columns (a run killed mid-write can leave a partial last line)."""
    return None not in row.values() and None not in row


def _step(row: Mapping[str, Any]) -> float:
    try:
        return float(row["timesteps"])
    except (TypeError, ValueError):
        return float("inf")


def _format(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value


# --------------------------------------------------------------------------------------------------
# topology.csv

#: the columns of ``topology.csv`` before the per-network filtering metrics
TOPOLOGY_FIELDS = ("timesteps", "gradient_step", "updated", "changed", "drop_fraction")


def filtering_columns(model: Any) -> dict[str, float]:
    """The filtering metrics of ``model``'s sparse input layers as flat columns
    (``in_degree_real_actor``, ``topk_precision_qf0``…; see
    :class:`~sparse_rl.sparse.connectivity.FilteringMetrics`); empty for a model without them."""
    if not hasattr(model, "input_filtering"):
        return {}
    return {f"{key}_{network}": value for network, metrics in model.input_filtering().items()
            for key, value in metrics.as_dict().items()}


class TopologyLog:
    """``topology.csv``: a row after every topology update of a sparse agent: when (env steps,
    gradient step), which updater (``actor`` or ``critic``), how many connections moved, and the
    filtering metrics of every input layer at that moment (:func:`filtering_columns`). Listens
    through ``model.add_topology_listener``.

    :param path: the CSV file
    :param model: a ``SparseSAC`` / ``SparseTD3``
    """

    def __init__(self, path: str | Path, model: Any) -> None:
        self.model = model
        self.log = MetricsLog(path, [*TOPOLOGY_FIELDS, *filtering_columns(model)])
        model.add_topology_listener(self)

    def __call__(self, network: str, update: Any) -> None:
        """Topology listener: append the row of this update."""
        self.log.append({"timesteps": int(self.model.num_timesteps), "gradient_step": update.step,
                         "updated": network, "changed": update.changed, "drop_fraction": update.drop_fraction,
                         **filtering_columns(self.model)})
