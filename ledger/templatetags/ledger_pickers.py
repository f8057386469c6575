"""``{% finance_holder_picker holder %}``: on the pages that show one rights holder's data,
finance (who may read every holder's) picks the holder from a list; others see nothing
here (they switch between their own holders with ``ledger/_holder_picker.html``)."""

from django import template

from core.roles import FINANCE, user_has_role
from ledger.selectors import holders_visible_to

register = template.Library()


@register.inclusion_tag("ledger/_finance_holder_picker.html", takes_context=True)
def finance_holder_picker(context, holder) -> dict:
    user = context["request"].user
    if not user_has_role(user, FINANCE):
        return {"holders": None}
    holders = holders_visible_to(user=user).order_by("legal_name").only("pk", "legal_name")
    return {"holders": holders, "holder": holder}
