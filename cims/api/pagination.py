"""Keyset (cursor) pagination for the API: the UI's KeysetPaginator behind DRF's interface.

``?after=<cursor>`` / ``?before=<cursor>`` with opaque cursors from ``next``/``previous``;
``?page_size=`` up to MAX_PAGE_SIZE. A view sets ``keyset_key`` / ``keyset_descending`` (default:
newest id first) or overrides ``keyset_order(request)`` for a sort the client chose.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from cims.pagination import KeysetPaginator

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def _page_size(request) -> int:
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    raw = request.query_params.get("page_size", "")
    if re.fullmatch(r"[0-9]{1,6}", raw) and int(raw) > 0:
        return min(int(raw), MAX_PAGE_SIZE)
    return PAGE_SIZE


class KeysetPagination(BasePagination):
    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        order = getattr(view, "keyset_order", None)
        key, descending = order(request) if order else (getattr(view, "keyset_key", "pk"), True)
        paginator = KeysetPaginator(queryset, key=key, descending=descending, per_page=_page_size(request))
        self.page = paginator.page(
            after=request.query_params.get("after") or None, before=request.query_params.get("before") or None
        )
        return list(self.page.object_list)

    def _link(self, name: str, cursor: str) -> str | None:
        if not cursor:
            return None
        params = {k: v for k, v in self.request.query_params.items() if k not in ("after", "before")}
        params[name] = cursor
        return self.request.build_absolute_uri(self.request.path) + "?" + urlencode(params)

    def get_paginated_response(self, data) -> Response:
        return Response(
            {
                "next": self._link("after", self.page.next_cursor),
                "previous": self._link("before", self.page.previous_cursor),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view) -> list[dict]:
        cursor = {"type": "string"}
        return [
            {"name": "after", "in": "query", "required": False, "schema": cursor, "description": "next page cursor"},
            {"name": "before", "in": "query", "required": False, "schema": cursor, "description": "previous page"},
            {
                "name": "page_size",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
            },
        ]
