"""A rights holder's payment history: every payout line that paid (or will pay) them."""

from django.db.models import QuerySet

from catalog.models import RightsHolder
from ledger.models import PayoutLine


def holder_payout_lines(*, rights_holder: RightsHolder) -> QuerySet[PayoutLine]:
    """The holder's payout lines, newest batch first, each with its batch (``paid_at``,
    ``currency``, ``status``) and ``reference`` (the payment reference on the transfer)."""
    return (
        PayoutLine.objects.filter(rights_holder=rights_holder)
        .select_related("batch")
        .order_by("-batch__created_at", "-batch_id", "-pk")
    )
