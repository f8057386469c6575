"""The ledger's charts (``core.charts``: matplotlib to deterministic inline SVG).

Every chart is drawn for wide screens and again for phones (``responsive_svg``)."""

from collections.abc import Collection, Sequence
from datetime import datetime
from decimal import Decimal

from matplotlib.ticker import FuncFormatter, MaxNLocator

from core.charts import HIGHLIGHT, MUTED, PRIMARY, chart, figure_svg, responsive_svg
from ledger.money import accrual_to_decimal, currency_minor_digits

PAID_GROUP_ID = "paid-tracks"
UNPAID_GROUP_ID = "unpaid-tracks"
CUTOFF_ID = "cutoff"
NEGATIVE = "#555555"


def _amount_bars_svg(
    *, labels: list[str], values: list[Decimal], currency: str, title: str, ylabel: str
) -> str:
    digits = currency_minor_digits(currency)

    def draw(width_in: float, height_in: float, variant: str) -> str:
        narrow = variant == "narrow"
        with chart(width_in=width_in, height_in=height_in) as fig:
            ax = fig.add_subplot()
            ax.bar(range(len(values)), values, color=PRIMARY, width=0.7)
            shown = labels
            if narrow and len(labels) > 6:  # every other month: the labels stay readable
                shown = [
                    label if i % 2 == len(labels) % 2 else "" for i, label in enumerate(labels)
                ]
            ax.set_xticks(range(len(labels)), shown, rotation=45, ha="right")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:,.{digits}f}"))
            ax.set_ylabel(ylabel)
            ax.axhline(0, color="#444444", linewidth=0.8)
            ax.grid(axis="y", alpha=0.3)
            return figure_svg(fig, title=title)

    return responsive_svg(draw, width_in=7.5, height_in=2.6)


def earnings_per_month_svg(*, months: list[tuple[datetime, int]], currency: str) -> str:
    """Bars of a holder's earnings per calendar month (``months``: (month start, accrual
    units)). Amounts reach matplotlib as exact Decimals in major units; the axis shows
    them with the currency's minor digits."""
    return _amount_bars_svg(
        labels=[start.strftime("%b %Y") for start, _ in months],
        values=[accrual_to_decimal(amount, currency) for _, amount in months],
        currency=currency,
        title=f"Earnings per month in {currency}",
        ylabel=f"Earned ({currency})",
    )


def earnings_per_period_svg(*, periods: list[tuple[str, int]], currency: str, title: str) -> str:
    """Bars of earnings per statement period (``periods``: (label, accrual units))."""
    return _amount_bars_svg(
        labels=[label for label, _ in periods],
        values=[accrual_to_decimal(amount, currency) for _, amount in periods],
        currency=currency,
        title=title,
        ylabel=f"Earned ({currency})",
    )


def payment_cutoff_svg(
    scores: Sequence[float],
    *,
    paid: Collection[int],
    unpaid: Collection[int] = (),
    cutoff_rank: int,
    paid_label: str,
) -> str:
    """The sorted scores of the whole training set (as Figure 1 of Choi et al.) with the
    cut-off drawn: every track ranked at or above ``cutoff_rank`` shares the pool, the rest
    do not. ``paid`` (positions) are marked as paid; ``unpaid`` (a holder's own tracks the
    cut-off left out) are marked apart, hollow, and those with a negative score (the
    generation's loss fell when they were unlearned) in grey."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    ranks = list(range(1, len(order) + 1))
    sorted_scores = [scores[i] for i in order]
    paid_marks = [(r, scores[i]) for r, i in zip(ranks, order, strict=True) if i in paid]
    unpaid_marks = [(r, scores[i]) for r, i in zip(ranks, order, strict=True) if i in unpaid]

    def draw(width_in: float, height_in: float, variant: str) -> str:
        suffix = "" if variant == "wide" else f"-{variant}"
        with chart(width_in=width_in, height_in=height_in) as fig:
            ax = fig.add_subplot()
            ax.plot(ranks, sorted_scores, color=PRIMARY, linewidth=1.2, label="all tracks")
            ax.axhline(0.0, color=MUTED, linewidth=0.6)
            if 0 < cutoff_rank < len(scores):  # nothing to draw when every track is paid
                line = ax.axvline(
                    cutoff_rank + 0.5,
                    color="#222222",
                    linewidth=1.0,
                    linestyle="--",
                    label=f"cut-off: top {cutoff_rank} paid",
                )
                line.set_gid(CUTOFF_ID + suffix)
            if paid_marks:
                points = ax.scatter(
                    [r for r, _ in paid_marks],
                    [s for _, s in paid_marks],
                    color=HIGHLIGHT,
                    s=16,
                    zorder=3,
                    label=f"{paid_label} ({len(paid_marks)})",
                )
                points.set_gid(PAID_GROUP_ID + suffix)
            if unpaid_marks:
                points = ax.scatter(
                    [r for r, _ in unpaid_marks],
                    [s for _, s in unpaid_marks],
                    facecolors="none",
                    edgecolors=[NEGATIVE if s < 0 else HIGHLIGHT for _, s in unpaid_marks],
                    s=16,
                    zorder=3,
                    label=f"your unpaid tracks ({len(unpaid_marks)})",
                )
                points.set_gid(UNPAID_GROUP_ID + suffix)
            ax.set_xlabel(
                "rank (1 = most attributed)"
                if suffix
                else f"rank among {len(scores)} training tracks (1 = most attributed)"
            )
            ax.set_ylabel("score (loss increase)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=4 if suffix else 8))
            if len(scores) > 1:
                ax.set_xlim(1, len(scores))
            ax.legend(loc="upper right", frameon=False, fontsize=8)
            return figure_svg(fig, title="Attribution scores, highest first, with the cut-off")

    return responsive_svg(draw, width_in=5.0, height_in=2.8)
