"""Forms of the finance pages: they parse input; the services decide."""

from decimal import Decimal

from django import forms

from ledger.models import StatementPeriod
from ledger.money import decimal_to_minor


class PayoutBatchCreateForm(forms.Form):
    currency = forms.RegexField(
        regex=r"^[A-Za-z]{3}$",
        max_length=3,
        initial="USD",
        help_text="ISO 4217 code, e.g. USD",
        error_messages={"invalid": "Enter a three-letter currency code."},
    )
    threshold = forms.DecimalField(
        required=False,
        min_value=Decimal("0"),
        decimal_places=6,
        label="Minimum payout",
        help_text="In the currency's major units, e.g. 10.00; empty: the configured minimum",
    )
    period = forms.ModelChoiceField(
        queryset=StatementPeriod.objects.none(),
        required=False,
        empty_label="Everything owed now",
        label="Pay earnings up to the end of",
        help_text="A closed statement period; later earnings wait for a later batch",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        closed = StatementPeriod.objects.filter(closed_at__isnull=False).order_by("-starts_at")
        self.fields["period"].queryset = closed

    def clean_currency(self) -> str:
        return self.cleaned_data["currency"].upper()

    def clean(self):
        data = super().clean()
        threshold, currency = data.get("threshold"), data.get("currency")
        data["threshold_minor"] = None
        if threshold is not None and currency:
            try:
                data["threshold_minor"] = decimal_to_minor(threshold, currency)
            except ValueError as exc:
                self.add_error("threshold", str(exc))
        return data


class PayoutExportForm(forms.Form):
    fmt = forms.ChoiceField(choices=[("csv", "CSV"), ("xlsx", "XLSX")])


class PayoutLineFailForm(forms.Form):
    reason = forms.CharField(max_length=500, help_text="Why the payment did not arrive")


class VerifyForm(forms.Form):
    expect = forms.CharField(
        required=False,
        label="Expected entries (optional)",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="SEQ:HASH heads recorded earlier, one per line: each must still be in the chain",
    )

    def clean_expect(self) -> dict[int, str]:
        anchors = {}
        for raw in self.cleaned_data["expect"].split():
            seq, _, digest = raw.partition(":")
            if not seq.isdigit() or len(digest) != 64:
                raise forms.ValidationError(f"{raw!r} is not SEQ:HASH (a 64-character hash).")
            anchors[int(seq)] = digest.lower()
        return anchors


class StatementPeriodCreateForm(forms.Form):
    """Both ends in UTC (the ledger's time zone); ``datetime-local`` inputs send no zone."""

    starts_at = forms.DateTimeField(
        label="Starts (UTC)",
        help_text="Included, e.g. 2026-07-01 00:00",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    ends_at = forms.DateTimeField(
        label="Ends (UTC)",
        help_text="Excluded: the next period starts here",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


class ConfirmForm(forms.Form):
    """The confirmation of an irreversible action: ``confirm`` must post back the token of
    the preview the user was shown (``ledger.selectors.confirmations``)."""

    confirm = forms.CharField(max_length=200)

    def __init__(self, *args, expected: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.expected = expected

    def clean_confirm(self) -> str:
        if self.cleaned_data["confirm"] != self.expected:
            raise forms.ValidationError(
                "What this action would do has changed since the confirmation was shown: "
                "review it again."
            )
        return self.cleaned_data["confirm"]
