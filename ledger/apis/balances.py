"""What the platform owes each visible rights holder."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from ledger import selectors
from ledger.models import Account
from ledger.money import accrual_to_text


class BalanceRowSerializer(serializers.Serializer):
    """One holder's payable account (``selectors.holder_balances``)."""

    rights_holder = serializers.IntegerField(source="rights_holder_id")
    currency = serializers.CharField()
    balance = serializers.IntegerField(help_text="Accrual units the platform owes the holder")
    balance_display = serializers.SerializerMethodField(help_text="Exact, in major units")

    def get_balance_display(self, account) -> str:
        return accrual_to_text(account.balance, account.currency)


class BalancesSerializer(serializers.Serializer):
    """A page of balances: the standard page (``count``, ``next``, ``previous``,
    ``results``) plus the ``currency`` asked for."""

    count = serializers.IntegerField(help_text="Rows on all pages together")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    currency = serializers.CharField()
    results = BalanceRowSerializer(many=True)


class BalanceApi(GenericAPIView):
    """What the platform owes each visible rights holder in ``?currency=`` (default USD),
    by rights holder id, 50 a page (``?page=``): finance sees every holder with an account
    in the currency, a rights holder's users the holders they act for."""

    serializer_class = BalanceRowSerializer
    filter_backends: list = []
    queryset = Account.objects.none()  # for the schema; get serves requests

    @extend_schema(
        parameters=[
            OpenApiParameter("currency", str, description="ISO 4217, default USD"),
            OpenApiParameter("page", int, description="Page number, from 1"),
        ],
        responses=BalancesSerializer,
    )
    def get(self, request):
        currency = request.query_params.get("currency", "USD").upper()
        accounts = selectors.holder_balances(
            currency=currency, holders=selectors.holders_visible_to(user=request.user)
        )
        page = self.paginate_queryset(accounts)
        paged = self.get_paginated_response(self.get_serializer(page, many=True).data).data
        return Response(
            {
                "count": paged["count"],
                "next": paged["next"],
                "previous": paged["previous"],
                "currency": currency,
                "results": paged["results"],
            }
        )
