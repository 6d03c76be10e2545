"""The study operation of the command line: ``workbench tune``.

Loaded on first use (see :mod:`workbench.api`): it imports the data, training and tuning stack.
The messages name the command line's options, as its caller gives them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from workbench.api.models import _save_or_aside, check_before_cluster, load_for_training
from workbench.clusters.start import start_cluster
from workbench.training import store
from workbench.tuning.study import Study, tune

logger = logging.getLogger(__name__)

__all__ = ["tune_on"]


def tune_on(
    data: str,
    *,
    target: str | None = None,
    categorical: Sequence[str] = (),
    drop: Sequence[str] = (),
    model: str = "xgboost",
    params: Mapping[str, Any] | None = None,
    trials: int = 50,
    rounds: int = 500,
    early_stopping: int | str | None = "auto",
    valid_fraction: float = 0.2,
    metric: str | None = None,
    placement: str = "auto",
    pruning: bool | None = None,
    experiment: str | None = None,
    seed: int | None = None,
    timeout: float | None = None,
    out: str | None = None,
    overwrite: bool = False,
    profile: str | None = None,
    progress: bool | None = None,
) -> tuple[Study, str | None]:
    """Run a study on a dataset on ``profile``'s cluster; save the best model to ``out``.

    The dataset is split into training and validation rows (stratified for classification);
    the arguments are :func:`workbench.tune`'s. ``out`` is checked before anything runs (as
    ``workbench train --out``). Returns the study and where the best model was saved.
    """
    if out is not None:
        if_exists: store.IfExists = "model" if overwrite else "refuse"
        try:
            store.check_target(out, if_exists, how="add --overwrite")
        except ValueError as e:
            raise ValueError(f"--out: {e}") from None
    if not 0 < valid_fraction < 1:
        raise ValueError(f"--valid {valid_fraction}: give a fraction in (0, 1), e.g. 0.2")
    check_before_cluster(data, target, categorical, drop, model, dict(params or {}), profile)
    with start_cluster(profile) as cluster:
        client = cluster.get_client()
        ds = load_for_training(data, target, client, categorical, drop)
        train, valid = ds.split(
            (1 - valid_fraction, valid_fraction), seed=0, stratify=ds.task != "regression"
        )
        study = tune(
            train.persist(client=client),
            valid.persist(client=client),
            model=model,
            trials=trials,
            rounds=rounds,
            early_stopping=early_stopping,
            pruning=pruning,
            placement=placement,
            experiment=experiment,
            metric=metric,
            params=dict(params or {}),
            seed=seed,
            timeout=timeout,
            progress=progress,
            client=client,
        )
        path = _save_or_aside(study.best_model, out, overwrite) if out is not None else None
    return study, path
