"""Cluster profiles: YAML files that name a deployment kind and its options.

Built-in profiles live in the project's ``clusters/`` folder (installed as package data); the
user's own live in ``~/.config/workbench/clusters`` or the folder named by the config key
``workbench.profiles.path`` (environment variable ``DASK_WORKBENCH__PROFILES__PATH``). A user
profile with the same name as a built-in one replaces it.

A profile file looks like::

    kind: local                 # local, local-cuda, auto, ssh, kubernetes, slurm, gateway
    description: One line shown by wb.profiles().
    options: {n_workers: 2}     # passed to the deployment class, checked against its signature
    security: {tls: false}      # tls: true needs ca_file, cert_file, key_file on remote kinds
    dashboard: {address: "127.0.0.1:0"}
    adapt: {minimum: 1, maximum: 4}   # optional adaptive scaling
    idle_timeout: 1h            # optional: the scheduler closes after this long idle
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from workbench import config
from workbench._redact import redacted_repr
from workbench._yaml import Listing, read_mapping, require_mapping, yaml_files
from workbench.display import render
from workbench.errors import ProfileError

#: Deployment kinds a profile may name, with a line on what each one starts.
KINDS: dict[str, str] = {
    "auto": "the 'gpu' profile where GPUs and dask-cuda are present, else the 'cpu' profile",
    "local": "distributed.LocalCluster on this machine",
    "local-cuda": "dask_cuda.LocalCUDACluster, one worker per visible GPU",
    "ssh": "distributed.SSHCluster over SSH hosts",
    "kubernetes": "dask_kubernetes.operator.KubeCluster (the Dask operator)",
    "slurm": "dask_jobqueue.SLURMCluster (Slurm batch jobs)",
    "gateway": "dask_gateway.GatewayCluster on a Dask Gateway server",
}

#: Kinds that run on other machines; they require TLS unless the profile says otherwise.
REMOTE_KINDS = frozenset({"ssh", "kubernetes", "slurm", "gateway"})

_TOP_KEYS = {
    "kind": "deployment kind",
    "description": "one-line description",
    "options": "options of the deployment class",
    "security": "TLS settings: tls, ca_file, cert_file, key_file",
    "dashboard": "dashboard settings: address",
    "adapt": "adaptive scaling: minimum, maximum",
    "idle_timeout": "close the scheduler after this long idle",
    "gpu": "(kind auto) the profile to use when GPUs are present",
    "cpu": "(kind auto) the profile to use without GPUs",
}
_SECURITY_KEYS = {"tls", "ca_file", "cert_file", "key_file", "client_cert_file", "client_key_file"}


@dataclass(frozen=True)
class Profile:
    """A cluster profile read from a YAML file.

    Attributes
    ----------
    name
        The file name without ``.yaml``.
    kind
        The deployment kind, one of :data:`KINDS`.
    description
        A one-line description.
    options
        Options for the deployment class; secrets among them (a gateway ``password``) are
        masked in the ``repr`` (see :mod:`workbench._redact`).
    security
        TLS settings (``tls``, ``ca_file``, ``cert_file``, ``key_file``), paths resolved.
    dashboard
        Dashboard settings (``address``).
    adapt
        Adaptive scaling bounds (``minimum``, ``maximum``), or empty.
    idle_timeout
        Idle timeout of the scheduler, or ``None``.
    extra
        The ``gpu``/``cpu`` profile names of an ``auto`` profile.
    path
        The file it came from.
    lines
        Line numbers (1-based) of the keys in the file, for error messages.
    """

    name: str
    kind: str
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    security: dict[str, Any] = field(default_factory=dict)
    dashboard: dict[str, Any] = field(default_factory=dict)
    adapt: dict[str, Any] = field(default_factory=dict)
    idle_timeout: str | float | None = None
    extra: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    lines: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    __repr__ = redacted_repr

    @property
    def remote(self) -> bool:
        """Whether the deployment runs on other machines."""
        return self.kind in REMOTE_KINDS

    @property
    def tls(self) -> bool:
        """Whether the profile asks for TLS (remote kinds ask for it unless told otherwise)."""
        return bool(self.security.get("tls", self.remote))

    def where(self, key: str) -> str:
        """Return ``"file:line"`` for an option or top-level key, for error messages."""
        if self.path is None:
            return f"profile {self.name!r}"
        line = self.lines.get(key)
        return f"{self.path}:{line}" if line else str(self.path)

    def with_overrides(self, overrides: Mapping[str, Any]) -> Profile:
        """Return a copy whose options are updated by ``overrides`` (keyword arguments win)."""
        return replace(self, options={**self.options, **overrides})


def builtin_dir() -> Path:
    """Return the folder of the built-in profiles (``clusters/`` of a checkout, or package data)."""
    checkout = Path(__file__).resolve().parents[2] / "clusters"
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files("workbench._profiles")))


def user_dir() -> Path:
    """Return the user's profile folder from ``workbench.profiles.path``."""
    return Path(os.path.expandvars(str(config.get("profiles.path")))).expanduser()


