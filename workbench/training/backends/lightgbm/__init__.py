"""``model="lightgbm"``: LightGBM through ``lightgbm.dask``, data-parallel on CPUs.

:mod:`.params` checks the parameters, :mod:`.worker` is what runs on the workers, and
:mod:`.train` holds the training (its notes say why there is no early stopping and no GPU).
Importing this package imports LightGBM; without it,
:class:`~workbench.errors.MissingDependencyError` says what to install.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from workbench.training.backends.base import Capabilities, FitRequest, FitResult, Layout
from workbench.training.backends.lightgbm import (  # params first: it checks LightGBM is there
    params as lgbm_params,
)
from workbench.training.backends.lightgbm import train

if TYPE_CHECKING:
    import dask.array as da
    from distributed import Client

logger = logging.getLogger(__name__)


class LightGBM:
    """The LightGBM backend (see :class:`~workbench.training.backends.base.Backend`)."""

    name = "lightgbm"
    file_name = "model.txt"
    capabilities = Capabilities(
        gpu=False,
        checkpoints=False,
        early_stopping=False,
        categorical=True,
        dtype="float32",
        eval_train=True,
        interrupt=False,
        importance_types=("gain", "total_gain", "weight"),
        why_not={
            "early_stopping": (
                "early_stopping is not available for model='lightgbm': lightgbm.dask evaluates "
                "each worker's share of the validation set apart, so the workers would stop at "
                "different rounds and the training would fail; use model='xgboost' for early "
                "stopping, or set rounds="
            ),
            "gpu": (
                "model='lightgbm' trains on CPUs here (lightgbm.dask has no CUDA path); "
                "use model='xgboost' for the GPU or device='cpu'"
            ),
        },
    )

    def default_params(self, task: str, n_classes: int | None) -> dict[str, Any]:
        """LightGBM's objective and metrics for ``task``, quiet."""
        return lgbm_params.default_params(task, n_classes)

    def check_params(
        self, params: dict[str, Any], task: str, n_features: int, categorical: list[int]
    ) -> None:
        """Names checked against LightGBM's own list (values are checked when it trains)."""
        lgbm_params.check_params(params)

    def effective_params(
        self, task: str, n_classes: int | None, params: dict[str, Any], device: str
    ) -> dict[str, Any]:
        """Defaults, then the user's parameters."""
        return {**lgbm_params.default_params(task, n_classes), **params}

    def prepare(self, client: Client) -> None:
        """Nothing to prepare."""

    def fit(self, client: Client, request: FitRequest) -> FitResult:
        """Train with :func:`.train.fit`."""
        return train.fit(
            client,
            request.X,
            request.y,
            task=request.task,
            n_classes=request.n_classes,
            feature_names=request.feature_names,
            categorical=request.categorical,
            params=request.params,
            rounds=request.rounds,
            valid=request.valid,
            early_stopping=request.early_stopping,
            topic=request.topic,
            eval_train=request.eval_train,
        )

    def predict(self, client: Client, estimator: Any, X: da.Array, task: str) -> da.Array:
        """Predictions block by block on the workers."""
        return train.predict(client, estimator, X, task)

    def to_bytes(self, estimator: Any) -> bytes:
        """The booster in LightGBM's text format."""
        return train.to_bytes(estimator)

    def from_bytes(self, data: bytes) -> Any:
        """A booster from :meth:`to_bytes`."""
        return train.from_bytes(data)

    def importance(
        self, estimator: Any, names: list[str], importance_type: str
    ) -> dict[str, float]:
        """Gain (average or total) or number of splits of each feature, as XGBoost names them."""
        return train.importance(estimator, names, importance_type)

    def layout(self, estimator: Any) -> Layout:
        """LightGBM keeps the names (spaces made ``_``)."""
        return Layout(
            count=int(estimator.num_feature()),
            names=list(estimator.feature_name()),
            stored_name=lambda n: n.replace(" ", "_"),
        )

    def rounds_done(self, estimator: Any) -> int:
        """Not resumable: 0."""
        return 0


BACKEND = LightGBM()
