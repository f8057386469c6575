"""Rights holders, recordings (the models' training tracks), ownership shares, opt-outs,
reference licences and import batches. Model versions and their training sets are attribution's
(``attribution.models``).

Invariants:

* The ownership shares of a recording are positive, at most 100, one per rights holder,
  and sum to exactly 100.0000 percent. ``catalog.services`` checks this before writing;
  on PostgreSQL a deferred constraint trigger (migration 0002) refuses, at commit, any
  transaction that leaves a recording without shares summing to 100.
* Identifiers are stored in their compact canonical form (see ``catalog.validators``).
"""

from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from catalog.staging import staging_root
from catalog.validators import (
    validate_currency,
    validate_ipi,
    validate_isni,
    validate_isrc,
    validate_iswc,
    validate_single_line,
    validate_text,
)

SHARES_TOTAL = Decimal("100.0000")


class RightsHolder(models.Model):
    class Kind(models.TextChoices):
        ARTIST = "artist", "Artist"
        LABEL = "label", "Label"
        PUBLISHER = "publisher", "Publisher"
        ESTATE = "estate", "Estate"
        COLLECTIVE = "collective", "Collective"

    legal_name = models.CharField(max_length=255, unique=True, validators=[validate_single_line])
    kind = models.CharField(max_length=16, choices=Kind.choices)
    isni = models.CharField(
        max_length=16,
        blank=True,
        validators=[validate_isni],
        help_text="ISNI, 16 characters without spaces",
        verbose_name="ISNI",
    )
    ipi = models.CharField(
        max_length=11,
        blank=True,
        validators=[validate_ipi],
        help_text="IPI name number, 11 digits",
        verbose_name="IPI name number",
    )
    payout_currency = models.CharField(max_length=3, default="USD", validators=[validate_currency])
    contact_email = models.EmailField(blank=True)
    payout_details = models.TextField(
        blank=True,
        validators=[validate_text],
        help_text="Bank or payment-provider details used by finance for payouts",
    )
    is_active = models.BooleanField(default=True, help_text="Unticked: suspended")
    users = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="rights_holders",
        help_text="Users who may act for this rights holder",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["legal_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["isni"],
                condition=~models.Q(isni=""),
                name="rights_holder_unique_isni",
                violation_error_message=(
                    "This ISNI is already registered for another rights holder."
                ),
            ),
            models.UniqueConstraint(
                fields=["ipi"],
                condition=~models.Q(ipi=""),
                name="rights_holder_unique_ipi",
                violation_error_message=(
                    "This IPI name number is already registered for another rights holder."
                ),
            ),
            models.CheckConstraint(
                condition=models.Q(payout_currency__regex=r"^[A-Z]{3}$"),
                name="rights_holder_currency_format",
            ),
        ]

    def __str__(self) -> str:
        return self.legal_name


class Recording(models.Model):
    title = models.CharField(max_length=255, validators=[validate_single_line])
    isrc = models.CharField(
        max_length=12, unique=True, validators=[validate_isrc], verbose_name="ISRC"
    )
    iswc = models.CharField(
        max_length=11,
        blank=True,
        validators=[validate_iswc],
        verbose_name="ISWC",
        help_text="ISWC of the underlying musical work, e.g. T0345246801",
    )
    duration_seconds = models.DecimalField(
        max_digits=10, decimal_places=3, validators=[MinValueValidator(Decimal("0.001"))]
    )
    sample_rate = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    channels = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    audio = models.FileField(upload_to="recordings/", max_length=500)
    audio_sha256 = models.CharField(max_length=64, db_index=True, verbose_name="audio SHA-256")
    audio_bytes = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["isrc"]
        # The API's recordings by title, a page at a time (ISRC breaks ties).
        indexes = [models.Index(fields=["title", "isrc"], name="recording_title_isrc")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(isrc__regex=r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$"),
                name="recording_isrc_format",
            ),
            models.CheckConstraint(
                condition=models.Q(iswc="") | models.Q(iswc__regex=r"^T[0-9]{10}$"),
                name="recording_iswc_format",
            ),
            models.CheckConstraint(
                condition=models.Q(duration_seconds__gt=0) & models.Q(sample_rate__gt=0),
                name="recording_positive_duration_and_rate",
            ),
            models.CheckConstraint(
                condition=models.Q(audio_sha256__regex=r"^[0-9a-f]{64}$"),
                name="recording_audio_sha256_format",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.isrc})"


