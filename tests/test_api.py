"""The public namespace and the promise that ``import workbench`` needs no GPU stack."""

from __future__ import annotations

import os
import subprocess
import sys

import workbench as wb


def test_all_is_sorted_and_complete() -> None:
    assert wb.__all__ == sorted(wb.__all__)
    names = {n for n in dir(wb) if not n.startswith("_")}
    modules = {n for n in names if isinstance(getattr(wb, n), type(wb))}
    public = names - modules - {"annotations", "importlib", "TYPE_CHECKING", "Any"}
    # every public object of the namespace is listed, and every listed name exists
    assert public == set(wb.__all__) - {"__version__"}
    for name in wb.__all__:
        assert hasattr(wb, name), name


def test_import_without_gpu_packages_and_without_importing_them() -> None:
    # dask_cuda and cupy made unimportable, as on a machine without the gpu extra, and every
    # GPU hidden (CUDA_VISIBLE_DEVICES=""), as on a machine without one: the same on any machine
    code = (
        "import sys; sys.modules['dask_cuda'] = None; sys.modules['cupy'] = None\n"
        "import workbench as wb\n"
        "print(wb.hardware().gpu_count)\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"
    code = (
        "import sys, workbench\nprint(sorted(m for m in ('dask_cuda', 'cupy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_errors_are_both_workbench_errors_and_builtin_kinds() -> None:
    assert issubclass(wb.ProfileError, ValueError)
    assert issubclass(wb.ProfileError, wb.WorkbenchError)
    assert issubclass(wb.ClusterConnectionError, ConnectionError)
    assert issubclass(wb.MissingDependencyError, ImportError)
    assert issubclass(wb.SecurityConfigError, ValueError)
