"""Pagination that stays fast at a million rows: capped counts and keyset (cursor) pages.

``Paginator`` counts every matching row and jumps with ``OFFSET``; both cost time in proportion to
the table. Here a page is found from the last row of the previous one (``WHERE (key, id) < (…)``
served by an index), and the total is counted only up to a cap ("10,000+" beyond it).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

from django.core import signing
from django.db import models
from django.db.models import Q

COUNT_CAP = 10_000
_INT = re.compile(r"^[0-9]{1,18}$")


@dataclass(frozen=True)
class CappedCount:
    """How many rows matched, exact up to ``cap``; ``capped`` when there are more."""

    value: int
    capped: bool
    cap: int

    @property
    def display(self) -> str:
        return f"{self.cap:,}+" if self.capped else f"{self.value:,}"

    def __str__(self) -> str:
        return self.display


def capped_count(queryset, cap: int = COUNT_CAP) -> CappedCount:
    """Count at most ``cap + 1`` rows: ``SELECT COUNT(*) FROM (SELECT … LIMIT cap+1)``."""
    found = queryset.order_by().values("pk")[: cap + 1].count()
    return CappedCount(value=min(found, cap), capped=found > cap, cap=cap)


@dataclass
class KeysetPage:
    object_list: list
    has_next: bool = False
    has_previous: bool = False
    next_cursor: str = ""
    previous_cursor: str = ""
    extra: dict = field(default_factory=dict)

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)

    @property
    def has_other_pages(self) -> bool:
        return self.has_next or self.has_previous


class KeysetPaginator:
    """Pages of ``queryset`` ordered by ``key`` (a non-null column) with the primary key as tie-break.

    Cursors: for the primary key alone, the id itself (``after=123``); for another key, the pair
    ``(value, id)`` signed with ``django.core.signing`` so that it cannot be forged into SQL input
    of another type. A cursor that does not decode is ignored (first page), never an error.
    """

    def __init__(self, queryset, *, key: str = "pk", descending: bool = True, per_page: int = 30, salt: str = ""):
        self.queryset = queryset
        self.model = queryset.model
        self.key = "pk" if key in ("pk", "id", self.model._meta.pk.name) else key
        self.descending = descending
        self.per_page = per_page
        self.salt = f"cims.keyset.{self.model._meta.label_lower}.{self.key}.{salt}"

    # --- cursors --------------------------------------------------------------------------------

    def _key_field(self) -> models.Field:
        return self.model._meta.pk if self.key == "pk" else self.model._meta.get_field(self.key)

    def encode(self, obj) -> str:
        if self.key == "pk":
            return str(obj.pk)
        value = getattr(obj, self._key_field().attname)
        if isinstance(value, datetime.date | datetime.datetime):
            value = value.isoformat()
        return signing.dumps([value, obj.pk], salt=self.salt, compress=True)

    def decode(self, token: str | None):
        """``(value, pk)`` of a cursor, or None when it is missing or not one of ours."""
        if not token:
            return None
        if self.key == "pk":
            return (int(token), int(token)) if _INT.match(token) else None
        try:
            value, pk = signing.loads(token, salt=self.salt)
        except (signing.BadSignature, ValueError, TypeError):
            return None
        if not isinstance(pk, int) or isinstance(pk, bool):
            return None
        key_field = self._key_field()
        try:
            if isinstance(key_field, models.DateTimeField):
                value = datetime.datetime.fromisoformat(value)
            elif isinstance(key_field, models.DateField):
                value = datetime.date.fromisoformat(value)
            elif isinstance(key_field, models.IntegerField | models.AutoField):
                value = int(value)
            elif not isinstance(value, str):
                return None
        except (TypeError, ValueError):
            return None
        return value, pk

    # --- pages ----------------------------------------------------------------------------------

    def _beyond(self, cursor, *, forward: bool) -> Q:
        """Rows after ``cursor`` in reading order (``forward``) or before it (backwards)."""
        value, pk = cursor
        smaller = self.descending == forward
        if self.key == "pk":
            return Q(pk__lt=pk) if smaller else Q(pk__gt=pk)
        op, op_eq = ("lt", "lte") if smaller else ("gt", "gte")
        # The outer range (key <= value) is what an index on the key serves; the OR settles ties.
        return Q(**{f"{self.key}__{op_eq}": value}) & (
            Q(**{f"{self.key}__{op}": value}) | Q(**{self.key: value, f"pk__{op}": pk})
        )

    def _ordering(self, *, forward: bool) -> list[str]:
        descending = self.descending == forward
        sign = "-" if descending else ""
        if self.key == "pk":
            return [f"{sign}pk"]
        return [f"{sign}{self.key}", f"{sign}pk"]

    def page(self, *, after: str | None = None, before: str | None = None) -> KeysetPage:
        after_cursor = self.decode(after)
        before_cursor = None if after_cursor else self.decode(before)
        if before_cursor:
            rows = list(
                self.queryset.filter(self._beyond(before_cursor, forward=False)).order_by(
                    *self._ordering(forward=False)
                )[: self.per_page + 1]
            )
            has_previous = len(rows) > self.per_page
            rows = list(reversed(rows[: self.per_page]))
            has_next = True
        else:
            queryset = self.queryset
            if after_cursor:
                queryset = queryset.filter(self._beyond(after_cursor, forward=True))
            rows = list(queryset.order_by(*self._ordering(forward=True))[: self.per_page + 1])
            has_next = len(rows) > self.per_page
            rows = rows[: self.per_page]
            has_previous = after_cursor is not None
        if not rows:
            # Walked off either end (a stale cursor): nothing here, but the way back stays open.
            return KeysetPage([], has_previous=bool(after_cursor), has_next=bool(before_cursor))
        return KeysetPage(
            rows,
            has_next=has_next,
            has_previous=has_previous,
            next_cursor=self.encode(rows[-1]) if has_next else "",
            previous_cursor=self.encode(rows[0]) if has_previous else "",
        )


def page_links(request, page) -> dict:
    """Query strings of the previous, next and first pages: the current filters plus one cursor."""

    def with_cursor(name: str | None, value: str = "") -> str:
        params = request.GET.copy()
        for key in ("after", "before"):
            params.pop(key, None)
        if name:
            params[name] = value
        return params.urlencode()

    return {
        "next_query": with_cursor("after", page.next_cursor) if page.next_cursor else "",
        "previous_query": with_cursor("before", page.previous_cursor) if page.previous_cursor else "",
        "first_query": with_cursor(None),
        "show_first": page.has_previous,
    }
