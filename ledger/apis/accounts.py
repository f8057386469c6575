"""Accounts with their balances (finance)."""

from rest_framework import serializers, viewsets

from ledger import selectors
from ledger.apis.common import IsFinance
from ledger.filters import AccountFilter
from ledger.models import Account
from ledger.money import accrual_to_text


class AccountSerializer(serializers.ModelSerializer):
    balance = serializers.IntegerField(
        read_only=True, help_text="Accrual units, debit-positive (holder payables are negative)"
    )
    balance_display = serializers.SerializerMethodField(help_text="Exact, in major units")

    class Meta:
        model = Account
        fields = [
            "id",
            "key",
            "kind",
            "currency",
            "rights_holder",
            "balance",
            "balance_display",
            "created_at",
        ]

    def get_balance_display(self, account) -> str:
        return accrual_to_text(account.balance, account.currency)


class AccountViewSet(viewsets.ReadOnlyModelViewSet):
    """Every account with its balance (the sum of its postings). Finance only."""

    serializer_class = AccountSerializer
    permission_classes = [IsFinance]
    queryset = Account.objects.none()  # for the schema; get_queryset serves requests
    lookup_value_regex = r"\d+"
    filterset_class = AccountFilter
    ordering_fields = ["key", "balance"]

    def get_queryset(self):
        return selectors.accounts_with_balances()
