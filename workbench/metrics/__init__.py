"""Evaluation metrics on Dask arrays, computed where the data lives.

:func:`evaluate` turns each pair of row blocks of ``y_true`` and ``pred`` into a small summary on
the worker that holds them, merges the summaries in a tree on the cluster and brings back only a
handful of numbers: every requested metric comes from one pass over the data, in one
``dask.compute`` call.

Blocks may be NumPy or CuPy arrays. The per-block work runs in the block's own array module (a
GPU block is summarised on its GPU) and only the small summaries are moved to host memory.
CuPy is imported only when a block turns out to be a GPU array, recognised by
``__cuda_array_interface__``.

Each metric matches its scikit-learn counterpart: ``roc_auc_score`` (exact, ties count half),
``average_precision_score``, ``log_loss``, ``accuracy_score``, ``root_mean_squared_error``,
``mean_absolute_error`` and ``r2_score``.

Modules: :mod:`~workbench.metrics.registry` (the metric names and the tasks they apply to),
:mod:`~workbench.metrics.summaries` (the per-block summaries and their merge, run on the
cluster), :mod:`~workbench.metrics.evaluation` (:func:`evaluate` and its checks) and
:mod:`~workbench.metrics.result` (:class:`Metrics`, the dict that ``Model.evaluate`` returns,
with the evaluated set's name and rows and an HTML table).
"""

from __future__ import annotations

from workbench.metrics.evaluation import evaluate
from workbench.metrics.registry import METRICS, check_metrics, default_metrics
from workbench.metrics.result import Metrics

__all__ = ["METRICS", "Metrics", "check_metrics", "default_metrics", "evaluate"]
