"""LightGBM on the cluster through ``lightgbm.dask``: data-parallel training, CPU only.

Every Dask worker that holds training rows trains LightGBM on its own rows, in one of its
threads; LightGBM links these trainings with its own TCP sockets and keeps their trees identical
by reducing histograms across them (``tree_learner="data"``). The workbench drives
``lightgbm.dask._train`` (the function behind ``DaskLGBMClassifier.fit``) with its own
``model_factory``, :class:`_WorkerModel`, so that it can

* use the labels as given: ``LGBMClassifier`` label-encodes ``y`` separately on each worker,
  so a worker whose rows lack a class trains a model of another shape and the training fails
  (``DaskLGBMClassifier`` does, on two workers); here ``y`` already holds class indices and the
  objective and ``num_class`` are explicit;
* set LightGBM's log level in the worker's thread before the network starts (LightGBM keeps it
  per thread, and links the workers before it reads ``verbosity``, so the "Trying to bind
  port" and "Connecting to rank" lines would otherwise reach the worker's stdout).

Findings that shape this module (LightGBM 4.7, tested with two workers):

**Metrics are local.** LightGBM evaluates every metric on each worker's own rows only; there is
no reduction of metrics across workers (upstream issues #6956 and #6963; pull request #7290
proposes one). ``lightgbm.dask`` hands each worker the validation blocks that travel with its
training blocks, so at the same round the workers see different validation scores.
:func:`fit` therefore reports the metrics of one worker, LightGBM's rank 0: ``train`` on its
training rows and ``valid`` on its share of the validation rows. They are estimates, not the
metrics of the whole sets; :mod:`workbench.metrics` on :func:`predict` gives those.

**No early stopping.** Because each worker's early-stopping callback watches its own validation
share, the workers stop at different rounds: the first to stop closes its connections and the
others fail with "Socket recv error, Connection reset by peer", or, when the close reaches them
as an end of stream, spin in LightGBM's receive loop. With one validation block made noisier
than the other, the two workers of a test cluster disagreed at round 3 and training failed.
LightGBM offers no collective that a Python callback could use to agree on a round, so
``early_stopping`` raises ``ValueError`` and suggests ``model="xgboost"``, whose metrics are
reduced across workers. For the same reason a stop request
(:func:`workbench.training.progress.request_stop`) is not honoured: the workers would see it at
different rounds.

**Failures.** An error raised on every worker (a bad parameter value, labels out of range
everywhere) reaches the caller as LightGBM's own ``LightGBMError`` at once. When only some
workers fail, the caller gets their error at once too, but the others keep waiting for them in
LightGBM's network until its ``time_out`` (120 minutes by default; ``params={"time_out": m}``),
holding a thread of their Dask workers. Closing the failed worker's connections would not
help: a closed connection can leave the waiting workers spinning instead.

**Ports.** ``lightgbm.dask`` asks each worker for a free port (it binds a throwaway socket to
port 0 on all interfaces and closes it just before training). The ``machines`` list it gives
LightGBM names each worker by the host of its Dask address (``127.0.0.1`` for a cluster on
``127.0.0.1``), and LightGBM connects to those hosts; a worker finds its own rank by matching
its interface addresses and port against that list, so worker addresses must be IPv4 addresses
of their machines (checked here). LightGBM's listener binds ``0.0.0.0:<port>`` (its socket code
has no bind-address option) and is closed once the workers are linked. Behind a firewall, pass
``params={"local_listen_port": p}`` (one worker per host) or ``{"machines": "ip:port,..."}``.

**Quiet.** ``verbose=-1`` silences LightGBM on the workers except one line per worker and
training, ``[LightGBM] [Info] Listening...``: LightGBM logs it from a thread of its own, whose
log level starts at "Info" and cannot be set from outside. On the client, ``lightgbm.dask``'s
own messages (such as "Finding random open ports for workers") go to the
``workbench.lightgbm`` logger while :func:`fit` runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import difflib
import functools
import inspect
import ipaddress
import logging
import math
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np

from workbench.errors import MissingDependencyError
from workbench.training import progress
from workbench.training.backends.base import FitResult

try:
    import lightgbm
    import lightgbm.dask
except ImportError as e:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "model='lightgbm' needs the lightgbm package (with its Dask support): "
        "pip install lightgbm scikit-learn"
    ) from e
if not lightgbm.compat.SKLEARN_INSTALLED:  # lightgbm.dask trains through lightgbm.sklearn
    raise MissingDependencyError(
        "model='lightgbm' needs scikit-learn (lightgbm.dask builds its models with it), which "
        "is missing: pip install scikit-learn"
    )

if TYPE_CHECKING:
    import dask.array as da
    from distributed import Client

native_logger = logging.getLogger("workbench.lightgbm")

TASKS = ("binary", "multiclass", "regression")

_DEFAULTS: dict[str, dict[str, Any]] = {
    "binary": {"objective": "binary", "metric": ["binary_logloss", "auc"]},
    "multiclass": {"objective": "multiclass", "metric": ["multi_logloss", "multi_error"]},
    "regression": {"objective": "regression", "metric": ["l2", "l1"]},
}

# LightGBM parameters (main names) that the workbench or lightgbm.dask sets: what to do instead.
_MANAGED = {
    "num_iterations": "pass rounds=... instead",
    "early_stopping_round": "early stopping is not available for model='lightgbm' "
    "(see early_stopping=)",
    "num_threads": "lightgbm.dask gives each worker as many threads as its Dask worker has; "
    "choose threads_per_worker when starting the cluster",
    "num_machines": "lightgbm.dask counts the workers that hold training rows",
    "categorical_feature": "the dataset's categorical columns are passed for you",
}
_TREE_LEARNERS = {
    "data",
    "data_parallel",
    "feature",
    "feature_parallel",
    "voting",
    "voting_parallel",
}
_NETWORK = {"machines", "local_listen_port", "time_out", "tree_learner"}
_JSON_CHARS = set('",:[]{}')  # LightGBM refuses these in feature names

_NO_EARLY_STOPPING = (
    "early_stopping={!r} is not available for model='lightgbm': lightgbm.dask evaluates the "
    "validation metrics on each worker's own share of the validation rows, so the workers "
    "would stop at different rounds and the training would fail (the first to stop drops its "
    "connections). Use model='xgboost', whose metrics are reduced across workers, or leave "
    "early_stopping=None and choose rounds."
)


# --- parameters -----------------------------------------------------------------------
def _check_task(task: str, n_classes: int | None) -> None:
    if task not in TASKS:
        raise ValueError(f"task={task!r} is not one LightGBM trains here; use one of {TASKS}")
    if task == "multiclass" and (
        isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2
    ):
        raise ValueError(
            f"n_classes={n_classes!r}: a multiclass task needs the number of classes, "
            "an integer of at least 2"
        )
    if task == "binary" and n_classes not in (None, 2):
        raise ValueError(f"n_classes={n_classes!r} for a binary task; pass 2 or None")


def default_params(task: str, n_classes: int | None) -> dict[str, Any]:
    """LightGBM's objective and metrics for ``task``, quiet.

    Parameters
    ----------
    task
        ``binary``, ``multiclass`` or ``regression``.
    n_classes
        The number of classes (multiclass; ``None`` or 2 for binary).

    Returns
    -------
    dict
        For example ``{"objective": "binary", "metric": ["binary_logloss", "auc"],
        "verbose": -1}``; multiclass adds ``num_class``.
    """
    _check_task(task, n_classes)
    params: dict[str, Any] = {**_DEFAULTS[task], "verbose": -1}
    params["metric"] = list(params["metric"])
    if task == "multiclass":
        params["num_class"] = int(n_classes)  # type: ignore[arg-type]
    return params


@functools.cache
def _main_names() -> dict[str, str]:
    """Every LightGBM parameter name and alias -> its main name, from LightGBM itself."""
    from lightgbm.basic import _ConfigAliases

    table = _ConfigAliases._get_all_param_aliases()  # {main: [main, *aliases]}, from C++
    return {alias: main for main, aliases in table.items() for alias in aliases}


def check_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """Check the names in ``params`` against LightGBM's own list; return them by main name.

    LightGBM only warns about a name it does not know, and when a parameter is given under
    two names it keeps one silently (``learning_rate`` beats ``eta``), so both are errors here.

    Parameters
    ----------
    params
        LightGBM parameters, under any of their names or aliases.

    Returns
    -------
    dict
        The same values, each under LightGBM's main name (``eta`` -> ``learning_rate``).

    Raises
    ------
    TypeError
        ``params`` is not a dict with string keys, or ``objective`` is not a string.
    ValueError
        A name LightGBM does not know, a parameter given twice, or one the workbench sets.
    """
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of LightGBM parameters, not {params!r}")
    table = _main_names()
    out: dict[str, Any] = {}
    given: dict[str, str] = {}
    unknown: list[str] = []
    for name, value in params.items():
        if not isinstance(name, str):
            raise TypeError(f"parameter names must be strings, not {name!r}")
        main = table.get(name)
        if main is None:
            unknown.append(name)
        elif main in given:
            raise ValueError(
                f"params gives LightGBM's {main!r} twice, as {given[main]!r} and {name!r}; keep one"
            )
        else:
            given[main] = name
            out[main] = value
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, table, n=1)
            hint = f" (did you mean {table[close[0]]!r}?)" if close else ""
            hints.append(f"{name!r}{hint}")
        raise ValueError(
            f"LightGBM has no parameter {', '.join(hints)}; see "
            "https://lightgbm.readthedocs.io/en/stable/Parameters.html"
        )
    for main, instead in _MANAGED.items():
        if main in out:
            raise ValueError(
                f"params={{{given[main]!r}: {out[main]!r}}} is not accepted: {instead}"
            )
    if out.get("device_type", "cpu") != "cpu":
        raise ValueError(
            f"params={{{given['device_type']!r}: {out['device_type']!r}}}: model='lightgbm' "
            "trains on CPUs (lightgbm.dask has no GPU path); use model='xgboost' on GPUs"
        )
    learner = out.get("tree_learner", "data")
    if learner not in _TREE_LEARNERS:
        raise ValueError(
            f"params={{{given['tree_learner']!r}: {learner!r}}}: distributed LightGBM takes "
            f"one of {sorted(_TREE_LEARNERS)}"
        )
    if "objective" in out and not isinstance(out["objective"], str):
        raise TypeError(
            f"objective={out['objective']!r}: pass the name of a LightGBM objective "
            "(custom objective functions are not supported)"
        )
    return out


def _merge(task: str, n_classes: int | None, params: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults of the task, overridden by the user's parameters, all by main name."""
    user = check_params(params)
    merged = check_params(default_params(task, n_classes))
    if task == "multiclass" and "num_class" in user and user["num_class"] != n_classes:
        raise ValueError(
            f"params sets num_class={user['num_class']!r} but the data has "
            f"n_classes={n_classes}; drop num_class from params"
        )
    merged.update(user)
    return merged


