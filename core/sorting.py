"""Server-side sorting of paginated lists: ``?sort=key`` ascending, ``?sort=-key``
descending, over the whole list before it is cut into pages (a sort in the browser could
only reorder the page on screen).

A view declares its columns once, as a ``Sorting`` of key -> database ordering; the
``sort_link`` template tag (``core.templatetags.sorting``) draws the header links, keeping
every other query parameter (filters, search) and going back to the first page.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.db.models import F, QuerySet
from django.http import HttpRequest


@dataclass(frozen=True)
class Sorting:
    """``columns``: key -> the fields it orders by (ascending); ``default``: the key, with
    a leading ``-`` for descending, used when the request names none or an unknown one.
    The primary key always breaks ties, so pages never overlap or skip a row."""

    columns: Mapping[str, Sequence[str]]
    default: str

    def selected(self, request: HttpRequest) -> str:
        raw = request.GET.get("sort", "")
        return raw if raw.lstrip("-") in self.columns else self.default

    def apply(self, queryset: QuerySet, request: HttpRequest) -> tuple[QuerySet, str]:
        """``queryset`` ordered as the request asks, and the sort it applied."""
        sort = self.selected(request)
        descending = sort.startswith("-")
        fields = self.columns[sort.lstrip("-")]
        order = [
            F(name).desc(nulls_last=True) if descending else F(name).asc(nulls_first=True)
            for name in fields
        ]
        order.append(F("pk").desc() if descending else F("pk").asc())
        return queryset.order_by(*order), sort