def _resolve_path(value: Any, base: Path) -> str:
    p = Path(os.path.expandvars(str(value))).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def load_profile_file(path: str | os.PathLike[str], name: str | None = None) -> Profile:
    """Read and check one profile file.

    Parameters
    ----------
    path
        The YAML file.
    name
        The profile's name; defaults to the file name without its suffix.

    Raises
    ------
    ProfileError
        When the file is not valid YAML (file and line named), is not a mapping, names an
        unknown kind or key, or has a value of the wrong type.
    """
    path = Path(path)
    name = name or path.stem
    data, lines = read_mapping(path, f"profile {name!r}", ProfileError, "at least 'kind:'")
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown:
        key = unknown[0]
        valid = ", ".join(sorted(_TOP_KEYS))
        raise ProfileError(
            f"{path}:{lines.get(key, '?')}: unknown key {key!r}; valid keys: {valid}"
        )
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ProfileError(
            f"{path}:{lines.get('kind', 1)}: profile {name!r} has kind {kind!r}; "
            f"use one of: {', '.join(KINDS)}"
        )
    security = require_mapping(data.get("security"), "security", path, lines, ProfileError)
    bad = sorted(set(security) - _SECURITY_KEYS)
    if bad:
        raise ProfileError(
            f"{path}:{lines.get('security.' + bad[0], '?')}: unknown security key {bad[0]!r}; "
            f"valid keys: {', '.join(sorted(_SECURITY_KEYS))}"
        )
    if "tls" in security and not isinstance(security["tls"], bool):
        raise ProfileError(
            f"{path}:{lines.get('security.tls', '?')}: security.tls must be true or false, "
            f"not {security['tls']!r}"
        )
    security = {
        k: (_resolve_path(v, path.parent) if k.endswith("_file") and v is not None else v)
        for k, v in security.items()
    }
    extra: dict[str, str] = {k: str(data[k]) for k in ("gpu", "cpu") if k in data}
    if kind == "auto" and set(extra) != {"gpu", "cpu"}:
        raise ProfileError(
            f"{path}:{lines.get('kind', 1)}: kind 'auto' needs both 'gpu:' and 'cpu:' profile names"
        )
    adapt = require_mapping(data.get("adapt"), "adapt", path, lines, ProfileError)
    bad = sorted(set(adapt) - {"minimum", "maximum"})
    if bad:
        raise ProfileError(
            f"{path}:{lines.get('adapt.' + bad[0], '?')}: unknown adapt key {bad[0]!r}; "
            "valid keys: minimum, maximum"
        )
    options = require_mapping(data.get("options"), "options", path, lines, ProfileError)
    dashboard = require_mapping(data.get("dashboard"), "dashboard", path, lines, ProfileError)
    bad = sorted(map(str, set(dashboard) - {"address"}))
    if bad:
        raise ProfileError(
            f"{path}:{lines.get('dashboard.' + bad[0], '?')}: unknown dashboard key {bad[0]!r}; "
            'the only key is address (e.g. "127.0.0.1:8787")'
        )
    idle = data.get("idle_timeout")
    if idle is not None and config.positive_seconds(idle) is None:
        raise ProfileError(
            f"{path}:{lines.get('idle_timeout', '?')}: idle_timeout {idle!r} is not a "
            "duration; write it like 30min, 2h or 3600 (seconds)"
        )
    return Profile(
        name=name,
        kind=kind,
        description=str(data.get("description") or "").strip(),
        options=options,
        security=security,
        dashboard=dashboard,
        adapt=adapt,
        idle_timeout=idle,
        extra=extra,
        path=path,
        lines=lines,
    )


def _profile_files() -> dict[str, Path]:
    """Map each profile name to its file; user profiles replace built-in ones."""
    return yaml_files(builtin_dir(), user_dir())


class Profiles(Listing[Profile]):
    """The available profiles by name, with a text and an HTML table for notebooks."""

    columns = (("kind", 10), ("tls", 5), ("description", 0))

    def row(self, entry: Profile) -> tuple[str, ...]:
        """Kind, TLS and description of one profile."""
        return (entry.kind, str(entry.tls), entry.description)

    def _repr_html_(self) -> str:
        return render("profiles.html.j2", profiles=self.values(), errors=self.errors)


def profiles() -> Profiles:
    """List the cluster profiles that :func:`workbench.start_cluster` can start.

    Returns
    -------
    Profiles
        A read-only mapping of name to :class:`Profile`; invalid files are listed in
        ``.errors`` with the reason instead of raising, so one broken file hides nothing else.
    """
    good: dict[str, Profile] = {}
    bad: dict[str, str] = {}
    for name, path in _profile_files().items():
        try:
            good[name] = load_profile_file(path, name)
        except ProfileError as err:
            bad[name] = str(err)
        except Exception as err:  # one broken file must not hide the others
            bad[name] = f"{path}: cannot be read as a profile: {type(err).__name__}: {err}"
    return Profiles(good, bad)


def get_profile(name: str | os.PathLike[str]) -> Profile:
    """Return the profile called ``name``, or read it from a path to a YAML file.

    Raises
    ------
    ProfileError
        When there is no such profile (the known ones are listed) or the file is invalid.
    """
    text = os.fspath(name)
    if text.endswith((".yaml", ".yml")) or os.sep in text:
        if not Path(text).is_file():
            raise ProfileError(f"profile file {text} does not exist")
        return load_profile_file(text)
    files = _profile_files()
    if text not in files:
        known = ", ".join(sorted(files)) or "(none)"
        close = difflib.get_close_matches(text, list(files), n=1)
        guess = f"did you mean {close[0]!r}? " if close else ""
        raise ProfileError(
            f"unknown cluster profile {text!r}; {guess}known profiles: {known}. "
            f"Add your own as {user_dir() / (text + '.yaml')}"
        )
    return load_profile_file(files[text], text)