def _check_values(
    params: dict[str, Any], n_features: int, categorical: list[int], task: str, n_classes: int
) -> None:
    """Raise ``ValueError`` for a value LightGBM rejects, before any work on the cluster.

    LightGBM checks values when it makes a booster: this makes one on a few random rows in
    this process (no network, one thread, silent).
    """
    rng = np.random.default_rng(0)
    n = 32
    X = rng.random((n, n_features))
    for j in categorical:
        X[:, j] = np.arange(n) % 3
    if task == "regression":
        y = rng.random(n)
    else:
        y = (np.arange(n) % max(n_classes, 2)).astype(np.float64)
    # network settings and files that may exist on the workers only are not checked here
    local = {
        k: v
        for k, v in params.items()
        if k not in _NETWORK and not k.endswith("filename") and k != "input_model"
    }
    local.update(num_threads=1, verbosity=-1)
    try:
        data = lightgbm.Dataset(X, y, params=local, categorical_feature=categorical)
        lightgbm.Booster(params=local, train_set=data)
    except lightgbm.basic.LightGBMError as e:
        raise ValueError(f"LightGBM rejects the parameters {params!r}: {e}") from None


# --- worker side ----------------------------------------------------------------------
# What the workers leave for the client, by training run (this process's share).
_runs: dict[str, dict[str, Any]] = {}
_runs_lock = threading.Lock()


