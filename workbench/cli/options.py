"""What the command groups share: ``-o NAME=VALUE`` options and how a failure is reported."""

from __future__ import annotations

import logging
import sys
from typing import Any, NoReturn

import click
import yaml

logger = logging.getLogger(__name__)

deployment_option = click.option(
    "--option",
    "-o",
    "options",
    multiple=True,
    metavar="NAME=VALUE",
    help="Deployment option that wins over the profile's, e.g. -o n_workers=2.",
)


def parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs as a mapping, each value read as YAML (``2`` is a number).

    Raises
    ------
    click.BadParameter
        A pair without ``=`` or without a name.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE (e.g. -o n_workers=2)")
        out[key.strip()] = yaml.safe_load(value)
    return out


def fail(err: Exception) -> NoReturn:
    """Print ``err`` and exit: 2 for a caller's mistake (ValueError, TypeError), else 1."""
    click.echo(f"error: {err}", err=True)
    sys.exit(2 if isinstance(err, (ValueError, TypeError)) else 1)
