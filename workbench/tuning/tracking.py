"""Experiment tracking with MLflow: trainings and trials as runs, read back as a table.

:class:`Tracker` records runs in one experiment of one tracking store through
:class:`mlflow.MlflowClient` with explicit run ids (never MLflow's fluent API, whose active run
is global to the process, so two studies in two threads would mix their runs). What a run
holds: the parameters, the per-round metrics (``valid-logloss`` with the round as its step)
and the final ones, in batches; tags describing the data (a fingerprint of the files, rows and
schema), the cluster, the package versions and the working folder's git commit; and the model
file as an artifact under ``model``. :func:`runs` reads the runs back as a
:class:`pandas.DataFrame`.

The store is ``uri=``, else ``workbench.tracking.uri``, else MLflow's ``MLFLOW_TRACKING_URI``,
else the SQLite file ``mlflow.db`` in the working folder; a SQLite store keeps the artifacts of
the experiments it creates in ``mlartifacts`` beside the database. MLflow is optional: the
``track`` extra (``pip install 'workbench[track]'``) brings ``mlflow-skinny``, and ``mlflow``
is imported only when a tracker or :func:`runs` is used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from fsspec.core import url_to_fs

from workbench import config
from workbench._client import snapshot
from workbench._redact import shown
from workbench.errors import MissingDependencyError
from workbench.training.model import versions
from workbench.training.progress import label

if TYPE_CHECKING:
    from types import ModuleType

    from distributed import Client

    from workbench.data.dataset import Dataset
    from workbench.training.model import Model

logger = logging.getLogger(__name__)

__all__ = ["Tracker", "runs"]

#: The config key of the tracking store, for messages.
URI_KEY = "workbench.tracking.uri"
#: What a metric name may hold in MLflow; anything else (XGBoost's ``ndcg@10``) becomes ``_``.
_METRIC_NAME = re.compile(r"[^\w\-. /:]")
#: How long the reachability check of an HTTP tracking server waits.
_PROBE_SECONDS = 10
#: MLflow 3 with SQLAlchemy 2.1 warns once, when its SQL store's module is imported.
_STORE_WARNING = r".*``noload`` loader strategy is deprecated"
_RUN_COLUMNS = ["run_id", "experiment", "name", "status", "start", "duration", "parent_run_id"]


def _mlflow() -> ModuleType:
    """The ``mlflow`` package, or a clear error naming the extra that installs it."""
    try:
        import mlflow
    except ImportError as e:
        raise MissingDependencyError(
            "experiment tracking needs MLflow, which is not installed: "
            "pip install 'workbench[track]' (it brings mlflow-skinny)"
        ) from e
    return mlflow


def check_experiment(experiment: Any) -> str:
    """``experiment`` if it is a usable experiment name; else a TypeError or ValueError."""
    if not isinstance(experiment, str):
        raise TypeError(
            f"experiment must be the name of an MLflow experiment (a str such as 'fraud'), "
            f"not {experiment!r}"
        )
    if not experiment.strip():
        raise ValueError(
            f"experiment={experiment!r} is empty: name the MLflow experiment, e.g. "
            "experiment='fraud'"
        )
    return experiment


def resolve_uri(uri: str | None = None) -> tuple[str, str]:
    """The tracking store's URI and where it came from (for messages).

    ``uri``, else ``workbench.tracking.uri``, else MLflow's ``MLFLOW_TRACKING_URI``, else
    ``sqlite:///<working folder>/mlflow.db``. A SQLite URI is made absolute (a relative one is
    relative to the working folder), so a run's store stays the same after a ``chdir``.
    """
    origin = "uri=" if uri is not None else URI_KEY
    value = config.get("tracking.uri", uri)
    if value is None:
        from mlflow.environment_variables import MLFLOW_TRACKING_URI

        value, origin = MLFLOW_TRACKING_URI.get(), "MLFLOW_TRACKING_URI"
    if value is None or value == "":
        path = Path.cwd() / "mlflow.db"
        return f"sqlite:///{path}", f"the default of {URI_KEY}: the working folder"
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise TypeError(
            f"the tracking URI ({origin}) must be a str such as 'sqlite:///mlflow.db', "
            f"not {value!r}"
        )
    database = _sqlite_path(value)
    if database and database != ":memory:":
        from sqlalchemy.engine import make_url

        url = make_url(value).set(database=str(Path(database).expanduser().absolute()))
        value = url.render_as_string(hide_password=False)
    return value, origin


def _sqlite_path(uri: str) -> str | None:
    """The database file of a ``sqlite:`` URI; None for other schemes ("" in memory)."""
    if not uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    return make_url(uri).database or ""


def _cannot_open(uri: str, origin: str, why: str) -> ValueError:
    example = f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    return ValueError(
        f"cannot open the MLflow tracking store {shown(uri)!r} (from {origin}): {why}. "
        f"Set {URI_KEY} (or MLFLOW_TRACKING_URI, or uri=) to a store that can be opened, "
        f"e.g. {example!r}"
    )


def _check_sqlite(uri: str, origin: str) -> Path | None:
    """Refuse a SQLite store that cannot be made before MLflow makes folders for it.

    Returns the database file when it does not exist yet (so that a failed open removes it),
    else None.
    """
    database = _sqlite_path(uri)
    if database is None:
        return None
    if database in ("", ":memory:"):
        raise _cannot_open(uri, origin, "an in-memory database keeps nothing once it is closed")
    path = Path(database)
    if path.is_dir():
        raise _cannot_open(uri, origin, f"{path} is a folder, not a database file")
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise _cannot_open(uri, origin, f"{folder} is a file, not a folder")
    if not folder.is_dir():
        raise _cannot_open(uri, origin, f"the folder {folder} does not exist; create it first")
    if path.exists():
        return None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise _cannot_open(uri, origin, f"the folder {folder} is not writable")
    return path


def _probe_http(uri: str, origin: str) -> None:
    """Refuse an HTTP tracking server that does not answer, at once (MLflow retries minutes)."""
    if not uri.startswith(("http://", "https://")):
        return
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    try:
        http_request(
            get_default_host_creds(uri),
            "/api/2.0/mlflow/experiments/search",
            "GET",
            max_retries=0,
            timeout=_PROBE_SECONDS,
            raise_on_status=False,
            params={"max_results": 1},
        )
    except Exception as e:
        raise _cannot_open(uri, origin, f"the server does not answer ({e})") from None


# MLflow's and Alembic's INFO lines when a new SQLite store gets its tables (left alone when the
# user has set these loggers' levels)
_STORE_LOGGERS = ("mlflow.store.db.utils", "alembic.runtime.migration")


def _open_client(mlflow: ModuleType, uri: str, origin: str) -> Any:
    """An :class:`mlflow.MlflowClient` of ``uri``, or ValueError naming the URI; no litter."""
    created = _check_sqlite(uri, origin)
    _probe_http(uri, origin)
    for name in _STORE_LOGGERS:  # "Creating initial MLflow database tables...": on stderr,
        chatty = logging.getLogger(name)  # which a notebook shows as an error block
        if chatty.level == logging.NOTSET:
            chatty.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_STORE_WARNING)
            return mlflow.MlflowClient(tracking_uri=uri)
    except Exception as e:
        _remove_new(created)
        raise _cannot_open(uri, origin, _first_line(e)) from None


def _remove_new(path: Path | None) -> None:
    """Remove the database file (and SQLite's side files) a failed open left behind."""
    if path is None:
        return
    for leftover in (path, *(path.with_name(path.name + s) for s in ("-journal", "-wal", "-shm"))):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def _artifact_root(uri: str) -> str | None:
    """Where a new experiment of a SQLite store keeps artifacts: ``mlartifacts`` beside it."""
    database = _sqlite_path(uri)
    if not database:
        return None  # a server or database decides for itself
    return (Path(database).parent / "mlartifacts").as_uri()


def _experiment_id(mlflow: ModuleType, client: Any, name: str, uri: str) -> str:
    """The id of experiment ``name``, created when it does not exist yet."""
    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return str(client.create_experiment(name, artifact_location=_artifact_root(uri)))
        except mlflow.exceptions.MlflowException as e:
            if e.error_code != "RESOURCE_ALREADY_EXISTS":  # else another thread made it
                raise
            found = client.get_experiment_by_name(name)
    if found.lifecycle_stage == "deleted":
        raise ValueError(
            f"experiment {name!r} was deleted from {shown(uri)!r}: restore it "
            f"(mlflow.MlflowClient({shown(uri)!r}).restore_experiment({found.experiment_id!r})) "
            "or choose another name"
        )
    return str(found.experiment_id)


@dataclass(frozen=True)
class _Entry:
    """What :meth:`Tracker.log_run` queues for one run (``status=None``: the run goes on)."""

    run_id: str
    params: dict[str, Any] | None = None
    history: dict[str, dict[str, list[float]]] | None = None
    metrics: dict[str, float] | None = None
    tags: dict[str, str] | None = None
    model: Model | None = None
    status: str | None = "FINISHED"
    end_time: float | None = None  # seconds since the epoch; None: when it is written


class Tracker:
    """Records runs in one MLflow experiment; writes in a background thread, in order.

    Parameters
    ----------
    experiment
        The experiment's name; it is created when the store does not have it.
    uri
        The tracking store; ``workbench.tracking.uri`` by default (``null``: MLflow's
        ``MLFLOW_TRACKING_URI``, else ``sqlite:///<working folder>/mlflow.db``).

    Attributes
    ----------
    experiment
        The experiment's name.
    experiment_id
        Its id in the store.
    uri
        The store's URI (a SQLite one made absolute).

    Raises
    ------
    TypeError, ValueError
        ``experiment`` is not a non-empty str.
    MissingDependencyError
        MLflow is not installed (``pip install 'workbench[track]'``).
    ValueError
        The store cannot be opened (a missing folder, a file where a folder should be, an
        unknown scheme, a server that does not answer); nothing is left behind.

    Notes
    -----
    :meth:`start_run` returns at once with a running run's id; :meth:`log_run` queues what to
    record and returns, and one writer thread per tracker records it in order. An error there is
    logged as a warning, ends that run as ``FAILED`` and is raised again by :meth:`flush`
    (which waits for the writer) or :meth:`close`.
    """

    def __init__(self, experiment: str, *, uri: str | None = None) -> None:
        self.experiment = check_experiment(experiment)
        self._mlflow = _mlflow()
        self.uri, origin = resolve_uri(uri)
        self._client = _open_client(self._mlflow, self.uri, origin)
        try:
            self.experiment_id = _experiment_id(self._mlflow, self._client, experiment, self.uri)
        except ValueError:
            raise
        except Exception as e:
            raise _cannot_open(self.uri, origin, _first_line(e)) from None
        self._lock = threading.Lock()
        self._writer: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []

    def __repr__(self) -> str:
        return f"<workbench.Tracker experiment={self.experiment!r} at {shown(self.uri)}>"

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what a run says about its data, cluster and code --------------------------------
    def context(self, train: Dataset, valid: Dataset | None, client: Client) -> dict[str, str]:
        """Tags describing the data, the cluster and the code: computed once, for many runs.

        The data's fingerprint (``workbench.data.*``, and ``workbench.valid.*``): source,
        file count and a hash of the files' names, sizes and modification times, row count
        (counted with one pass when the dataset does not know it), a hash of the schema
        (features and their kinds, target, task) and one hash of all of them
        (``fingerprint``). The cluster's size (``workbench.cluster.*``: workers, threads,
        memory in bytes, GPUs, the deployment's class). The package versions
        (``workbench.version.*``). The git commit of the working folder when it is in a
        repository (``mlflow.source.git.commit``, which MLflow's UI shows).

        Parameters
        ----------
        train, valid
            The training and validation sets (``valid`` may be ``None``).
        client
            The cluster's client.
        """
        return _context(train, valid, client)

    # --- runs -----------------------------------------------------------------------------
    def start_run(
        self,
        name: str,
        *,
        tags: dict[str, str],
        params: dict[str, Any] | None = None,
        parent: str | None = None,
        start_time: float | None = None,
    ) -> str:
        """Start a run (status ``RUNNING``) and return its id; end it with :meth:`log_run`.

        Parameters
        ----------
        name
            The run's name.
        tags
            Its tags (e.g. :meth:`context`'s).
        params
            Parameters to record (queued, as in :meth:`log_run`).
        parent
            The id of a parent run (a study's): tagged ``mlflow.parentRunId``, so MLflow's UI
            nests this run under it.
        start_time
            When the run began (seconds since the epoch), for a run recorded after its work
            (a study's trial); now by default.
        """
        tags = {**tags, **({"mlflow.parentRunId": parent} if parent else {})}
        begun = int(start_time * 1000) if start_time is not None else None
        run = self._client.create_run(
            self.experiment_id, start_time=begun, run_name=name, tags=_tag_values(tags)
        )
        run_id = str(run.info.run_id)
        if params:
            self._submit(_Entry(run_id, params=params, status=None))
        return run_id

    def log_run(
        self,
        run_id: str,
        *,
        params: dict[str, Any] | None = None,
        history: dict[str, dict[str, list[float]]] | None = None,
        metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
        model: Model | None = None,
        status: str = "FINISHED",
        end_time: float | None = None,
    ) -> None:
        """Queue what a run recorded, and its end; the writer thread records it in order.

        Parameters
        ----------
        run_id
            A run of :meth:`start_run`.
        params
            Parameters (values recorded as text).
        history
            Per-round metrics, ``{data: {metric: [value per round]}}``: recorded as
            ``data-metric`` (``valid-logloss``) with the round (from 0) as the step.
        metrics
            Final metrics (``{"auc": 0.91}``), recorded at the step after the last round, so
            that they are the run's values in MLflow (its latest) even where a per-round
            metric has the same name (``valid-logloss`` of the best round, after the rounds').
        tags
            More tags.
        model
            The model: saved with :meth:`~workbench.Model.save` and recorded as the
            artifact ``model/model.wbm`` (``wb.load_model`` reads it back).
        status
            How the run ends: ``FINISHED``, ``FAILED`` or ``KILLED``.
        end_time
            When its work ended (seconds since the epoch); when it is written by default.
        """
        self._submit(_Entry(run_id, params, history, metrics, tags, model, status, end_time))

    def record(
        self,
        model: Model,
        *,
        train: Dataset,
        valid: Dataset | None,
        client: Client,
        seconds: float | None = None,
    ) -> str:
        """Record a training as one whole run; return its id once it is recorded.

        The run (named like the training's bar, ``xgboost fraud``) holds the model's
        parameters (and ``model``, ``rounds``), its history per round, its metrics with
        ``seconds`` (and ``best_iteration`` under early stopping), :meth:`context`'s tags
        (the rows trained on as the model counted them) and the model file.

        Parameters
        ----------
        model
            The trained model.
        train, valid
            The datasets it was trained and validated on.
        client
            The cluster's client.
        seconds
            How long the training took; ``model.info["seconds"]`` by default.

        Raises
        ------
        Exception
            What recording failed with (the run then ends ``FAILED``).
        """
        self.flush()  # what was queued before is recorded first
        info = model.info
        rows = (info.get("train_rows"), info.get("valid_rows") if valid is not None else None)
        tags = {
            **_context(train, valid, client, rows=rows),
            "workbench.model": model.kind,
            "workbench.task": model.task,
            "workbench.target": model.target,
            "workbench.device": str(info.get("device", "")),
        }
        run_id = self.start_run(label(model.kind, train.source), tags=tags)
        metrics = dict(model.metrics)
        taken = seconds if seconds is not None else info.get("seconds")
        if taken is not None:
            metrics["seconds"] = float(taken)
        if model.best_iteration is not None:
            metrics["best_iteration"] = float(model.best_iteration)
        params = {"model": model.kind, "rounds": model.rounds, **model.params}
        self._log(_Entry(run_id, params, _history_of(model.history), metrics, model=model))
        return run_id

    # --- the writer -----------------------------------------------------------------------
    def _submit(self, entry: _Entry) -> None:
        with self._lock:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="workbench-tracking")
            future = self._writer.submit(self._write, entry)
            self._pending.append(future)

    def _write(self, entry: _Entry) -> None:
        """:meth:`_log` in the writer thread: an error is said at once, and kept for flush."""
        try:
            self._log(entry)
        except Exception as e:
            logger.warning(
                "recording run %s of experiment %r in %s failed: %s",
                entry.run_id,
                self.experiment,
                shown(self.uri),
                e,
            )
            raise

    def _log(self, entry: _Entry) -> None:
        """Record what a run holds and end it (``status=None``: leave it running)."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        history = entry.history or {}
        points = [
            Metric(_metric_name(f"{data}-{name}"), float(v), now, step)
            for data, named in history.items()
            for name, values in named.items()
            for step, v in enumerate(values)
        ]
        after = max((len(v) for named in history.values() for v in named.values()), default=0)
        points += [  # after the last round: the run's latest values, whatever the history says
            Metric(_metric_name(k), float(v), now, after) for k, v in (entry.metrics or {}).items()
        ]
        client, run_id = self._client, entry.run_id
        try:
            client.log_batch(  # MLflow splits it within its limits per call
                run_id,
                metrics=points,
                params=[Param(k, v) for k, v in _param_values(entry.params or {}).items()],
                tags=[RunTag(k, v) for k, v in _tag_values(entry.tags or {}).items()],
            )
            if entry.model is not None:
                with tempfile.TemporaryDirectory(prefix="workbench-run-") as folder:
                    entry.model.save(Path(folder) / "model.wbm")
                    client.log_artifacts(run_id, folder, artifact_path="model")
            if entry.status is not None:
                ended = int(entry.end_time * 1000) if entry.end_time is not None else None
                client.set_terminated(run_id, status=entry.status, end_time=ended)
        except BaseException:
            with contextlib.suppress(Exception):  # the run says it is incomplete
                client.set_terminated(run_id, status="FAILED")
            raise

    def flush(self) -> None:
        """Wait until everything queued is recorded; raise the first error the writer met."""
        with self._lock:
            pending, self._pending = self._pending, []
        wait(pending)
        for future in pending:
            error = future.exception()
            if error is not None:
                raise error

    def close(self) -> None:
        """:meth:`flush`, then stop the writer thread."""
        try:
            self.flush()
        finally:
            with self._lock:
                writer, self._writer = self._writer, None
            if writer is not None:
                writer.shutdown(wait=True)


# --- values as MLflow takes them -------------------------------------------------------------
def _metric_name(name: str) -> str:
    return _METRIC_NAME.sub("_", name)


def _param_values(params: dict[str, Any]) -> dict[str, str]:
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    return {str(k): _cut(_text(v), MAX_PARAM_VAL_LENGTH) for k, v in params.items()}


def _tag_values(tags: dict[str, Any]) -> dict[str, str]:
    from mlflow.utils.validation import MAX_TAG_VAL_LENGTH

    return {str(k): _cut(str(v), MAX_TAG_VAL_LENGTH) for k, v in tags.items()}


def _text(value: Any) -> str:
    """A parameter as text: JSON for lists and dicts (what a user would type), else ``str``."""
    if isinstance(value, list | tuple | dict):
        with contextlib.suppress(TypeError, ValueError):
            return json.dumps(value, default=str)
    return str(value)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _history_of(history: pd.DataFrame) -> dict[str, dict[str, list[float]]]:
    """A model's history table (``valid-auc`` columns) as ``{data: {metric: values}}``."""
    out: dict[str, dict[str, list[float]]] = {}
    for column in history.columns:
        data, _, name = str(column).partition("-")
        out.setdefault(data, {})[name] = history[column].astype(float).tolist()
    return out


