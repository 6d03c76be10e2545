"""Model operations of the command line: train a dataset into a model file, predict to a folder.

Loaded on first use (see :mod:`workbench.api`): they import the data and training stack. The
messages name the command line's options (``--out``, ``--valid``...), as its callers give them.
"""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from distributed import Client

from workbench import config
from workbench.api.predictions import check_out, write_predictions
from workbench.clusters.profiles import get_profile
from workbench.clusters.start import start_cluster
from workbench.data.catalog import get_entry, resolve_entry
from workbench.data.dataset import Dataset
from workbench.data.load import load
from workbench.data.sources import inspect_source
from workbench.errors import DataNotFoundError
from workbench.training import backends, store
from workbench.training.api import train
from workbench.training.model import Model, load_model

logger = logging.getLogger(__name__)

__all__ = ["check_before_cluster", "load_for_training", "predict_to_folder", "train_to_file"]

#: The tasks a path's target may turn out to be; the first one's refusal is the one shown.
TASKS = ("binary", "regression", "multiclass")


def load_for_training(
    data: str,
    target: str | None,
    client: Client,
    categorical: Sequence[str] = (),
    drop: Sequence[str] = (),
) -> Dataset:
    """Load a catalog entry (its own target) or a path or URL with ``target``, less ``drop``.

    Raises
    ------
    ValueError
        No target for a path or URL, or a dropped column that is not there.
    """
    if target is None and get_entry(data) is not None:
        return load(data, client=client)
    if target is None:
        raise ValueError(f"--target is needed for {data!r}, which is not a catalog name")
    features = None
    if drop:
        schema = inspect_source(data).schema
        names = [f.name for f in schema] if schema is not None else []
        unknown = [c for c in drop if c not in names]
        if unknown:
            raise ValueError(f"--drop {unknown}: no such column in {data!r}; columns: {names}")
        features = [c for c in names if c not in drop and c != target]
    return load(
        data, target=target, features=features, categorical=list(categorical), client=client
    )


def train_to_file(
    data: str,
    out: str,
    *,
    target: str | None = None,
    categorical: Sequence[str] = (),
    drop: Sequence[str] = (),
    model: str = "xgboost",
    params: Mapping[str, Any] | None = None,
    rounds: int = 100,
    early_stopping: int | None = None,
    valid_fraction: float = 0.1,
    overwrite: bool = False,
    profile: str | None = None,
    progress: bool | None = None,
    eval_train: bool = False,
) -> tuple[Model, str]:
    """Train a model on a dataset on ``profile``'s cluster and save it to ``out``.

    An existing ``out`` is refused before anything runs, unless ``overwrite`` is given and it
    is a workbench model file (a file that is not a model is never replaced).

    Parameters
    ----------
    data
        A catalog name, path, glob or URL.
    out
        The model file to write (local path or URL).
    target, categorical, drop
        For a path or URL: the target, categorical columns and columns not to train on (a
        catalog entry names its own).
    model, params, rounds, early_stopping, progress
        As :func:`workbench.train` takes them.
    valid_fraction
        The fraction held out for validation (stratified for classification); 0: none.
    overwrite
        Replace an existing model file at ``out``.
    profile
        The cluster profile to train on (default: local).
    eval_train
        Evaluate the training rows every round too (always without validation rows).

    Returns
    -------
    (Model, str)
        The trained model and where it was saved.
    """
    if_exists: store.IfExists = "model" if overwrite else "refuse"
    try:
        store.check_target(out, if_exists, how="add --overwrite")
    except ValueError as e:
        raise ValueError(f"--out: {e}") from None
    if target is None and (categorical or drop) and get_entry(data) is not None:
        raise ValueError(
            f"{data!r} is a catalog entry, which names its own target, categorical and "
            "ignored columns; --categorical and --drop apply with --target (a path or URL)"
        )
    if not 0 <= valid_fraction < 1:
        raise ValueError(f"--valid {valid_fraction}: give a fraction in [0, 1), e.g. 0.1")
    check_before_cluster(data, target, categorical, drop, model, dict(params or {}), profile)
    with start_cluster(profile) as cluster:
        client = cluster.get_client()
        ds = load_for_training(data, target, client, categorical, drop)
        valid = None
        if valid_fraction > 0:
            ds, valid = ds.split(
                (1 - valid_fraction, valid_fraction), seed=0, stratify=ds.task != "regression"
            )
        trained = train(
            ds,
            valid,
            model=model,
            params=dict(params or {}),
            rounds=rounds,
            early_stopping=early_stopping,
            client=client,
            progress=progress,
            eval_train=eval_train,
        )
        path = _save_or_aside(trained, out, overwrite)
    return trained, path


