"""HTML reprs rendered from Jinja templates, and small formatting helpers."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("workbench.display", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **context: Any) -> str:
    """Render one of the package's HTML templates with ``context``."""
    return _environment().get_template(template).render(**context)
