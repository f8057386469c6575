"""The ledger's charts (``core.charts``: matplotlib to deterministic inline SVG)."""

from datetime import datetime

from matplotlib.ticker import FuncFormatter

from core.charts import PRIMARY, chart, figure_svg
from ledger.money import accrual_to_decimal, currency_minor_digits


def earnings_per_month_svg(*, months: list[tuple[datetime, int]], currency: str) -> str:
    """Bars of a holder's earnings per calendar month (``months``: (month start, accrual
    units)). Amounts reach matplotlib as exact Decimals in major units; the axis shows
    them with the currency's minor digits."""
    labels = [start.strftime("%b %Y") for start, _ in months]
    values = [accrual_to_decimal(amount, currency) for _, amount in months]
    digits = currency_minor_digits(currency)
    with chart(width_in=7.5, height_in=2.6) as fig:
        ax = fig.add_subplot()
        ax.bar(range(len(values)), values, color=PRIMARY, width=0.7)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:,.{digits}f}"))
        ax.set_ylabel(f"Earned ({currency})")
        ax.axhline(0, color="#444444", linewidth=0.8)
        ax.grid(axis="y", alpha=0.3)
        return figure_svg(fig, title=f"Earnings per month in {currency}")
