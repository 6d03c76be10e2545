"""The model file's format: a zip archive of ``workbench.json`` and the estimator, checked.

:func:`pack` makes the archive; :func:`unpack` reads one and trusts nothing in it. Where the
file lives (paths, object stores, atomic writes) is :mod:`workbench.training.store`'s business.

Reading
-------
:func:`unpack` reads only the members it expects. The manifest (``workbench.json``) may hold at
most :data:`MAX_MANIFEST` bytes and :data:`MAX_MANIFEST_VALUES` JSON values, both checked before
it is parsed, since parsing small JSON values costs about 25 times their size in memory. Every
other member may hold at most :data:`MAX_MEMBER` bytes and, beyond :data:`SMALL_MEMBER`, at most
:data:`MAX_EXPANSION` times its compressed size. Sizes are checked on the archive's declared
sizes and again while reading, since those can lie. The manifest must be format
``workbench-model/N`` with N in :data:`READS`, at most :data:`MAX_DEPTH` levels deep, and list
every other member with its size and SHA-256 (``files``), which are checked; a member it does not
list is refused. Files without the hashes (written before they were added, none of them
released) are refused. Every failure is one :class:`~workbench.errors.ModelFileError` naming the
file and what is wrong. :func:`pack` refuses a manifest beyond these caps, so that no model is
written that could not be read again.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
import zlib
from typing import IO, Any

from workbench.errors import ModelFileError

MANIFEST = "workbench.json"
#: The format this workbench writes, and the major versions it reads.
FORMAT_VERSION = 1
FORMAT = f"workbench-model/{FORMAT_VERSION}"
READS = (1,)
#: The most bytes and JSON values ``workbench.json`` may hold. A typical manifest is about
#: 12 KB; one with 10,000 features, 50 categorical features of 1,000 levels and a history of
#: 10,000 rounds is 2.4 MB and about 120,000 values, as is one feature of 100,000 levels.
MAX_MANIFEST = 4 << 20
MAX_MANIFEST_VALUES = 250_000
#: The most bytes any other member may hold.
MAX_MEMBER = 4 << 30
#: A member bigger than SMALL_MEMBER may hold at most MAX_EXPANSION times its compressed size.
#: Real models compress 2 to 65 times (XGBoost's most repetitive: thousands of empty trees);
#: a deflate "zip bomb" about 1000 times.
MAX_EXPANSION = 200
SMALL_MEMBER = 16 << 20
#: The deepest nesting of JSON values in a manifest (real ones have about 5 levels).
MAX_DEPTH = 64

_FORMAT = re.compile(r"workbench-model/(\d+)")
_HEAD = re.compile(rb'\{\s*"format"\s*:\s*"workbench-model/')
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: A string, an empty container, or a comma or opening bracket outside both (one byte).
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[{]\s*[\]}]|[,\[{]')
_CHUNK = 1 << 20


def pack(manifest: dict[str, Any], files: dict[str, bytes]) -> bytes:
    """A zip archive of ``workbench.json`` (the manifest) and the model's files.

    The manifest gets the format and, under ``files``, each file's size and SHA-256.

    Raises
    ------
    ModelFileError
        The manifest would exceed :data:`MAX_MANIFEST` bytes or :data:`MAX_MANIFEST_VALUES`
        values, so the file could not be read again; nothing is made.
    """
    listed = {
        name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in files.items()
    }
    body = {"format": FORMAT, **manifest, "files": listed}
    text = json.dumps(body, indent=1, default=str).encode()
    values = _count_values(text)
    if len(text) > MAX_MANIFEST or values > MAX_MANIFEST_VALUES:
        raise ModelFileError(
            f"the model's {MANIFEST} would hold {len(text):,} bytes and about {values:,} JSON "
            f"values; a model file's is capped at {MAX_MANIFEST:,} bytes and "
            f"{MAX_MANIFEST_VALUES:,} values, so it could not be loaded again and nothing is "
            "written (a very long history, or categories with very many levels?)"
        )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(MANIFEST, text)
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def is_model(f: IO[bytes]) -> bool:
    """Whether the open file is a zip archive whose manifest starts as a workbench model's does."""
    try:
        with zipfile.ZipFile(f) as z, z.open(MANIFEST) as m:
            return _HEAD.match(m.read(256)) is not None
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, EOFError, RuntimeError):
        return False


