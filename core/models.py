"""The audit trail: one append-only row per change to a record users rely on.

Every service that changes catalog, attribution or ledger records writes an
``AuditEvent`` in the same transaction (see ``core.services.audit_record``), so the trail
and the change commit or roll back together.

Invariants (asserted in ``core.services``, enforced by the database through the triggers
in ``core/migrations/0004_audit_trail_invariants.py``, checked by ``verify_ledger``):

1. Append-only: UPDATE, DELETE and TRUNCATE of audit events are refused.
2. Hash chain, like the ledger's journal: ``seq`` runs 1, 2, 3, ... with no gap; each
   event stores ``prev_hash`` (the previous event's ``hash``, 64 zeros for the first) and
   ``hash = sha256(prev_hash + canonical content)``; the database refuses an event that
   does not extend the chain. What is hashed is listed once, in ``core.hashing``.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    # Set by the writer rather than on save: the hash covers it, so it is known before.
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, db_index=True)
    object_id = models.CharField(max_length=64, db_index=True)
    object_repr = models.CharField(max_length=255, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    seq = models.PositiveBigIntegerField(unique=True, help_text="Position in the audit chain")
    prev_hash = models.CharField(max_length=64, unique=True)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return (
            f"{self.occurred_at:%Y-%m-%d %H:%M} {self.action} {self.object_type}#{self.object_id}"
        )
