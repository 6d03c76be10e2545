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

import lightgbm
import lightgbm.dask
import numpy as np

from workbench.training.backends.base import FitResult
from workbench.training.backends.lightgbm.params import (
    _JSON_CHARS,
    _NO_EARLY_STOPPING,
    TASKS,
    _check_task,
    _check_values,
    _merge,
    check_params,
    default_params,
)
from workbench.training.backends.lightgbm.worker import _Rounds, _take_run, _WorkerModel
from workbench.training.backends.lightgbm.worker import _runs as _runs  # what the workers keep

if TYPE_CHECKING:
    import dask.array as da
    from distributed import Client

__all__ = [
    "TASKS",
    "check_params",
    "default_params",
    "fit",
    "from_bytes",
    "importance",
    "predict",
    "to_bytes",
]

logger = logging.getLogger(__name__)
native_logger = logging.getLogger("workbench.lightgbm")


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
    eval_train: bool = False,
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
                callbacks=[_Rounds(run, topic, eval_train)],
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
    return FitResult(model.booster_, history, None, rounds=model.booster_.current_iteration())


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


def importance(
    booster: lightgbm.Booster, names: list[str], importance_type: str = "total_gain"
) -> dict[str, float]:
    """Importance of each feature's splits, by the given names (0 for unused features).

    Parameters
    ----------
    booster
        A trained booster.
    names
        The feature names, in the order of the columns the booster was trained on.
    importance_type
        In XGBoost's words: ``"total_gain"`` (LightGBM's ``"gain"``), ``"gain"`` (the total
        divided by the number of splits: the average gain of a split) or ``"weight"`` (the
        number of splits, LightGBM's ``"split"``).
    """
    if importance_type not in ("gain", "total_gain", "weight"):
        raise ValueError(
            f"importance_type={importance_type!r}: a LightGBM booster offers 'gain', "
            "'total_gain' and 'weight'"
        )
    gains = booster.feature_importance(importance_type="gain")
    if len(names) != len(gains):
        raise ValueError(f"{len(names)} names for a booster with {len(gains)} features")
    splits = booster.feature_importance(importance_type="split")
    if importance_type == "weight":
        values = splits.astype("float64")
    elif importance_type == "gain":
        values = np.divide(gains, splits, out=np.zeros(len(gains)), where=splits > 0)
    else:
        values = gains
    return {str(n): float(v) for n, v in zip(names, values, strict=True)}
