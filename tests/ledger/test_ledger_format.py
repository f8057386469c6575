"""The pages' money, share and score filters (``ledger.templatetags.ledger_format``)."""

from decimal import Decimal

from django.template import Context, Template


def render(source: str, **context) -> str:
    return Template("{% load ledger_format %}" + source).render(Context(context))


def test_money_shows_cents_and_keeps_the_exact_value_beside_them():
    html = render("{{ amount|money:'USD' }}", amount=1_000_500_000)  # accrual units
    assert ">$10.01</span>" in html
    assert 'title="exactly 10.00500000 USD"' in html and 'data-exact="10.00500000"' in html
    assert ">$20.01<" in render("{{ amount|minor_money:'USD' }}", amount=2001)
    assert ">$1.50<" in render("{{ amount|decimal_money:'USD' }}", amount=Decimal("1.5"))


def test_shares_are_percentages_and_scores_fixed_point():
    assert render("{{ share|percent }}", share="0.123456") == "12.35\N{NO-BREAK SPACE}%"
    assert render("{{ share|percent:4 }}", share=Decimal("1")) == "100.0000\N{NO-BREAK SPACE}%"
    assert render("{{ score|fixed:7 }}", score=9.207e-05) == "0.0000921"
    assert "e" not in render("{{ score|fixed:4 }}", score=1.5e-12)
