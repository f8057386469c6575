"""The journal as finance reads it: entries with their postings and provenance."""

from dataclasses import dataclass

from django.db.models import BigIntegerField, Count, OuterRef, QuerySet, Subquery, Sum

from ledger import hashing
from ledger.models import (
    JournalEntry,
    Posting,
    Settlement,
    SettlementHolderLine,
    SettlementTrackLine,
)


def journal_entries() -> QuerySet[JournalEntry]:
    """The journal, newest first, with ``debits`` (the amount the entry moves) and
    ``posting_count``, computed per listed entry."""
    postings = Posting.objects.filter(entry=OuterRef("seq")).values("entry")
    return JournalEntry.objects.annotate(
        debits=Subquery(
            postings.filter(amount__gt=0).annotate(total=Sum("amount")).values("total"),
            output_field=BigIntegerField(),
        ),
        posting_count=Subquery(
            postings.annotate(n=Count("index")).values("n"), output_field=BigIntegerField()
        ),
    ).order_by("-seq")


@dataclass(frozen=True)
class EntryDetail:
    entry: JournalEntry
    postings: list[Posting]
    hash_ok: bool  # the entry's hash recomputes from its prev_hash, content and postings
    settlement: Settlement | None
    track_lines: list[SettlementTrackLine]
    holder_lines: list[SettlementHolderLine]
    provenance_ok: bool | None  # settlements: the stored lines still hash to provenance_sha256
    reversed_by: list[JournalEntry]


def journal_entry_detail(*, entry: JournalEntry) -> EntryDetail:
    """One entry with its postings and, for a settlement, the provenance that decided it
    (generation, attribution run, checkpoint and scores hashes, per-track and per-holder
    lines), each hash recomputed here as ``ledger_verify`` does for the whole chain."""
    postings = list(
        entry.postings.select_related("account", "account__rights_holder").order_by("index")
    )
    content = hashing.entry_content(
        entry, [(p.index, p.account.key, p.currency, p.amount) for p in postings]
    )
    hash_ok = hashing.entry_hash(entry.prev_hash, content) == entry.hash
    settlement = (
        Settlement.objects.filter(journal_entry=entry)
        .select_related("generation", "attribution_run")
        .first()
    )
    track_lines: list[SettlementTrackLine] = []
    holder_lines: list[SettlementHolderLine] = []
    provenance_ok = None
    if settlement is not None:
        track_lines = list(settlement.tracks.select_related("recording").order_by("position"))
        holder_lines = list(
            settlement.holders.select_related("rights_holder").order_by("rights_holder_id")
        )
        digest = hashing.settlement_sha256(
            settlement,
            [(t.position, t.recording_id, t.weight, t.amount) for t in track_lines],
            [(h.rights_holder_id, h.amount, h.tracks) for h in holder_lines],
        )
        provenance_ok = digest == settlement.provenance_sha256 == entry.provenance_sha256
    return EntryDetail(
        entry=entry,
        postings=postings,
        hash_ok=hash_ok,
        settlement=settlement,
        track_lines=track_lines,
        holder_lines=holder_lines,
        provenance_ok=provenance_ok,
        reversed_by=list(JournalEntry.objects.filter(reverses=entry).order_by("seq")),
    )
