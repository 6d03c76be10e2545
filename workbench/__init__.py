"""workbench: a Dask-based workbench for scalable data and distributed training.

Everything a user needs is importable from here::

    import workbench as wb

    cluster = wb.start_cluster()          # GPUs if present, else CPU
    client = wb.connect("tls://host:8786", security={...})
    wb.profiles(); wb.hardware()

Modules below this package are implementation; their names may change.
"""

from __future__ import annotations

from workbench import config as _config  # loads the workbench.* defaults into dask.config
from workbench.clusters.cluster import Cluster
from workbench.clusters.connect import connect
from workbench.clusters.profiles import Profile, profiles
from workbench.clusters.security import make_certificates
from workbench.clusters.start import start_cluster
from workbench.errors import (
    ClusterConnectionError,
    GPUUnavailableError,
    MainGuardError,
    MissingDependencyError,
    ProfileError,
    SecurityConfigError,
    WorkbenchError,
)
from workbench.hardware import Hardware, hardware

__version__ = "0.1.0"

__all__ = [
    "Cluster",
    "ClusterConnectionError",
    "GPUUnavailableError",
    "Hardware",
    "MainGuardError",
    "MissingDependencyError",
    "Profile",
    "ProfileError",
    "SecurityConfigError",
    "WorkbenchError",
    "__version__",
    "connect",
    "hardware",
    "make_certificates",
    "profiles",
    "start_cluster",
]

del _config
