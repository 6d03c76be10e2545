"""The events a training publishes on the Dask scheduler: its topic and its messages.

A training has a topic of its own, :data:`TRAINING_PREFIX` followed by a random suffix
(:func:`workbench.training.progress.new_topic`). What happens to it is logged as Dask events
under that topic (``Worker.log_event`` on the workers, :func:`publish` on the client), so that
whoever reads the scheduler's events can follow it: the client's progress bar subscribes to the
topic, and the dashboard's training page (:mod:`workbench.dashboard`) reads every topic that
starts with the prefix through a scheduler plugin. The messages are dicts:

``{"start": t, "total": n, "title": str, "workers": {address: rows}, ...}``
    From the client, when the rounds are about to start (``t``: seconds since the epoch);
    ``total`` is the number of rounds asked for, ``workers`` the training rows each worker
    holds; ``"model"``, ``"source"`` and ``"device"`` say what is trained on what. A study's
    trial may add ``"study"`` (its name) and ``"trial"`` (its number).
``{"round": r, "metrics": {data: {metric: value}}}``
    From rank 0 of the workers, after each round ``r`` (counted from 0).
``{"checkpoint": n, "booster": bytes}``
    From rank 0, every N-th round: a model of ``n`` rounds (readers that only show the
    training keep ``n`` and the size, never the bytes).
``{"recovery": text, "lost": [addresses], "resumed_from": n}``
    From the client, when a training lost workers and goes on from the checkpoint of ``n``
    rounds.
``{"end": t, "status": status, "rounds": n, "best": r}``
    From the client, when the training call returned: ``status`` is ``"done"``,
    ``"interrupted"`` (stopped at the user's request, the model so far kept), ``"failed"`` or
    ``"abandoned"``; ``n`` rounds were received; ``best`` is early stopping's best round, or
    ``None``.

Messages from the client carry ``"origin": "client"``. None of them has the ``round``,
``checkpoint`` or ``note`` keys that the progress bar acts on.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

#: The start of every training's topic.
TRAINING_PREFIX = "workbench-train-"

#: ``"origin"`` of the messages the client logs under a training's topic.
FROM_CLIENT = "client"


def is_training_topic(topic: object) -> bool:
    """Whether ``topic`` is a workbench training's event topic."""
    return isinstance(topic, str) and topic.startswith(TRAINING_PREFIX)


def publish(client: Any, topic: str, msg: dict[str, Any]) -> None:
    """Log ``msg`` under ``topic`` on the scheduler, from the client; never raises.

    What readers of the events (the dashboard's page) are told is not worth failing a training
    for: a client that is not connected sends nothing, and a failure is logged at DEBUG.
    """
    if getattr(client, "status", "running") != "running":
        return
    try:
        client.log_event(topic, {**msg, "origin": FROM_CLIENT})
    except Exception as e:
        logger.debug("could not log %s on the scheduler: %s", sorted(msg), e)
