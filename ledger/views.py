"""Ledger pages.

Rights holders (only the holders they act for; finance may open any holder's): the
dashboard (balances, earnings, next payout), statements (page; CSV and XLSX with one line
per generation and track; PDF) and payments. Finance: accounts, the journal and its
entries, ledger verification, statement periods (create, close), payout batches. Every
finance action is a POST (CSRF-checked) to a service that writes the audit trail; the
irreversible ones (close a period, mark a batch paid, fail a line) first show what they
will do and run only when that is confirmed. The generations' list and pages (under
``/attribution/``), for rights holders, catalog admins and finance: what each generation
paid, and to whom, with its attribution evidence file.

Views parse input, call a selector or service and render; anonymous users are sent to
log in; holder pages show the holders the user acts for (a user who acts for none gets an
explanation, another holder's statement is 404); finance pages are 403 for other roles.
"""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from attribution import selectors as attribution_selectors
from attribution.charts import attribution_distribution_svg
from attribution.methods import AUDIT_METHOD
from attribution.models import Generation
from attribution.views import require_generation_reader, run_status_url
from catalog.models import RightsHolder
from core.exceptions import ApplicationError
from core.roles import CATALOG_ADMIN, FINANCE, role_required, user_has_role
from core.sorting import Sorting
from ledger import selectors, services
from ledger.charts import earnings_per_month_svg
from ledger.earnings_views import explanation_chart
from ledger.exports import CONTENT_TYPES, statement_pdf
from ledger.filters import AccountFilter, JournalEntryFilter
from ledger.forms import (
    ConfirmForm,
    PayoutBatchCreateForm,
    PayoutExportForm,
    PayoutLineFailForm,
    StatementPeriodCreateForm,
    VerifyForm,
)
from ledger.models import JournalEntry, PayoutBatch, PayoutLine, Statement, StatementPeriod
from ledger.selectors.confirmations import (
    payout_batch_mark_paid_preview,
    payout_line_fail_preview,
    statement_period_close_preview,
)
from ledger.selectors.evidence import generation_evidence
from ledger.selectors.explanations import explanation_for, score_digits
from ledger.selectors.generations import METHOD_LABELS
from ledger.selectors.holder_payouts import holder_payout_lines
from ledger.selectors.statement_summaries import statement_by_recording, statement_summary
from ledger.statement_exports import statement_lines_csv, statement_xlsx

PAGE_SIZE = 50
finance_required = role_required(FINANCE)


def _page(request: HttpRequest, rows):
    return Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))


def _selected_holder(request: HttpRequest, own: QuerySet[RightsHolder]) -> RightsHolder | None:
    """``?holder=ID`` among the holders the user may read (404 otherwise), else the first
    holder the user acts for."""
    raw = request.GET.get("holder")
    if raw:
        if not raw.isdigit():
            raise Http404("No such rights holder.")
        return get_object_or_404(selectors.holders_visible_to(user=request.user), pk=int(raw))
    return own.order_by("legal_name").first()


