"""workbench: a Dask-based workbench for scalable data and distributed training.

Everything a user needs is importable from here::

    import workbench as wb

    cluster = wb.start_cluster()          # GPUs if present, else CPU
    client = wb.connect("tls://host:8786", security={...})
    wb.profiles(); wb.hardware(); wb.datasets()
    ds = wb.load("fraud")                 # a catalog name, or a path/glob/URL of Parquet or CSV
    train, valid, test = ds.split((0.8, 0.1, 0.1), seed=0, stratify=True)
    X, y = train.to_arrays(device="auto")
    model = wb.train(train, valid=valid, rounds=500, early_stopping=20)
    model.evaluate(test); model.save("models/fraud"); wb.load_model("models/fraud")
    study = wb.tune(train, valid, trials=50, experiment="fraud")   # Optuna, on the cluster
    study.best_params; study.best_model; wb.runs("fraud")          # MLflow runs as a table

Modules below this package are implementation; their names may change.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from workbench import api as _api  # registers the default-cluster hook that ensure_client calls
from workbench import config as _config  # loads the workbench.* defaults into dask.config
from workbench.clusters.certificates import make_certificates
from workbench.clusters.cluster import Cluster
from workbench.clusters.connect import connect
from workbench.clusters.profiles import Profile, profiles
from workbench.clusters.start import start_cluster
from workbench.errors import (
    ClusterConnectionError,
    DataError,
    DataNotFoundError,
    GPUUnavailableError,
    InsecureClusterWarning,
    InsufficientMemoryError,
    MainGuardError,
    MissingDependencyError,
    ModelFileError,
    ProfileError,
    SecurityConfigError,
    TrainingError,
    WorkbenchError,
)
from workbench.hardware import Hardware, hardware

if TYPE_CHECKING:
    from workbench.data.catalog import datasets
    from workbench.data.dataset import Dataset
    from workbench.data.generate import generate
    from workbench.data.load import load
    from workbench.training.api import train
    from workbench.training.model import Model, load_model
    from workbench.tuning.study import Study, tune
    from workbench.tuning.tracking import runs

__version__ = "0.1.0"

# The data API imports dask.dataframe, which imports dask.array, which imports CuPy wherever it
# is installed; loading these names on first use keeps `import workbench` free of the GPU stack
# and quick for the command line.
_LAZY = {
    "Dataset": "workbench.data.dataset",
    "datasets": "workbench.data.catalog",
    "generate": "workbench.data.generate",
    "load": "workbench.data.load",
    "Model": "workbench.training.model",
    "load_model": "workbench.training.model",
    "train": "workbench.training.api",
    "Study": "workbench.tuning.study",
    "tune": "workbench.tuning.study",
    "runs": "workbench.tuning.tracking",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Cluster",
    "ClusterConnectionError",
    "DataError",
    "DataNotFoundError",
    "Dataset",
    "GPUUnavailableError",
    "Hardware",
    "InsecureClusterWarning",
    "InsufficientMemoryError",
    "MainGuardError",
    "MissingDependencyError",
    "Model",
    "ModelFileError",
    "Profile",
    "ProfileError",
    "SecurityConfigError",
    "Study",
    "TrainingError",
    "WorkbenchError",
    "__version__",
    "connect",
    "datasets",
    "generate",
    "hardware",
    "load",
    "load_model",
    "make_certificates",
    "profiles",
    "runs",
    "start_cluster",
    "train",
    "tune",
]

del _api, _config
