"""Pages that explain earnings: why a generation paid what it paid (``explain``) and what
a recording earned (``recording``). Rights holders see only the holders they act for;
finance and catalog admins see everyone. Anything a user may not read is 404.
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from attribution.selectors import user_sees_all_generations
from attribution.views import require_generation_reader
from ledger.charts import earnings_per_period_svg, payment_cutoff_svg
from ledger.selectors.explanations import PaymentExplanation, explanation_for
from ledger.selectors.recordings import recording_earnings_for


def explanation_chart(explanation: PaymentExplanation) -> str:
    return payment_cutoff_svg(
        explanation.run.scores or [],
        paid=explanation.paid_positions,
        unpaid=explanation.unpaid_positions,
        cutoff_rank=explanation.cutoff_rank,
        paid_label="your paid tracks" if explanation.for_holder else "paid tracks",
    )


@login_required
@require_GET
def generation_explain(request: HttpRequest, pk: int) -> HttpResponse:
    """Explain this payment: ``?entry=SEQ`` names the settlement (a statement line links
    to the one it lists, even if it was reversed since); by default the one that pays."""
    require_generation_reader(request)
    raw = request.GET.get("entry", "")
    if raw and not raw.isdigit():
        raise Http404("No such journal entry.")
    explanation = explanation_for(
        generation_id=pk, user=request.user, entry_seq=int(raw) if raw else None
    )
    if explanation is None:
        raise Http404("No settlement of this generation that you may read.")
    return render(
        request,
        "ledger/explain.html",
        {"explanation": explanation, "chart": explanation_chart(explanation)},
    )


@login_required
@require_GET
def recording_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A recording's earnings: lifetime, per statement period (with a chart), the number
    of generations that pay it, and every payment."""
    require_generation_reader(request)
    earnings = recording_earnings_for(recording_id=pk, user=request.user)
    if earnings is None:
        raise Http404("No such recording among yours.")
    charts = [
        earnings_per_period_svg(
            periods=[(row.chart_label, row.amount) for row in summary.periods],
            currency=summary.currency,
            title=f"Earnings of {earnings.recording.title} per statement period",
        )
        for summary in earnings.currencies
    ]
    return render(
        request,
        "ledger/recording.html",
        {
            "earnings": earnings,
            "user_sees_all": user_sees_all_generations(request.user),
            "sections": list(zip(earnings.currencies, charts, strict=True)),
        },
    )
