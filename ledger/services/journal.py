"""Journal entries: appended to the hash chain one at a time, balanced, never changed;
a mistake is corrected by a reversing entry."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from attribution.models import AttributionRun, Generation
from core.exceptions import ApplicationError
from core.services import audit_record
from ledger import hashing
from ledger.models import GENESIS_HASH, JournalEntry, PayoutBatch, PayoutLine, Posting
from ledger.services.accounts import AccountRef
from ledger.services.db import ledger_lock, rows_insert


@dataclass(frozen=True)
class Line:
    account: AccountRef
    amount: int  # accrual units; positive = debit, negative = credit


def entry_post(
    *,
    kind: str,
    currency: str,
    lines: Sequence[Line],
    memo: str = "",
    generation: Generation | None = None,
    attribution_run: AttributionRun | None = None,
    checkpoint_sha256: str = "",
    reverses: JournalEntry | None = None,
    payout_batch: PayoutBatch | None = None,
    payout_line: PayoutLine | None = None,
    provenance_sha256: str = "",
) -> JournalEntry:
    """Append one balanced entry to the chain. The caller holds ``ledger_lock``.

    Postings are inserted before the entry row, so the SQLite trigger on the entry can
    check the balance and no posting can ever be added to an entry already in the ledger.
    """
    assert connection.in_atomic_block
    assert all(isinstance(line.amount, int) for line in lines)
    assert all(line.account.currency == currency for line in lines), "one currency per entry"
    assert sum(line.amount for line in lines) == 0, "journal entry does not balance"
    last = JournalEntry.objects.order_by("-seq").values_list("seq", "hash").first()
    prev_seq, prev_hash = last if last else (0, GENESIS_HASH)
    seq = prev_seq + 1
    effective_at = timezone.now()
    postings = [
        (i, line.account, line.amount)
        for i, line in enumerate(line for line in lines if line.amount != 0)
    ]
    entry = JournalEntry(
        seq=seq,
        kind=kind,
        currency=currency,
        effective_at=effective_at,
        memo=memo[:255],
        generation=generation,
        attribution_run=attribution_run,
        checkpoint_sha256=checkpoint_sha256,
        reverses=reverses,
        payout_batch=payout_batch,
        payout_line=payout_line,
        provenance_sha256=provenance_sha256,
        prev_hash=prev_hash,
    )
    content = hashing.entry_content(
        entry, [(i, a.key, currency, amount) for i, a, amount in postings]
    )
    entry.hash = hashing.entry_hash(prev_hash, content)
    rows_insert(
        Posting,
        [
            ("entry_id", "bigint"),
            ("index", "integer"),
            ("account_id", "bigint"),
            ("currency", "const"),
            ("amount", "bigint"),
        ],
        [(seq, i, a.pk, currency, amount) for i, a, amount in postings],
    )
    entry.save(force_insert=True)
    return entry


@transaction.atomic
def journal_entry_reverse(
    *, entry: JournalEntry, reason: str, actor: AbstractBaseUser | None = None
) -> JournalEntry:
    """Book the exact opposite of ``entry`` as a new entry that references it."""
    if not reason.strip():
        raise ApplicationError("A reversal needs a reason.", field="reason")
    ledger_lock()
    if entry.kind == JournalEntry.Kind.REVERSAL:
        raise ApplicationError("A reversal cannot itself be reversed; book a new entry.")
    if entry.kind in (JournalEntry.Kind.PAYOUT, JournalEntry.Kind.PAYOUT_FAILURE):
        raise ApplicationError("Payouts are corrected line by line with payout_line_fail.")
    if JournalEntry.objects.filter(reverses=entry, kind=JournalEntry.Kind.REVERSAL).exists():
        raise ApplicationError(f"Entry #{entry.seq} is already reversed.")
    postings = list(entry.postings.select_related("account").order_by("index"))
    reversal = entry_post(
        kind=JournalEntry.Kind.REVERSAL,
        currency=entry.currency,
        lines=[Line(AccountRef.of(p.account), -p.amount) for p in postings],
        memo=f"Reversal of #{entry.seq}: {reason}",
        generation=entry.generation,
        attribution_run=entry.attribution_run,
        checkpoint_sha256=entry.checkpoint_sha256,
        reverses=entry,
    )
    audit_record(
        actor=actor,
        action="ledger.entry.reverse",
        obj=reversal,
        after={"reverses": entry.seq},
        reason=reason,
    )
    return reversal
