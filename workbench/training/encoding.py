"""A training's data as arrays: the training set's classes and levels, the validation set alike.

Both :func:`workbench.train` and a study's packed trials start here: the training set encoded
on the workers (its classes found on the way), then the validation set encoded with the
training set's feature order, levels and classes, so that a code means the same in both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.training import labels

if TYPE_CHECKING:
    from distributed import Client

    from workbench._client import ClusterSnapshot
    from workbench.data.dataset import Dataset


@dataclass
class EncodedSets:
    """The arrays of a training and validation set, and what their codes mean."""

    X: Any
    y: Any
    valid: tuple[Any, Any] | None  # (X, y) of the validation set
    features: dict[str, str]  # name -> kind, in the columns' order
    categories: dict[str, list[Any]]  # the levels each categorical feature is coded with
    classes: np.ndarray | None  # the training rows' classes (None for regression)
    device: str  # "cpu" or "gpu": where the blocks are


def encode_sets(
    train: Dataset,
    valid: Dataset | None,
    *,
    client: Client,
    device: str,
    dtype: Any,
    cluster: ClusterSnapshot,
    fix_classes: Callable[[np.ndarray | None], np.ndarray | None] | None = None,
    between: Callable[[Any, Any], tuple[Any, Any]] | None = None,
) -> EncodedSets:
    """Encode ``train`` and ``valid`` on the workers.

    Parameters
    ----------
    train, valid
        The datasets (``valid`` may be ``None``).
    client, device, dtype, cluster
        As for :meth:`workbench.Dataset.encoded`.
    fix_classes
        Given the classes found in the training rows, returns those to encode with (a resumed
        training keeps its checkpoint's); it may raise.
    between
        Called with the training ``(X, y)`` before the validation set is read; returns them
        (moved, for example).
    """
    task, target = str(train.task), str(train.target)
    X, y, levels, dev, found = train.encoded(client, device=device, dtype=dtype, cluster=cluster)
    classes = labels.check_classes(found, target, task)
    if fix_classes is not None:
        classes = fix_classes(classes)
    y = labels.encode(y, classes, target, "the training set")
    if between is not None:
        X, y = between(X, y)
    features = dict(train.features)
    categories = {c: list(levels[c]) for c, k in features.items() if k == "categorical"}
    valid_xy = None
    if valid is not None:
        view = replace(valid, features=features, categories=categories)  # train's order
        Xv, yv, *_ = view.encoded(client, device=dev, dtype=dtype, cluster=cluster)
        yv = labels.encode(yv, classes, target, "the validation set")
        valid_xy = (Xv, yv)
    return EncodedSets(X, y, valid_xy, features, categories, classes, dev)
