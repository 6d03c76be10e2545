"""Secrets in settings: which keys hold one, and copies with them masked for display.

Profiles (a gateway password given inline), readers and catalog entries (``storage_options``
with cloud keys) keep their secrets, since they are needed; their ``repr`` (which Dask's
``expr.pprint()`` prints for the reader), HTML and messages show :data:`MASK` instead.

The rule, in :func:`is_secret_key`: a key is secret when one of its words (split at ``_``,
``-``, ``.`` and camelCase) is password, passwd, pwd, passphrase, secret, token, credential(s),
key, apikey, session, auth, authorization, cookie, signature, sig or sas, or it is a
connection string; unless its last word says it names where a secret is rather than holding
it (``key_file``, ``password_env``, ``token_path``, ``auth_url``). ``key`` is s3fs's access
key id: not a password, but masked too. Values that are ``None`` or booleans are shown. In
strings, URL passwords (``https://user:PASSWORD@host``) and query parameters with secret names
(``?sig=...``, ``X-Amz-Signature=...``) are masked as well: :func:`shown` does that for a URL
or a message holding URLs, and every message and log line that names a source, path or
address passes it through :func:`shown`.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

#: What a secret value is shown as.
MASK = "***"

_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "token",
        "credential",
        "credentials",
        "key",
        "apikey",
        "session",
        "auth",
        "authorization",
        "cookie",
        "signature",
        "sig",
        "sas",
    }
)
_WHERE_WORDS = frozenset({"file", "filename", "path", "dir", "env", "url", "uri"})


def _words(name: str) -> list[str]:
    snake = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
    return [w for w in re.split(r"[^a-z0-9]+", snake) if w]


def is_secret_key(name: Any) -> bool:
    """Whether a setting called ``name`` holds a secret (see the module's docstring).

    Examples
    --------
    >>> [is_secret_key(k) for k in ("password", "aws_secret_access_key", "AccountKey", "key")]
    [True, True, True, True]
    >>> [is_secret_key(k) for k in ("key_file", "password_env", "endpoint_url", "anon")]
    [False, False, False, False]
    """
    if not isinstance(name, str):
        return False
    words = _words(name)
    if not words or words[-1] in _WHERE_WORDS:
        return False
    return any(w in _SECRET_WORDS for w in words) or "connection_string" in "_".join(words)


#: A URL inside text: a scheme, ``://`` and everything up to a space or a quote.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def _redact_url(text: str) -> str:
    """``text``, one URL, with its password and secret query parameters masked."""
    if "@" not in text and "?" not in text:
        return text
    try:
        parts = urllib.parse.urlsplit(text)
        password = parts.password
    except ValueError:  # not a URL after all
        return text
    changed = False
    if password is not None:
        userinfo, _, host = parts.netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        parts, changed = parts._replace(netloc=f"{user}:{MASK}@{host}"), True
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if any(is_secret_key(k) for k, _ in pairs):
        query = [(k, MASK if is_secret_key(k) else v) for k, v in pairs]
        parts, changed = parts._replace(query=urllib.parse.urlencode(query, safe="*")), True
    return urllib.parse.urlunsplit(parts) if changed else text


def shown(text: Any) -> str:
    """``text`` to show in a message or a log line: every URL in it with its secrets masked.

    A URL's password (``https://user:PASSWORD@host``) and its query parameters with secret
    names (``?sig=...``, ``X-Amz-Signature=...``) become :data:`MASK`; the scheme, user, host,
    path and the other parameters stay. Anything not a string is shown as its ``str``.

    Examples
    --------
    >>> shown("https://bob:hunter2@example.org/x.parquet?X-Amz-Signature=abc&part=1")
    'https://bob:***@example.org/x.parquet?X-Amz-Signature=***&part=1'
    >>> shown("no files match 'memory://bucket/*.parquet?sig=abc'")
    "no files match 'memory://bucket/*.parquet?sig=***'"
    """
    text = str(text)
    if "://" not in text:
        return text
    return _URL.sub(lambda m: _redact_url(m.group(0)), text)


def redact(value: Any) -> Any:
    """A copy of ``value`` to show: secret values of mappings (nested too) become :data:`MASK`.

    Mappings become dicts, lists and tuples stay lists and tuples, strings have URL passwords
    and secret query parameters masked; anything else is returned as it is.
    """
    if isinstance(value, Mapping):
        return {
            k: MASK if is_secret_key(k) and v is not None and not isinstance(v, bool) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact(v) for v in value)
    if isinstance(value, str):
        return shown(value)
    return value


def redacted_repr(obj: Any) -> str:
    """The ``repr`` a dataclass would have, with every field's value passed through :func:`redact`.

    Use as a dataclass's ``__repr__`` (a class that defines its own keeps it).
    """
    shown = (
        f"{f.name}={redact(getattr(obj, f.name))!r}" for f in dataclasses.fields(obj) if f.repr
    )
    return f"{type(obj).__qualname__}({', '.join(shown)})"