# --- the context: data, cluster, code --------------------------------------------------------
def _context(
    train: Dataset,
    valid: Dataset | None,
    client: Client,
    rows: tuple[int | None, int | None] = (None, None),
) -> dict[str, str]:
    tags = _fingerprint("workbench.data", train, rows[0], client)
    if valid is not None:
        tags.update(_fingerprint("workbench.valid", valid, rows[1], client))
    tags.update(_cluster_tags(client))
    tags.update({f"workbench.version.{k}": v for k, v in _versions().items()})
    commit = _git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def _fingerprint(prefix: str, ds: Dataset, rows: int | None, client: Client) -> dict[str, str]:
    """The dataset's source, files, rows and schema as tags under ``prefix``."""
    if rows is None:
        with client.as_current():
            rows = ds.count_rows()
    schema = _digest({"features": list(ds.features.items()), "target": ds.target, "task": ds.task})
    files = _files(ds)
    files_hash = _files_hash(ds, files) if files else ""
    out = {
        f"{prefix}.source": shown(ds.source),
        f"{prefix}.rows": str(int(rows)),
        f"{prefix}.schema": schema,
        f"{prefix}.fingerprint": _digest([ds.source, files_hash, int(rows), schema]),
    }
    if files:
        out[f"{prefix}.files"] = str(len(files))
        out[f"{prefix}.files_hash"] = files_hash
    return out


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _files(ds: Dataset) -> list[str]:
    """The files the dataset's rows come from (each once, in order), where it knows them."""
    if ds.plan is None:
        return []
    return list(dict.fromkeys(piece.url for piece in ds.plan.pieces))