def _run_state(run: str) -> dict[str, Any]:
    with _runs_lock:
        return _runs.setdefault(run, {"history": {}})


def _take_run(run: str) -> dict[str, Any] | None:
    """Remove and return what this process kept for ``run`` (called with ``client.run``)."""
    with _runs_lock:
        return _runs.pop(run, None)


def _set_thread_log_level(verbosity: int) -> None:
    """Set LightGBM's log level of the calling thread (LightGBM keeps one per thread).

    ``LGBM_GetSampleCount`` is the cheapest call that reads a parameter string, and reading
    ``verbosity`` sets the level.
    """
    out = ctypes.c_int(0)
    lightgbm.basic._safe_call(
        lightgbm.basic._LIB.LGBM_GetSampleCount(
            ctypes.c_int32(1),
            ctypes.c_char_p(f"verbosity={int(verbosity)}".encode()),
            ctypes.byref(out),
        )
    )


def _worker_address() -> str:
    from distributed import get_worker

    return str(get_worker().address)


def _is_rank0(params: dict[str, Any]) -> bool:
    """Whether this worker is the first entry of LightGBM's ``machines`` (rank 0)."""
    first = str(params.get("machines", "")).split(",")[0].strip()
    host = urlparse(_worker_address()).hostname
    return first == f"{host}:{params.get('local_listen_port')}"


