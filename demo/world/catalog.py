"""Catalog metadata for the demo: rights holders, ownership shares, ISRC/ISWC/ISNI codes.

The recordings are renderings of public-domain works made for this demo; the labels,
publishers and performers below are fictional, and so are their codes (valid in format and
check digit, deterministic, not registered with any agency).

Invariant: the shares of every recording sum to exactly 100 with at most 4 decimals.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from demo.world.render import stable_fraction


@dataclass(frozen=True)
class RightsHolder:
    legal_name: str
    kind: str  # artist / label / publisher / estate / collective
    isni: str  # 16 characters, mod 11-2 check character; "" when none
    ipi: str  # always "" here: no check-digit scheme is public for IPI names
    payout_currency: str
    contact_email: str


@dataclass(frozen=True)
class Label:
    name: str
    country: str  # ISRC country code
    registrant: str  # ISRC registrant code (3 alphanumerics)
    currency: str


LABELS: tuple[Label, ...] = (
    Label("Harmonia Nova Records Ltd", "GB", "HN7", "GBP"),
    Label("Lindenbaum Klassik GmbH", "DE", "LK4", "EUR"),
    Label("Celtic Reel Records Ltd", "IE", "CR2", "EUR"),
    Label("Northern Aisle Recordings LLC", "US", "NA9", "USD"),
    Label("Cantus Firmus Dischi S.r.l.", "IT", "CF3", "EUR"),
)
PUBLISHERS: tuple[tuple[str, str], ...] = (
    ("Edition Kontrapunkt Verlag GmbH", "EUR"),
    ("Saint Cecilia Music Publishing Ltd", "GBP"),
    ("Greenfield Folk Publishing LLC", "USD"),
    ("Ars Antiqua Editions SAS", "EUR"),
)
PERFORMERS: dict[str, tuple[str, str]] = {
    # ensemble name -> (performer, payout currency)
    "string quartet": ("Aurora String Quartet", "EUR"),
    "church organ": ("Marta Lindqvist (organ)", "EUR"),
    "piano": ("Daniel Okafor (piano)", "GBP"),
    "choir": ("Capella Lumen Choir", "EUR"),
    "brass quartet": ("Meridian Brass", "USD"),
    "woodwind quartet": ("Quartetto Zefiro", "EUR"),
    "harpsichord": ("Hélène Marchand (harpsichord)", "EUR"),
    "fiddle": ("Siobhán Keane (fiddle)", "EUR"),
    "flute": ("Tomás Reyes (flute)", "USD"),
    "accordion": ("Ilka Varga (accordion)", "EUR"),
    "tin whistle": ("Ciarán Doyle (whistle)", "EUR"),
    "harp": ("Nia Pritchard (harp)", "GBP"),
    "nylon guitar": ("Lucas Ferreira (guitar)", "USD"),
}
LABEL_BY_FOLDER = {
    "bach": 1,
    "ryansMammoth": 3,
    "palestrina": 4,
    "monteverdi": 4,
    "oneills1850": 2,
    "trecento": 0,
    "mozart": 1,
    "haydn": 0,
    "beethoven": 1,
    "josquin": 0,
}
PUBLISHER_BY_FOLDER = {
    "bach": 0,
    "ryansMammoth": 2,
    "palestrina": 3,
    "monteverdi": 3,
    "oneills1850": 2,
    "trecento": 3,
    "mozart": 1,
    "haydn": 1,
    "beethoven": 0,
    "josquin": 3,
}

# (label, publisher, composer estate or collective, performer) shares; each row sums to 100.
SHARE_PATTERNS: tuple[tuple[str, ...], ...] = (
    ("60", "40", "0", "0"),
    ("50", "30", "20", "0"),
    ("45", "25", "20", "10"),
    ("70", "0", "30", "0"),
    ("33.3333", "33.3333", "0", "33.3334"),
    ("55", "27.5", "12.5", "5"),
)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def iswc_check_digit(digits9: str) -> str:
    """ISWC (ISO 15707) check digit over the 9 digits after "T": 1 + sum(i * d_i), mod 10."""
    total = 1 + sum(i * int(d) for i, d in enumerate(digits9, start=1))
    return str((10 - total % 10) % 10)


def make_iswc(number: int) -> str:
    """T-DDDDDDDDD-C in its compact form "TDDDDDDDDDC"."""
    digits = f"{900_000_000 + number:09d}"  # a block no real work of this catalog would use
    return f"T{digits}{iswc_check_digit(digits)}"


def make_isni(number: int) -> str:
    """16-character ISNI (ISO 27729) with its ISO 7064 mod 11-2 check character."""
    from stdnum.iso7064 import mod_11_2

    body = f"{999_900_000_000_000 + number:015d}"
    return body + mod_11_2.calc_check_digit(body)


def make_isrc(label: Label, year: int, designation: int) -> str:
    """Compact ISRC (ISO 3901): country, registrant, 2-digit year, 5-digit designation."""
    from stdnum import isrc

    code = f"{label.country}{label.registrant}{year % 100:02d}{designation:05d}"
    return isrc.validate(code)


def estate_for(composer: str, folder: str, collection_name: str) -> tuple[str, str]:
    """(legal name, kind) of who holds the composition side for a work."""
    if composer == "Traditional" or composer.startswith("Anonymous"):
        return f"{collection_name} Heritage Collective", "collective"
    return f"Estate of {composer}", "estate"


@dataclass(frozen=True)
class CatalogEntry:
    track_id: str
    isrc: str
    iswc: str
    title: str
    audio_path: str  # relative to the catalog folder
    shares: tuple[tuple[str, str], ...]  # (rights holder legal name, percent)


def ownership(
    *, track_id: str, folder: str, composer: str, collection_name: str, ensemble: str, seed: int
) -> tuple[list[tuple[str, str]], list[RightsHolder]]:
    """Shares of one recording and the rights holders they name (percents as decimal strings)."""
    label = LABELS[LABEL_BY_FOLDER[folder]]
    publisher, pub_currency = PUBLISHERS[PUBLISHER_BY_FOLDER[folder]]
    estate, estate_kind = estate_for(composer, folder, collection_name)
    performer, perf_currency = PERFORMERS[ensemble]
    pattern = SHARE_PATTERNS[int(stable_fraction(seed, track_id, "shares") * len(SHARE_PATTERNS))]
    parties = (
        (label.name, "label", label.currency),
        (publisher, "publisher", pub_currency),
        (estate, estate_kind, "EUR"),
        (performer, "artist", perf_currency),
    )
    shares = [
        (name, pct) for (name, _, _), pct in zip(parties, pattern, strict=True) if Decimal(pct) > 0
    ]
    assert sum(Decimal(p) for _, p in shares) == Decimal(100), shares
    holders = [
        RightsHolder(name, kind, "", "", currency, f"royalties@{_slug(name)}.example")
        for (name, kind, currency), pct in zip(parties, pattern, strict=True)
        if Decimal(pct) > 0
    ]
    return shares, holders


def write_catalog(
    catalog_dir: Path, entries: list[CatalogEntry], holders: dict[str, RightsHolder]
) -> list[Path]:
    """Write rights_holders.csv, recordings.csv and ownership_shares.csv; returns their paths."""
    catalog_dir.mkdir(parents=True, exist_ok=True)
    names = sorted(holders)
    rows_holders = []
    for index, name in enumerate(names):
        h = holders[name]
        rows_holders.append(
            [
                h.legal_name,
                h.kind,
                make_isni(index + 1),
                h.ipi,
                h.payout_currency,
                h.contact_email,
                # Fictional: finance's payment file needs somewhere to send each payout.
                f"Demo bank, account DEMO-{index + 1:04d}",
            ]
        )
    files = {
        "rights_holders.csv": (
            [
                "legal_name",
                "kind",
                "isni",
                "ipi",
                "payout_currency",
                "contact_email",
                "payout_details",
            ],
            rows_holders,
        ),
        "recordings.csv": (
            ["isrc", "title", "iswc", "audio_path"],
            [[e.isrc, e.title, e.iswc, e.audio_path] for e in entries],
        ),
        "ownership_shares.csv": (
            ["isrc", "rights_holder", "percent"],
            [[e.isrc, name, pct] for e in entries for name, pct in e.shares],
        ),
    }
    written = []
    for filename, (header, rows) in files.items():
        path = catalog_dir / filename
        tmp = path.with_name(filename + ".tmp")
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
        tmp.replace(path)
        written.append(path)
    return written
