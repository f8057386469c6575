"""Catalog pages.

Rights holders: their own catalog and opt-outs, the opt-out rule. Catalog admins: the
catalog import in two steps (upload -> per-row report, nothing saved -> confirm the same
files). Every page parses input and calls one service or selector.
"""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from catalog.earnings import catalog_earnings
from catalog.importing import KINDS
from catalog.models import Recording
from catalog.selectors import (
    holders_for_user,
    import_batch_get,
    opt_outs_visible_to,
    ownership_shares_of_holders,
    ownership_shares_page,
    ownership_shares_search,
    recordings_opted_out,
    recordings_with_isrcs,
    reference_licences_visible_to,
    reference_share_default,
    rights_holders_visible_to,
    rights_holders_with_recording_counts,
)
from catalog.services import (
    catalog_import_confirm,
    catalog_import_stage,
    opt_out_create,
    opt_out_withdraw,
    reference_licence_grant,
    reference_licence_withdraw,
)
from catalog.validators import isrc_normalize
from core.exceptions import ApplicationError
from core.roles import CATALOG_ADMIN, user_has_role
from core.sorting import Sorting

PAGE_SIZE = 50
# The shares' copies of their recordings' ISRC and title: each order is an index of a
# holder's shares (catalog.models.OwnershipShare).
_MY_CATALOG_COLUMNS = {
    "isrc": ("recording_isrc",),
    "title": ("recording_title", "recording_isrc"),
    "share": ("percent", "recording_isrc"),
}
MY_CATALOG_SORTING = Sorting(
    columns={"holder": ("rights_holder__legal_name", "recording_isrc"), **_MY_CATALOG_COLUMNS},
    default="holder",
)
# For a user who acts for one holder, by holder is by ISRC: the same rows in the same
# order, read off the ISRC index without joining the holder.
MY_CATALOG_SORTING_ONE_HOLDER = Sorting(
    columns={"holder": ("recording_isrc",), **_MY_CATALOG_COLUMNS}, default="holder"
)


@login_required
def my_catalog(request: HttpRequest) -> HttpResponse:
    """The rights holders the user acts for, their recordings and shares (one paginated
    table), and the opt-outs the user may see (paginated apart, ``?opt_outs_page=``)."""
    holders = holders_for_user(request.user)
    summaries = list(rights_holders_with_recording_counts(holders).order_by("legal_name", "pk"))
    query = request.GET.get("q", "")
    sorting = MY_CATALOG_SORTING if len(summaries) > 1 else MY_CATALOG_SORTING_ONE_HOLDER
    shares, sort = sorting.apply(
        ownership_shares_search(ownership_shares_of_holders(h.pk for h in summaries), query),
        request,
    )
    # Unsearched, the table holds every share of the holders, counted in their summaries.
    count = None if query.strip() else sum(holder.recordings for holder in summaries)
    shares = ownership_shares_page(shares, request.GET.get("page"), PAGE_SIZE, count=count)
    on_page = [share.recording_id for share in shares]
    earnings = catalog_earnings(holders=summaries, shares=list(shares))
    # Unordered: ordered by ISRC, SQLite walks all 100,000 ISRCs to find the page's 50.
    opted_out = recordings_opted_out().filter(pk__in=on_page).order_by()
    opted = set(opted_out.values_list("pk", flat=True))
    opt_outs = Paginator(opt_outs_visible_to(request.user), PAGE_SIZE).get_page(
        request.GET.get("opt_outs_page")
    )
    return render(
        request,
        "catalog/my_catalog.html",
        {
            "holders": summaries,
            "several_holders": len(summaries) > 1,
            "page_obj": shares,
            "opted_out_ids": opted,
            "is_catalog_admin": user_has_role(request.user, CATALOG_ADMIN),
            "opt_outs": opt_outs,
            "query": query,
            "sort": sort,
            "earnings": earnings,
        },
    )


def opt_out_rule(request: HttpRequest) -> HttpResponse:
    return render(request, "catalog/opt_out_rule.html")


class RecordingByIsrcField(forms.ModelChoiceField):
    """A recording named by its ISRC (typed in any usual spelling), not picked from a list
    that would hold a whole catalog."""

    widget = forms.TextInput

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            value = isrc_normalize(value)
        except ValidationError as exc:
            raise ValidationError(exc.messages, code="invalid_choice") from None
        return super().to_python(value)


