"""Accounts, journal entries and postings; settlements (split provenance); statements; payouts.

Invariants (stated here, asserted in ``ledger.services``, enforced by the database through
the triggers in ``ledger/migrations/0002_ledger_invariants.py``):

1. Every journal entry balances: its postings sum to zero per currency. PostgreSQL checks
   it with a constraint trigger deferred to commit; SQLite with a trigger on the entry
   row (postings are inserted first, the entry row last, so the check sees them all).
2. Append-only: UPDATE and DELETE of accounts, entries, postings, settlements (and their
   lines) and statements are refused. A posting can only be added to an entry that is
   being created (not to one already in the ledger). Corrections are reversing entries
   (``JournalEntry.reverses``).
3. Hash chain: ``seq`` runs 1, 2, 3, ... with no gap; each entry stores ``prev_hash`` (the
   previous entry's ``hash``, 64 zeros for the first) and ``hash = sha256(prev_hash +
   canonical content incl. postings)``. The database refuses an entry whose ``prev_hash``
   is not its predecessor's hash; ``manage.py verify_ledger`` recomputes everything.
   What is hashed is listed once, in ``ledger.hashing`` (``ENTRY_FIELDS``, and
   ``SETTLEMENT_FIELDS`` for a settlement's ``provenance_sha256``), for the writer and
   the verifier alike.
4. One settlement per (generation, attribution run) (unique constraint).

Amounts are integers in accrual units (``ledger.money.ACCRUAL_SCALE`` per minor unit);
positive = debit, negative = credit.
"""

from django.conf import settings
from django.db import models

from attribution.models import AttributionRun, Generation
from catalog.models import Recording, RightsHolder
from core.hashing import GENESIS_HASH as GENESIS_HASH  # the journal's first prev_hash


class Account(models.Model):
    class Kind(models.TextChoices):
        HOLDER_PAYABLE = "holder_payable", "Rights holder payable"
        PLATFORM_REVENUE = "platform_revenue", "Platform revenue"
        REVENUE_RECEIVABLE = "revenue_receivable", "Revenue receivable"
        ROUNDING_RESIDUE = "rounding_residue", "Rounding residue"
        PAYOUTS_CLEARING = "payouts_clearing", "Payouts clearing"

    key = models.CharField(max_length=64, unique=True, help_text="kind:currency[:holder id]")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    currency = models.CharField(max_length=3)
    rights_holder = models.ForeignKey(
        RightsHolder,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_accounts",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(kind="holder_payable", rights_holder__isnull=False)
                    | (~models.Q(kind="holder_payable") & models.Q(rights_holder__isnull=True))
                ),
                name="ledger_account_holder_iff_payable",
            )
        ]

    def __str__(self) -> str:
        return self.key

    @staticmethod
    def make_key(kind: str, currency: str, rights_holder_id: int | None = None) -> str:
        if kind == Account.Kind.HOLDER_PAYABLE:
            assert rights_holder_id is not None
            return f"{kind}:{currency}:{rights_holder_id}"
        assert rights_holder_id is None
        return f"{kind}:{currency}"


