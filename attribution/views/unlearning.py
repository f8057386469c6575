"""Pages of unlearning (catalog admins): start deriving a version of a model without its
opted-out recordings (from the model version's page), watch the job, review its validation
and promote the derived version. Every page parses input and calls one service or selector.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from attribution.models import ModelVersion, Unlearning
from attribution.selectors.unlearning import unlearning_status
from attribution.services import unlearning_promote, unlearning_request
from catalog.models import Recording
from core.exceptions import ApplicationError
from core.roles import CATALOG_ADMIN, user_has_role


def _require_catalog_admin(request: HttpRequest) -> None:
    if not user_has_role(request.user, CATALOG_ADMIN):
        raise PermissionDenied("This page is for catalog admins.")


class UnlearnForm(forms.Form):
    method = forms.ChoiceField(
        choices=[
            ("fisher", "Fisher-regularised (Eq. 5-6)"),
            ("gradient_ascent", "Gradient ascent with a retain term"),
            ("random_labels", "Random labelling"),
        ],
        initial="fisher",
    )
    isrcs = forms.CharField(
        required=False,
        label="Forget set (ISRCs)",
        help_text="Empty: every opted-out recording of the training set",
    )
    retrained_reference = forms.CharField(
        required=False, help_text="Optional: a model version retrained without the forget set"
    )


class PromoteForm(forms.Form):
    override_reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required when the validation did not pass: why it may be used anyway",
    )


@login_required
@require_POST
def model_version_unlearn(request: HttpRequest, pk: int) -> HttpResponse:
    _require_catalog_admin(request)
    version = get_object_or_404(ModelVersion, pk=pk)
    form = UnlearnForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose an unlearning method.")
        return redirect("attribution:model-version", pk=pk)
    isrcs = form.cleaned_data["isrcs"].replace(",", " ").split()
    reference_name = form.cleaned_data["retrained_reference"].strip()
    try:
        recordings = list(Recording.objects.filter(isrc__in=isrcs)) if isrcs else None
        if recordings is not None and len(recordings) != len(set(isrcs)):
            raise ApplicationError("Some of those ISRCs are not in the catalog.")
        reference = None
        if reference_name:
            reference = ModelVersion.objects.filter(name=reference_name).first()
            if reference is None:
                raise ApplicationError(f"No model version named {reference_name!r}.")
        unlearning = unlearning_request(
            parent=version,
            actor=request.user,
            method=form.cleaned_data["method"],
            recordings=recordings,
            retrained_reference=reference,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("attribution:model-version", pk=pk)
    messages.success(request, f"Unlearning {unlearning.pk} is queued.")
    return redirect("attribution:unlearning", pk=unlearning.pk)


@login_required
@require_GET
def unlearning_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require_catalog_admin(request)
    unlearning = get_object_or_404(Unlearning.objects.select_related("parent", "derived"), pk=pk)
    return render(
        request,
        "attribution/unlearning_detail.html",
        {
            "unlearning": unlearning,
            "status": unlearning_status(unlearning),
            "checks": (unlearning.metrics or {}).get("checks", {}),
            "form": PromoteForm(),
            "status_url": reverse("attribution:unlearning-status", args=[unlearning.pk]),
        },
    )


@login_required
@require_GET
def unlearning_status_view(request: HttpRequest, pk: int) -> JsonResponse:
    """The job's progress, polled by static/js/live-status.js."""
    _require_catalog_admin(request)
    item = unlearning_status(get_object_or_404(Unlearning, pk=pk))
    item["key"], item["detail"] = "unlearning", item["error"]
    return JsonResponse({"items": [item], "done": item["done"]})


@login_required
@require_POST
def unlearning_promote_view(request: HttpRequest, pk: int) -> HttpResponse:
    _require_catalog_admin(request)
    unlearning = get_object_or_404(Unlearning, pk=pk)
    form = PromoteForm(request.POST)
    form.is_valid()
    try:
        unlearning_promote(
            unlearning=unlearning,
            actor=request.user,
            override_reason=form.cleaned_data.get("override_reason", ""),
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{unlearning.derived.name} is in use from now on.")
    return redirect("attribution:unlearning", pk=pk)
