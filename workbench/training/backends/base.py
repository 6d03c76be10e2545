"""The training backend protocol: what a backend declares, is asked and answers.

A backend trains one kind of model on Dask arrays and serves its predictions, files and
importances. :func:`workbench.train` reads a backend's :class:`Capabilities` to decide what to
refuse and how to prepare the data; it never compares model names. Backends are found by name in
:mod:`workbench.training.backends.registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import dask.array as da
    from distributed import Client

    from workbench._client import ClusterSnapshot
    from workbench.training.progress import Progress

History = dict[str, dict[str, list[float]]]  # {data: {metric: [value per round]}}


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; :func:`workbench.train` refuses the rest before any work.

    Attributes
    ----------
    gpu
        It trains and predicts on CUDA arrays (``device="gpu"``/``"auto"``); otherwise its data
        stays on the CPU and ``device="gpu"`` is refused.
    checkpoints
        It sends checkpoints while training, recovers from lost workers and resumes
        (``checkpoint_every``, ``checkpoint_path``, ``resume``); it implements
        :meth:`Backend.rounds_done`.
    early_stopping
        It stops early on the validation set (``early_stopping=``).
    categorical
        It takes categorical features (integer codes, NaN for missing, levels in
        :attr:`FitRequest.categories`); otherwise datasets with one are refused.
    dtype
        The float type of the training arrays (``"float32"`` or ``"float64"``).
    eval_train
        It can evaluate the training rows each round beside the validation rows.
    interrupt
        It honours a stop request (an interrupt) on every worker at the same round.
    files
        Its models can be saved to a model file (:meth:`Backend.to_bytes`).
    importance_types
        The measures :meth:`Backend.importance` offers, its default first (XGBoost's names
        where they apply: ``gain``, ``total_gain``, ``weight``, ``cover``, ``total_cover``).
    why_not
        For a capability it lacks, the sentence that refuses it (``{"early_stopping": ...}``);
        a generic one otherwise.
    """

    gpu: bool = False
    checkpoints: bool = False
    early_stopping: bool = False
    categorical: bool = False
    dtype: str = "float32"
    eval_train: bool = False
    interrupt: bool = False
    files: bool = True
    importance_types: tuple[str, ...] = ("importance",)
    why_not: Mapping[str, str] = field(default_factory=dict)

    def refusal(self, name: str, model: str) -> str:
        """The message that refuses capability ``name`` for ``model``."""
        return self.why_not.get(name) or f"model={model!r} does not support {name}"


@dataclass(frozen=True)
class FitRequest:
    """One training, as :func:`workbench.train` hands it to :meth:`Backend.fit`.

    Attributes
    ----------
    X, y
        Features (float of :attr:`Capabilities.dtype`; categorical columns as integer codes,
        NaN for missing) and target (class indices ``0..K-1``, or values), persisted on the
        workers with the same row chunks.
    task
        ``binary``, ``multiclass`` or ``regression``.
    n_classes
        The number of classes (classification), else ``None``.
    feature_names
        One per column of ``X``.
    categorical
        Indices of the categorical columns.
    categories
        The levels of each categorical feature, by name.
    params
        The user's parameters of the backend's library; they win over its defaults.
    rounds
        Rounds in all (boosting rounds; iterations at most for an iterative solver), a resumed
        model's included.
    valid
        ``(X, y)`` evaluated every round as ``valid``, or ``None``.
    early_stopping
        Stop after this many rounds without improvement on ``valid`` (needs the capability).
    eval_train
        Evaluate the training rows each round too. Off: only ``valid`` is evaluated, and
        without it nothing is (the rounds are still reported, with no metrics).
    progress
        The training's progress: each round's metrics go to its ``topic``; a backend with
        checkpoints sends them there too.
    checkpoint_every
        Rounds between checkpoints (backends with checkpoints); ``None`` or 0 for none.
    resume
        ``(estimator, history)`` to continue from (backends with checkpoints).
    cluster
        The training's :func:`~workbench._client.snapshot` of the cluster (workers, threads,
        hosts, TLS), taken once by :func:`workbench.train`: a backend reads the workers from
        it rather than asking the scheduler again; ``None``: ask it.
    """

    X: da.Array
    y: da.Array
    task: str
    n_classes: int | None
    feature_names: list[str]
    categorical: list[int]
    categories: dict[str, list[Any]]
    params: dict[str, Any]
    rounds: int
    valid: tuple[da.Array, da.Array] | None = None
    early_stopping: int | None = None
    eval_train: bool = False
    progress: Progress | None = None
    checkpoint_every: int | None = None
    resume: tuple[Any, History] | None = None
    cluster: ClusterSnapshot | None = None

    @property
    def topic(self) -> str | None:
        """The progress topic, or ``None`` without progress."""
        return self.progress.topic if self.progress is not None else None