class _Rounds:
    """LightGBM callback on every worker: rank 0 records and reports each round's metrics.

    Parameters
    ----------
    run
        The training run (the key of what the workers leave for the client).
    topic
        The progress topic, or ``None`` to record only.
    eval_train
        Also evaluate the training rows each round.
    """

    def __init__(self, run: str, topic: str | None, eval_train: bool = True) -> None:
        self.run = run
        self.topic = topic
        self.eval_train = eval_train
        self.order = 40  # after LightGBM's own callbacks
        self.before_iteration = False
        self._rank0: bool | None = None

    def __call__(self, env: Any) -> None:
        if self._rank0 is None:
            self._rank0 = _is_rank0(env.params)
        if not self._rank0:
            return
        metrics: dict[str, dict[str, float]] = {}
        if self.eval_train:
            for _, metric, value, *_ in env.model.eval_train():
                metrics.setdefault("train", {})[metric] = float(value)
        for data, metric, value, *_ in env.evaluation_result_list or []:
            metrics.setdefault(str(data), {})[metric] = float(value)
        history = _run_state(self.run)["history"]
        for data, ms in metrics.items():
            for metric, value in ms.items():
                history.setdefault(data, {}).setdefault(metric, []).append(value)
        if self.topic is not None:
            progress.report(self.topic, env.iteration - env.begin_iteration, metrics)


class _WorkerModel(lightgbm.LGBMModel):
    """The model each worker fits (``lightgbm.dask``'s ``model_factory``); see the module notes.

    Labels are used as given, and LightGBM's log level is set in this thread before the network
    starts.
    """

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        _set_thread_log_level(int(self.get_params().get("verbosity", 1)))
        return super().fit(*args, **kwargs)


# --- client side ----------------------------------------------------------------------
class _ToLogging:
    """A LightGBM logger for the client: info to DEBUG, warnings to WARNING."""

    def info(self, msg: str) -> None:
        native_logger.debug(msg)

    def warning(self, msg: str) -> None:
        native_logger.warning(msg)


