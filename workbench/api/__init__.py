"""The public API layer: the default-cluster hook, and what the command line calls.

Every workbench call that needs a cluster takes ``client=None`` and then uses the current Dask
client. Where there is none, data and training (which know nothing of clusters) ask the base
layer's :func:`workbench._client.ensure_client`, which calls the factory registered here when
``workbench`` is imported: :func:`default_client`.

The command line (:mod:`workbench.cli`) imports only this layer and the public namespace. The
cluster operations (:mod:`workbench.api.clusters`) load with it; the dataset, model and demo
operations (:mod:`workbench.api.datasets`, :mod:`workbench.api.models`,
:mod:`workbench.api.predictions`, :func:`run_demo`) import the data and training stack, which
imports dask.dataframe (and CuPy wherever it is installed), so, as in ``workbench``'s own
namespace, they load on first use and ``import workbench`` and ``workbench --help`` stay quick.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
from typing import TYPE_CHECKING, Any

import dask
from distributed import Client

from workbench._client import set_default_client_factory
from workbench.api.clusters import (
    LabCluster,
    SchedulerView,
    describe_scheduler,
    lab_cluster,
    profile_folders,
    render_profile,
)
from workbench.clusters.joined import connect_configured
from workbench.clusters.start import start_cluster
from workbench.config import setup_logging
from workbench.hooks import Recorder, set_tracker_factory

if TYPE_CHECKING:
    from workbench.api.datasets import (
        EntryView,
        catalog_folders,
        describe_entry,
        generate_on,
        inspect_source,
    )
    from workbench.api.models import predict_to_folder, train_to_file
    from workbench.api.predictions import check_out, write_predictions
    from workbench.api.tuning import tune_on
    from workbench.demo import run as run_demo

logger = logging.getLogger(__name__)

_started: list[Any] = []  # clusters started here for lack of a client; closed at exit


def default_client() -> Client:
    """A client for a call given none while no Dask client is current.

    Dask's ``scheduler-address`` setting (``DASK_SCHEDULER_ADDRESS``, set for the kernels of
    ``workbench lab``) is connected to, with the TLS settings of Dask's config, and becomes the
    current client. Otherwise ``workbench.start_cluster()`` (the default profile) starts, says
    so, and is closed when the interpreter exits.

    Returns
    -------
    distributed.Client
        The new current client.
    """
    address = dask.config.get("scheduler-address", None)
    if address:
        setup_logging()
        logger.info("connecting to the scheduler at %s (Dask's scheduler-address setting)", address)
        return connect_configured(str(address))
    setup_logging()
    logger.info("no Dask client is connected: starting the default local cluster for this session")
    cluster = start_cluster()
    if not _started:
        atexit.register(_close_started)
    _started.append(cluster)
    return cluster.get_client()


def _close_started() -> None:
    while _started:
        with contextlib.suppress(Exception):  # at exit, nothing is worth raising for
            _started.pop().close()


set_default_client_factory(default_client)


def _tracker(experiment: str) -> Recorder:
    """A recorder of ``wb.train(..., experiment=)``'s runs: an MLflow tracker, loaded on first use.

    Registered with :func:`workbench.hooks.set_tracker_factory` when ``workbench`` is imported,
    so that the training room records runs without importing the tuning room (or MLflow).
    """
    tracking = importlib.import_module("workbench.tuning.tracking")
    recorder: Recorder = tracking.Tracker(experiment)
    return recorder


set_tracker_factory(_tracker)

# name -> (module, attribute): the operations that import the data and training stack
_LAZY: dict[str, tuple[str, str]] = {
    "EntryView": ("workbench.api.datasets", "EntryView"),
    "catalog_folders": ("workbench.api.datasets", "catalog_folders"),
    "describe_entry": ("workbench.api.datasets", "describe_entry"),
    "generate_on": ("workbench.api.datasets", "generate_on"),
    "inspect_source": ("workbench.api.datasets", "inspect_source"),
    "predict_to_folder": ("workbench.api.models", "predict_to_folder"),
    "train_to_file": ("workbench.api.models", "train_to_file"),
    "tune_on": ("workbench.api.tuning", "tune_on"),
    "check_out": ("workbench.api.predictions", "check_out"),
    "write_predictions": ("workbench.api.predictions", "write_predictions"),
    "run_demo": ("workbench.demo", "run"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'workbench.api' has no attribute {name!r}")


__all__ = [
    "EntryView",
    "LabCluster",
    "SchedulerView",
    "catalog_folders",
    "check_out",
    "default_client",
    "describe_entry",
    "describe_scheduler",
    "generate_on",
    "inspect_source",
    "lab_cluster",
    "predict_to_folder",
    "profile_folders",
    "render_profile",
    "run_demo",
    "train_to_file",
    "tune_on",
    "write_predictions",
]
