"""``workbench lab``: JupyterLab with dask-labextension pointed at a cluster's dashboard.

JupyterLab runs as a child process with two things prepared for it:

- dask-labextension's ``defaultURL`` setting is the cluster's dashboard, set as a default in
  ``overrides.d`` of a private copy of JupyterLab's application settings folder (passed as
  ``--LabApp.app_settings_dir``), so the user's own settings still win and nothing outside the
  copy is changed;
- the kernels' environment names the scheduler (``DASK_SCHEDULER_ADDRESS``) and, for a TLS
  cluster, its certificates (``DASK_DISTRIBUTED__COMM__TLS__*``): ``distributed.Client()``,
  ``distributed.get_client()`` and every workbench call with ``client=None`` connect to it.
  Certificates that live only in memory (temporary ones) are written to a private folder
  (mode 0700) that is removed when JupyterLab exits.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PLUGIN = "dask-labextension:plugin"
NEEDED = ("jupyterlab", "dask_labextension")


def check_installed(modules: tuple[str, ...] = NEEDED) -> None:
    """Raise ``ImportError`` naming the extra to install when a module of the lab is missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(
            f"workbench lab needs {', '.join(missing)}, which is not installed: "
            "pip install 'workbench[lab]' (JupyterLab, dask-labextension, ipywidgets)"
        )


def default_app_settings_dir() -> Path:
    """JupyterLab's own application settings folder (``<app dir>/settings``)."""
    from jupyterlab.commands import get_app_dir

    return Path(get_app_dir()) / "settings"


def write_settings_dir(folder: Path, dashboard: str, base: Path | None = None) -> Path:
    """Fill ``folder`` with a copy of ``base`` plus the dashboard URL as a default setting.

    Parameters
    ----------
    folder
        An empty folder to use as JupyterLab's ``app_settings_dir``.
    dashboard
        The Dask dashboard's URL, e.g. ``http://127.0.0.1:8787/status``.
    base
        JupyterLab's own application settings folder; its files are copied (page config,
        the site's overrides). Default: :func:`default_app_settings_dir`.
    """
    base = default_app_settings_dir() if base is None else base
    if base.is_dir():
        shutil.copytree(base, folder, dirs_exist_ok=True)
    overrides = folder / "overrides.d"
    overrides.mkdir(parents=True, exist_ok=True)
    # overrides.d files apply in name order, before overrides.json: the site's last word stays.
    (overrides / "zz-workbench-dask.json").write_text(
        json.dumps({PLUGIN: {"defaultURL": dashboard}}, indent=2) + "\n", encoding="utf-8"
    )
    return folder


def dashboard_root(link: str) -> str:
    """The dashboard URL without its page (``.../status``): what dask-labextension expects."""
    link = link.rstrip("/")
    return link[: -len("/status")] if link.endswith("/status") else link


def _pem_or_path(value: str, folder: Path, name: str) -> str:
    """A path to the certificate or key: ``value`` itself, or a private file holding it."""
    if "-----BEGIN" not in value:
        return value
    path = folder / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(value)
    return str(path)


def kernel_env(address: str, security: Any | None, folder: Path) -> dict[str, str]:
    """Environment variables that make a kernel's Dask client connect to ``address``.

    Parameters
    ----------
    address
        The scheduler's address.
    security
        The cluster's :class:`distributed.Security`, or ``None`` for plain TCP.
    folder
        A private folder for certificates held only in memory.
    """
    env = {"DASK_SCHEDULER_ADDRESS": address}
    if security is None or not getattr(security, "tls_ca_file", None):
        return env
    files = {
        "CA_FILE": ("tls_ca_file", "ca.pem"),
        "CLIENT__CERT": ("tls_client_cert", "client.pem"),
        "CLIENT__KEY": ("tls_client_key", "client-key.pem"),
    }
    for var, (attr, name) in files.items():
        value = getattr(security, attr, None)
        if value:
            env[f"DASK_DISTRIBUTED__COMM__TLS__{var}"] = _pem_or_path(str(value), folder, name)
    env["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] = "True"
    return env


@contextmanager
def prepared(
    address: str, dashboard: str, security: Any | None
) -> Iterator[tuple[dict[str, str], Path]]:
    """A private folder with the settings and certificates; removed on exit.

    Yields the kernels' environment additions and the settings folder.
    """
    with tempfile.TemporaryDirectory(prefix="workbench-lab-") as tmp:
        root = Path(tmp)
        root.chmod(0o700)
        settings = write_settings_dir(root / "settings", dashboard_root(dashboard))
        yield kernel_env(address, security, root), settings


def command(
    settings: Path,
    *,
    ip: str = "127.0.0.1",
    port: int | None = None,
    browser: bool = True,
    root_dir: str | None = None,
    extra: tuple[str, ...] = (),
) -> list[str]:
    """The command line that starts JupyterLab with ``settings`` as its application settings."""
    import sys

    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--LabApp.app_settings_dir={settings}",
        f"--ServerApp.ip={ip}",
    ]
    if port is not None:
        cmd.append(f"--ServerApp.port={port}")
    if not browser:
        cmd.append("--no-browser")
    if root_dir:
        cmd.append(f"--ServerApp.root_dir={root_dir}")
    return [*cmd, *extra]


def environment(additions: Mapping[str, str]) -> dict[str, str]:
    """The environment of this process plus ``additions`` (kernels inherit it from Lab)."""
    return {**os.environ, **additions}