class JournalEntry(models.Model):
    class Kind(models.TextChoices):
        SETTLEMENT = "settlement", "Generation settlement"
        REVERSAL = "reversal", "Reversal"
        PAYOUT = "payout", "Payout batch paid"
        PAYOUT_FAILURE = "payout_failure", "Payout line failed"

    seq = models.BigIntegerField(primary_key=True, help_text="Position in the hash chain, from 1")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    currency = models.CharField(max_length=3)
    effective_at = models.DateTimeField(db_index=True)
    memo = models.CharField(max_length=255, blank=True)
    # Traceability: what caused this entry.
    generation = models.ForeignKey(
        Generation, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    attribution_run = models.ForeignKey(
        AttributionRun, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    checkpoint_sha256 = models.CharField(max_length=64, blank=True)
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    payout_batch = models.ForeignKey(
        "PayoutBatch", null=True, blank=True, on_delete=models.PROTECT, related_name="entries"
    )
    payout_line = models.ForeignKey(
        "PayoutLine", null=True, blank=True, on_delete=models.PROTECT, related_name="entries"
    )
    provenance_sha256 = models.CharField(
        max_length=64, blank=True, help_text="Hash of the settlement's split provenance"
    )
    prev_hash = models.CharField(max_length=64, unique=True)
    hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["seq"]
        verbose_name_plural = "journal entries"
        constraints = [
            models.UniqueConstraint(
                fields=["reverses"],
                condition=models.Q(kind="reversal"),
                name="ledger_entry_reversed_once",
            ),
            models.CheckConstraint(condition=models.Q(seq__gte=1), name="ledger_entry_seq_pos"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind} {self.currency}"


class Posting(models.Model):
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings")
    index = models.PositiveIntegerField()
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="postings")
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField(help_text="Accrual units; positive = debit, negative = credit")

    class Meta:
        ordering = ["entry", "index"]
        constraints = [
            models.UniqueConstraint(fields=["entry", "index"], name="ledger_posting_unique_index"),
            models.CheckConstraint(
                condition=~models.Q(amount=0), name="ledger_posting_amount_nonzero"
            ),
        ]
        indexes = [models.Index(fields=["account", "entry"], name="ledger_post_account_entry")]

    def __str__(self) -> str:
        return f"#{self.entry_id}.{self.index} {self.account_id} {self.amount}"


class Settlement(models.Model):
    """Everything that decided how one generation's revenue was split (the provenance)."""

    generation = models.ForeignKey(Generation, on_delete=models.PROTECT, related_name="+")
    attribution_run = models.ForeignKey(AttributionRun, on_delete=models.PROTECT, related_name="+")
    journal_entry = models.OneToOneField(
        JournalEntry, on_delete=models.PROTECT, related_name="settlement"
    )
    currency = models.CharField(max_length=3)
    revenue_minor = models.BigIntegerField()
    revenue = models.BigIntegerField(help_text="Accrual units")
    pool = models.BigIntegerField()
    platform = models.BigIntegerField()
    residue = models.BigIntegerField()
    policy = models.JSONField(help_text="SplitPolicy.as_dict()")
    scores_sha256 = models.CharField(max_length=64, help_text="sha256 of the canonical scores")
    run_scores_sha256 = models.CharField(max_length=64, blank=True)
    score_count = models.PositiveIntegerField()
    checkpoint_sha256 = models.CharField(max_length=64)
    manifest_sha256 = models.CharField(max_length=64)
    ownership_snapshot = models.JSONField(
        help_text='{"position": [[rights_holder_id, "percent"], ...]} for the paid tracks'
    )
    reference_lines = models.JSONField(
        default=list,
        blank=True,
        help_text="The generation's references as paid: terms, whether still licensed, "
        "ownership snapshot, amount and holder parts (empty: no references)",
    )
    provenance_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-journal_entry"]
        constraints = [
            models.UniqueConstraint(
                fields=["generation", "attribution_run"], name="ledger_settlement_once"
            )
        ]

    def __str__(self) -> str:
        return f"Settlement of generation {self.generation_id} (run {self.attribution_run_id})"


class SettlementTrackLine(models.Model):
    settlement = models.ForeignKey(Settlement, on_delete=models.PROTECT, related_name="tracks")
    position = models.PositiveIntegerField()
    recording = models.ForeignKey(Recording, on_delete=models.PROTECT, related_name="+")
    weight = models.BigIntegerField()
    amount = models.BigIntegerField(help_text="Accrual units of the pool")

    class Meta:
        ordering = ["settlement", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["settlement", "position"], name="ledger_track_line_unique"
            )
        ]

    def __str__(self) -> str:
        return f"Settlement {self.settlement_id} track #{self.position}: {self.amount}"


class SettlementHolderLine(models.Model):
    settlement = models.ForeignKey(Settlement, on_delete=models.PROTECT, related_name="holders")
    rights_holder = models.ForeignKey(RightsHolder, on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField(help_text="Accrual units")
    tracks = models.JSONField(help_text="[[position, accrual units], ...] of this holder")
    reference_parts = models.JSONField(
        default=list,
        blank=True,
        help_text="[[reference index, accrual units], ...]: this holder's reference-use parts; "
        "amount = training parts (tracks) + reference parts",
    )

    class Meta:
        ordering = ["settlement", "rights_holder"]
        constraints = [
            models.UniqueConstraint(
                fields=["settlement", "rights_holder"], name="ledger_holder_line_unique"
            )
        ]
        indexes = [models.Index(fields=["rights_holder", "settlement"], name="ledger_hl_holder")]

    def __str__(self) -> str:
        return f"Settlement {self.settlement_id} holder {self.rights_holder_id}: {self.amount}"


class StatementPeriod(models.Model):
    """A statement period [starts_at, ends_at). Once closed, no entry may be dated in it."""

    starts_at = models.DateTimeField(unique=True)
    ends_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="ledger_period_order"
            )
        ]

    def __str__(self) -> str:
        return f"{self.starts_at:%Y-%m-%d} .. {self.ends_at:%Y-%m-%d}"

    @property
    def is_closed(self) -> bool:
        return self.closed_at is not None


class Statement(models.Model):
    """A rights holder's statement for a closed period, frozen when first generated."""

    rights_holder = models.ForeignKey(
        RightsHolder, on_delete=models.PROTECT, related_name="statements"
    )
    period = models.ForeignKey(StatementPeriod, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    opening_balance = models.BigIntegerField(help_text="Accrual units owed to the holder")
    closing_balance = models.BigIntegerField()
    content = models.JSONField()
    content_sha256 = models.CharField(max_length=64)
    generated_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-period", "rights_holder"]
        constraints = [
            models.UniqueConstraint(
                fields=["rights_holder", "period", "currency"], name="ledger_statement_once"
            )
        ]

    def __str__(self) -> str:
        return f"Statement {self.rights_holder_id} {self.period} {self.currency}"


class PayoutBatch(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PAID = "paid", "Paid"

    currency = models.CharField(max_length=3)
    threshold_minor = models.BigIntegerField()
    period = models.ForeignKey(
        StatementPeriod,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payout_batches",
        help_text="Set: the batch pays only what was earned by the end of this closed period",
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "payout batches"

    def __str__(self) -> str:
        return f"Payout batch {self.pk} ({self.currency}, {self.status})"


class PayoutLine(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PAID = "paid", "Paid"
        FAILED = "failed", "Failed"

    batch = models.ForeignKey(PayoutBatch, on_delete=models.PROTECT, related_name="lines")
    rights_holder = models.ForeignKey(RightsHolder, on_delete=models.PROTECT, related_name="+")
    amount_minor = models.BigIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    failure_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["batch", "rights_holder"]
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "rights_holder"], name="ledger_payout_line_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(amount_minor__gt=0), name="ledger_payout_line_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"Payout line {self.pk}: {self.rights_holder_id} {self.amount_minor}"

    @property
    def reference(self) -> str:
        """The payment reference: in the payment file for the bank transfer's reference
        field, and on the holder's payouts page, so both sides name the same payment."""
        return f"RL-{self.batch_id}-{self.pk}"
