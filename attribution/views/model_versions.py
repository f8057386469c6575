"""Pages of model versions (catalog admins): the list, registering a checkpoint, a model
version's training set and artifact status with live progress, and computing the
artifacts. Every page parses input and calls one service or selector.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from attribution.models import ModelVersion
from attribution.selectors.model_versions import (
    model_version_artifact_statuses,
    opted_out_recordings_in_model_version,
    training_set_entries,
    training_set_search,
)
from attribution.selectors.unlearning import unlearnings_of
from attribution.services import model_version_artifacts_queue, model_version_register
from attribution.views.unlearning import UnlearnForm
from core.exceptions import ApplicationError
from core.roles import CATALOG_ADMIN, user_has_role
from core.sorting import Sorting

PAGE_SIZE = 50


def _require_catalog_admin(request: HttpRequest) -> None:
    if not user_has_role(request.user, CATALOG_ADMIN):
        raise PermissionDenied("This page is for catalog admins.")


class ModelVersionForm(forms.Form):
    name = forms.CharField(max_length=255)
    checkpoint_dir = forms.CharField(
        max_length=1000,
        label="Checkpoint folder",
        help_text="Folder on the server with model_config.json, model.safetensors (or "
        "model.ckpt) and training_manifest.json",
    )
    override_reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Only if the training set contains opted-out recordings: why it is allowed",
    )


@login_required
def model_version_list(request: HttpRequest) -> HttpResponse:
    _require_catalog_admin(request)
    versions = ModelVersion.objects.annotate(
        training_set_size=Count("training_set_entries")
    ).prefetch_related("artifacts")
    page = Paginator(versions.order_by("-created_at", "-id"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    rows = [(version, model_version_artifact_statuses(version)) for version in page]
    return render(request, "attribution/model_versions.html", {"page_obj": page, "rows": rows})


@login_required
def model_version_register_page(request: HttpRequest) -> HttpResponse:
    _require_catalog_admin(request)
    form = ModelVersionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            version = model_version_register(
                name=form.cleaned_data["name"],
                checkpoint_dir=form.cleaned_data["checkpoint_dir"],
                override_reason=form.cleaned_data["override_reason"] or None,
                actor=request.user,
            )
        except ApplicationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Model version {version.name} is registered.")
            return redirect("attribution:model-version", pk=version.pk)
    return render(request, "attribution/model_version_register.html", {"form": form})


TRAINING_SET_SORTING = Sorting(
    columns={
        "position": ("position",),
        "isrc": ("recording__isrc",),
        "title": ("recording__title", "position"),
    },
    default="position",
)


@login_required
@require_GET
def model_version_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require_catalog_admin(request)
    version = get_object_or_404(ModelVersion, pk=pk)
    query = request.GET.get("q", "").strip()
    entries, sort = TRAINING_SET_SORTING.apply(
        training_set_search(training_set_entries(version), query), request
    )
    entries = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    artifacts = model_version_artifact_statuses(version)
    return render(
        request,
        "attribution/model_version_detail.html",
        {
            "version": version,
            "artifacts": artifacts,
            "can_compute": all(a["done"] for a in artifacts)
            and any(a["status"] != "ready" for a in artifacts),
            "page_obj": entries,
            "query": query,
            "sort": sort,
            "status_url": reverse("attribution:model-version-status", args=[version.pk]),
            "unlearnings": unlearnings_of(version),
            "unlearn_form": UnlearnForm(),
            "opted_out": opted_out_recordings_in_model_version(version),
        },
    )


@login_required
@require_GET
def model_version_status(request: HttpRequest, pk: int) -> JsonResponse:
    """The artifacts' progress, polled by static/js/live-status.js."""
    _require_catalog_admin(request)
    version = get_object_or_404(ModelVersion, pk=pk)
    items = model_version_artifact_statuses(version)
    return JsonResponse({"items": items, "done": all(item["done"] for item in items)})


@login_required
@require_POST
def model_version_compute_artifacts(request: HttpRequest, pk: int) -> HttpResponse:
    _require_catalog_admin(request)
    version = get_object_or_404(ModelVersion, pk=pk)
    try:
        model_version_artifacts_queue(model_version=version, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, "Computing the Fisher information and the training-set losses is queued."
        )
    return redirect("attribution:model-version", pk=version.pk)
