"""``model="linear"``: L2-regularised linear and logistic regression by Newton's method.

:mod:`.model` holds the fitted model (its design, predictions and files), :mod:`.blocks` the
passes over the data, and :mod:`.solver` the distributed Newton (IRLS) solver; this module puts
them behind the backend protocol.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from workbench.training.backends.base import Capabilities, FitRequest, FitResult, Layout
from workbench.training.backends.linear.model import LinearModel
from workbench.training.backends.linear.solver import fit as fit_linear

if TYPE_CHECKING:
    import dask.array as da
    from distributed import Client

logger = logging.getLogger(__name__)

PARAMS = {"l2": 1.0, "max_iter": None, "tol": 1e-8}


class Linear:
    """The linear backend (see :class:`~workbench.training.backends.base.Backend`)."""

    name = "linear"
    file_name = "model.json"
    capabilities = Capabilities(
        gpu=True,
        checkpoints=False,
        early_stopping=False,
        categorical=True,
        dtype="float64",
        eval_train=False,  # it records its training loss per Newton iteration either way
        interrupt=False,
        importance_types=("coefficient",),
        why_not={
            "early_stopping": (
                "early_stopping applies to boosting rounds; model='linear' runs Newton "
                "iterations to convergence (set params={'tol': ...} instead)"
            ),
        },
    )

    def default_params(self, task: str, n_classes: int | None) -> dict[str, Any]:
        """The defaults: ``l2=1`` (as scikit-learn's ``C=1`` and ``Ridge(alpha=1)``)."""
        return {"l2": PARAMS["l2"], "tol": PARAMS["tol"]}

    def check_params(
        self, params: dict[str, Any], task: str, n_features: int, categorical: list[int]
    ) -> None:
        """Refuse parameters the linear model does not have, naming them."""
        unknown = sorted(set(params) - set(PARAMS))
        if unknown:
            raise ValueError(
                f"model='linear' has no parameter(s) {unknown}; it takes {sorted(PARAMS)} "
                "(l2: the L2 penalty, max_iter: Newton iterations, tol: convergence tolerance)"
            )

    def effective_params(
        self, task: str, n_classes: int | None, params: dict[str, Any], device: str
    ) -> dict[str, Any]:
        """The user's parameters as given."""
        return dict(params)

    def prepare(self, client: Client) -> None:
        """Nothing to prepare."""

    def fit(self, client: Client, request: FitRequest) -> FitResult:
        """Newton's method (IRLS), at most ``rounds`` iterations, each one pass over ``X``.

        Every iteration's training loss goes to the progress topic (reported from the client).
        """
        params = {**self.default_params(request.task, request.n_classes), **request.params}
        names = request.feature_names
        levels = {j: max(1, len(request.categories.get(names[j], []))) for j in request.categorical}
        history: dict[str, dict[str, list[float]]] = {"train": {"loss": []}}
        topic = request.topic

        def on_iteration(i: int, metrics: dict[str, float]) -> None:  # i counts from 1
            loss = float(metrics["loss"])
            history["train"]["loss"].append(loss)
            if topic is not None:
                client.log_event(topic, {"round": i - 1, "metrics": {"train": {"loss": loss}}})

        model = fit_linear(
            request.X,
            request.y,
            task=request.task,
            n_classes=request.n_classes,
            categorical=levels,
            l2=float(params["l2"]),
            max_iter=int(params.get("max_iter") or request.rounds),
            tol=float(params["tol"]),
            client=client,
            on_iteration=on_iteration,
        )
        return FitResult(model, history, None)

    def predict(self, client: Client, estimator: Any, X: da.Array, task: str) -> da.Array:
        """Probabilities (binary: of class 1) or values, block by block on the workers."""
        return estimator.predict(X)

    def to_bytes(self, estimator: Any) -> bytes:
        """The model's coefficients and preprocessing as JSON."""
        return json.dumps(estimator.to_dict()).encode()

    def from_bytes(self, data: bytes) -> Any:
        """A model from :meth:`to_bytes`."""
        return LinearModel.from_dict(json.loads(data))

    def importance(
        self, estimator: Any, names: list[str], importance_type: str
    ) -> dict[str, float]:
        """|coefficients| per feature, on the standardised scale (``coefficient``)."""
        return dict(estimator.feature_importance(names))

    def layout(self, estimator: Any) -> Layout:
        """The count, and which columns are categorical with how many levels."""
        return Layout(
            count=int(estimator.n_features),
            categorical=sorted(estimator.categorical),
            levels={int(j): int(n) for j, n in estimator.categorical.items()},
        )

    def rounds_done(self, estimator: Any) -> int:
        """Not resumable: 0."""
        return 0


BACKEND = Linear()
