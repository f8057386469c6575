"""``{% opt_out_unlearning_state opt_out as state %}``: what an opt-out has become for the
models in use (requested, unlearned in a derived version, in use since a date), for the
catalog's pages (``attribution.selectors.opt_out_unlearning_state``)."""

from django import template

from attribution.selectors.unlearning import opt_out_unlearning_state as _state

register = template.Library()


@register.simple_tag
def opt_out_unlearning_state(opt_out) -> dict:
    return _state(opt_out)
