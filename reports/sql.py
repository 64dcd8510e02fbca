"""The few SQL pieces the reports need that differ between PostgreSQL and SQLite.

PostgreSQL (production, the benchmark) computes percentiles in the database; SQLite (the quick
start, a few hundred rows) has no percentile aggregate, so there the values are fetched and the
same linear-interpolation rule is applied in Python (``reports.periods.percentile``).
"""

from __future__ import annotations

from collections import defaultdict

from django.db import connection
from django.db.models import Aggregate, FloatField, QuerySet

from reports.periods import percentile


class PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)``."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        if not 0 <= fraction <= 1:
            raise ValueError(fraction)
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


def percentiles(queryset: QuerySet, expression, points: list[int], *, by: str | None = None) -> dict:
    """The ``points`` percentiles (e.g. [50, 90]) of ``expression`` (a number) over ``queryset``,
    rows with a null value left out: ``{point: value}``, or with ``by`` (a field name)
    ``{group: {point: value}}``. Values are None where there are no rows."""
    queryset = queryset.annotate(_value=expression).filter(_value__isnull=False)
    if connection.vendor == "postgresql":
        aggregates = {f"p{point}": PercentileCont("_value", point / 100) for point in points}
        if by is None:
            row = queryset.aggregate(**aggregates)
            return {point: row[f"p{point}"] for point in points}
        rows = queryset.values(by).order_by().annotate(**aggregates)
        return {row[by]: {point: row[f"p{point}"] for point in points} for row in rows}
    if by is None:
        values = [float(v) for v in queryset.values_list("_value", flat=True)]
        return {point: percentile(values, point) for point in points}
    groups: dict = defaultdict(list)
    for key, value in queryset.values_list(by, "_value"):
        groups[key].append(float(value))
    return {key: {point: percentile(values, point) for point in points} for key, values in groups.items()}
