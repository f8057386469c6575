"""Server-side sorting of paginated lists: ``?sort=key`` ascending, ``?sort=-key``
descending, over the whole list before it is cut into pages (a sort in the browser could
only reorder the page on screen).

A view declares its columns once, as a ``Sorting`` of key -> database ordering; the
``sort_link`` template tag (``core.templatetags.sorting``) draws the header links, keeping
every other query parameter (filters, search) and going back to the first page.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.core.exceptions import FieldDoesNotExist
from django.db.models import F, Model, QuerySet
from django.http import HttpRequest


def _may_be_null(model: type[Model], name: str) -> bool:
    """Whether ``name`` (a field path such as ``recording__isrc``) can be NULL in a row of
    ``model``'s queryset: a nullable field on the way, or a name that is not a model field
    (an annotation) make it so."""
    for part in name.split("__"):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return True
        if field.null or not field.concrete:
            return True
        model = field.related_model
        if model is None:
            return False
    return False


@dataclass(frozen=True)
class Sorting:
    """``columns``: key -> the fields it orders by (ascending); ``default``: the key, with
    a leading ``-`` for descending, used when the request names none or an unknown one.
    The primary key always breaks ties, so pages never overlap or skip a row. Where a
    column can be NULL, NULLs come first ascending and last descending; a column that
    cannot be NULL is ordered plainly, so that an index on it serves the order."""

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
        order = []
        for name in fields:
            nulls = _may_be_null(queryset.model, name)
            if descending:
                order.append(F(name).desc(nulls_last=True) if nulls else F(name).desc())
            else:
                order.append(F(name).asc(nulls_first=True) if nulls else F(name).asc())
        order.append(F("pk").desc() if descending else F("pk").asc())
        return queryset.order_by(*order), sort