def file_response(data: bytes, *, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- rights holders --------------------------------------------------------------------------


def _no_holder(request: HttpRequest) -> HttpResponse:
    """A user who acts for no rights holder (finance picks one on the accounts page)."""
    return render(
        request, "ledger/no_holder.html", {"is_finance": user_has_role(request.user, FINANCE)}
    )


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    own = selectors.rights_holders_for_user(user=request.user)
    holder = _selected_holder(request, own)
    if holder is None:
        if user_has_role(request.user, FINANCE):
            return redirect("ledger:journal")
        return _no_holder(request)
    dashboard = selectors.holder_dashboard(rights_holder=holder)
    sections = [
        (summary, earnings_per_month_svg(months=summary.months, currency=summary.currency))
        for summary in dashboard.currencies
    ]
    return render(
        request,
        "ledger/dashboard.html",
        {
            "dashboard": dashboard,
            "holder": holder,
            "holders": list(own.order_by("legal_name")),
            "sections": sections,
        },
    )


@login_required
def statement_list(request: HttpRequest) -> HttpResponse:
    own = selectors.rights_holders_for_user(user=request.user)
    holder = _selected_holder(request, own)
    if holder is None:
        return _no_holder(request)
    rows = selectors.holder_statement_rows(rights_holder=holder)
    return render(
        request,
        "ledger/statements.html",
        {
            "holder": holder,
            "holders": list(own.order_by("legal_name")),
            "page": _page(request, rows),
            "is_finance": user_has_role(request.user, FINANCE),
        },
    )


def statement_for(
    *, user: AbstractBaseUser | AnonymousUser, holder_id: int, period_id: int, currency: str
) -> Statement:
    """The statement, frozen the first time it is opened (``statement_generate`` returns
    the same statement, re-checked against the ledger, every later time). 404 unless the
    user may read the holder, the period is closed and the holder has that currency.
    The statement page, its downloads and the API's ``statements/generate/`` all use it."""
    holder = selectors.holders_visible_to(user=user).filter(pk=holder_id).first()
    if holder is None:
        raise Http404("No such rights holder.")
    period = StatementPeriod.objects.filter(pk=period_id, closed_at__isnull=False).first()
    if period is None:
        raise Http404("No closed statement period with this id.")
    if currency not in selectors.holder_currencies(rights_holder=holder):
        raise Http404("The rights holder has no account in this currency.")
    return services.statement_generate(
        rights_holder=holder, period=period, currency=currency, actor=user
    )


def _statement_filename(statement: Statement, extension: str) -> str:
    return (
        f"statement-{statement.rights_holder_id}-{statement.period.starts_at:%Y-%m-%d}-"
        f"{statement.currency}.{extension}"
    )


@login_required
def statement_detail(
    request: HttpRequest, holder_id: int, period_id: int, currency: str
) -> HttpResponse:
    try:
        statement = statement_for(
            user=request.user, holder_id=holder_id, period_id=period_id, currency=currency
        )
    except ApplicationError as exc:
        return render(request, "ledger/statement_error.html", {"message": exc.message}, status=409)
    content = statement.content
    methods = attribution_selectors.run_methods(
        line["attribution_run"] for line in content["lines"]
    )
    lines = [
        (line, METHOD_LABELS.get(methods.get(line["attribution_run"], ""), ""))
        for line in content["lines"]
    ]
    return render(
        request,
        "ledger/statement.html",
        {
            "statement": statement,
            "content": content,
            "lines": lines,
            "holder": statement.rights_holder,
            "summary": statement_summary(content=content),
            "by_recording": statement_by_recording(content=content),
            "stopped_earning": attribution_selectors.holder_recordings_stopped_earning(
                statement.rights_holder_id
            ),
        },
    )


@login_required
def statement_download(
    request: HttpRequest, holder_id: int, period_id: int, currency: str, fmt: str
) -> HttpResponse:
    try:
        statement = statement_for(
            user=request.user, holder_id=holder_id, period_id=period_id, currency=currency
        )
    except ApplicationError as exc:
        return render(request, "ledger/statement_error.html", {"message": exc.message}, status=409)
    write = {"csv": statement_lines_csv, "xlsx": statement_xlsx, "pdf": statement_pdf}[fmt]
    data = write(statement=statement)
    return file_response(
        data, content_type=CONTENT_TYPES[fmt], filename=_statement_filename(statement, fmt)
    )


# --- finance: accounts, journal, verification ------------------------------------------------


ACCOUNT_SORTING = Sorting(
    columns={
        # Holder ids compare as numbers (the keys, as text, would put :10 before :2).
        "account": ("kind", "currency", "rights_holder_id"),
        "holder": ("rights_holder__legal_name", "currency"),
        "currency": ("currency", "kind", "rights_holder_id"),
        "balance": ("balance",),
    },
    default="account",
)


@finance_required
def account_list(request: HttpRequest) -> HttpResponse:
    accounts = AccountFilter(request.GET, queryset=selectors.accounts_with_balances())
    rows, sort = ACCOUNT_SORTING.apply(accounts.qs, request)
    return render(
        request,
        "ledger/accounts.html",
        {
            "filter": accounts,
            "page": _page(request, rows),
            "sort": sort,
            "trial_balance": selectors.trial_balance(),
        },
    )


@finance_required
def journal(request: HttpRequest) -> HttpResponse:
    entries = JournalEntryFilter(request.GET, queryset=selectors.journal_entries())
    return render(
        request, "ledger/journal.html", {"filter": entries, "page": _page(request, entries.qs)}
    )


@finance_required
def entry_detail(request: HttpRequest, seq: int) -> HttpResponse:
    entry = get_object_or_404(JournalEntry, seq=seq)
    return render(
        request, "ledger/entry.html", {"detail": selectors.journal_entry_detail(entry=entry)}
    )


@finance_required
def verify(request: HttpRequest) -> HttpResponse:
    form = VerifyForm(request.POST if request.method == "POST" else None)
    report = None
    if request.method == "POST" and form.is_valid():
        report = services.ledger_verification_run(
            actor=request.user, anchors=form.cleaned_data["expect"]
        )
    return render(
        request,
        "ledger/verify.html",
        {"form": form, "report": report, "history": selectors.ledger_verifications()},
    )


# --- finance: statement periods --------------------------------------------------------------


@finance_required
def statement_periods(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    if request.method == "POST":
        form = StatementPeriodCreateForm(request.POST)
    else:
        starts_at, ends_at = selectors.statement_period_suggestion(now=now)
        form = StatementPeriodCreateForm(initial={"starts_at": starts_at, "ends_at": ends_at})
    if request.method == "POST" and form.is_valid():
        try:
            period = services.statement_period_create(
                starts_at=form.cleaned_data["starts_at"],
                ends_at=form.cleaned_data["ends_at"],
                actor=request.user,
            )
        except ApplicationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Statement period {period} created (open).")
            return redirect("ledger:periods")
    page = _page(request, selectors.statement_periods())
    rows = [(p, selectors.statement_period_state(period=p, now=now)) for p in page]
    return render(request, "ledger/periods.html", {"form": form, "page": page, "rows": rows})


@finance_required
@require_http_methods(["GET", "POST"])
def statement_period_close(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: what closing the period will do, with the button that confirms it. POST: close
    it, only with the confirmation of what was shown (else the confirmation again)."""
    period = get_object_or_404(StatementPeriod, pk=pk)
    preview = statement_period_close_preview(period=period)
    form = ConfirmForm(request.POST or None, expected=preview.token)
    if request.method != "POST" or not form.is_valid():
        return render(
            request,
            "ledger/confirm_period_close.html",
            {"preview": preview, "form": form},
            status=400 if request.method == "POST" else 200,
        )
    try:
        period = services.statement_period_close(period=period, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, f"Statement period {period} closed: its statements can now be opened."
        )
    return redirect("ledger:periods")


# --- finance: payout batches -----------------------------------------------------------------


@finance_required
def payout_batches(request: HttpRequest) -> HttpResponse:
    form = PayoutBatchCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            batch = services.payout_batch_create(
                currency=form.cleaned_data["currency"],
                threshold_minor=form.cleaned_data["threshold_minor"],
                period=form.cleaned_data["period"],
                actor=request.user,
            )
        except ApplicationError as exc:
            field = {"threshold_minor": "threshold"}.get(exc.field or "", exc.field)
            form.add_error(field if field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Payout batch {batch.pk} created as a draft: review it.")
            return redirect("ledger:payout", pk=batch.pk)
    return render(
        request,
        "ledger/payouts.html",
        {"form": form, "page": _page(request, selectors.payout_batches())},
    )


@finance_required
def payout_batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(selectors.payout_batches(), pk=pk)
    detail = selectors.payout_batch_detail(batch=batch)
    return render(
        request,
        "ledger/payout.html",
        {
            "detail": detail,
            "page_obj": _page(request, detail.lines),  # totals stay over every line
            "fail_form": PayoutLineFailForm(),
        },
    )


@finance_required
@require_POST
def payout_batch_export(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(PayoutBatch, pk=pk)
    form = PayoutExportForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose CSV or XLSX.")
        return redirect("ledger:payout", pk=batch.pk)
    fmt = form.cleaned_data["fmt"]
    data = services.payout_batch_file_export(batch=batch, fmt=fmt, actor=request.user)
    return file_response(
        data, content_type=CONTENT_TYPES[fmt], filename=f"payout-batch-{batch.pk}.{fmt}"
    )


@finance_required
@require_http_methods(["GET", "POST"])
def payout_batch_mark_paid(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: what marking the batch paid will book, with the button that confirms it. POST:
    book it, only with the confirmation of what was shown (else the confirmation again)."""
    batch = get_object_or_404(PayoutBatch, pk=pk)
    preview = payout_batch_mark_paid_preview(batch=batch)
    form = ConfirmForm(request.POST or None, expected=preview.token)
    if request.method != "POST" or not form.is_valid():
        return render(
            request,
            "ledger/confirm_mark_paid.html",
            {"preview": preview, "form": form},
            status=400 if request.method == "POST" else 200,
        )
    try:
        entry = services.payout_batch_mark_paid(batch=batch, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Payout batch {batch.pk} is paid: journal entry #{entry.seq}.")
    return redirect("ledger:payout", pk=batch.pk)


@finance_required
@require_POST
def payout_line_fail(request: HttpRequest, pk: int) -> HttpResponse:
    line = get_object_or_404(PayoutLine, pk=pk)
    form = PayoutLineFailForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the reason the payment failed.")
        return redirect("ledger:payout", pk=line.batch_id)
    # The reason's form posts here first; the action runs once the page that says what it
    # will do (reverse a paid line, or leave a pending one out) has been confirmed.
    preview = payout_line_fail_preview(line=line, reason=form.cleaned_data["reason"])
    confirm = ConfirmForm(
        request.POST if "confirm" in request.POST else None, expected=preview.token
    )
    if not confirm.is_valid():
        return render(
            request,
            "ledger/confirm_line_fail.html",
            {"preview": preview, "form": confirm, "hidden": [("reason", preview.reason)]},
            status=400 if "confirm" in request.POST else 200,
        )
    try:
        entry = services.payout_line_fail(
            line=line, reason=form.cleaned_data["reason"], actor=request.user
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        booked = f"reversed by journal entry #{entry.seq}" if entry else "nothing was booked"
        messages.success(
            request, f"Line for {line.rights_holder.legal_name} marked failed: {booked}."
        )
    return redirect("ledger:payout", pk=line.batch_id)


# --- generations: what each paid -------------------------------------------------------------


GENERATION_SORTING = Sorting(
    columns={"date": ("created_at",), "revenue": ("revenue_minor",)}, default="-date"
)
HOLDER_GENERATION_SORTING = Sorting(
    columns={"date": ("created_at",), "amount": ("holder_amount",)}, default="-date"
)


@login_required
@require_GET
def generation_list(request: HttpRequest) -> HttpResponse:
    """Rights holders: the generations that paid them, with what each paid. Catalog admins
    and finance: every generation with its latest run (``?status=`` narrows the list)."""
    require_generation_reader(request)
    for_holder = not attribution_selectors.user_sees_all_generations(request.user)
    if for_holder:
        generations = selectors.generations_paying_user(request.user)
    else:
        generations = attribution_selectors.generations_for_user(request.user).order_by(
            "-created_at", "-id"
        )
        if request.GET.get("status") in Generation.Status.values:
            generations = generations.filter(status=request.GET["status"])
    periods = list(selectors.statement_periods())
    period = next((p for p in periods if str(p.pk) == request.GET.get("period")), None)
    if period is not None:
        generations = generations.filter(
            created_at__gte=period.starts_at, created_at__lt=period.ends_at
        )
    sorting = HOLDER_GENERATION_SORTING if for_holder else GENERATION_SORTING
    generations, sort = sorting.apply(generations, request)
    page = _page(request, generations)
    rows = selectors.generation_rows(page.object_list, for_holder=for_holder)
    active = [row.run.pk for row in rows if row.status is not None and not row.status["done"]]
    return render(
        request,
        "ledger/generations.html",
        {
            "page_obj": page,
            "rows": rows,
            "for_holder": for_holder,
            "is_catalog_admin": user_has_role(request.user, CATALOG_ADMIN),
            "statuses": Generation.Status.choices,
            "status_url": run_status_url(active),
            "sort": sort,
            "periods": periods,
            "period": period,
        },
    )


def _may_audit(request: HttpRequest, detail) -> bool:
    """Offer the exact-method audit: finance or a catalog admin, a settlement paid by another
    method, and no audit run yet (a failed one is re-run from the runs table)."""
    return bool(
        attribution_selectors.user_may_audit(request.user)
        and detail.settlement is not None
        and detail.run.method != AUDIT_METHOD
        and detail.audit_run is None
    )


def _second_opinion_methods(request: HttpRequest, detail) -> list[tuple[str, str]]:
    """The methods finance or a catalog admin may ask a second opinion of (every registered
    one; the service refuses a repeat), once the generation is settled; else none."""
    if not attribution_selectors.user_may_audit(request.user) or detail.settlement is None:
        return []
    return list(METHOD_LABELS.items())


@login_required
@require_GET
def generation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The prompt, an audio player, the chart of the attribution scores of the whole
    training set (a holder's own tracks highlighted), and the paid tracks with their
    scores, shares and amounts (a holder: only theirs); admins also see the runs."""
    require_generation_reader(request)
    generation = get_object_or_404(attribution_selectors.generations_for_user(request.user), pk=pk)
    detail = selectors.generation_detail(generation=generation, user=request.user)
    explanation = explanation_for(generation_id=generation.pk, user=request.user)
    chart = None
    if explanation is not None:
        chart = explanation_chart(explanation)
    elif detail.run is not None and detail.run.scores:
        chart = attribution_distribution_svg(
            detail.run.scores,
            highlight=detail.highlight_positions,
            highlight_label=detail.highlight_label,
        )
    runs = []
    if not detail.for_holder:
        runs = [
            (run, attribution_selectors.run_status(run), attribution_selectors.run_may_rerun(run))
            for run in attribution_selectors.runs_for_user(request.user).filter(
                generation=generation
            )
        ]
    return render(
        request,
        "ledger/generation_detail.html",
        {
            "generation": generation,
            "detail": detail,
            "explanation": explanation,
            "chart": chart,
            "score_digits": score_digits(detail.run.scores or []) if detail.run else 4,
            "page_obj": _page(request, detail.rows),
            "runs": runs,
            "is_catalog_admin": user_has_role(request.user, CATALOG_ADMIN),
            "may_audit": _may_audit(request, detail),
            "second_opinion_methods": _second_opinion_methods(request, detail),
            "status_url": run_status_url([run.pk for run, status, _ in runs if not status["done"]]),
        },
    )


# --- rights holders: payouts, attribution evidence -------------------------------------------


@login_required
@require_GET
def holder_payouts(request: HttpRequest) -> HttpResponse:
    """The payments to a holder the user acts for (finance: any, ``?holder=``): date,
    amount, batch, status and the payment reference the bank transfer carries."""
    own = selectors.rights_holders_for_user(user=request.user)
    holder = _selected_holder(request, own)
    if holder is None:
        return _no_holder(request)
    return render(
        request,
        "ledger/holder_payouts.html",
        {
            "holder": holder,
            "holders": list(own.order_by("legal_name")),
            "page": _page(request, holder_payout_lines(rights_holder=holder)),
        },
    )


@login_required
@require_GET
def generation_evidence_download(request: HttpRequest, pk: int) -> HttpResponse:
    """The generation's attribution evidence as JSON (``ledger.selectors.evidence``): a
    rights holder's users get their own lines only; 404 before the generation is settled."""
    require_generation_reader(request)
    generation = get_object_or_404(attribution_selectors.generations_for_user(request.user), pk=pk)
    evidence = generation_evidence(generation=generation, user=request.user)
    if evidence is None:
        raise Http404("This generation has not been settled: there is no split to show.")
    data = json.dumps(evidence, indent=1, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return file_response(
        data,
        content_type="application/json; charset=utf-8",
        filename=f"evidence-generation-{generation.pk}.json",
    )
