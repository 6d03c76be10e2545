"""``workbench lab``: JupyterLab with dask-labextension pointed at a cluster's dashboard.

JupyterLab runs as a child process with two things prepared for it:

- dask-labextension's ``defaultURL`` setting is the cluster's dashboard, set as a default in
  ``overrides.d`` of a private copy of JupyterLab's application settings folder (passed as
  ``--LabApp.app_settings_dir``), so the user's own settings still win and nothing outside the
  copy is changed;
- the kernels' environment names the scheduler (``DASK_SCHEDULER_ADDRESS``) and, for a TLS
  cluster, the CA and the *client* certificate (``DASK_DISTRIBUTED__COMM__TLS__*``; never the
  scheduler's and workers' server certificate or key): ``distributed.Client()``
  and every workbench call with ``client=None`` connect to it (``distributed.get_client()``
  does not read that setting). Certificates that live only in memory (temporary ones) are
  written to a private folder (mode 0700) that is removed when JupyterLab exits.

Ctrl-C reaches JupyterLab, which asks to confirm; the workbench process waits on. SIGTERM or
SIGHUP (the terminal closed) stop JupyterLab, then the cluster.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from workbench.errors import InsecureClusterWarning

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


def check_user(jupyter_args: tuple[str, ...] | list[str], euid: int | None = None) -> None:
    """Refuse root without ``--allow-root`` before anything starts, as Jupyter would after.

    Parameters
    ----------
    jupyter_args
        The arguments that go to JupyterLab.
    euid
        The effective user id; this process's by default.

    Raises
    ------
    PermissionError
        Running as root and ``jupyter_args`` do not allow it.
    """
    euid = os.geteuid() if euid is None else euid
    allowed = any(
        a == "--allow-root" or a.replace("-", "_").lower() == "__serverapp.allow_root=true"
        for a in jupyter_args
    )
    if euid == 0 and not allowed:
        raise PermissionError(
            "JupyterLab does not run as root unless asked: run `workbench lab --allow-root` "
            "(in a container that runs as root), or start it as a normal user"
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
        for where, dirs, files in os.walk(folder):  # a read-only site folder stays ours to add to
            for name in [*dirs, *files]:
                path = Path(where) / name
                path.chmod(path.stat().st_mode | stat.S_IWUSR)
        static = base.parent / "static"  # JupyterLab reads <settings>/../static/package.json
        if static.is_dir() and not (folder.parent / "static").exists():
            (folder.parent / "static").symlink_to(static, target_is_directory=True)
    folder.mkdir(parents=True, exist_ok=True)
    if not dashboard:
        return folder
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
        return os.path.abspath(value)  # kernels run in the notebooks' folders
    path = folder / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(value)
    return str(path)


def can_serve(certificate: str) -> bool:
    """Whether a certificate may act as a TLS server: what its extended key usage allows.

    Parameters
    ----------
    certificate
        The certificate as PEM text, or the path of a PEM file.

    Returns
    -------
    bool
        ``True`` when the extended key usage includes ``serverAuth`` or ``anyExtendedKeyUsage``,
        or the certificate has none (then it may be used for anything); ``False`` for a client
        certificate (``clientAuth`` only), and for a certificate that cannot be read (the
        connection fails on it anyway).
    """
    try:
        data = (
            certificate.encode("ascii")
            if "-----BEGIN" in certificate
            else Path(certificate).read_bytes()
        )
        cert = x509.load_pem_x509_certificate(data)
    except (OSError, ValueError):
        return False
    try:
        usages = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return True
    return bool(
        usages & {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
    )


def kernel_env(address: str, security: Any | None, folder: Path) -> dict[str, str]:
    """Environment variables that make a kernel's Dask client connect to ``address``.

    Parameters
    ----------
    address
        The scheduler's address.
    security
        The cluster's :class:`distributed.Security`, or ``None`` for plain TCP. Only its CA and
        client certificate and key reach the kernels (a client certificate cannot serve as a
        scheduler: see :mod:`workbench.clusters.security`).
    folder
        A private folder for certificates held only in memory.

    Returns
    -------
    dict
        ``DASK_SCHEDULER_ADDRESS`` and, for TLS, ``DASK_DISTRIBUTED__COMM__TLS__*`` variables.

    Warns
    -----
    InsecureClusterWarning
        When the client certificate may also serve as a TLS server (:func:`can_serve`): the
        kernels would hold a certificate and key that can pose as the scheduler.
    """
    env = {"DASK_SCHEDULER_ADDRESS": address}
    if security is None or not getattr(security, "tls_ca_file", None):
        return env
    client_cert = getattr(security, "tls_client_cert", None)
    if client_cert and can_serve(str(client_cert)):
        warnings.warn(
            "the client certificate this Lab hands its kernels may also serve as a TLS server "
            "(its extended key usage allows serverAuth), so every kernel gets a key that lets "
            "it act as the scheduler: use a client certificate (clientAuth only): "
            "--cert-file client-cert.pem --key-file client-key.pem, or security.client_cert_file "
            "and client_key_file in the profile (`workbench tls make` writes them)",
            InsecureClusterWarning,
            stacklevel=2,
        )
    files = {
        "CA_FILE": ("tls_ca_file", "ca.pem"),
        "CLIENT__CERT": ("tls_client_cert", "client.pem"),
        "CLIENT__KEY": ("tls_client_key", "client-key.pem"),
    }
    for var, (attr, name) in files.items():
        value = getattr(security, attr, None)
        if value:
            env[f"DASK_DISTRIBUTED__COMM__TLS__{var}"] = _pem_or_path(str(value), folder, name)
    return env  # not require-encryption: a kernel may still start a plain local cluster


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


class _Stopped(Exception):
    pass


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise _Stopped(signum)


def exit_status(returncode: int) -> int:
    """A child's return code as a shell would report it (128 + N for signal N)."""
    return 128 - returncode if returncode < 0 else returncode


def run(
    address: str,
    dashboard: str,
    security: Any | None,
    *,
    echo: Any = print,
    **options: Any,
) -> int:
    """Run JupyterLab on the cluster until it exits; return its exit status.

    Parameters
    ----------
    address, dashboard, security
        The cluster's scheduler address, dashboard URL (or ``""``) and TLS settings.
    echo
        Where to say what is happening.
    options
        :func:`command`'s keyword arguments (``ip``, ``port``, ``browser``, ``root_dir``,
        ``extra``).
    """
    handled = (signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, _raise_stopped) for s in handled}
    try:
        with prepared(address, dashboard, security) as (env, settings):
            proc = subprocess.Popen(command(settings, **options), env=environment(env))
            try:
                while True:
                    try:
                        return exit_status(proc.wait())
                    except KeyboardInterrupt:  # JupyterLab has it too and asks to confirm
                        continue
            except _Stopped:
                for s in handled:  # a second signal must not cut the stop short
                    signal.signal(s, signal.SIG_IGN)
                echo("stopping JupyterLab...")
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                return 0 if proc.returncode == -signal.SIGTERM else exit_status(proc.returncode)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
