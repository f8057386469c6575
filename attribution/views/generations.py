"""Pages of attribution runs and of generations' audio.

* ``generation-audio``: a generation's audio, for the player of its page (the
  generations' list and pages show what they paid: ``ledger.views``).
* ``jobs`` (catalog admins): attribution runs with live status, progress, failures with
  their reasons, and Re-run for failed runs; ``jobs-status``, the JSON the pages poll.
* ``generation-audit`` (finance and catalog admins, POST): re-attribute a settled
  generation with the exact method; the generation page shows both side by side.
* ``generation-second-opinion`` (finance and catalog admins, POST ``method``, optional
  ``reason`` and ``force``): re-attribute a settled generation with any registered method;
  the generation page shows what each method would have paid.

Another holder's generation, and its audio, do not exist for a holder (404). Every page
parses input and calls one selector or service.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from attribution import selectors, services
from attribution.models import AttributionRun
from attribution.streaming import ranged_file_response
from core.exceptions import ApplicationError
from core.roles import CATALOG_ADMIN, user_has_role
from core.sorting import Sorting

PAGE_SIZE = 50
MAX_STATUS_IDS = 200


def require_generation_reader(request: HttpRequest) -> None:
    """403 unless the user may read generation pages (``user_may_read_generation_pages``)."""
    if not selectors.user_may_read_generation_pages(request.user):
        raise PermissionDenied("This page is for rights holders, catalog admins and finance.")


def _require_catalog_admin(request: HttpRequest) -> None:
    if not user_has_role(request.user, CATALOG_ADMIN):
        raise PermissionDenied("This page is for catalog admins.")


def run_status_url(run_ids: list[int]) -> str:
    """The ``jobs-status`` URL the pages poll for ``run_ids`` ("" for none)."""
    if not run_ids:
        return ""
    return f"{reverse('attribution:jobs-status')}?ids={','.join(map(str, run_ids))}"


@login_required
@require_GET
def generation_audio(request: HttpRequest, pk: int) -> HttpResponse:
    """The generated audio, for the page's player (byte ranges supported)."""
    require_generation_reader(request)
    generation = get_object_or_404(selectors.generations_for_user(request.user), pk=pk)
    return ranged_file_response(
        request, generation.audio, filename=f"generation-{generation.pk}.wav"
    )


JOB_SORTING = Sorting(
    columns={
        "run": ("id",),
        "generation": ("generation_id",),
        "model": ("model_version__name",),
        "started": ("created_at",),
        "attempts": ("attempts",),
    },
    default="-run",
)


@login_required
@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    """Attribution runs, newest first, with live status (catalog admins)."""
    _require_catalog_admin(request)
    runs = selectors.runs_for_user(request.user)
    status = request.GET.get("status")
    if status in AttributionRun.Status.values:
        runs = runs.filter(status=status)
    runs, sort = JOB_SORTING.apply(runs, request)
    page = Paginator(runs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(run, selectors.run_status(run), selectors.run_may_rerun(run)) for run in page]
    return render(
        request,
        "attribution/jobs.html",
        {
            "page_obj": page,
            "rows": rows,
            "statuses": AttributionRun.Status.choices,
            "status": status,
            "sort": sort,
            "status_url": run_status_url([run.pk for run, s, _ in rows if not s["done"]]),
        },
    )


@login_required
@require_GET
def job_status(request: HttpRequest) -> JsonResponse:
    """``{"items": [run status...], "done": bool}`` for ``?ids=1,2,3`` (polled by
    static/js/live-status.js)."""
    require_generation_reader(request)
    ids = [int(part) for part in request.GET.get("ids", "").split(",") if part.strip().isdigit()]
    items = selectors.run_statuses(user=request.user, ids=ids[:MAX_STATUS_IDS])
    return JsonResponse({"items": items, "done": all(item["done"] for item in items)})


@login_required
@require_POST
def run_rerun(request: HttpRequest, pk: int) -> HttpResponse:
    """Re-run a failed attribution run (catalog admins); audited by the service."""
    _require_catalog_admin(request)
    run = get_object_or_404(selectors.runs_for_user(request.user), pk=pk)
    try:
        rerun = services.attribution_run_rerun(
            run=run, actor=request.user, reason=request.POST.get("reason", "")[:1000]
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Run {run.pk} is re-run as run {rerun.pk}.")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("attribution:jobs")
    return redirect(target)


@login_required
@require_POST
def generation_audit(request: HttpRequest, pk: int) -> HttpResponse:
    """Re-attribute a settled generation with the exact method (finance, catalog admins);
    the audit run pays nothing. Audited by the service."""
    if not selectors.user_may_audit(request.user):
        raise PermissionDenied("Audits are for finance and catalog admins.")
    generation = get_object_or_404(selectors.generations_for_user(request.user), pk=pk)
    try:
        run = services.attribution_run_audit(
            generation=generation, actor=request.user, reason=request.POST.get("reason", "")[:1000]
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, f"Run {run.pk} re-attributes generation {generation.pk} with the exact method."
        )
    return redirect("ledger:generation", pk=generation.pk)


@login_required
@require_POST
def generation_second_opinion(request: HttpRequest, pk: int) -> HttpResponse:
    """Re-attribute a settled generation with the method named in the form (finance,
    catalog admins); the run pays nothing. Audited by the service."""
    if not selectors.user_may_audit(request.user):
        raise PermissionDenied("Second opinions are for finance and catalog admins.")
    generation = get_object_or_404(selectors.generations_for_user(request.user), pk=pk)
    try:
        run = services.attribution_run_second_opinion(
            generation=generation,
            method=request.POST.get("method", "").strip(),
            actor=request.user,
            reason=request.POST.get("reason", "")[:1000],
            force=request.POST.get("force") in ("on", "1", "true"),
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, f"Run {run.pk} re-attributes generation {generation.pk} with {run.method}."
        )
    return redirect("ledger:generation", pk=generation.pk)