def check_before_cluster(
    data: str,
    target: str | None,
    categorical: Sequence[str],
    drop: Sequence[str],
    model: str,
    params: dict[str, Any],
    profile: str | None,
) -> None:
    """What can be refused without a cluster, refused before one starts (in milliseconds).

    The profile's name, the model kind, the data's files and columns (from the Parquet
    footers), and the parameters as the model's library checks them: with the task a catalog
    entry names, or, for a path whose task only the loaded target tells, refused only when no
    task would accept them. A catalog entry whose data is generated on first use, and a CSV
    source's columns, are checked once loaded, where the same checks run again.

    Raises
    ------
    ProfileError, DataNotFoundError, ValueError
        The bad value named, with the way on.
    """
    get_profile(profile if profile is not None else config.get("profiles.default"))
    backend = backends.get(model)
    entry = get_entry(data)
    if entry is not None:
        resolved = resolve_entry(entry)
        try:
            schema = inspect_source(
                resolved.path, format=resolved.format, storage_options=resolved.storage_options
            ).schema
        except DataNotFoundError:  # generated on first use: checked once it is loaded
            return
        target, categorical = resolved.target, resolved.categorical
        drop = [*drop, *resolved.ignore]
        tasks = [entry.task] if entry.task else list(TASKS)
    else:
        if target is None:
            raise ValueError(f"--target is needed for {data!r}, which is not a catalog name")
        schema = inspect_source(data).schema
        tasks = list(TASKS)
    names = [f.name for f in schema] if schema is not None else []
    if names:  # CSV: the columns are checked when the data is read
        for option, columns in (
            ("--target", [target]),
            ("--categorical", categorical),
            ("--drop", drop),
        ):
            unknown = [c for c in columns if c not in names]
            if unknown:
                guess = difflib.get_close_matches(str(unknown[0]), names, n=1)
                hint = f"did you mean {guess[0]!r}? " if guess else ""
                raise ValueError(
                    f"{option} {', '.join(map(str, unknown))}: no such column in {data!r}; "
                    f"{hint}columns: {', '.join(names)}"
                )
    features = [c for c in names if c != target and c not in drop]
    n_features = len(features) or 1
    categorical_at = [j for j, c in enumerate(features) if c in categorical]
    errors: list[ValueError | TypeError] = []
    for task in tasks:
        try:
            backend.check_params(params, task, n_features, categorical_at)
            return
        except (ValueError, TypeError) as err:
            errors.append(err)
    raise errors[0]


def _aside_name(out: str) -> str:
    """``out`` with a time stamp before its extension: ``m.wbm`` -> ``m.20261130-224501.wbm``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    head, sep, last = out.rpartition("/")
    stem, dot, ext = last.rpartition(".")
    name = f"{stem}.{stamp}.{ext}" if dot and stem else f"{last}.{stamp}"
    return f"{head}{sep}{name}"


def _save_or_aside(trained: Model, out: str, overwrite: bool) -> str:
    """Save to ``out``, or beside it under a new name if a file appeared there meanwhile.

    A file that may not be replaced can appear at ``out`` while the model trains (``out`` was
    checked before): the model is then saved under a time-stamped name, not lost.

    Raises
    ------
    FileExistsError
        After saving the model under the new name, which the message gives.
    """
    try:
        return trained.save(out, overwrite=overwrite)
    except FileExistsError as err:
        aside = trained.save(_aside_name(out), overwrite=False)
        raise FileExistsError(
            f"{err}; it appeared while the model trained, so the model was saved to {aside} instead"
        ) from None


def predict_to_folder(
    model_path: str,
    data: str,
    out: str,
    *,
    proba: bool = False,
    profile: str | None = None,
) -> int:
    """Predict with a saved model on ``profile``'s cluster; write Parquet to the folder ``out``.

    One row per input row, in input order (see :func:`write_predictions`); a folder that
    exists and is not empty is refused before anything runs.

    Parameters
    ----------
    model_path
        A model file from ``train``/``save``.
    data
        A catalog name, path, glob or URL holding the model's features.
    out
        A folder or URL for the predictions.
    proba
        Also write class probabilities.
    profile
        The cluster profile (default: local).

    Returns
    -------
    int
        The number of rows written.
    """
    check_out(out)
    model = load_model(model_path)
    with start_cluster(profile) as cluster:
        client = cluster.get_client()
        categorical = [c for c, k in model.features.items() if k == "categorical"]
        ds = load(
            data,
            features=model.feature_names,
            categorical=categorical,
            client=client,
            check=False,
        )
        return write_predictions(model, ds, out, proba=proba, client=client)
