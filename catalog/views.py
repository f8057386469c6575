"""Catalog pages: a rights holder's own catalog and opt-outs, the opt-out rule, and the
import page for catalog admins (check first, then apply)."""

from pathlib import Path

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from catalog.importing import KINDS
from catalog.models import Recording
from catalog.selectors import (
    holders_for_user,
    opt_outs_visible_to,
    recordings_opted_out,
    rights_holders_visible_to,
)
from catalog.services import catalog_import_files, opt_out_create, opt_out_withdraw
from core.exceptions import ApplicationError
from core.roles import CATALOG_ADMIN, user_has_role


@login_required
def my_catalog(request: HttpRequest) -> HttpResponse:
    """The rights holders the user acts for, their recordings and shares, their opt-outs."""
    holders = list(
        holders_for_user(request.user).prefetch_related(
            "ownership_shares__recording", "opt_outs__recording"
        )
    )
    opted = set(recordings_opted_out().values_list("pk", flat=True))
    return render(
        request,
        "catalog/my_catalog.html",
        {
            "holders": holders,
            "opted_out_ids": opted,
            "is_catalog_admin": user_has_role(request.user, CATALOG_ADMIN),
            "opt_outs": opt_outs_visible_to(request.user)[:200],
        },
    )


def opt_out_rule(request: HttpRequest) -> HttpResponse:
    return render(request, "catalog/opt_out_rule.html")


class OptOutForm(forms.Form):
    rights_holder = forms.ModelChoiceField(queryset=None)
    recording = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="My whole catalog"
    )
    effective_from = forms.DateField(
        initial=timezone.localdate, widget=forms.DateInput(attrs={"type": "date"})
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        holders = rights_holders_visible_to(user)
        self.fields["rights_holder"].queryset = holders
        self.fields["recording"].queryset = Recording.objects.filter(
            ownership_shares__rights_holder__in=holders
        ).distinct()


@login_required
def opt_out_request(request: HttpRequest) -> HttpResponse:
    if not (user_has_role(request.user, CATALOG_ADMIN) or holders_for_user(request.user).exists()):
        raise PermissionDenied("Only a rights holder's users or catalog admins may opt out.")
    form = OptOutForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            opt_out_create(
                rights_holder=form.cleaned_data["rights_holder"],
                recording=form.cleaned_data["recording"],
                effective_from=form.cleaned_data["effective_from"],
                reason=form.cleaned_data["reason"],
                actor=request.user,
            )
        except ApplicationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, "Your opt-out is recorded.")
            return redirect("catalog:my-catalog")
    return render(request, "catalog/opt_out_form.html", {"form": form})


@login_required
@require_POST
def opt_out_withdraw_view(request: HttpRequest, pk: int) -> HttpResponse:
    opt_out = get_object_or_404(opt_outs_visible_to(request.user), pk=pk)
    may_act = user_has_role(request.user, CATALOG_ADMIN) or (
        holders_for_user(request.user).filter(pk=opt_out.rights_holder_id).exists()
    )
    if not may_act:
        raise PermissionDenied("Only the rights holder's users or catalog admins may withdraw.")
    opt_out_withdraw(opt_out=opt_out, actor=request.user)
    messages.success(request, "The opt-out is withdrawn.")
    return redirect("catalog:my-catalog")


class ImportForm(forms.Form):
    rights_holders = forms.FileField(required=False, help_text="CSV or XLSX")
    recordings = forms.FileField(required=False, help_text="CSV or XLSX")
    ownership_shares = forms.FileField(required=False, help_text="CSV or XLSX")
    audio_folder = forms.CharField(
        required=False,
        help_text="Server folder that relative audio paths in the recordings file refer to",
    )
    apply = forms.BooleanField(
        required=False, help_text="Unticked: only check the files and show the report"
    )

    def clean(self):
        data = super().clean()
        if not any(data.get(kind) for kind in KINDS):
            raise forms.ValidationError("Choose at least one file.")
        return data


@login_required
def catalog_import_page(request: HttpRequest) -> HttpResponse:
    if not user_has_role(request.user, CATALOG_ADMIN):
        raise PermissionDenied("Only catalog admins may import.")
    form = ImportForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        files = {kind: form.cleaned_data[kind] for kind in KINDS if form.cleaned_data.get(kind)}
        folder = form.cleaned_data["audio_folder"]
        try:
            report = catalog_import_files(
                files=files,
                actor=request.user,
                dry_run=not form.cleaned_data["apply"],
                base_dirs={kind: Path(folder) for kind in files} if folder else None,
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
    return render(request, "catalog/import.html", {"form": form, "report": report})
