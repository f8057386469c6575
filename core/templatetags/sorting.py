"""``{% sort_link "title" "Title" %}``: a table header's link that sorts the whole list by
that column on the server (``core.sorting``): ascending first, then descending; the other
query parameters are kept and the page goes back to the first."""

from django import template
from django.utils.html import format_html

register = template.Library()


@register.simple_tag(takes_context=True)
def sort_link(context, key: str, label: str) -> str:
    request = context["request"]
    current = context.get("sort", "")
    ascending_now = current == key
    params = request.GET.copy()
    params.pop("page", None)
    params["sort"] = f"-{key}" if ascending_now else key
    if current == key:
        arrow, title = " ▲", "Sorted ascending: sort descending"
    elif current == f"-{key}":
        arrow, title = " ▼", "Sorted descending: sort ascending"
    else:
        arrow, title = "", "Sort by this column"
    return format_html(
        '<a class="sort-link" href="?{}" title="{}">{}{}</a>',
        params.urlencode(),
        title,
        label,
        arrow,
    )