@dataclass
class FitResult:
    """What a training returns.

    Attributes
    ----------
    estimator
        The trained object (an ``xgboost.Booster``, a ``lightgbm.Booster``, a linear model...).
    history
        Every metric per round: ``{"train": {metric: [...]}, "valid": {...}}``.
    best_iteration
        The best round (0-based) under early stopping, else ``None``.
    rounds
        The rounds trained (a resumed model's included): the rows of ``Model.history``, which
        has no columns when nothing was evaluated. ``None``: the length of ``history``.
    recoveries
        The recoveries from lost workers on the way (backends with checkpoints), each a
        ``workbench.training.backends.xgboost.recovery.Recovery``.
    """

    estimator: Any
    history: History
    best_iteration: int | None = None
    recoveries: list[Any] = field(default_factory=list)
    rounds: int | None = None

    @property
    def booster(self) -> Any:
        """:attr:`estimator`, under the boosters' name."""
        return self.estimator


@dataclass(frozen=True)
class Layout:
    """What an estimator records of the columns it was trained on (``None``: not recorded).

    A model file's estimator is checked against its manifest with this: a mismatch means its
    predictions would use the wrong columns.

    Attributes
    ----------
    count
        The number of feature columns.
    names
        The feature names as the estimator stores them.
    categorical
        Indices of the categorical columns.
    levels
        Levels per categorical column index.
    stored_name
        How the library stores a feature name (LightGBM writes spaces as ``_``).
    """

    count: int
    names: list[str] | None = None
    categorical: list[int] | None = None
    levels: dict[int, int] | None = None
    stored_name: Callable[[str], str] = str


@runtime_checkable
class Backend(Protocol):
    """A way to train a model on the cluster (XGBoost, LightGBM, linear, ...).

    Attributes
    ----------
    name
        The ``model=`` name, and the ``kind`` of the models it makes.
    capabilities
        What it can do.
    file_name
        The name of the estimator's member in a model file (``model.ubj``).
    """

    name: str
    capabilities: Capabilities
    file_name: str

    def default_params(self, task: str, n_classes: int | None) -> dict[str, Any]:
        """The library's parameters for ``task`` before the user's."""
        ...

    def check_params(
        self, params: dict[str, Any], task: str, n_features: int, categorical: list[int]
    ) -> None:
        """Raise ``ValueError``/``TypeError`` for a parameter the library rejects, naming it."""
        ...

    def effective_params(
        self, task: str, n_classes: int | None, params: dict[str, Any], device: str
    ) -> dict[str, Any]:
        """The parameters a model records as trained with (defaults, then the user's)."""
        ...

    def prepare(self, client: Client) -> None:
        """Get the client ready before the data is built (what needs no cluster snapshot).

        What depends on the workers (warnings about them, logging on them) belongs in
        :meth:`fit`, which has the training's snapshot in :attr:`FitRequest.cluster`.
        """
        ...

    def fit(self, client: Client, request: FitRequest) -> FitResult:
        """Train on the workers that hold ``request.X``; report each round to its progress."""
        ...

    def predict(self, client: Client, estimator: Any, X: da.Array, task: str) -> da.Array:
        """Probabilities of class 1 (binary), per class (multiclass), or values; lazy."""
        ...

    def to_bytes(self, estimator: Any) -> bytes:
        """The estimator in its library's own file format."""
        ...

    def from_bytes(self, data: bytes) -> Any:
        """An estimator from :meth:`to_bytes`."""
        ...

    def importance(
        self, estimator: Any, names: list[str], importance_type: str
    ) -> dict[str, float]:
        """Importance of each feature by name, by one of ``capabilities.importance_types``."""
        ...

    def layout(self, estimator: Any) -> Layout:
        """What the estimator records of its columns."""
        ...

    def rounds_done(self, estimator: Any) -> int:
        """The rounds an estimator holds (to resume from it)."""
        ...