class OwnershipShare(models.Model):
    """A rights holder's percent of a recording.

    ``recording_isrc`` and ``recording_title`` copy the recording's: a rights holder's
    catalog (My catalog) is a list of its shares in ISRC, title or percent order, and
    with the sort keys on the share row each order is read off one index on (holder, key,
    id), a page at a time, instead of joining and sorting every recording of a catalog of
    100,000. Rows are built with ``OwnershipShare.of``, which copies both; the ISRC of a
    recording never changes, and its title changes only through
    ``catalog.services.recording_update``, which rewrites the copies in the same
    transaction.
    """

    recording = models.ForeignKey(
        Recording, on_delete=models.CASCADE, related_name="ownership_shares"
    )
    # No index of its own: the indexes below start with it.
    rights_holder = models.ForeignKey(
        RightsHolder, on_delete=models.PROTECT, related_name="ownership_shares", db_index=False
    )
    percent = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        validators=[MinValueValidator(Decimal("0.0001")), MaxValueValidator(SHARES_TOTAL)],
    )
    recording_isrc = models.CharField(max_length=12, editable=False, verbose_name="ISRC")
    recording_title = models.CharField(max_length=255, editable=False, verbose_name="title")

    class Meta:
        ordering = ["recording", "-percent", "rights_holder"]
        constraints = [
            models.UniqueConstraint(
                fields=["recording", "rights_holder"], name="ownership_share_unique_holder"
            ),
            models.CheckConstraint(
                condition=models.Q(percent__gt=0) & models.Q(percent__lte=100),
                name="ownership_share_percent_range",
            ),
            models.CheckConstraint(
                condition=models.Q(recording_isrc__regex=r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$"),
                name="ownership_share_isrc_copied",
            ),
        ]
        indexes = [
            models.Index(
                fields=["rights_holder", "recording_isrc", "id"], name="share_holder_isrc"
            ),
            models.Index(
                fields=["rights_holder", "recording_title", "recording_isrc", "id"],
                name="share_holder_title",
            ),
            models.Index(
                fields=["rights_holder", "percent", "recording_isrc", "id"],
                name="share_holder_percent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rights_holder} {self.percent}% of {self.recording_isrc}"

    @classmethod
    def of(cls, recording: Recording, **fields) -> "OwnershipShare":
        """An unsaved share of ``recording`` (``rights_holder`` or ``rights_holder_id``,
        ``percent``), with the recording's ISRC and title copied."""
        return cls(
            recording=recording,
            recording_isrc=recording.isrc,
            recording_title=recording.title,
            **fields,
        )


class OptOut(models.Model):
    """A rights holder's request that a recording, or its whole catalog, not be trained on.

    From ``effective_from`` on, registering a model version trained on or after that date
    whose training set contains an opted-out recording is refused unless a catalog admin
    overrides it with a recorded reason. A model version that already contains the
    recording keeps attributing to it and paying for it.
    """

    rights_holder = models.ForeignKey(
        RightsHolder, on_delete=models.PROTECT, related_name="opt_outs"
    )
    recording = models.ForeignKey(
        Recording,
        on_delete=models.PROTECT,
        related_name="opt_outs",
        null=True,
        blank=True,
        help_text="Empty: the holder's whole catalog (every recording it holds a share in)",
    )
    effective_from = models.DateField()
    reason = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="catalog_opt_outs",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "opt-out"

    def __str__(self) -> str:
        target = self.recording.isrc if self.recording_id else "whole catalog"
        return f"{self.rights_holder} opts out {target} from {self.effective_from}"

    @property
    def scope(self) -> str:
        return "whole catalog" if self.recording_id is None else "recording"


class ReferenceLicence(models.Model):
    """A rights holder's licence for using a recording, or its whole catalog, as the
    reference audio a generation is conditioned on (audio-to-audio variation).

    ``pool_share_percent`` is the share of the generation's royalty pool that goes to the
    reference's owners (split by their ownership shares); the rest of the pool is split by
    training-time attribution. A licence is in force on a day when it permits reference use,
    the day lies in ``valid_from``..``valid_until`` (inclusive; no end date: open-ended) and
    it is not withdrawn. A licence is never edited: new terms are a new licence, and the
    old one is withdrawn. Which licences make a recording usable, and how co-owners'
    licences combine, is ``catalog.selectors.reference_licence_check``.
    """

    rights_holder = models.ForeignKey(
        RightsHolder, on_delete=models.PROTECT, related_name="reference_licences"
    )
    recording = models.ForeignKey(
        Recording,
        on_delete=models.PROTECT,
        related_name="reference_licences",
        null=True,
        blank=True,
        help_text="Empty: the holder's whole catalog (every recording it holds a share in)",
    )
    permits_reference_use = models.BooleanField(
        default=True, help_text="Unticked: reference use is refused (an explicit denial)"
    )
    pool_share_percent = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(SHARES_TOTAL)],
        help_text="Percent of a generation's royalty pool paid to the reference's owners",
    )
    valid_from = models.DateField()
    valid_until = models.DateField(null=True, blank=True, help_text="Empty: no end date")
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "reference licence"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(pool_share_percent__gte=0)
                & models.Q(pool_share_percent__lte=100),
                name="reference_licence_share_range",
            ),
            models.CheckConstraint(
                condition=models.Q(valid_until__isnull=True)
                | models.Q(valid_until__gte=models.F("valid_from")),
                name="reference_licence_dates_order",
                violation_error_message="A licence cannot end before it starts.",
            ),
        ]

    def __str__(self) -> str:
        target = self.recording.isrc if self.recording_id else "whole catalog"
        verb = "licenses" if self.permits_reference_use else "refuses"
        return f"{self.rights_holder} {verb} reference use of {target}"

    @property
    def scope(self) -> str:
        return "whole catalog" if self.recording_id is None else "recording"

    def in_force_on(self, day) -> bool:
        return (
            self.permits_reference_use
            and self.withdrawn_at is None
            and self.valid_from <= day
            and (self.valid_until is None or day <= self.valid_until)
        )


