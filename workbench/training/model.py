"""The :class:`Model`: a trained booster or linear model and everything needed to use it again."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import dask.array as da
import numpy as np
import pandas as pd

from workbench import metrics as _metrics  # "metrics" is evaluate's argument
from workbench._client import ensure_client, snapshot
from workbench._redact import redact
from workbench.data.dataset import Dataset, numeric_kind
from workbench.display import render
from workbench.errors import ModelFileError
from workbench.training import archive, backends, labels, store
from workbench.training.manifest import HISTORY_KEYS, check_estimator, check_manifest

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)


def versions() -> dict[str, str]:
    """Versions of the packages a model was made with."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("workbench", "xgboost", "lightgbm", "dask", "distributed", "numpy", "pandas"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


@dataclass
class Model:
    """A model trained with :func:`workbench.train` (or read by :func:`workbench.load_model`).

    Attributes
    ----------
    kind
        The backend that trained it: ``xgboost``, ``lightgbm``, ``linear`` or a registered
        one (:func:`workbench.training.backends.register`).
    task
        ``binary``, ``multiclass`` or ``regression``.
    target
        The target column.
    features
        Feature columns and kinds (``numeric`` or ``categorical``), in the order trained on.
    categories
        The levels each categorical feature was encoded with (unknown levels become missing).
    classes
        The class labels (classification), in the order of ``predict_proba``'s columns.
    estimator
        The trained object: an ``xgboost.Booster``, a ``lightgbm.Booster`` or a
        :class:`~workbench.training.linear.LinearModel`.
    params
        The parameters trained with (defaults of the task, then the user's).
    rounds
        Rounds asked for; ``best_iteration`` is the best round (0-based) under early stopping.
    history
        Every metric per round (a column per ``data-metric``, for example ``valid-auc``).
    metrics
        Metrics on the validation set at the end of training (empty without one).
    info
        Where and how it was trained: rows, seconds, device, workers, source, versions, and
        what happened on the way (``events``).
    """

    kind: str
    task: str
    target: str
    features: dict[str, str]
    categories: dict[str, list[Any]]
    classes: list[Any] | None
    estimator: Any
    params: dict[str, Any] = field(default_factory=dict)
    rounds: int = 0
    best_iteration: int | None = None
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    # --- data -------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        """Feature columns in training order."""
        return list(self.features)

    @property
    def categorical(self) -> list[int]:
        """Indices of the categorical features."""
        return [j for j, k in enumerate(self.features.values()) if k == "categorical"]

    def _arrays(self, ds: Dataset, client: Client, with_target: bool) -> tuple[Any, Any]:
        """``(X, y)`` of ``ds`` encoded as in training (the model's feature order and levels)."""
        if not isinstance(ds, Dataset):
            raise TypeError(f"expected a workbench Dataset (wb.load(...)), not {type(ds).__name__}")
        columns = set(ds.frame.columns)
        missing = [f for f in self.features if f not in columns]
        if missing:
            raise ValueError(
                f"dataset {ds.source!r} lacks the feature(s) {missing} that the model was trained "
                f"on; load it with all of {self.feature_names}"
            )
        dtypes = ds.frame.dtypes
        wrong = [
            f"{f} ({dtypes[f]})"
            for f, what in self.features.items()
            if what == "numeric" and not numeric_kind(dtypes[f])
        ]
        if wrong:
            raise ValueError(
                f"dataset {ds.source!r} has non-numeric values in numeric feature(s) "
                f"{', '.join(wrong)}; convert them to numbers as in the training data"
            )
        if with_target and self.target not in columns:
            raise ValueError(
                f"dataset {ds.source!r} has no target column {self.target!r}, which evaluation "
                "needs; predict() works without it"
            )
        view = replace(
            ds,
            features=dict(self.features),
            categories=dict(self.categories),
            target=self.target if with_target else None,
        )
        gpu = backends.get(self.kind).capabilities.gpu
        device = "auto" if gpu else "cpu"
        X, y, *_ = view.encoded(client, device=device, dtype="float32", cluster=snapshot(client))
        if with_target:
            classes = np.asarray(self.classes) if self.classes is not None else None
            y = labels.encode(y, classes, self.target, f"dataset {ds.source!r}")
        return X, y

    def _scores(self, X: da.Array, client: Client) -> da.Array:
        return backends.get(self.kind).predict(client, self.estimator, X, self.task)

    # --- use --------------------------------------------------------------------------
    def predict_proba(self, ds: Dataset, client: Client | None = None) -> da.Array:
        """Class probabilities of each row, ``(rows, classes)``, computed on the workers.

        Columns follow :attr:`classes`. Regression models have no probabilities.
        """
        if self.task == "regression":
            raise TypeError("a regression model has no predict_proba; use predict()")
        client = ensure_client(client)
        with client.as_current():
            X, _ = self._arrays(ds, client, with_target=False)
            p = self._scores(X, client)
            if self.task == "binary":
                p = da.map_blocks(
                    _two_columns, p, chunks=(p.chunks[0], (2,)), new_axis=1, dtype=p.dtype
                )
            return p

    def predict(self, ds: Dataset, client: Client | None = None) -> da.Array:
        """Predicted class labels (classification) or values (regression), a Dask array.

        It is lazy and runs where the rows are; ``.compute()`` brings it to the client.
        """
        client = ensure_client(client)
        with client.as_current():
            X, _ = self._arrays(ds, client, with_target=False)
            p = self._scores(X, client)
            if self.task == "regression":
                return p
            classes = np.asarray(self.classes)
            if self.task == "binary":
                return da.map_blocks(_binary_labels, p, classes, dtype=classes.dtype)
            return da.map_blocks(_argmax_labels, p, classes, dtype=classes.dtype, drop_axis=1)

    def evaluate(
        self, ds: Dataset, metrics: str | list[str] | None = None, client: Client | None = None
    ) -> _metrics.Metrics:
        """Metrics of the model on ``ds``, computed on the cluster in one pass.

        Parameters
        ----------
        ds
            A dataset with the model's features and target.
        metrics
            Names from :data:`workbench.metrics.METRICS`; by default those of the task
            (AUC, average precision, log loss and accuracy; or RMSE, MAE and R²).
        client
            The Dask client; the current one by default.

        Returns
        -------
        Metrics
            A ``dict`` of each metric's full-precision value (``m["auc"]``, ``dict(m)``,
            ``json.dumps(m)``), with the set's name (``ds.source``) and the rows evaluated;
            ``m.to_series()`` gives a ``pandas.Series``, and a notebook shows a rounded table.
        """
        names = _metrics.check_metrics(metrics, self.task)
        client = ensure_client(client)
        with client.as_current():
            X, y = self._arrays(ds, client, with_target=True)
            found = _metrics.evaluate(y, self._scores(X, client), self.task, names, client=client)
        return _metrics.Metrics(found, name=redact(ds.source), rows=found.rows)

    def feature_importance(self, importance_type: str | None = None) -> pd.Series:
        """Importance of each feature by one measure, sorted from the most important.

        Parameters
        ----------
        importance_type
            The measure, in XGBoost's words where the backend has it: ``"gain"`` (the average
            gain of the feature's splits), ``"total_gain"``, ``"weight"`` (how many splits use
            the feature), ``"cover"`` (the average number of rows its splits cover, as
            hessian sums) or ``"total_cover"``; a linear model has ``"coefficient"`` (the size
            of its coefficients on the standardised scale). ``None``: the backend's default,
            ``"gain"`` for boosted trees. The backend's ``capabilities.importance_types``
            lists what it offers.

        Returns
        -------
        pandas.Series
            One value per feature, largest first, named after the measure (``"gain"``).

        Raises
        ------
        ValueError
            If the backend does not offer ``importance_type`` (the message lists those it does).
        """
        backend = backends.get(self.kind)
        offered = backend.capabilities.importance_types
        measure = offered[0] if importance_type is None else importance_type
        if measure not in offered:
            raise ValueError(
                f"importance_type={importance_type!r} is not offered by a {self.kind} model; "
                f"use one of {', '.join(repr(t) for t in offered)}"
            )
        values = backend.importance(self.estimator, self.feature_names, measure)
        return pd.Series(values, name=measure, dtype="float64").sort_values(ascending=False)

    # --- pictures ---------------------------------------------------------------------
    def plot_history(self, ax: Any = None) -> Any:
        """Draw every metric per round (one panel per metric); return the axes."""
        from workbench.display.plots import plot_history

        return plot_history(self.history, best=self.best_iteration, ax=ax)

    def plot_importance(
        self, top: int = 20, ax: Any = None, importance_type: str | None = None
    ) -> Any:
        """Draw the ``top`` most important features as bars, titled by the measure; return the axes.

        ``importance_type`` is :meth:`feature_importance`'s (the backend's default: ``gain``).
        """
        from workbench.display.plots import plot_importance

        return plot_importance(self.feature_importance(importance_type), top=top, ax=ax)

    # --- files ------------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        """Everything but the estimator, as JSON-ready values."""
        return {
            "kind": self.kind,
            "task": self.task,
            "target": self.target,
            "features": self.features,
            "categories": {k: list(v) for k, v in self.categories.items()},
            "classes": _plain(self.classes),
            "params": _plain(self.params),
            "rounds": self.rounds,
            "best_iteration": self.best_iteration,
            "metrics": self.metrics,
            "history": json.loads(self.history.to_json(orient="split")),
            "info": _plain(self.info),
            "versions": versions(),
            "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = True) -> str:
        """Write the model to one file (a local path or an fsspec URL), atomically.

        The file is a zip archive of the estimator in its own format (``model.ubj`` for
        XGBoost, ``model.txt`` for LightGBM, ``model.json`` for linear) and ``workbench.json``
        (features, target, levels, classes, params, metrics, history, versions, and the size and
        SHA-256 of the estimator's file). A local file is written under a temporary name and
        renamed, an object store's in one put: a crash while saving leaves the old file whole.

        Parameters
        ----------
        path
            A local path or fsspec URL (``str`` or a path object; not ``bytes``).
        overwrite
            ``True`` (the default, as ``DataFrame.to_parquet`` and XGBoost's ``save_model``
            do): replace an existing *workbench model file*; anything else there (a CSV named
            ``model.wbm``) is refused, never replaced. ``False``: refuse any existing file.
            A replaced local file keeps its permissions; a new one gets ``0666 & ~umask``.

        Returns
        -------
        str
            The path written.

        Raises
        ------
        TypeError
            ``path`` is bytes or not a path.
        ValueError
            ``path`` is a folder.
        FileExistsError
            Something that may not be replaced is at ``path`` (the message says what).
        """
        target = store.as_path(path)
        if not isinstance(overwrite, bool):
            raise TypeError(f"overwrite must be True or False, not {overwrite!r}")
        if_exists: store.IfExists = "model" if overwrite else "refuse"
        store.check_target(target, if_exists)  # before the estimator is serialised
        backend = backends.get(self.kind)
        if not backend.capabilities.files:
            raise TypeError(
                f"a {self.kind} model cannot be saved to a file: its backend declares no file "
                "format (Capabilities.files=False)"
            )
        data = archive.pack(self.manifest(), {backend.file_name: backend.to_bytes(self.estimator)})
        return store.write_atomic(target, data, if_exists=if_exists)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Model:
        """Read a model written by :meth:`save`, checking everything in it.

        Raises
        ------
        FileNotFoundError
            Nothing at ``path``.
        ModelFileError
            The file is not a workbench model this workbench reads: another format version,
            a manifest that lacks a field or holds a wrong type, an estimator whose SHA-256
            or features (names, order, count) differ from the manifest's, an unexpected or
            oversized member, or damage. The message names the file and the fault.
        """
        source = store.as_path(path)
        manifest, files = store.read(source)
        check_manifest(manifest, source)
        kind = manifest["kind"]
        backend = backends.get(kind)
        name = backend.file_name
        if set(files) != {name}:
            raise ModelFileError(
                f"{source!r}: a {kind} model file holds {name!r} only, not {sorted(files)}"
            )
        try:
            estimator = backend.from_bytes(files[name])
        except ImportError:
            raise
        except Exception as e:
            raise ModelFileError(f"{source!r}: its {name} is not a {kind} model ({e})") from None
        check_estimator(backend, estimator, manifest, source)
        try:
            history = pd.DataFrame(**{k: manifest["history"][k] for k in HISTORY_KEYS})
        except (ValueError, TypeError) as e:
            raise ModelFileError(f"{source!r}: its history is not a table ({e})") from None
        history.index.name = "round"
        return cls(
            kind=kind,
            task=manifest["task"],
            target=manifest["target"],
            features=dict(manifest["features"]),
            categories=dict(manifest["categories"]),
            classes=manifest["classes"],
            estimator=estimator,
            params=manifest["params"],
            rounds=int(manifest["rounds"]),
            best_iteration=manifest["best_iteration"],
            history=history,
            metrics=dict(manifest["metrics"]),
            info={**manifest["info"], "path": source, "versions": manifest.get("versions", {})},
        )

    # --- reprs ------------------------------------------------------------------------
    def _trained_rounds(self) -> int:
        return (self.best_iteration + 1) if self.best_iteration is not None else len(self.history)

    def __repr__(self) -> str:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in self.metrics.items())
        best = f", best round {self.best_iteration}" if self.best_iteration is not None else ""
        return (
            f"<workbench.Model {self.kind} {self.task} target={self.target!r}: "
            f"{len(self.features)} features, {len(self.history)} rounds{best}"
            f"{'; ' + metrics if metrics else ''}>"
        )

    def _repr_html_(self) -> str:
        return render("model.html.j2", model=self, importance=self.feature_importance().head(10))


def load_model(path: str | os.PathLike[str]) -> Model:
    """Read a model saved with :meth:`Model.save` (a local path or an fsspec URL).

    Raises
    ------
    TypeError
        ``path`` is bytes or not a path.
    FileNotFoundError
        Nothing at ``path``.
    ModelFileError
        ``path`` is not a workbench model this workbench reads (a ``ValueError`` too); the
        message says why (see :meth:`Model.load`).
    """
    return Model.load(path)


def _plain(value: Any) -> Any:
    """``value`` with NumPy scalars and arrays made JSON-ready."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _two_columns(p: Any) -> Any:
    xp = np if isinstance(p, np.ndarray) else __import__("cupy")
    return xp.stack([1 - p, p], axis=1)


def _binary_labels(p: Any, classes: np.ndarray) -> Any:
    idx = np.asarray(p.get() if hasattr(p, "get") else p) > 0.5
    return classes[idx.astype(int)]


def _argmax_labels(p: Any, classes: np.ndarray) -> Any:
    idx = np.asarray(p.get() if hasattr(p, "get") else p).argmax(axis=1)
    return classes[idx]
