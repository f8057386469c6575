"""A recorded run of the ledger's verification."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from core.services import audit_record
from ledger.selectors.verification import VerificationReport, ledger_verify


def ledger_verification_run(
    *,
    actor: AbstractBaseUser | None = None,
    anchors: dict[int, str] | None = None,
    audit_anchors: dict[int, str] | None = None,
) -> VerificationReport:
    """Run ``ledger_verify`` (a read) and record who ran it and its result in the audit
    trail, with both heads ``seq:hash``: anchors for a later ``verify_ledger --expect``
    and ``--expect-audit``."""
    report = ledger_verify(anchors=anchors, audit_anchors=audit_anchors)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="ledger.verify",
            obj=report,
            after={
                "ok": report.ok,
                "entries_checked": report.entries_checked,
                "postings_checked": report.postings_checked,
                "settlements_checked": report.settlements_checked,
                "first_break": report.first_break,
                "head": f"{report.head_seq}:{report.head_hash}",
                "audit_events_checked": report.audit.events_checked,
                "audit_first_break": report.audit.first_break,
                "audit_head": f"{report.audit.head_seq}:{report.audit.head_hash}",
                "anchors": {str(seq): digest for seq, digest in sorted((anchors or {}).items())},
            },
        )
    return report
