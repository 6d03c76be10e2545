"""Exceptions raised by the workbench.

Caller mistakes (a bad argument, a bad profile value) are ``TypeError`` or ``ValueError``;
failures at run time derive from :class:`WorkbenchError`. Several classes derive from both, so
``except ValueError`` and ``except WorkbenchError`` each catch what they should.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class of every failure the workbench raises at run time."""


class ProfileError(WorkbenchError, ValueError):
    """A cluster profile is unknown, malformed, or holds an invalid value."""


class MissingDependencyError(WorkbenchError, ImportError):
    """An optional package is needed; the message names the extra that installs it."""


class GPUUnavailableError(WorkbenchError, RuntimeError):
    """A GPU was asked for, but none is visible or the GPU packages are missing."""


class ClusterConnectionError(WorkbenchError, ConnectionError):
    """A scheduler could not be reached, or refused the connection."""


class SecurityConfigError(WorkbenchError, ValueError):
    """TLS was asked for, but the certificate files are missing or do not fit together."""


class MainGuardError(WorkbenchError, RuntimeError):
    """A script starts a process-based cluster without an ``if __name__ == "__main__":`` guard."""


class DataError(WorkbenchError, ValueError):
    """A dataset is unusable as given: a bad file, schema, column, target or value."""


class DataNotFoundError(WorkbenchError, FileNotFoundError):
    """A dataset source (path, glob, URL or catalog name) matches no files."""


class TrainingError(WorkbenchError, RuntimeError):
    """Training failed on the cluster (the message names the worker and the cause)."""


class InsufficientMemoryError(WorkbenchError, MemoryError):
    """Data would not fit in the cluster's free memory; the message gives the figures."""


class InsecureClusterWarning(UserWarning):
    """A cluster listens beyond loopback without TLS: whoever reaches it can run code on it."""


class ModelFileError(WorkbenchError, ValueError):
    """A model file is not one this workbench reads: damaged, altered, or another version.

    The message names the file and what is wrong with it.
    """