_log_lock = threading.Lock()
_log_users: list[tuple[Any, str, str]] = []  # the logger to restore, once per active fit


@contextlib.contextmanager
def _lightgbm_log_to_logging() -> Iterator[None]:
    """Send LightGBM's Python-side messages in this process to ``workbench.lightgbm``."""
    from lightgbm import basic

    with _log_lock:
        if not _log_users:
            _log_users.append((basic._LOGGER, basic._INFO_METHOD_NAME, basic._WARNING_METHOD_NAME))
            lightgbm.register_logger(_ToLogging())
        else:
            _log_users.append(_log_users[0])
    try:
        yield
    finally:
        with _log_lock:
            saved = _log_users.pop()
            if not _log_users:
                lightgbm.register_logger(*saved)


def _check_array(x: Any, name: str, ndim: int) -> da.Array:
    import dask.array as da

    if not isinstance(x, da.Array):
        raise TypeError(f"{name} must be a Dask array, not {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), not shape {x.shape}")
    if ndim == 2 and x.numblocks[1] > 1:
        x = x.rechunk({1: -1})  # lightgbm.dask needs whole rows in each block
    return x


def _align(X: da.Array, y: da.Array, names: str) -> da.Array:
    """``y`` with the row blocks of ``X``."""
    known = not (math.isnan(X.shape[0]) or math.isnan(y.shape[0]))
    if known and X.shape[0] != y.shape[0]:
        raise ValueError(f"{names}: {X.shape[0]} rows of features but {y.shape[0]} targets")
    if known and y.chunks[0] != X.chunks[0]:
        y = y.rechunk((X.chunks[0],))
    return y


def _spread_valid(Xv: da.Array, yv: da.Array, n_parts: int) -> tuple[da.Array, da.Array]:
    """At least one validation block per training block (lightgbm.dask pairs them by index).

    A worker without a validation block would evaluate nothing (and lightgbm.dask warns).
    """
    n = Xv.shape[0]
    if Xv.numblocks[0] >= n_parts or math.isnan(n):
        return Xv, yv
    if n < n_parts:
        raise ValueError(
            f"valid has {n} rows, fewer than the {n_parts} row blocks of X: lightgbm.dask gives "
            "each training block's worker a share of the validation rows; use more validation "
            "rows or fewer blocks"
        )
    base, extra = divmod(int(n), n_parts)
    sizes = (base + 1,) * extra + (base,) * (n_parts - extra)
    return Xv.rechunk({0: sizes}), yv.rechunk((sizes,))


def _check_features(feature_names: list[str], categorical: list[int], n_features: int) -> None:
    if len(feature_names) != n_features or not all(isinstance(n, str) for n in feature_names):
        raise ValueError(
            f"feature_names={feature_names!r}: give one string per column of X ({n_features})"
        )
    twice = sorted(n for n, count in Counter(feature_names).items() if count > 1)
    if twice:
        raise ValueError(f"feature names must be unique; {twice} appear more than once")
    bad = [n for n in feature_names if _JSON_CHARS & set(n)]
    if bad:
        raise ValueError(
            f"LightGBM does not accept the characters {''.join(sorted(_JSON_CHARS))} in feature "
            f"names; rename {bad}"
        )
    for j in categorical:
        if isinstance(j, bool) or not isinstance(j, (int, np.integer)) or not 0 <= j < n_features:
            raise ValueError(
                f"categorical={categorical!r}: {j!r} is not a column index of X "
                f"(0 to {n_features - 1})"
            )


def _check_hosts(client: Client, X: da.Array) -> None:
    """LightGBM connects to each worker by the host of its Dask address: it must be IPv4."""
    from distributed import futures_of

    futures = futures_of(X)
    if not futures:
        return
    holders = {w for ws in client.who_has(futures).values() for w in ws}
    bad = []
    for address in sorted(holders):
        try:
            ok = ipaddress.ip_address(urlparse(address).hostname or "").version == 4
        except ValueError:
            ok = False
        if not ok:
            bad.append(address)
    if bad:
        raise ValueError(
            f"LightGBM links workers by IPv4 address, and the workers {bad} are not addressed "
            "by one; start them with --host <their IPv4 address> (or use model='xgboost')"
        )


