"""Reading the workbench's small YAML files (profiles, catalog entries) with line numbers.

Errors name the file and the line, so a user can go straight to the mistake.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml


def line_numbers(text: str) -> dict[str, int]:
    """Map each top-level key and each key one level below (``a.b``) to its 1-based line."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    lines: dict[str, int] = {}
    if not isinstance(node, yaml.MappingNode):
        return lines
    for key_node, value_node in node.value:
        lines[str(key_node.value)] = key_node.start_mark.line + 1
        if isinstance(value_node, yaml.MappingNode):
            for sub_key, _ in value_node.value:
                lines.setdefault(f"{key_node.value}.{sub_key.value}", sub_key.start_mark.line + 1)
    return lines


def read_mapping(
    path: Path, what: str, error: type[Exception], required: str
) -> tuple[dict[str, Any], dict[str, int]]:
    """Read a YAML mapping from ``path``, with the line of each key.

    Parameters
    ----------
    path
        The file.
    what
        What the file is, for messages (``"profile 'ssh'"``).
    error
        The exception class to raise.
    required
        What the mapping must contain at least, for the message when it is not a mapping.

    Raises
    ------
    error
        When the file cannot be read, is not valid YAML (file, line and column named), is
        not a mapping, or has a key that is not a name.
    """
    try:
        text = path.read_text()
    except OSError as err:
        raise error(f"cannot read {what} from {path}: {err}") from err
    try:
        data = yaml.safe_load(text)
        lines = line_numbers(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err)
        raise error(
            f"{where}: {what} is not valid YAML ({problem}); fix the file or remove it"
        ) from None
    if not isinstance(data, dict):
        raise error(
            f"{path}:1: {what} must be a YAML mapping with {required}, not {type(data).__name__}"
        )
    check_keys_are_names(data, "", path, lines, error)
    return data, lines


def check_keys_are_names(
    data: dict[Any, Any], prefix: str, path: Path, lines: dict[str, int], error: type[Exception]
) -> None:
    """Raise ``error`` for a key of ``data`` that is not a string (``1:``, ``null:``)."""
    for key in data:
        if not isinstance(key, str):
            raise error(
                f"{path}:{lines.get(prefix + str(key), '?')}: key {key!r} in "
                f"{prefix.rstrip('.') or 'the file'} must be a name, not {type(key).__name__}"
            )


def require_mapping(
    value: Any, key: str, path: Path, lines: dict[str, int], error: type[Exception]
) -> dict[str, Any]:
    """Return ``value`` (``{}`` for None) if it is a mapping with name keys, else raise."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise error(
            f"{path}:{lines.get(key, '?')}: '{key}' must be a mapping of names to values, "
            f"not {type(value).__name__} {value!r}"
        )
    check_keys_are_names(value, key + ".", path, lines, error)
    return value


def yaml_files(*folders: Path) -> dict[str, Path]:
    """Map each ``*.yaml``/``*.yml`` file's stem to its path; later folders win."""
    files: dict[str, Path] = {}
    for folder in folders:
        if folder.is_dir():
            for f in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
                files[f.stem] = f
    return files


T = TypeVar("T")


class Listing(Mapping[str, T]):
    """A read-only, sorted mapping of named entries read from YAML files.

    The files that could not be read are in ``errors`` (name -> reason); ``repr`` is a
    plain-text table.
    """

    columns: tuple[tuple[str, int], ...] = ()  # (header, width); the last column is unpadded

    def __init__(self, entries: dict[str, T], errors: dict[str, str] | None = None):
        self._entries = dict(sorted(entries.items()))
        self.errors = dict(errors or {})

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def row(self, entry: T) -> tuple[str, ...]:
        """The cells of one entry, after its name, in the order of :attr:`columns`."""
        raise NotImplementedError

    def __repr__(self) -> str:
        width = max((len(n) for n in [*self._entries, *self.errors]), default=4)
        cols = [("name", width), *self.columns]

        def line(cells: tuple[str, ...]) -> str:
            padded = [f"{c:<{w}}" for c, (_, w) in zip(cells[:-1], cols, strict=False)]
            return "  ".join([*padded, cells[-1]]).rstrip()

        rows = [line(tuple(h for h, _ in cols))]
        rows += [line((name, *self.row(e))) for name, e in self._entries.items()]
        rows += [f"{n:<{width}}  (invalid)  {msg}" for n, msg in self.errors.items()]
        return "\n".join(rows)