def unpack(data: bytes | IO[bytes], source: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and files of :func:`pack`'s archive, checked (see the module's docstring).

    Parameters
    ----------
    data
        The archive's bytes, or a seekable binary file holding it.
    source
        Where it came from, for messages.

    Raises
    ------
    ModelFileError
        It is not a workbench model, is damaged or altered, or is of a format not read here.
    """
    f = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    head = f.read(4)
    f.seek(0)

    def bad(why: str) -> ModelFileError:
        return ModelFileError(f"{source!r}: {why}")

    try:
        z = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        if head != b"PK\x03\x04":
            raise ModelFileError(
                f"{source!r} is not a workbench model (not a zip archive); save one with "
                "model.save(path), or load an XGBoost file with xgboost.Booster(model_file=...)"
            ) from None
        raise bad(f"the file is damaged: not a readable zip archive ({e})") from None
    with z:
        infos = z.infolist()
        names = [i.filename for i in infos]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise bad(f"the archive holds {twice} more than once; a model file holds each once")
        if MANIFEST not in names:
            raise ModelFileError(
                f"{source!r} is not a workbench model (no {MANIFEST} inside); save one with "
                "model.save(path)"
            )
        manifest = _manifest(_member(z, z.getinfo(MANIFEST), MAX_MANIFEST, bad), bad)
        listed = _listed(manifest, bad)
        extra = sorted(set(names) - {MANIFEST} - set(listed))
        if extra:
            raise bad(
                f"the archive holds member(s) {extra} that its {MANIFEST} does not list; a "
                "model file holds only the manifest and the estimator (altered?)"
            )
        missing = sorted(set(listed) - set(names))
        if missing:
            raise bad(f"member(s) {missing} listed in {MANIFEST} are missing (damaged?)")
        files = {}
        for name, (size, digest) in listed.items():
            content = _member(z, z.getinfo(name), MAX_MEMBER, bad, size)
            if hashlib.sha256(content).hexdigest() != digest:
                raise bad(
                    f"member {name!r} does not match the SHA-256 in {MANIFEST} (damaged or "
                    "altered); save the model again"
                )
            files[name] = content
    return manifest, files


def _member(
    z: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, bad: Any, size: int | None = None
) -> bytes:
    """A member's bytes, refused above ``cap`` or the expansion limit, declared or read.

    ``size`` is what the manifest says it holds: the archive must declare the same. A ``cap``
    at most :data:`SMALL_MEMBER` (the manifest's) is the limit whatever the compressed size.
    """
    name = info.filename
    if info.flag_bits & 0x1:
        raise bad(f"member {name!r} is encrypted; a model file is not")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise bad(f"member {name!r} uses compression method {info.compress_type}, not deflate")
    limit = min(cap, max(SMALL_MEMBER, MAX_EXPANSION * info.compress_size))
    if info.file_size > limit:
        raise bad(_too_big(name, f"would expand to {info.file_size:,} bytes", info, cap, limit))
    if size is not None and info.file_size != size:
        raise bad(
            f"member {name!r} holds {info.file_size:,} bytes, but {MANIFEST} says {size:,} "
            "(damaged or altered)"
        )
    out = bytearray()
    try:
        with z.open(info) as m:
            while chunk := m.read(min(_CHUNK, limit + 1 - len(out))):
                out += chunk
                if len(out) > limit:
                    raise bad(_too_big(name, f"expands beyond {limit:,} bytes", info, cap, limit))
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, RuntimeError) as e:
        raise bad(f"the file is damaged: member {name!r} cannot be read ({e})") from None
    return bytes(out)


def _too_big(name: str, what: str, info: zipfile.ZipInfo, cap: int, limit: int) -> str:
    if limit == cap:
        why = f"the cap is {cap:,} bytes"
    else:
        why = (
            f"the cap is {limit:,} bytes (at most {cap:,}, and {MAX_EXPANSION} times its "
            f"{info.compress_size:,} compressed bytes)"
        )
    return f"member {name!r} {what}; {why}: refused unread (a zip bomb?)"


def _count_values(text: bytes, stop: int | None = None) -> int:
    """An upper bound on the JSON values in ``text``, found without parsing it or copying it.

    Outside strings, every value but a container's first follows a comma, and a container's
    first follows its opening bracket (an empty container holds none). Counting ends once past
    ``stop``.
    """
    count = 1
    for token in _TOKEN.finditer(text):
        if token.end() - token.start() == 1:
            count += 1
            if stop is not None and count > stop:
                break
    return count


def _manifest(raw: bytes, bad: Any) -> dict[str, Any]:
    """The manifest, parsed once its size in values is known; its format and depth checked."""
    values = _count_values(raw, MAX_MANIFEST_VALUES)
    if values > MAX_MANIFEST_VALUES:
        raise bad(
            f"{MANIFEST} holds more than {MAX_MANIFEST_VALUES:,} JSON values, the cap "
            "(a manifest holds a few thousand): refused unparsed "
            "(altered?)"
        )
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise bad(f"{MANIFEST} is not UTF-8 text (damaged?)") from None
    except json.JSONDecodeError as e:
        raise bad(f"{MANIFEST} is not valid JSON ({e}) (damaged?)") from None
    except RecursionError:
        raise bad(f"{MANIFEST} is nested too deeply (more than {MAX_DEPTH} levels)") from None
    if not isinstance(manifest, dict):
        raise bad(f"{MANIFEST} holds a JSON {type(manifest).__name__}, not an object")
    if _depth(manifest) > MAX_DEPTH:
        raise bad(f"{MANIFEST} is nested too deeply (more than {MAX_DEPTH} levels)")
    fmt = manifest.get("format")
    match = _FORMAT.fullmatch(fmt) if isinstance(fmt, str) else None
    reads = ", ".join(f"workbench-model/{v}" for v in READS)
    if match is None:
        raise bad(
            f"not a workbench model file: its format is {fmt!r}; this workbench reads {reads}"
        )
    if int(match[1]) not in READS:
        raise bad(
            f"its format is {fmt!r}, which this workbench does not read (it reads {reads}); "
            "load it with the workbench version that saved it"
        )
    return manifest


def _depth(value: Any) -> int:
    """How deeply JSON ``value`` nests (without recursion), stopping past :data:`MAX_DEPTH`."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > MAX_DEPTH:
            break
        children = v.values() if isinstance(v, dict) else v
        stack.extend((x, d + 1) for x in children if isinstance(x, dict | list))
    return deepest


def _listed(manifest: dict[str, Any], bad: Any) -> dict[str, tuple[int, str]]:
    """The manifest's ``files``: name -> (bytes, sha256)."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise bad(
            f"{MANIFEST} lists no files with their SHA-256 ('files'); it was written before "
            "model files carried them, or altered: save the model again with this workbench"
        )
    out = {}
    for name, entry in files.items():
        size = entry.get("bytes") if isinstance(entry, dict) else None
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        if (
            name == MANIFEST
            or not isinstance(size, int)
            or isinstance(size, bool)
            or size < 0
            or not isinstance(digest, str)
            or not _SHA256.fullmatch(digest)
        ):
            raise bad(
                f"{MANIFEST}'s files[{name!r}] is {entry!r:.120}; each entry needs 'bytes' (an "
                "integer) and 'sha256' (64 hex digits)"
            )
        out[name] = (size, digest)
    return out
