"""``model="xgboost"``: XGBoost through ``xgboost.dask``, on CPUs or GPUs, with checkpoints.

:mod:`.train` trains (quantile matrices, live rounds, quiet ranks); :mod:`.recovery` continues
from the last checkpoint when a worker is lost.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from workbench import config
from workbench._client import snapshot
from workbench.training.allreduce import warn_if_allreduce_unencrypted
from workbench.training.backends.base import Capabilities, FitRequest, FitResult, Layout
from workbench.training.backends.xgboost import recovery, train

if TYPE_CHECKING:
    import dask.array as da
    from distributed import Client

logger = logging.getLogger(__name__)


class XGBoost:
    """The XGBoost backend (see :class:`~workbench.training.backends.base.Backend`)."""

    name = "xgboost"
    file_name = "model.ubj"
    capabilities = Capabilities(
        gpu=True,
        checkpoints=True,
        early_stopping=True,
        categorical=True,
        dtype="float32",
        eval_train=True,
        interrupt=True,
        importance_types=("gain", "total_gain", "weight", "cover", "total_cover"),
    )

    def default_params(self, task: str, n_classes: int | None) -> dict[str, Any]:
        """Objective and metrics for the task; early stopping watches the last metric."""
        return train.default_params(task, n_classes)

    def check_params(
        self, params: dict[str, Any], task: str, n_features: int, categorical: list[int]
    ) -> None:
        """XGBoost's own check, on a one-round training here (see :func:`.train.check_params`)."""
        classes = 3 if task == "multiclass" else None
        merged = {**train.default_params(task, classes), **params}
        train.check_params(merged, n_features, categorical)

    def effective_params(
        self, task: str, n_classes: int | None, params: dict[str, Any], device: str
    ) -> dict[str, Any]:
        """Defaults, the user's parameters, and the device trained on."""
        out = {**train.default_params(task, n_classes), **params}
        out.setdefault("device", "cuda" if device == "gpu" else "cpu")
        return out

    def prepare(self, client: Client) -> None:
        """Nothing before the data: the cluster's warning and quiet ranks come in :meth:`fit`."""

    def fit(self, client: Client, request: FitRequest) -> FitResult:
        """Train with :func:`.train.fit`, continued from checkpoints after lost workers.

        First, with the request's snapshot of the cluster: warn of an unencrypted allreduce
        and route the workers' native messages to logging.
        """
        if request.progress is None:
            raise ValueError("model='xgboost' trains with a progress (FitRequest.progress)")
        cluster = request.cluster if request.cluster is not None else snapshot(client)
        warn_if_allreduce_unencrypted(client, cluster)
        if config.get("train.quiet"):
            train.quiet(client, cluster)
        result, recoveries = recovery.fit(
            client,
            request.X,
            request.y,
            bar=request.progress,
            rounds=request.rounds,
            valid=request.valid,
            early_stopping=request.early_stopping,
            checkpoint_every=request.checkpoint_every,
            resume=request.resume,
            task=request.task,
            n_classes=request.n_classes,
            feature_names=request.feature_names,
            categorical=request.categorical,
            params=request.params,
            eval_train=request.eval_train,
            cluster=cluster,
        )
        result.recoveries = list(recoveries)
        return result

    def predict(self, client: Client, estimator: Any, X: da.Array, task: str) -> da.Array:
        """Probabilities of class 1 (binary), per class (multiclass), or values."""
        return train.predict(client, estimator, X, task)

    def to_bytes(self, estimator: Any) -> bytes:
        """The booster in XGBoost's UBJSON format."""
        return train.to_bytes(estimator)

    def from_bytes(self, data: bytes) -> Any:
        """A booster from :meth:`to_bytes`."""
        return train.from_bytes(data)

    def importance(
        self, estimator: Any, names: list[str], importance_type: str
    ) -> dict[str, float]:
        """XGBoost's ``get_score`` of each feature (0 for features never used)."""
        return train.importance(estimator, names, importance_type)

    def layout(self, estimator: Any) -> Layout:
        """XGBoost keeps the names and types (``c`` for categorical) it was trained with."""
        types = estimator.feature_types
        return Layout(
            count=int(estimator.num_features()),
            names=estimator.feature_names,
            categorical=None if types is None else [j for j, t in enumerate(types) if t == "c"],
        )

    def rounds_done(self, estimator: Any) -> int:
        """The booster's boosted rounds."""
        return int(estimator.num_boosted_rounds())


BACKEND = XGBoost()