def _collect(client: Client, run: str) -> dict[str, dict[str, list[float]]]:
    """Rank 0's history of ``run`` (empty if none), forgotten on every worker."""
    histories = [s["history"] for s in client.run(_take_run, run).values() if s]
    return next((h for h in histories if h), {})


def fit(
    client: Client,
    X: da.Array,
    y: da.Array,
    *,
    task: str,
    n_classes: int | None,
    feature_names: list[str],
    categorical: list[int],
    params: dict[str, Any] | None,
    rounds: int,
    valid: tuple[da.Array, da.Array] | None = None,
    early_stopping: int | None = None,
    topic: str | None = None,
    eval_train: bool = True,
) -> FitResult:
    """Train with ``lightgbm.dask`` on the workers that hold ``X`` (CPU).

    The arguments are those of :class:`~workbench.training.backends.base.FitRequest` (``topic``
    is its progress topic: after each round, rank 0 reports ``{"train": {...}, "valid":
    {...}}``), but ``params`` take any LightGBM name or alias, ``valid`` is evaluated by each
    worker on its share (see the module's notes) and ``early_stopping`` must be ``None``.

    Returns
    -------
    FitResult
        The booster (the same trees on every worker; rank 0's copy), rank 0's metrics of every
        round (``train`` on its training rows, ``valid`` on its share of the validation rows),
        and ``best_iteration=None``.

    Raises
    ------
    TypeError, ValueError
        A bad argument or parameter (before any work on the cluster), or ``early_stopping``.
    lightgbm.basic.LightGBMError
        Training failed on a worker (see the module's notes on failures).
    """
    _check_task(task, n_classes)
    if isinstance(rounds, bool) or not isinstance(rounds, int):
        raise TypeError(f"rounds={rounds!r}: pass a positive integer")
    if rounds < 1:
        raise ValueError(f"rounds={rounds!r}: pass a positive integer")
    if early_stopping is not None:
        raise ValueError(_NO_EARLY_STOPPING.format(early_stopping))
    merged = _merge(task, n_classes, params)
    X = _check_array(X, "X", 2)
    y = _align(X, _check_array(y, "y", 1), "X, y")
    n_features = int(X.shape[1])
    _check_features(feature_names, categorical, n_features)
    categorical = [int(j) for j in categorical]
    _check_values(merged, n_features, categorical, task, int(n_classes or 2))
    eval_args: dict[str, Any] = {}
    if valid is not None:
        if not isinstance(valid, tuple) or len(valid) != 2:
            raise TypeError(f"valid must be a tuple (X, y) of Dask arrays, not {valid!r}")
        Xv = _check_array(valid[0], "valid X", 2)
        yv = _align(Xv, _check_array(valid[1], "valid y", 1), "valid")
        if Xv.shape[1] != n_features:
            raise ValueError(f"valid has {Xv.shape[1]} feature columns, X has {n_features}")
        Xv, yv = _spread_valid(Xv, yv, X.numblocks[0])
        if "eval_X" in inspect.signature(lightgbm.dask._train).parameters:
            eval_args = {"eval_X": (Xv,), "eval_y": (yv,), "eval_names": ["valid"]}
        else:  # LightGBM < 4.7 (eval_set is deprecated from 4.7 on)
            eval_args = {"eval_set": [(Xv, yv)], "eval_names": ["valid"]}
    _check_hosts(client, X)

    run = uuid.uuid4().hex
    try:
        with client.as_current(), _lightgbm_log_to_logging():
            model = lightgbm.dask._train(
                client=client,
                data=X,
                label=y,
                params={**merged, "n_estimators": rounds},
                model_factory=_WorkerModel,
                feature_name=list(feature_names),
                categorical_feature=categorical,
                callbacks=[_Rounds(run, topic, eval_train or valid is None)],
                **eval_args,
            )
    except BaseException:
        with contextlib.suppress(Exception):
            _collect(client, run)  # forget what the workers kept
        raise
    history = _collect(client, run)
    if not history:  # no worker matched rank 0 (a custom machines list): the returned one's
        history = {
            d: {m: [float(v) for v in vs] for m, vs in ms.items()}
            for d, ms in model.evals_result_.items()
        }
    return FitResult(model.booster_, history, None)