def _files_hash(ds: Dataset, files: list[str]) -> str:
    """A hash of the files' names, sizes and modification times (fsspec's ``ukey``).

    A file that cannot be asked (gone, no permission) counts by its name only.
    """
    options = ds.plan.reader.storage_options if ds.plan is not None else {}
    keys = []
    for url in files:
        try:
            fs, path = url_to_fs(url, **options)
            keys.append(f"{url} {fs.ukey(path)}")
        except (OSError, ValueError) as e:
            logger.debug("no size or time of %s for the fingerprint: %s", shown(url), e)
            keys.append(url)
    return _digest(keys)


def _cluster_tags(client: Client) -> dict[str, str]:
    cluster = snapshot(client)
    out = {
        "workbench.cluster.workers": str(cluster.n_workers),
        "workbench.cluster.threads": str(cluster.threads),
        "workbench.cluster.memory": str(cluster.memory),
        "workbench.cluster.gpus": str(cluster.gpus),
    }
    deployment = getattr(client, "cluster", None)
    if deployment is not None:
        out["workbench.cluster.deployment"] = type(deployment).__name__
    return out


def _versions() -> dict[str, str]:
    """The model's package versions (:func:`~workbench.training.model.versions`) and MLflow's.

    LightGBM and Optuna are named where this process has imported them.
    """
    out = versions()
    if "lightgbm" not in sys.modules:
        out.pop("lightgbm", None)
    if "optuna" in sys.modules:
        with contextlib.suppress(PackageNotFoundError):
            out["optuna"] = version("optuna")
    mlflow = sys.modules.get("mlflow")
    if mlflow is not None:
        out["mlflow"] = str(getattr(mlflow, "__version__", ""))
    return out


