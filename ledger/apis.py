"""Read-only REST API of the ledger (under ``/ledger/api/``).

Finance (and superusers) read everything; a rights holder's users read the balances and
statements of the rights holders they act for. Nothing here writes.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.models import RightsHolder
from core.roles import FINANCE, user_has_role
from ledger.models import JournalEntry, Posting, Statement
from ledger.money import accrual_to_decimal
from ledger.selectors import holder_payable_balances


class IsFinance(permissions.BasePermission):
    message = "Only finance may read the journal."

    def has_permission(self, request, view):
        return user_has_role(request.user, FINANCE)


def holders_visible_to(user):
    if user_has_role(user, FINANCE):
        return RightsHolder.objects.all()
    return RightsHolder.objects.filter(users=user)


class PostingSerializer(serializers.ModelSerializer):
    account = serializers.CharField(source="account.key")

    class Meta:
        model = Posting
        fields = ["index", "account", "currency", "amount"]


class JournalEntrySerializer(serializers.ModelSerializer):
    postings = PostingSerializer(many=True, read_only=True)

    class Meta:
        model = JournalEntry
        fields = [
            "seq",
            "kind",
            "currency",
            "effective_at",
            "memo",
            "generation",
            "attribution_run",
            "checkpoint_sha256",
            "reverses",
            "payout_batch",
            "payout_line",
            "provenance_sha256",
            "prev_hash",
            "hash",
            "postings",
        ]


class JournalEntryViewSet(viewsets.ReadOnlyModelViewSet):
    """The journal, in chain order, with postings (amounts in accrual units)."""

    serializer_class = JournalEntrySerializer
    permission_classes = [IsFinance]
    queryset = JournalEntry.objects.none()  # for the schema; get_queryset serves requests
    lookup_value_regex = r"\d+"
    filterset_fields = ["kind", "currency", "generation", "attribution_run"]
    ordering_fields = ["seq"]

    def get_queryset(self):
        return JournalEntry.objects.prefetch_related("postings__account").order_by("seq")


class StatementSerializer(serializers.ModelSerializer):
    class Meta:
        model = Statement
        fields = [
            "id",
            "rights_holder",
            "period",
            "currency",
            "opening_balance",
            "closing_balance",
            "content",
            "content_sha256",
            "generated_at",
        ]


class StatementViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = StatementSerializer
    filterset_fields = ["rights_holder", "period", "currency"]
    queryset = Statement.objects.none()  # for the schema; get_queryset serves requests

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Statement.objects.none()
        return Statement.objects.filter(
            rights_holder__in=holders_visible_to(self.request.user)
        ).order_by("-period__starts_at", "rights_holder_id")


class BalanceRowSerializer(serializers.Serializer):
    rights_holder = serializers.IntegerField()
    currency = serializers.CharField()
    balance = serializers.IntegerField(help_text="Accrual units")
    balance_display = serializers.CharField()


class BalancesSerializer(serializers.Serializer):
    currency = serializers.CharField()
    results = BalanceRowSerializer(many=True)


class BalanceApi(APIView):
    """What the platform owes each visible rights holder in ``?currency=`` (default USD)."""

    @extend_schema(responses=BalancesSerializer)
    def get(self, request):
        currency = request.query_params.get("currency", "USD").upper()
        visible = set(holders_visible_to(request.user).values_list("pk", flat=True))
        balances = holder_payable_balances(currency=currency)
        rows = [
            {
                "rights_holder": holder_id,
                "currency": currency,
                "balance": amount,
                "balance_display": str(accrual_to_decimal(amount, currency)),
            }
            for holder_id, amount in sorted(balances.items())
            if holder_id in visible
        ]
        return Response({"currency": currency, "results": rows})
