"""What recordings earned, for the catalog's pages: the ledger's to say, a layer above.

The ledger registers its reader when the apps load (``ledger.apps.LedgerConfig.ready``);
without one (the catalog alone) the pages show no earnings and no ledger currency.
"""

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from catalog.models import OwnershipShare, RightsHolder


@dataclass(frozen=True)
class LedgerEarnings:
    """What the ledger reports: ``by_share[(rights_holder_id, recording_id)]`` lists, per
    currency, an object with ``currency``, ``lifetime`` (accrual units) and
    ``generations``; ``currencies[rights_holder_id]`` the currencies it pays the holder in."""

    by_share: dict[tuple[int, int], list] = field(default_factory=dict)
    currencies: dict[int, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class CatalogEarnings:
    holders: list[tuple[RightsHolder, list[str]]]  # each holder, the currencies it is paid in
    rows: list[tuple[OwnershipShare, list]]  # each share, what it earned per currency


EarningsReader = Callable[[Collection[int], Collection[int]], LedgerEarnings]
"""``reader(holder_ids, recording_ids)``: what those recordings earned those holders."""

_reader: EarningsReader | None = None


def catalog_earnings_register(reader: EarningsReader) -> None:
    global _reader
    _reader = reader


def catalog_earnings(
    *, holders: Sequence[RightsHolder], shares: Sequence[OwnershipShare]
) -> CatalogEarnings:
    """My catalog's holders with the currencies the ledger pays them in, and its shares
    with what each earned."""
    ledger = LedgerEarnings()
    if _reader is not None:
        ledger = _reader([h.pk for h in holders], [s.recording_id for s in shares])
    return CatalogEarnings(
        holders=[(h, ledger.currencies.get(h.pk, [])) for h in holders],
        rows=[(s, ledger.by_share.get((s.rights_holder_id, s.recording_id), [])) for s in shares],
    )
