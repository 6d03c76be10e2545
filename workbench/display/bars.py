"""Progress bars that end in a notebook as they are saved: the final state, not the first.

``tqdm.auto`` gives a widget in a notebook. A widget's output keeps, for viewers without its
JavaScript (GitHub, nbviewer, a saved notebook), the plain text of its *first* state
("0/200"). Displayed under a display id and updated when it closes, its output keeps the final
text instead. Its label and counter texts also stay on one line (a narrow cell would wrap them
at their ``/`` and ``-``, mid-word). Terminals and scripts get tqdm's text bar as it is.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

__all__ = ["close_bar", "open_bar"]

_NOWRAP = '<span style="white-space: nowrap">'


@functools.cache
def _widget_class(base: Any) -> Any:
    """``base`` (tqdm's notebook bar) whose texts stay on one line.

    tqdm's widget is a box of a label, the bar and a text; a narrow cell wraps the texts at
    their ``/`` and ``-`` (``round/s``, ``valid-auc``), which splits them mid-word. Each text
    is kept on one line (the box scrolls instead), in a single update of each widget.
    """

    class WidgetBar(base):
        def display(self, *args: Any, **kwargs: Any) -> Any:
            texts = [self.container.children[0], self.container.children[-1]]
            with texts[0].hold_sync(), texts[1].hold_sync():
                out = super().display(*args, **kwargs)
                for w in texts:
                    if w.value and not w.value.startswith(_NOWRAP):
                        w.value = f"{_NOWRAP}{w.value}</span>"
            return out

    return WidgetBar


def _is_widget_class(cls: Any) -> bool:
    """Whether ``cls`` (what ``tqdm.auto`` chose) is tqdm's notebook widget bar."""
    notebook = sys.modules.get("tqdm.notebook")  # imported by tqdm.auto in a notebook only
    return notebook is not None and isinstance(cls, type) and issubclass(cls, notebook.tqdm)


def open_bar(kernel: bool, **options: Any) -> tuple[Any, Any]:
    """Open a ``tqdm.auto`` bar with ``options`` (``total``, ``desc``, ``unit``...).

    Parameters
    ----------
    kernel
        Whether this process is a Jupyter kernel (:func:`workbench.config.in_kernel`): only
        there is the widget displayed under a display id.
    **options
        tqdm's options.

    Returns
    -------
    (bar, handle)
        The bar, and the display handle to pass to :func:`close_bar` (``None`` for a text bar).
    """
    from tqdm.auto import tqdm

    if not (kernel and _is_widget_class(tqdm)):
        return tqdm(leave=True, **options), None
    from IPython.display import display

    bar = _widget_class(tqdm)(leave=True, display=False, **options)
    return bar, display(bar.container, display_id=True)


def close_bar(bar: Any, handle: Any) -> None:
    """Close ``bar`` and update its display, so that a saved notebook keeps its final text."""
    bar.close()
    if handle is not None:
        handle.update(bar.container)