class ImportBatch(models.Model):
    """One catalog import, for the record: the files, who sent them, what it created.

    An import from the command line is written ``applied`` in the transaction that applies
    it. An import sent through the pages or the API is a staged batch that moves through

        checking -> checked -> importing -> applied
           |                      |  ^-> checked (the catalog changed since the check)
           +-> failed             +-> failed

    its files kept in ``DATA_DIR/import-staging/<token>/`` (``catalog.staging``). A
    Celery task does each step (``catalog.tasks``): it claims the batch with a conditional
    UPDATE, reports its progress on the row (``phase``, ``processed`` of ``total``,
    ``heartbeat_at``), and the import's own transaction sets ``applied``, so a task
    delivered twice never imports twice. A step whose message was lost is sent again by the
    reconciler (``catalog.services.reconcile_imports``), which counts ``redispatches``.
    """

    class Status(models.TextChoices):
        CHECKING = "checking", "Checking"
        CHECKED = "checked", "Checked"
        IMPORTING = "importing", "Importing"
        APPLIED = "applied", "Applied"
        FAILED = "failed", "Failed"

    IN_PROGRESS = (Status.CHECKING, Status.IMPORTING)

    kinds = models.JSONField(default=list, help_text="Kinds of files imported together")
    files_sha256 = models.JSONField(default=dict, help_text="{kind: SHA-256 of the file}")
    file_names = models.JSONField(default=dict)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    rows = models.PositiveIntegerField(default=0)
    created = models.JSONField(default=dict, help_text="{kind: number of records created}")
    updated = models.JSONField(default=dict, help_text="{kind: number of records changed}")
    unchanged = models.JSONField(default=dict, help_text="{kind: rows already registered}")
    created_at = models.DateTimeField(auto_now_add=True)
    # --- a staged batch (pages and API): its files, its check, its progress ---
    token = models.CharField(
        max_length=32,
        unique=True,
        null=True,
        blank=True,
        help_text="Names the staged files' folder and the batch's pages; none from the command",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.APPLIED)
    files = models.JSONField(
        default=dict, help_text="{kind: {name, path under the staging folder, sha256, bytes}}"
    )
    audio_folder = models.CharField(max_length=1000, blank=True)
    replaces = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The check these files corrected",
    )
    confirm_when_checked = models.BooleanField(
        default=False, help_text="Import as soon as the check finds no problem (one-step API)"
    )
    report = models.JSONField(default=dict, help_text="The last check's report, row by row")
    summary = models.TextField(blank=True)
    isrcs = models.JSONField(default=list, help_text="Recordings the files name")
    phase = models.CharField(max_length=64, blank=True, help_text="e.g. 'check recordings'")
    processed = models.PositiveIntegerField(default=0, help_text="Rows done in this phase")
    total = models.PositiveIntegerField(null=True, blank=True, help_text="Rows in this phase")
    error = models.TextField(blank=True, help_text="Why the batch failed")
    attempts = models.PositiveIntegerField(default=0, help_text="Task runs that claimed it")
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text="When its current step was last handed to the broker"
    )
    redispatches = models.PositiveIntegerField(
        default=0, help_text="Times the reconciler sent its current step again"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "import batches"

    def __str__(self) -> str:
        return f"Import {self.pk} ({', '.join(self.kinds)}) at {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def folder(self) -> Path:
        """Where the staged files are kept."""
        assert self.token, "an import from the command line keeps no files"
        return staging_root() / self.token

    def path(self, kind: str) -> Path:
        return self.folder / self.files[kind]["path"]

    @property
    def in_progress(self) -> bool:
        return self.status in self.IN_PROGRESS

    @property
    def applied(self) -> bool:
        return self.status == self.Status.APPLIED

    @property
    def failed(self) -> bool:
        return self.status == self.Status.FAILED

    @property
    def ok(self) -> bool:
        return bool(self.report.get("ok"))

    @property
    def checked_report(self) -> dict | None:
        """The report, once a check has made one."""
        return self.report or None

    @property
    def percent_done(self) -> int | None:
        """Of the current phase, when its row count is known."""
        if not self.total:
            return None
        return min(100, self.processed * 100 // self.total)

    @property
    def changes_anything(self) -> bool:
        return any(self.report.get("created", {}).values()) or any(
            self.report.get("updated", {}).values()
        )

    @property
    def counts(self) -> list[dict]:
        """Per kind of file: records created, updated, unchanged (or that would be)."""
        report = self.report
        return [
            {
                "kind": kind,
                "label": kind.replace("_", " "),
                **{
                    key: report.get(key, {}).get(kind, 0)
                    for key in ("created", "updated", "unchanged")
                },
            }
            for kind in report.get("kinds", [])
        ]

    @property
    def can_confirm(self) -> bool:
        return self.status == self.Status.CHECKED and self.ok and self.changes_anything
