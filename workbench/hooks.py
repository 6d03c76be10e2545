"""Hooks through which a training reaches the rooms above it without importing them.

This module is part of the base layer and imports nothing of the workbench but its errors.
``wb.train(..., experiment="fraud")`` records its model as an MLflow run, but the training
room may not import tuning (a training does not know it is a trial, see the layering
contracts in ``pyproject.toml``). So the training asks :func:`tracker` for a
:class:`Recorder`, and the public API layer registers, on ``import workbench``, the factory
that makes one (:class:`workbench.tuning.tracking.Tracker`, loaded on first use), as it does
for the default client (:func:`workbench._client.set_default_client_factory`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from workbench.errors import WorkbenchError

logger = logging.getLogger(__name__)

__all__ = ["Recorder", "TrackerFactory", "set_tracker_factory", "tracker"]


class Recorder(Protocol):
    """What records a finished training as one run of an experiment."""

    def record(
        self, model: Any, *, train: Any, valid: Any, client: Any, seconds: float | None = None
    ) -> str:
        """Record ``model`` (trained on ``train``, validated on ``valid``); return the run id.

        Parameters
        ----------
        model
            The trained :class:`workbench.Model`.
        train, valid
            The datasets it was trained and validated on (``valid`` may be ``None``).
        client
            The Dask client it was trained with (for the cluster's size).
        seconds
            How long the training took; ``model.info["seconds"]`` when not given.
        """
        ...


TrackerFactory = Callable[[str], Recorder]

_factory: list[TrackerFactory] = []  # at most one: the public API layer's


def set_tracker_factory(factory: TrackerFactory | None) -> None:
    """Register what :func:`tracker` calls to make a :class:`Recorder`; ``None`` removes it.

    Parameters
    ----------
    factory
        A function of the experiment's name returning a :class:`Recorder`; it checks the name,
        the tracking store and its packages, and raises before anything is recorded. The
        public API layer (:mod:`workbench.api`) registers one on ``import workbench``.
    """
    if factory is not None and not callable(factory):
        raise TypeError(f"the tracker factory must be callable or None, not {factory!r}")
    _factory.clear()
    if factory is not None:
        _factory.append(factory)


def tracker(experiment: str) -> Recorder:
    """A :class:`Recorder` of runs in ``experiment``, from the registered factory.

    Parameters
    ----------
    experiment
        The experiment's name.

    Raises
    ------
    TypeError, ValueError
        A bad experiment name or tracking store (the factory's checks).
    MissingDependencyError
        The tracking packages are not installed (``pip install 'workbench[track]'``).
    WorkbenchError
        No factory is registered.
    """
    if not _factory:
        raise WorkbenchError(
            "no experiment tracking is set up: import workbench (which registers MLflow "
            "tracking) before training with experiment=..."
        )
    return _factory[0](experiment)
