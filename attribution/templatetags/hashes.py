"""``{{ value|short_hash }}``: a hash cut as everywhere else (``attribution.hash_labels``);
``{% checkpoint_hash_label %}`` and ``{% scores_hash_label %}``: the one label of each."""

from django import template

from attribution import hash_labels

register = template.Library()


@register.filter
def short_hash(value: str | None) -> str:
    return hash_labels.short_hash(value or "")


@register.simple_tag
def checkpoint_hash_label() -> str:
    return hash_labels.CHECKPOINT_HASH_LABEL


@register.simple_tag
def scores_hash_label() -> str:
    return hash_labels.SCORES_HASH_LABEL
