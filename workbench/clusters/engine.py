"""What every remote deployment shares: importing its engine, and the TLS files it passes on."""

from __future__ import annotations

import importlib
from typing import Any

from distributed import Security
from distributed.diagnostics.plugin import WorkerPlugin

from workbench.errors import MissingDependencyError

#: What each ``start_*`` returns: the cluster, and the worker plugins to register on it.
Started = tuple[Any, list[WorkerPlugin]]


def _require(module: str, kind: str, package: str) -> Any:
    """Import ``module``, the engine of a ``kind`` profile, or raise MissingDependencyError."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(
            f"the {kind} profile needs {package}, which is not installed ({err}). "
            "Install the remote extra: pip install 'workbench[remote]'"
        ) from None


def _tls_files(security: Security | None) -> dict[str, str] | None:
    """The CA, certificate and key files of ``security`` (the scheduler's), or None without TLS."""
    if security is None:
        return None
    sec: Any = security  # Security sets its tls_* attributes dynamically
    return {
        "ca": str(sec.tls_ca_file),
        "cert": str(sec.tls_scheduler_cert),
        "key": str(sec.tls_scheduler_key),
    }
