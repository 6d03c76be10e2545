"""Class labels: checked from the training target's classes, encoded as indices 0..K-1."""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np


def _to_numpy(a: Any) -> np.ndarray:
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)


def check_classes(found: Any, target: str, task: str) -> np.ndarray | None:
    """The sorted classes of the training rows for a classification task (``None`` for regression).

    Parameters
    ----------
    found
        The distinct values of the training target, as the tasks that encoded its blocks found
        them (:attr:`workbench.data.dataset.Arrays.classes`): no pass over ``y`` here.
    target, task
        The target column and the task, named in the messages.

    Raises
    ------
    ValueError
        A target with one class only, or a binary task with more than two.
    """
    if task == "regression":
        return None
    classes = np.unique(_to_numpy(found))
    if len(classes) < 2:
        raise ValueError(
            f"target {target!r} has one class only ({classes.tolist()}) in the training rows: "
            "a classifier needs at least two; check the split, the filters or the target column"
        )
    if task == "binary" and len(classes) > 2:
        raise ValueError(
            f"target {target!r} has {len(classes)} classes but the task is binary; "
            "load it with task='multiclass'"
        )
    return classes


def _encode_block(block: Any, classes: np.ndarray) -> Any:
    xp = np
    if not isinstance(block, np.ndarray):
        import cupy

        xp = cupy
    known = xp.asarray(classes)
    idx = xp.searchsorted(known, block)
    idx = xp.clip(idx, 0, len(classes) - 1)
    return xp.where(known[idx] == block, idx, -1).astype(np.float32)


def encode(y: da.Array, classes: np.ndarray | None, target: str, where: str) -> da.Array:
    """``y`` as class indices (float32) into ``classes``; ``y`` itself for regression.

    Raises
    ------
    ValueError
        Labels that are not among ``classes`` (named, with ``where`` they were found).
    """
    if classes is None:
        return y
    if np.array_equal(classes, np.arange(len(classes))) and y.dtype == np.float32:
        unknown = ((y < 0) | (y >= len(classes)) | (y != da.floor(y))).sum().compute()
        if not unknown:
            return y
    codes = da.map_blocks(_encode_block, y, classes, dtype=np.float32)
    codes = codes.persist()
    bad = int((codes < 0).sum().compute())
    if bad:
        values = _to_numpy(da.unique(y[codes < 0]).compute())[:10]
        raise ValueError(
            f"target {target!r} in {where} has {bad} row(s) with labels the model was not trained "
            f"on: {values.tolist()} (trained on {classes.tolist()}); drop or relabel those rows"
        )
    return codes
