"""Predictions written as Parquet, one partition per input partition, rows in input order.

Part of the public API layer (``workbench predict`` calls it through
:func:`workbench.api.models.predict_to_folder`); it was ``workbench.training.predict_io``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import dask.array as da
import dask.dataframe as dd
import fsspec

if TYPE_CHECKING:
    from workbench.data.dataset import Dataset
    from workbench.training.model import Model

logger = logging.getLogger(__name__)


def check_out(out: str) -> None:
    """Refuse an output folder that exists and is not empty.

    Parameters
    ----------
    out
        A local folder or fsspec URL.

    Raises
    ------
    FileExistsError
        ``out`` is a file, or a folder holding anything.
    """
    fs, _, (where,) = fsspec.get_fs_token_paths(out)
    if fs.exists(where) and (not fs.isdir(where) or fs.ls(where)):
        raise FileExistsError(f"{out!r} already exists; choose a new folder for the predictions")


def write_predictions(
    model: Model, ds: Dataset, out: str, *, proba: bool = False, client: Any = None
) -> int:
    """Write ``prediction`` (and ``proba_<class>`` columns) for every row of ``ds`` to ``out``.

    The folder is written by Dask's Parquet writer, one file per partition; an existing folder
    is refused rather than mixed with.

    Parameters
    ----------
    model
        The model to predict with.
    ds
        The rows, with the model's features.
    out
        A new (or empty) folder or fsspec URL.
    proba
        Also write ``proba_<class>`` columns (classification).
    client
        The Dask client (default: the current one).

    Returns
    -------
    int
        The number of rows written.
    """
    check_out(out)
    columns = {"prediction": model.predict(ds, client=client)}
    if proba and model.classes is not None:
        p = model.predict_proba(ds, client=client)
        for j, c in enumerate(model.classes):
            columns[f"proba_{c}"] = p[:, j]
    parts = [dd.from_dask_array(a, columns=name).to_frame() for name, a in columns.items()]
    frame = dd.concat(parts, axis=1) if len(parts) > 1 else parts[0]
    rows = int(sum(da.asarray(columns["prediction"]).chunks[0]))
    frame.to_parquet(out, write_index=False)
    return rows
