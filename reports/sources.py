"""Where a report's customer and sales figures come from, for given filters: one function per
subject returning a queryset and the aggregates to apply to it, so a report never decides itself
between the daily rollups and the facts.

- Users who see every customer (``reports.view_all_reports``), filtered by at most one customer
  dimension: the daily rollups (``CustomerDaily``, ``SalesDaily``) — a few thousand rows.
- Anyone else (a rep: their own customers, read live from the customer table), or two or more
  dimension filters: the facts (``CustomerFact``, ``SalesFact``), restricted to the scope.

Both give the same numbers (tests/reports/test_sources.py checks every measure both ways).

Usage::

    rows, measures = sales_source(filters, start, end)
    by_day = rows.values("day").annotate(**measures).order_by("day")
    by_rep = rows.values("rep_id").annotate(**measures)
    totals = rows.aggregate(**measures)
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.db.models import Count, DecimalField, IntegerField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from reports.filters import DIMENSIONS, ReportFilters
from reports.models import CustomerDaily, CustomerFact, SalesDaily, SalesFact

CENT = Decimal("0.01")
# The filter names of reports.filters and the rollups' dimension names (the same but one).
_ROLLUP_DIM = {"source": "source", "level": "level", "province": "province", "industry": "industry"}

_MONEY = DecimalField(max_digits=16, decimal_places=2)


def money(value) -> Decimal:
    """A sum of money to the cent (SQLite sums decimals as floats; PostgreSQL is exact already)."""
    return Decimal(value or 0).quantize(CENT)


def _dimension_filters(filters: ReportFilters) -> list[str]:
    return [name for name in DIMENSIONS if getattr(filters, name) is not None]


def uses_rollup(filters: ReportFilters) -> bool:
    return filters.sees_every_customer and len(_dimension_filters(filters)) <= 1


def _rollup(model, filters: ReportFilters, person: str) -> QuerySet:
    dims = _dimension_filters(filters)
    if dims:
        rows = model.objects.filter(dim=_ROLLUP_DIM[dims[0]], value=getattr(filters, dims[0]))
    else:
        rows = model.objects.filter(dim="")
    return rows.filter(filters.people_q(f"{person}_id", "department_id"))


def sales_source(filters: ReportFilters, start: datetime.date, end: datetime.date) -> tuple[QuerySet, dict]:
    """Transactions dated ``start``…``end`` (refunds included): rows with ``day``, ``rep_id`` and
    ``department_id``, and the measures ``net_amount`` (refunds subtracted), ``orders`` (positive
    transactions), ``order_amount``, ``refunds`` (count) and ``refund_amount`` (negative)."""
    zero = Value(Decimal(0), output_field=_MONEY)
    if uses_rollup(filters):
        rows = _rollup(SalesDaily, filters, "rep").filter(day__gte=start, day__lte=end)
        measures = {
            "net_amount": Coalesce(Sum("net_amount"), zero),
            "orders": Coalesce(Sum("orders"), Value(0), output_field=IntegerField()),
            "order_amount": Coalesce(Sum("order_amount"), zero),
            "refunds": Coalesce(Sum("refunds"), Value(0), output_field=IntegerField()),
            "refund_amount": Coalesce(Sum("refund_amount"), zero),
        }
        return rows, measures
    rows = SalesFact.objects.filter(day__gte=start, day__lte=end).filter(
        filters.scope_q("customer_id"), filters.dimension_q(), filters.people_q("rep_id", "department_id")
    )
    measures = {
        "net_amount": Coalesce(Sum("amount"), zero),
        "orders": Count("pk", filter=Q(amount__gt=0)),
        "order_amount": Coalesce(Sum("amount", filter=Q(amount__gt=0)), zero),
        "refunds": Count("pk", filter=Q(amount__lt=0)),
        "refund_amount": Coalesce(Sum("amount", filter=Q(amount__lt=0)), zero),
    }
    return rows, measures


CUSTOMER_EVENTS = {"created": "created_on", "intent": "intent_on", "won": "won_on"}


def customer_source(
    filters: ReportFilters, start: datetime.date | None, end: datetime.date, event: str = "created"
) -> tuple[QuerySet, dict]:
    """Customers whose ``event`` (created, intent: first reached 意向, won: first reached 成交)
    fell on ``start``…``end`` (``start`` None: from the beginning): rows with ``day``, ``owner_id``
    and ``department_id`` and the measure ``customers``; for ``created`` also ``cohort_intent``
    and ``cohort_won`` (of those customers, how many reached 意向 / 成交 since)."""
    if event not in CUSTOMER_EVENTS:
        raise ValueError(event)
    if uses_rollup(filters):
        rows = _rollup(CustomerDaily, filters, "owner").filter(day__lte=end)
        if start is not None:
            rows = rows.filter(day__gte=start)
        column = {"created": "created", "intent": "reached_intent", "won": "reached_won"}[event]
        rows = rows.filter(**{f"{column}__gt": 0})
        measures = {"customers": Coalesce(Sum(column), Value(0), output_field=IntegerField())}
        if event == "created":
            measures["cohort_intent"] = Coalesce(Sum("cohort_intent"), Value(0), output_field=IntegerField())
            measures["cohort_won"] = Coalesce(Sum("cohort_won"), Value(0), output_field=IntegerField())
        return rows, measures
    field = CUSTOMER_EVENTS[event]
    rows = CustomerFact.objects.filter(**{f"{field}__lte": end}).filter(
        filters.scope_q("customer_id"), filters.dimension_q(), filters.people_q("owner_id", "department_id")
    )
    if start is not None:
        rows = rows.filter(**{f"{field}__gte": start})
    # The facts name the day after the event; give it the rollups' name so callers group by "day".
    from django.db.models import F

    rows = rows.annotate(day=F(field))
    measures = {"customers": Count("pk")}
    if event == "created":
        measures["cohort_intent"] = Count("pk", filter=Q(intent_on__isnull=False))
        measures["cohort_won"] = Count("pk", filter=Q(won_on__isnull=False))
    return rows, measures


def facts_in_scope(filters: ReportFilters) -> QuerySet:
    """The customer facts the filters select (scope, dimensions, owner and department), for
    figures the rollups cannot give (medians, breakdowns by status)."""
    return CustomerFact.objects.filter(
        filters.scope_q("customer_id"), filters.dimension_q(), filters.people_q("owner_id", "department_id")
    )


def sales_facts_in_scope(filters: ReportFilters, start: datetime.date, end: datetime.date) -> QuerySet:
    return SalesFact.objects.filter(day__gte=start, day__lte=end).filter(
        filters.scope_q("customer_id"), filters.dimension_q(), filters.people_q("rep_id", "department_id")
    )
