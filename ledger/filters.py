"""Filters of the ledger's lists, shared by the finance pages and the API (django-filter).

Dates are calendar days in UTC (the ledger's time zone), both ends included.
"""

import django_filters
from django import forms

from ledger.models import Account, JournalEntry, StatementPeriod


class JournalEntryFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=JournalEntry.Kind.choices, empty_label="Any kind")
    currency = django_filters.CharFilter(
        method="filter_currency", label="Currency", help_text="ISO 4217 code, e.g. USD"
    )
    date_from = django_filters.DateFilter(
        field_name="effective_at",
        lookup_expr="date__gte",
        label="Booked from",
        help_text="UTC date, included",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    date_to = django_filters.DateFilter(
        field_name="effective_at",
        lookup_expr="date__lte",
        label="Booked until",
        help_text="UTC date, included",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    generation = django_filters.NumberFilter(label="Generation id")
    attribution_run = django_filters.NumberFilter(label="Attribution run id")

    class Meta:
        model = JournalEntry
        fields = ["kind", "currency", "date_from", "date_to", "generation", "attribution_run"]

    def filter_currency(self, queryset, name, value):
        return queryset.filter(currency=value.strip().upper())


class AccountFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=Account.Kind.choices, empty_label="Any kind")
    currency = django_filters.CharFilter(method="filter_currency", label="Currency")
    rights_holder = django_filters.NumberFilter(label="Rights holder id")

    class Meta:
        model = Account
        fields = ["kind", "currency", "rights_holder"]

    def filter_currency(self, queryset, name, value):
        return queryset.filter(currency=value.strip().upper())


class StatementPeriodFilter(django_filters.FilterSet):
    closed = django_filters.BooleanFilter(
        field_name="closed_at",
        lookup_expr="isnull",
        exclude=True,
        label="Closed",
        help_text="true: closed periods only; false: open ones only",
    )

    class Meta:
        model = StatementPeriod
        fields = ["closed"]