class OptOutForm(forms.Form):
    rights_holder = forms.ModelChoiceField(queryset=None)
    recording = RecordingByIsrcField(
        queryset=None,
        to_field_name="isrc",
        required=False,
        label="Recording (ISRC)",
        help_text="Leave empty to opt out your whole catalog.",
        error_messages={"invalid_choice": "None of your recordings has this ISRC."},
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


class ReferenceLicenceForm(forms.Form):
    rights_holder = forms.ModelChoiceField(queryset=None)
    recording = RecordingByIsrcField(
        queryset=None,
        to_field_name="isrc",
        required=False,
        label="Recording (ISRC)",
        help_text="Leave empty to license your whole catalog.",
        error_messages={"invalid_choice": "None of your recordings has this ISRC."},
    )
    permits_reference_use = forms.BooleanField(
        required=False, initial=True, label="Permit reference use"
    )
    pool_share_percent = forms.DecimalField(
        min_value=0,
        max_value=100,
        decimal_places=4,
        initial=reference_share_default,
        label="Share of the generation's royalty pool (%)",
    )
    valid_from = forms.DateField(
        initial=timezone.localdate, widget=forms.DateInput(attrs={"type": "date"})
    )
    valid_until = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Leave empty for no end date.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        holders = rights_holders_visible_to(user)
        self.fields["rights_holder"].queryset = holders
        self.fields["recording"].queryset = Recording.objects.filter(
            ownership_shares__rights_holder__in=holders
        ).distinct()


def _may_license(user) -> bool:
    return user_has_role(user, CATALOG_ADMIN) or holders_for_user(user).exists()


@login_required
@require_http_methods(["GET", "POST"])
def reference_licences(request: HttpRequest) -> HttpResponse:
    """The licences for reference use the user may see, and the form that grants one."""
    if not _may_license(request.user):
        raise PermissionDenied("Only a rights holder's users or catalog admins may license.")
    form = ReferenceLicenceForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            reference_licence_grant(actor=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, "The licence is recorded.")
            return redirect("catalog:reference-licences")
    licences = Paginator(reference_licences_visible_to(request.user), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "catalog/reference_licences.html", {"form": form, "licences": licences})


@login_required
@require_POST
def reference_licence_withdraw_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Withdraw a licence (the page's button asks for confirmation first)."""
    licence = get_object_or_404(reference_licences_visible_to(request.user), pk=pk)
    if not (
        user_has_role(request.user, CATALOG_ADMIN)
        or holders_for_user(request.user).filter(pk=licence.rights_holder_id).exists()
    ):
        raise PermissionDenied("Only the rights holder's users or catalog admins may withdraw.")
    reference_licence_withdraw(licence=licence, actor=request.user)
    messages.success(request, "The licence is withdrawn.")
    return redirect("catalog:reference-licences")


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
@require_http_methods(["GET", "POST"])
def opt_out_withdraw_view(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: what withdrawing the opt-out means, with the button that confirms it. POST:
    withdraw it, only with that confirmation (``confirm``; else the page again, 400):
    a withdrawal cannot be undone, only followed by a new opt-out."""
    opt_out = get_object_or_404(opt_outs_visible_to(request.user), pk=pk)
    may_act = user_has_role(request.user, CATALOG_ADMIN) or (
        holders_for_user(request.user).filter(pk=opt_out.rights_holder_id).exists()
    )
    if not may_act:
        raise PermissionDenied("Only the rights holder's users or catalog admins may withdraw.")
    token = f"withdraw-opt-out-{opt_out.pk}"
    if request.method != "POST" or request.POST.get("confirm") != token:
        return render(
            request,
            "catalog/opt_out_withdraw_confirm.html",
            {"opt_out": opt_out, "token": token, "refused": request.method == "POST"},
            status=400 if request.method == "POST" else 200,
        )
    opt_out_withdraw(opt_out=opt_out, actor=request.user)
    messages.success(request, "The opt-out is withdrawn.")
    return redirect("catalog:my-catalog")


def _require_catalog_admin(request: HttpRequest) -> None:
    if not user_has_role(request.user, CATALOG_ADMIN):
        raise PermissionDenied("This page is for catalog admins.")


def _form_error(form: forms.Form, exc: ApplicationError) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


# --- catalog import: upload, per-row report, confirm ------------------------------------------

FILE_WIDGET = forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx"})


class ImportUploadForm(forms.Form):
    rights_holders = forms.FileField(
        required=False,
        widget=FILE_WIDGET,
        help_text="CSV or XLSX: legal_name, kind, isni, ipi, payout_currency, contact_email",
    )
    recordings = forms.FileField(
        required=False, widget=FILE_WIDGET, help_text="CSV or XLSX: isrc, title, iswc, audio_path"
    )
    ownership_shares = forms.FileField(
        required=False,
        widget=FILE_WIDGET,
        help_text="CSV or XLSX: isrc, rights_holder, percent (a recording's shares sum to 100)",
    )
    audio_folder = forms.CharField(
        required=False,
        max_length=1000,
        help_text="Folder on the server that relative audio paths in the recordings file refer to",
    )
    replaces = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        if not data.get("replaces") and not any(data.get(kind) for kind in KINDS):
            raise forms.ValidationError("Choose at least one file.")
        return data


@login_required
def catalog_import_page(request: HttpRequest) -> HttpResponse:
    """Step 1: upload the files; they are checked and kept, nothing is imported yet."""
    _require_catalog_admin(request)
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        replacing = None
        if form.cleaned_data["replaces"]:
            replacing = import_batch_get(token=form.cleaned_data["replaces"], user=request.user)
            if replacing is None:
                raise Http404("That checked import no longer exists.")
        try:
            staged = catalog_import_stage(
                files={kind: form.cleaned_data[kind] for kind in KINDS if form.cleaned_data[kind]},
                actor=request.user,
                audio_folder=form.cleaned_data["audio_folder"],
                replacing=replacing,
            )
        except ApplicationError as exc:
            _form_error(form, exc)
        else:
            return redirect("catalog:import-staged", token=staged.token)
    return render(
        request,
        "catalog/import.html",
        {"form": form, "max_megabytes": settings.CATALOG_MAX_IMPORT_BYTES // 2**20},
    )


# While a batch is checked or imported its page reloads itself every few seconds (a meta
# refresh: no JavaScript needed) and shows the task's progress.
IMPORT_REFRESH_SECONDS = 3


@login_required
@require_GET
def catalog_import_staged(request: HttpRequest, token: str) -> HttpResponse:
    """Step 2: the progress of the check, then the per-row report of the uploaded files,
    with Confirm when they are fine; then the progress of the import and its counts."""
    _require_catalog_admin(request)
    batch = import_batch_get(token=token, user=request.user)
    if batch is None:
        raise Http404("No such checked import.")
    # The files may name 100,000 recordings: page through their ISRCs, then read only
    # the page's recordings.
    isrcs = Paginator(batch.isrcs, PAGE_SIZE).get_page(request.GET.get("page"))
    registered = {r.isrc: r for r in recordings_with_isrcs(isrcs.object_list)}
    rows = [(isrc, registered.get(isrc)) for isrc in isrcs]
    form = ImportUploadForm(initial={"replaces": batch.token, "audio_folder": batch.audio_folder})
    return render(
        request,
        "catalog/import_staged.html",
        {
            "staged": batch,
            "form": form,
            "page_obj": isrcs,
            "rows": rows,
            "kinds": KINDS,
            "refresh_seconds": IMPORT_REFRESH_SECONDS if batch.in_progress else None,
        },
    )


@login_required
@require_POST
def catalog_import_confirm_view(request: HttpRequest, token: str) -> HttpResponse:
    """Step 3: send exactly the files that were checked to be imported."""
    _require_catalog_admin(request)
    batch = import_batch_get(token=token, user=request.user)
    if batch is None:
        raise Http404("No such checked import.")
    try:
        batch = catalog_import_confirm(batch=batch, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        batch.refresh_from_db()  # without a broker the import ran already
        if batch.applied:
            messages.success(request, f"Imported: {batch.summary}")
        elif batch.in_progress:
            messages.info(request, "Importing: this page shows the progress.")
    return redirect("catalog:import-staged", token=batch.token)