# --- predictions and models -----------------------------------------------------------
def _predict_block(block: np.ndarray, booster: lightgbm.Booster, k: int) -> np.ndarray:
    if block.shape[0] == 0:
        return np.empty((0, k) if k else (0,), dtype=np.float64)
    # one thread per block: Dask already runs a block on each of the worker's threads
    out = booster.predict(block, num_threads=1)
    return np.asarray(out, dtype=np.float64)


def predict(client: Client, booster: lightgbm.Booster, X: da.Array, task: str) -> da.Array:
    """Predictions block by block on the workers (lazy).

    Parameters
    ----------
    client
        The Dask client (the graph runs on whichever client computes it).
    booster
        A booster from :func:`fit` or :func:`from_bytes`.
    X
        Features, as for :func:`fit`.
    task
        ``binary`` (probability of class 1, shape ``(n,)``), ``multiclass`` (probabilities,
        ``(n, K)``) or ``regression`` (values, ``(n,)``).

    Returns
    -------
    dask.array.Array
        Float64 predictions with the row blocks of ``X``.
    """
    import dask
    import dask.array as da

    if task not in TASKS:
        raise ValueError(f"task={task!r} is not one LightGBM trains here; use one of {TASKS}")
    if not isinstance(booster, lightgbm.Booster):
        raise TypeError(f"booster must be a lightgbm.Booster, not {type(booster).__name__}")
    X = _check_array(X, "X", 2)
    if X.shape[1] != booster.num_feature():
        raise ValueError(
            f"X has {X.shape[1]} feature columns; the booster was trained on "
            f"{booster.num_feature()}"
        )
    model = dask.delayed(booster, pure=True)
    if task == "multiclass":
        k = int(booster.num_model_per_iteration())
        return da.map_blocks(
            _predict_block,
            X,
            model,
            k,
            chunks=(X.chunks[0], (k,)),
            dtype=np.float64,
            meta=np.empty((0, 0), dtype=np.float64),
        )
    return da.map_blocks(
        _predict_block,
        X,
        model,
        0,
        drop_axis=1,
        chunks=(X.chunks[0],),
        dtype=np.float64,
        meta=np.empty((0,), dtype=np.float64),
    )


def to_bytes(booster: lightgbm.Booster) -> bytes:
    """The booster in LightGBM's text format (``model_to_string``), UTF-8."""
    if not isinstance(booster, lightgbm.Booster):
        raise TypeError(f"booster must be a lightgbm.Booster, not {type(booster).__name__}")
    return booster.model_to_string().encode("utf-8")


def from_bytes(data: bytes) -> lightgbm.Booster:
    """A booster from :func:`to_bytes`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes from to_bytes(), not {type(data).__name__}")
    return lightgbm.Booster(model_str=bytes(data).decode("utf-8"))


def importance(booster: lightgbm.Booster, names: list[str]) -> dict[str, float]:
    """Total gain of each feature's splits, by the given names (0 for unused features).

    Parameters
    ----------
    booster
        A trained booster.
    names
        The feature names, in the order of the columns the booster was trained on.
    """
    gains = booster.feature_importance(importance_type="gain")
    if len(names) != len(gains):
        raise ValueError(f"{len(names)} names for a booster with {len(gains)} features")
    return {str(n): float(g) for n, g in zip(names, gains, strict=True)}
