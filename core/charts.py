"""Server-side charts: matplotlib figures rendered to inline SVG.

Pages embed the SVG text directly, so charts need no JavaScript, no CDN and no build
step, and a page is byte-identical each time it is rendered from the same data (the SVG
carries no date and its element ids are seeded by ``svg.hashsalt``).
"""

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import matplotlib

matplotlib.use("Agg")  # no display on servers and workers

from matplotlib import pyplot as plt
from matplotlib.figure import Figure

# Colours readable on white and by colour-blind readers (Okabe-Ito).
PRIMARY = "#0072B2"
HIGHLIGHT = "#D55E00"
MUTED = "#999999"

_RC = {
    "svg.hashsalt": "royalty-ledger",  # deterministic element ids
    "svg.fonttype": "none",  # text stays text: smaller, selectable, screen-reader friendly
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


@contextmanager
def chart(*, width_in: float = 6.4, height_in: float = 2.6) -> Iterator[Figure]:
    """A figure with the site's style; closed afterwards so workers do not leak memory."""
    with plt.rc_context(_RC):
        fig = plt.figure(figsize=(width_in, height_in), layout="constrained")
        try:
            yield fig
        finally:
            plt.close(fig)


def figure_svg(fig: Figure, *, title: str) -> str:
    """The figure as an ``<svg>`` element (no XML prolog) that scales to its container.

    ``title`` becomes the SVG's accessible name.
    """
    buffer = io.StringIO()
    with plt.rc_context(_RC):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Title": title})
    text = buffer.getvalue()
    start = text.index("<svg")
    svg = text[start:]
    # Let CSS size the chart: drop the fixed pt size, keep the viewBox.
    head_end = svg.index(">")
    head = svg[:head_end]
    for attribute in ("width", "height"):
        marker = f' {attribute}="'
        if marker in head:
            begin = head.index(marker)
            end = head.index('"', begin + len(marker))
            head = head[:begin] + head[end + 1 :]
    head += f' role="img" aria-label="{_escape_attr(title)}" class="chart"'
    return head + svg[head_end:]


def _escape_attr(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )


NARROW_WIDTH_IN = 3.6
"""A phone's chart: drawn 3.6 in wide, so at 390 px its text is shown near its own size."""


def responsive_svg(
    draw: Callable[[float, float], str], *, width_in: float, height_in: float
) -> str:
    """The chart drawn twice: at ``width_in`` for wide screens and paper, and at
    ``NARROW_WIDTH_IN`` (taller, for a phone held upright), each wrapped in a ``<div>``
    the stylesheet shows at its own screen width (``.chart-wide`` / ``.chart-narrow``).
    ``draw(width_in, height_in, variant)`` gets ``"wide"`` or ``"narrow"`` to keep the
    element ids it sets apart.
    Scaling one wide drawing down to a phone would shrink its text below legibility."""
    wide = draw(width_in, height_in, "wide")
    narrow = draw(NARROW_WIDTH_IN, max(height_in, NARROW_WIDTH_IN * 0.8), "narrow")
    return f'<div class="chart-wide">{wide}</div><div class="chart-narrow">{narrow}</div>'
