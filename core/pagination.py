"""Keyset (cursor) pagination for API lists that grow with the catalog.

A page is "the next ``page_size`` rows after this one" in the list's order, not "rows
``N*50`` to ``N*50+50``": the database starts from the cursor's row in the ordering's
index instead of stepping over every row before it, and nothing counts the whole list.
The order is the view's ``?ordering=`` (its first field) followed by a unique field
(``unique_field``, in the same direction), so that equal values still have one order
and no row is skipped or repeated between pages, in either direction.

Answers ``{"next", "previous", "results"}``; ``next`` and ``previous`` are URLs with an
opaque ``cursor`` parameter (``null`` at either end).
"""

import base64
import binascii
import json
from collections import OrderedDict

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from rest_framework.exceptions import NotFound
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param


class KeysetPagination(BasePagination):
    page_size = 50
    unique_field = "pk"
    default_ordering = "pk"
    cursor_query_param = "cursor"
    invalid_cursor_message = "Invalid cursor."

    def ordering(self, request, queryset: QuerySet, view) -> list[str]:
        """The view's ordering filter's first field, then ``unique_field`` in the same
        direction (``["-title", "-isrc"]``)."""
        asked = []
        for backend in getattr(view, "filter_backends", []):
            if hasattr(backend, "get_ordering"):
                asked = list(backend().get_ordering(request, queryset, view) or [])
                break
        first = asked[0] if asked else self.default_ordering
        sign = "-" if first.startswith("-") else ""
        if first.lstrip("-") == self.unique_field:
            return [first]
        return [first, sign + self.unique_field]

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        ordering = self.ordering(request, queryset, view)
        fields = [name.lstrip("-") for name in ordering]
        cursor = self._decode(request, len(fields))
        backwards = bool(cursor and cursor["previous"])
        order = [_flip(name) for name in ordering] if backwards else ordering
        queryset = queryset.order_by(*order)
        if cursor:
            try:
                queryset = queryset.filter(_after(order, cursor["values"]))
            except (ValidationError, ValueError, TypeError):  # a value the field refuses
                raise NotFound(self.invalid_cursor_message) from None
        rows = list(queryset[: self.page_size + 1])
        more = len(rows) > self.page_size
        rows = rows[: self.page_size]
        if backwards:
            rows.reverse()
        self.fields = fields
        self.next_values = _values(rows[-1], fields) if rows and (more or backwards) else None
        self.previous_values = (
            _values(rows[0], fields) if rows and (cursor and (more or not backwards)) else None
        )
        return rows

    def get_paginated_response(self, data):
        return Response(
            OrderedDict(
                [
                    ("next", self._link(self.next_values, previous=False)),
                    ("previous", self._link(self.previous_values, previous=True)),
                    ("results", data),
                ]
            )
        )

    def get_paginated_response_schema(self, schema):
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {
            "type": "object",
            "required": ["results"],
            "properties": {"next": link, "previous": link, "results": schema},
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "From a `next` or `previous` link: the page after (or before).",
                "schema": {"type": "string"},
            }
        ]

    def _link(self, values, *, previous: bool):
        if values is None:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(
            url, self.cursor_query_param, cursor_encode(values, previous=previous)
        )

    def _decode(self, request, width: int) -> dict | None:
        raw = request.query_params.get(self.cursor_query_param)
        if not raw:
            return None
        try:
            token = json.loads(base64.urlsafe_b64decode(raw.encode()).decode())
            values, previous = token["v"], token["p"]
        except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, KeyError):
            raise NotFound(self.invalid_cursor_message) from None
        if (
            not isinstance(values, list)
            or len(values) != width
            or not all(isinstance(v, str) and "\x00" not in v for v in values)
            or not isinstance(previous, bool)
        ):
            raise NotFound(self.invalid_cursor_message)
        return {"values": values, "previous": previous}


def cursor_encode(values: list[str], *, previous: bool = False) -> str:
    """The ``cursor`` of the page after the row with these ordering ``values`` (before
    it, with ``previous``)."""
    token = json.dumps({"v": values, "p": previous}, separators=(",", ":"))
    return base64.urlsafe_b64encode(token.encode()).decode()


def _flip(name: str) -> str:
    return name[1:] if name.startswith("-") else "-" + name


def _values(row, fields: list[str]) -> list[str]:
    out = []
    for name in fields:
        value = getattr(row, name)
        out.append(value.isoformat() if hasattr(value, "isoformat") else str(value))
    return out


def _after(order: list[str], values: list[str]) -> Q:
    """Rows after ``values`` in ``order``: ``(a, b) > (va, vb)`` as ``a >= va AND (a > va
    OR b > vb)``, whose first term lets the database start in the index of ``a``."""
    first = order[0]
    name = first.lstrip("-")
    past = "lt" if first.startswith("-") else "gt"
    if len(order) == 1:
        return Q(**{f"{name}__{past}": values[0]})
    tie = order[1]
    tie_name = tie.lstrip("-")
    tie_past = "lt" if tie.startswith("-") else "gt"
    return Q(**{f"{name}__{past}e": values[0]}) & (
        Q(**{f"{name}__{past}": values[0]}) | Q(**{f"{tie_name}__{tie_past}": values[1]})
    )
