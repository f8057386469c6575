"""Charts of attribution runs (inline SVG through ``core.charts``).

``attribution_distribution_svg`` draws what Figure 1 of Choi et al. shows: the scores of
every training track of the model version, sorted from highest to lowest, so a reader
sees how concentrated the attribution is. Tracks in ``highlight`` (a rights holder's own
tracks, or the paid ones) are marked in ``HIGHLIGHT`` at their rank; the marks are one
SVG group with id ``highlighted-tracks`` holding one mark per track.
"""

from collections.abc import Collection, Sequence

from core.charts import HIGHLIGHT, MUTED, PRIMARY, chart, figure_svg

HIGHLIGHT_GROUP_ID = "highlighted-tracks"


def attribution_distribution_svg(
    scores: Sequence[float],
    *,
    highlight: Collection[int] = (),
    highlight_label: str = "your tracks",
    title: str = "Attribution scores of the whole training set, highest first",
) -> str:
    """Sorted scores (rank 1 = highest; ties to the lower position) with ``highlight``
    (training-set positions) marked at their ranks."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    ranks = list(range(1, len(order) + 1))
    sorted_scores = [scores[i] for i in order]
    marked = [(rank, scores[i]) for rank, i in zip(ranks, order, strict=True) if i in highlight]
    # A narrow figure keeps the text legible when a phone shrinks the chart to ~350 px.
    with chart(width_in=5.0, height_in=2.8) as fig:
        ax = fig.add_subplot()
        ax.plot(ranks, sorted_scores, color=PRIMARY, linewidth=1.2, label="all training tracks")
        ax.axhline(0.0, color=MUTED, linewidth=0.6)
        if marked:
            points = ax.scatter(
                [rank for rank, _ in marked],
                [score for _, score in marked],
                color=HIGHLIGHT,
                s=14,
                zorder=3,
                label=f"{highlight_label} ({len(marked)})",
            )
            points.set_gid(HIGHLIGHT_GROUP_ID)
        ax.set_xlabel(f"rank among {len(scores)} training tracks (1 = most attributed)")
        ax.set_ylabel("attribution score (loss increase)")
        if len(scores) > 1:
            ax.set_xlim(1, len(scores))
        ax.legend(loc="upper right", frameon=False)
        return figure_svg(fig, title=title)
