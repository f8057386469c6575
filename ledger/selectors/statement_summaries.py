"""A frozen statement's content summed for its page: the movements by kind (what the PDF
statement's summary shows) and the generations' earnings by recording.

Pure functions of ``Statement.content``: the page shows what was frozen, never a fresh
read of the ledger.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class StatementSummary:
    opening: int  # accrual units owed at the period's start
    earned: int  # from generations settled in the period
    reversed: int  # reversals of settlements (negative: taken back)
    payouts_returned: int  # failed payouts credited back
    paid_out: int  # payouts (negative: paid to the holder)
    closing: int

    @property
    def adds_up(self) -> bool:
        return (
            self.opening + self.earned + self.reversed + self.payouts_returned + self.paid_out
            == self.closing
        )


def statement_summary(*, content: dict) -> StatementSummary:
    adjustments = content["adjustments"]
    return StatementSummary(
        opening=content["opening_balance"],
        earned=sum(line["amount"] for line in content["lines"]),
        reversed=sum(a["amount"] for a in adjustments if a["kind"] == "reversal"),
        payouts_returned=sum(a["amount"] for a in adjustments if a["kind"] != "reversal"),
        paid_out=sum(payout["amount"] for payout in content["payouts"]),
        closing=content["closing_balance"],
    )


@dataclass(frozen=True)
class RecordingLine:
    isrc: str
    title: str
    generations: int  # generations of the period that paid this recording
    amount: int  # accrual units


def statement_by_recording(*, content: dict) -> list[RecordingLine]:
    """The period's generation earnings summed per recording, largest first (ties by
    ISRC). They add up to the summary's ``earned``."""
    totals: dict[str, list] = {}
    for line in content["lines"]:
        for track in line["tracks"]:
            row = totals.setdefault(track["isrc"], [track["title"], 0, 0])
            row[1] += 1
            row[2] += track["amount"]
    rows = [
        RecordingLine(isrc=isrc, title=title, generations=count, amount=amount)
        for isrc, (title, count, amount) in totals.items()
    ]
    return sorted(rows, key=lambda row: (-row.amount, row.isrc))