def _git_commit() -> str | None:
    """The commit of the working folder's git repository (``git rev-parse HEAD``), if any."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--verify", "-q", "HEAD"],
            cwd=Path.cwd(),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


# --- reading runs back -----------------------------------------------------------------------
def runs(experiment: str | None = None, *, uri: str | None = None) -> pd.DataFrame:
    """Every run of an experiment (or of all), newest first, as a table.

    Parameters
    ----------
    experiment
        The experiment's name; ``None``: the runs of every experiment of the store.
    uri
        The tracking store; ``workbench.tracking.uri`` by default (see :class:`Tracker`).

    Returns
    -------
    pandas.DataFrame
        A row per run: ``run_id``, ``experiment``, ``name``, ``status``, ``start`` (UTC),
        ``duration`` (``NaT`` while it runs), ``parent_run_id`` (a study's run, for its
        trials), then ``metrics.*`` (the last value of each) and ``params.*``.

    Raises
    ------
    ValueError
        ``experiment`` is not in the store (the message lists those that are), or the store
        cannot be opened.
    MissingDependencyError
        MLflow is not installed (``pip install 'workbench[track]'``).
    """
    if experiment is not None:
        check_experiment(experiment)
    mlflow = _mlflow()
    uri_, origin = resolve_uri(uri)
    database = _sqlite_path(uri_)
    if database and not Path(database).exists():  # no store yet: opening one would make it
        if experiment is not None:
            raise ValueError(
                f"no experiment {experiment!r}: the store {shown(uri_)!r} does not exist yet "
                f"(train with experiment={experiment!r} to make it, or set {URI_KEY} to the "
                "store to read)"
            )
        return pd.DataFrame(columns=_RUN_COLUMNS)
    client = _open_client(mlflow, uri_, origin)
    experiments = _pages(client.search_experiments)
    if experiment is not None:
        chosen = [e for e in experiments if e.name == experiment]
        if not chosen:
            known = ", ".join(sorted(repr(e.name) for e in experiments)) or "none"
            raise ValueError(
                f"no experiment {experiment!r} in {shown(uri_)!r}; the experiments there: {known}"
            )
        experiments = chosen
    names = {str(e.experiment_id): e.name for e in experiments}
    found = _pages(client.search_runs, list(names), order_by=["attributes.start_time DESC"])
    if not found:
        return pd.DataFrame(columns=_RUN_COLUMNS)
    table = pd.DataFrame([_row(run, names) for run in found])
    table["start"] = pd.to_datetime(table["start"], unit="ms", utc=True)
    table["duration"] = pd.to_timedelta(table["duration"], unit="ms")
    metrics = sorted(c for c in table.columns if c.startswith("metrics."))
    params = sorted(c for c in table.columns if c.startswith("params."))
    return table[[*_RUN_COLUMNS, *metrics, *params]]


def _pages(search: Any, *args: Any, **kwargs: Any) -> list[Any]:
    """Every result of an MLflow search, page after page."""
    out: list[Any] = []
    token = None
    while True:
        page = search(*args, page_token=token, **kwargs)
        out.extend(page)
        token = page.token
        if not token:
            return out


def _row(run: Any, names: dict[str, str]) -> dict[str, Any]:
    info, data = run.info, run.data
    end = info.end_time if info.status != "RUNNING" else None
    return {
        "run_id": info.run_id,
        "experiment": names.get(str(info.experiment_id), ""),
        "name": info.run_name,
        "status": info.status,
        "start": info.start_time,
        "duration": (end - info.start_time) if end and info.start_time else None,
        "parent_run_id": data.tags.get("mlflow.parentRunId"),
        **{f"metrics.{k}": v for k, v in data.metrics.items()},
        **{f"params.{k}": v for k, v in data.params.items()},
    }
