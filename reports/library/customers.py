"""The customer reports: the customer base (客户分析) and the conversion funnel (转化漏斗).

Where the figures come from is ``reports.sources``' rule. Users who see every customer, filtered by
at most one customer dimension, read the daily rollups for the counts by day; the splits the
rollups cannot give (the status mix, a dimension split while another one filters, the percentiles
of days between stages) come from the customer facts in scope. Anyone else (a rep: their own and
shared customers, read live from the customer table) and two or more dimension filters read the
facts only, and then in one query per page: resolving a rep's scope is most of the cost of such a
query (a hundred thousand customers at the benchmark's size), so it is paid once, and every
grouping the page needs is taken from that one pass (``grouped_counts``).
"""

from __future__ import annotations

import datetime
from collections import defaultdict

from django.db import connection
from django.db.models import Case, CharField, Count, F, FloatField, Func, IntegerField, QuerySet, Sum, Value, When
from django.db.models.functions import Cast
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from customers.models import Customer, CustomerLevel, CustomerSource, CustomerType, Industry, Province
from reports import charts, facts, periods
from reports.filters import DIMENSIONS, ReportFilters
from reports.models import CustomerDaily
from reports.registry import DAYS, NUMBER, PERCENT, TEXT, Chart, Figure, Report, ReportResult, Table, register
from reports.sources import customer_source, facts_in_scope, uses_rollup
from reports.sql import percentiles

PERMISSIONS = ("reports.view_all_reports", "customers.view_customer")

# The customer dimensions the breakdowns split by, in the order the page shows them.
LOOKUPS = {
    "source": CustomerSource,
    "level": CustomerLevel,
    "customer_type": CustomerType,
    "province": Province,
    "industry": Industry,
}
STATUS = "status"
# The percentiles of the days between stages: the median and the 90th.
POINTS = [50, 90]


# --- Queries ---------------------------------------------------------------------------------------


def lookup_names() -> dict[str, list[tuple[int, str, bool]]]:
    """Every lookup's ``(id, name, in use)`` in its display order, all five in one UNION query."""
    parts = []
    for kind, model in LOOKUPS.items():
        if model is Province:
            # Provinces read best in their official (GB/T 2260 code) order and are never retired.
            rank, active = Cast("code", IntegerField()), Value(True)
        else:
            rank, active = F("sort_order"), F("is_active")
        parts.append(
            model.objects.order_by()
            .annotate(kind=Value(kind, output_field=CharField()), rank=rank, active=active)
            .values_list("kind", "rank", "name", "id", "active")
        )
    found: dict[str, list[tuple[int, str, bool]]] = {kind: [] for kind in LOOKUPS}
    for kind, _rank, name, pk, active in sorted(parts[0].union(*parts[1:], all=True)):
        found[kind].append((pk, name, bool(active)))
    return found


def grouped_counts(queryset: QuerySet, sets: list[tuple[str, ...]], counted: tuple[str, ...] = ()) -> list[dict]:
    """The rows of ``queryset`` counted by each of ``sets`` (tuples of field or annotation names),
    in one query: per set ``{(value, …): [rows, rows where counted[0] is not null, …]}``.

    PostgreSQL groups by every set in the same pass (GROUPING SETS), so the scan and the scope
    behind ``queryset`` are paid once however many breakdowns a page shows. SQLite has no grouping
    sets: there the quick start's few rows are grouped by every column at once and added up here.
    """
    columns = list(dict.fromkeys(column for group in sets for column in group))
    width = 1 + len(counted)
    found: list[dict] = [defaultdict(lambda: [0] * width) for _group in sets]
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        sql, params = queryset.order_by().values(*dict.fromkeys([*columns, *counted])).query.sql_with_params()
        names = ", ".join(quote(column) for column in columns)
        measures = ", ".join(["COUNT(*)", *(f"COUNT({quote(column)})" for column in counted)])
        grouping = ", ".join("(" + ", ".join(quote(column) for column in group) + ")" for group in sets)
        # GROUPING(a, b, …) sets a bit for each column a row is not grouped by (the first column
        # the highest bit): each set has its own pattern.
        last = len(columns) - 1
        masks = {
            sum(1 << (last - i) for i, column in enumerate(columns) if column not in group): index
            for index, group in enumerate(sets)
        }
        query = f"SELECT GROUPING({names}), {names}, {measures} FROM ({sql}) AS f GROUP BY GROUPING SETS ({grouping})"  # noqa: S608 - our column names; values are parameters
        with connection.cursor() as cursor:
            cursor.execute(query, params)
            for mask, *row in cursor.fetchall():
                index = masks[mask]
                values = dict(zip(columns, row[: len(columns)], strict=True))
                slot = found[index][tuple(values[column] for column in sets[index])]
                for i, number in enumerate(row[len(columns) :]):
                    slot[i] += number
    else:
        aggregates = {"_rows": Count("pk"), **{f"_n{i}": Count(column) for i, column in enumerate(counted)}}
        for row in queryset.order_by().values(*columns).annotate(**aggregates):
            numbers = [row["_rows"], *(row[f"_n{i}"] for i in range(len(counted)))]
            for index, group in enumerate(sets):
                slot = found[index][tuple(row[column] for column in group)]
                for i, number in enumerate(numbers):
                    slot[i] += number
    return [dict(groups) for groups in found]


def _single(groups: dict) -> dict:
    """A one-column set's groups as ``{value: rows}``."""
    return {key[0]: numbers[0] for key, numbers in groups.items()}


class DaysBetween(Func):
    """The days from date column ``start`` to date column ``end`` (null when either is)."""

    output_field = FloatField()
    template = "(%(expressions)s)"
    arg_joiner = " - "

    def __init__(self, start: str, end: str):
        super().__init__(F(end), F(start))

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="(julianday(%(expressions)s))", arg_joiner=") - julianday(", **extra
        )


def percentile_of_counts(counts: dict, point: float) -> float | None:
    """``reports.periods.percentile`` (PostgreSQL's percentile_cont) of values given as
    ``{value: how many}``: the days between stages are whole days, so a few hundred groups give
    the same answer as sorting every customer's value."""
    ordered = sorted((value, number) for value, number in counts.items() if value is not None and number)
    total = _measured(counts)
    if not total:
        return None

    def nth(index: int):
        seen = 0
        for value, number in ordered:
            seen += number
            if index < seen:
                return value
        raise IndexError(index)

    position = (total - 1) * point / 100
    low = int(position)
    high = min(low + 1, total - 1)
    return float(nth(low) + (nth(high) - nth(low)) * (position - low))


def _measured(counts: dict) -> int:
    """How many values ``{value: how many}`` holds (None: no value)."""
    return sum(number for value, number in counts.items() if value is not None)


# --- Tables ----------------------------------------------------------------------------------------


def _with_shares(rows: list[list]) -> list[list]:
    total = sum(row[1] for row in rows)
    return [[name, number, periods.ratio(number, total)] for name, number in rows]


def _breakdown_rows(counts: dict, choices: list[tuple[int, str, bool]]) -> list[list]:
    """Every value of a lookup (retired ones only when they have customers), most customers
    first, then 未填写 for customers without one; each with its share of the total."""
    rows = [[name, counts.get(pk, 0)] for pk, name, active in choices if active or counts.get(pk)]
    # A stable sort: ties keep the lookup's own order.
    rows.sort(key=lambda row: -row[1])
    rows.append([gettext("Not given"), counts.get(None, 0)])
    return _with_shares(rows)


def _daily(rows: QuerySet, measures: dict, names: list[str]) -> list[tuple]:
    """``(day, measure, …)`` per day, oldest first."""
    selected = {name: measures[name] for name in names}
    return list(rows.values("day").annotate(**selected).order_by("day").values_list("day", *names))


def _sum_between(daily: list[tuple], start: datetime.date | None, end: datetime.date, index: int = 1) -> int:
    return sum(row[index] for row in daily if (start is None or row[0] >= start) and row[0] <= end)


# --- 客户分析 -------------------------------------------------------------------------------------


@register
class CustomersReport(Report):
    key = "customers"
    title = _("Customer analysis")
    description = _(
        "How many customers there are and where they come from: growth over time, and the customers by source, level, type, province, industry and lifecycle status."
    )
    icon = "people"
    permissions = PERMISSIONS
    summaries = (facts.CUSTOMERS,)
    default_period = periods.MONTH

    def compute(self, filters: ReportFilters) -> ReportResult:
        start, end, period = filters.start, filters.end, filters.period
        previous_start, previous_end = filters.previous
        counts = self._counts(filters)
        names = lookup_names()
        daily = sorted(counts["day"].items())
        total = _sum_between(daily, None, end)
        new = _sum_between(daily, start, end)
        new_before = _sum_between(daily, previous_start, previous_end)
        # Customers at the end of the previous range: every one created before this range began.
        total_before = total - new

        result = ReportResult()
        result.figures = [
            Figure(
                gettext("Customers at the end of the range"),
                total,
                NUMBER,
                previous=total_before,
                note=gettext("Created up to %(date)s") % {"date": end.isoformat()},
            ),
            Figure(gettext("New customers"), new, NUMBER, previous=new_before),
        ]

        folded = periods.fold(daily, start, end, period)
        labels = [periods.label(bucket, period) for bucket in folded]
        news, cumulative, running = [], [], total_before
        for (value,) in folded.values():
            running += value
            news.append(value)
            cumulative.append(running)
        result.tables.append(
            Table(
                key="growth",
                title=gettext("Customer growth"),
                headers=[gettext("Period"), gettext("New customers"), gettext("Customers (cumulative)")],
                rows=[[label, value, count] for label, value, count in zip(labels, news, cumulative, strict=True)],
                kinds=[TEXT, NUMBER, NUMBER],
            )
        )
        result.charts.append(
            Chart(
                key="growth",
                title=gettext("Customer growth"),
                figure=(
                    charts.line(
                        labels,
                        [(gettext("Customers (cumulative)"), cumulative)],
                        bars=[(gettext("New customers"), news)],
                        y_title=gettext("New customers"),
                        y2_title=gettext("Customers (cumulative)"),
                    )
                ),
                table="growth",
            )
        )

        shown = [
            ("source", gettext("Customers by source"), gettext("Source"), "bar"),
            ("level", gettext("Customers by level"), gettext("Level"), "pie"),
            ("customer_type", gettext("Customers by customer type"), gettext("Customer type"), "pie"),
            ("province", gettext("Customers by province"), gettext("Province"), "bar"),
            ("industry", gettext("Customers by industry"), gettext("Industry"), "bar"),
        ]
        for dim, title, heading, kind in shown:
            self._add_breakdown(result, dim, title, heading, kind, _breakdown_rows(counts[dim], names[dim]))
        statuses = counts[STATUS]
        status_rows = _with_shares([[str(label), statuses.get(value, 0)] for value, label in Customer.Status.choices])
        self._add_breakdown(
            result, STATUS, gettext("Customers by lifecycle status"), gettext("Lifecycle status"), "pie", status_rows
        )

        result.notes = [
            gettext(
                "The breakdowns count the customers created up to %(date)s who are still on file (customers deleted since are not counted)."
            )
            % {"date": end.isoformat()},
            gettext(
                "The lifecycle status mix is each of those customers' status today, not the status they had on %(date)s."
            )
            % {"date": end.isoformat()},
        ]
        return result

    @staticmethod
    def _add_breakdown(result: ReportResult, key: str, title: str, heading: str, kind: str, rows: list[list]) -> None:
        result.tables.append(
            Table(
                key=key,
                title=title,
                headers=[heading, gettext("Customers"), gettext("Share of customers")],
                rows=rows,
                kinds=[TEXT, NUMBER, PERCENT],
            )
        )
        labels, values = [row[0] for row in rows], [row[1] for row in rows]
        if kind == "pie":
            figure = charts.pie(labels, values)
        else:
            figure = charts.bar(labels, [(gettext("Customers"), values)], horizontal=True)
        result.charts.append(Chart(key=key, title=title, figure=figure, table=key))

    @staticmethod
    def _counts(filters: ReportFilters) -> dict[str, dict]:
        """The customers created up to the end date: ``{"day": {day: new}, dimension: {id: n},
        "status": {status: n}}`` (None: the dimension is not filled in)."""
        end = filters.end
        columns = {dim: f"{dim}_id" for dim in LOOKUPS} | {STATUS: STATUS}
        rows, measures = customer_source(filters, None, end)
        if not uses_rollup(filters):
            # The facts in scope: the days and every breakdown from one pass.
            sets = [("day",), *((column,) for column in columns.values())]
            days, *splits = grouped_counts(rows, sets)
            return {"day": _single(days)} | {dim: _single(groups) for dim, groups in zip(columns, splits, strict=True)}
        found: dict[str, dict] = {"day": dict(_daily(rows, measures, ["customers"]))}
        in_scope = facts_in_scope(filters).filter(created_on__lte=end)
        if filters.has_dimensions():
            # The rollups split by one dimension at a time: while one filters, the others come
            # from the facts (those of the filtered value: an index scan).
            splits = grouped_counts(in_scope, [(column,) for column in columns.values()])
            return found | {dim: _single(groups) for dim, groups in zip(columns, splits, strict=True)}
        # Every customer: each dimension's split from the rollups (a few hundred thousand rows where
        # the facts are a million), the status from the facts.
        for dim in columns:
            found[dim] = {}
        split = (
            CustomerDaily.objects.filter(dim__in=list(LOOKUPS), day__lte=end, created__gt=0)
            .filter(filters.people_q("owner_id", "department_id"))
            .values_list("dim", "value")
            .annotate(customers=Sum("created"))
            .order_by()
        )
        for dim, value, number in split:
            found[dim][value] = number
        found[STATUS] = dict(in_scope.values_list(STATUS).annotate(customers=Count("pk")).order_by())
        return found


# --- 转化漏斗 ---------------------------------------------------------------------------------------


def _stage_names() -> list[str]:
    return [str(Customer.Status.PROSPECT.label), str(Customer.Status.INTENT.label), str(Customer.Status.WON.label)]


def _rates(created: int, intent: int, won: int) -> list:
    """意向/潜在, 成交/意向 and 成交/潜在 (None where a stage is empty)."""
    return [periods.ratio(intent, created), periods.ratio(won, intent), periods.ratio(won, created)]


def _percent_axis(figure: dict, axis: str = "yaxis") -> dict:
    figure["layout"].setdefault(axis, {})["tickformat"] = ".0%"
    return figure


def _days_from(since: datetime.date, start: str, end: str) -> Case:
    """Days from stage date ``start`` to ``end`` of customers created from ``since`` on (null for
    the earlier ones: the facts path reads the previous range's cohort in the same pass)."""
    return Case(When(created_on__gte=since, then=DaysBetween(start, end)), default=None, output_field=FloatField())


@register
class FunnelReport(Report):
    key = "funnel"
    title = _("Conversion funnel")
    description = _(
        "Of the customers created in the range, how many reached intent and how many were won: conversion rates between the stages, by source and by period, and the days each stage took."
    )
    icon = "funnel"
    permissions = PERMISSIONS
    summaries = (facts.CUSTOMERS,)
    default_period = periods.MONTH

    def compute(self, filters: ReportFilters) -> ReportResult:
        start, end, period = filters.start, filters.end, filters.period
        previous_start, previous_end = filters.previous
        daily, by_source, stage_days = self._counts(filters)
        source_rows = self._source_rows(by_source)
        now = [_sum_between(daily, start, end, index) for index in (1, 2, 3)]
        before = [_sum_between(daily, previous_start, previous_end, index) for index in (1, 2, 3)]
        stages = _stage_names()
        rate_names = [gettext("Prospect → intent"), gettext("Intent → won"), gettext("Prospect → won")]
        medians = [days[50] for days in stage_days]

        result = ReportResult()
        result.figures = [
            *(Figure(name, value, NUMBER, previous=old) for name, value, old in zip(stages, now, before, strict=True)),
            *(
                Figure(name, rate, PERCENT, previous=old)
                for name, rate, old in zip(rate_names, _rates(*now), _rates(*before), strict=True)
            ),
            Figure(gettext("Median days to intent"), medians[0], DAYS, lower_is_better=True),
            Figure(gettext("Median days from intent to won"), medians[1], DAYS, lower_is_better=True),
        ]

        result.tables.append(
            Table(
                key="funnel",
                title=gettext("Conversion funnel"),
                headers=[
                    gettext("Stage"),
                    gettext("Customers"),
                    gettext("From the stage before"),
                    gettext("From prospects"),
                ],
                rows=[
                    [stages[0], now[0], None, periods.ratio(now[0], now[0])],
                    [stages[1], now[1], periods.ratio(now[1], now[0]), periods.ratio(now[1], now[0])],
                    [stages[2], now[2], periods.ratio(now[2], now[1]), periods.ratio(now[2], now[0])],
                ],
                kinds=[TEXT, NUMBER, PERCENT, PERCENT],
                note=gettext("The cohort is the customers created from %(start)s to %(end)s.")
                % {"start": start.isoformat(), "end": end.isoformat()},
            )
        )
        result.charts.append(
            Chart(key="funnel", title=gettext("Conversion funnel"), figure=charts.funnel(stages, now), table="funnel")
        )

        result.tables.append(
            Table(
                key="by_source",
                title=gettext("Conversion by source"),
                headers=[gettext("Source"), *stages, *rate_names],
                rows=source_rows,
                kinds=[TEXT, NUMBER, NUMBER, NUMBER, PERCENT, PERCENT, PERCENT],
            )
        )
        result.charts.append(
            Chart(
                key="by_source",
                title=gettext("Conversion by source"),
                figure=_percent_axis(
                    charts.bar(
                        [row[0] for row in source_rows],
                        [(name, [row[4 + index] for row in source_rows]) for index, name in enumerate(rate_names)],
                        y_title=gettext("Conversion rate"),
                    )
                ),
                table="by_source",
            )
        )

        folded = periods.fold(daily, start, end, period, width=3)
        period_rows = [
            [periods.label(bucket, period), created, intent, won, periods.ratio(won, created)]
            for bucket, (created, intent, won) in folded.items()
        ]
        result.tables.append(
            Table(
                key="periods",
                title=gettext("Cohorts by period"),
                headers=[gettext("Period"), *stages, rate_names[2]],
                rows=period_rows,
                kinds=[TEXT, NUMBER, NUMBER, NUMBER, PERCENT],
                note=gettext(
                    "Each period's cohort is the customers created in it, and how many of them were won since."
                ),
            )
        )
        result.charts.append(
            Chart(
                key="periods",
                title=gettext("Cohorts by period"),
                figure=_percent_axis(
                    (
                        charts.line(
                            [row[0] for row in period_rows],
                            [(rate_names[2], [row[4] for row in period_rows])],
                            bars=[(stages[0], [row[1] for row in period_rows])],
                            y_title=gettext("Customers created"),
                            y2_title=rate_names[2],
                        )
                    ),
                    "yaxis2",
                ),
                table="periods",
            )
        )

        result.tables.append(
            Table(
                key="stage_days",
                title=gettext("Days between stages"),
                headers=[
                    gettext("Stages"),
                    gettext("Customers"),
                    gettext("Median (days)"),
                    gettext("90th percentile (days)"),
                ],
                rows=[
                    # Measured: those who reached 意向 (so have both dates), and those won.
                    [rate_names[index], now[index + 1], days[50], days[90]]
                    for index, days in enumerate(stage_days)
                ],
                kinds=[TEXT, NUMBER, DAYS, DAYS],
                note=gettext(
                    "Calendar days (Asia/Shanghai) between the days each stage was first reached, for the customers of the cohort who reached it."
                ),
            )
        )
        return result

    @staticmethod
    def _counts(filters: ReportFilters) -> tuple[list[tuple], dict, list[dict]]:
        """The cohort counts by day from the start of the previous range (``(day, created, reached
        意向, reached 成交)``), this range's cohort by source (``{source id: [created, 意向, 成交]}``)
        and the median and 90th percentile of its days to 意向 and from 意向 to 成交
        (``[{50: days, 90: days}, {…}]``)."""
        start, end = filters.start, filters.end
        previous_start, _previous_end = filters.previous
        rows, measures = customer_source(filters, previous_start, end)
        if uses_rollup(filters):
            daily = _daily(rows, measures, ["customers", "cohort_intent", "cohort_won"])
            cohort = facts_in_scope(filters).filter(created_on__gte=start, created_on__lte=end)
            dims = [name for name in DIMENSIONS if getattr(filters, name) is not None]
            if dims in ([], ["source"]):
                split = CustomerDaily.objects.filter(dim="source", day__gte=start, day__lte=end, created__gt=0)
                if filters.source is not None:
                    split = split.filter(value=filters.source)
                split = (
                    split.filter(filters.people_q("owner_id", "department_id"))
                    .values_list("value")
                    .annotate(created_=Sum("created"), intent=Sum("cohort_intent"), won=Sum("cohort_won"))
                )
            else:
                split = cohort.values_list("source_id").annotate(
                    created=Count("pk"), intent=Count("intent_on"), won=Count("won_on")
                )
            by_source = {source: [created, intent, won] for source, created, intent, won in split.order_by()}
            stage_days = [
                percentiles(cohort, DaysBetween("created_on", "intent_on"), POINTS),
                percentiles(cohort, DaysBetween("intent_on", "won_on"), POINTS),
            ]
            return daily, by_source, stage_days
        # The facts in scope of both ranges in one pass (a rep's scope is resolved once). Whole days
        # have few distinct values, so each stage's days are counted per value and the percentiles
        # taken from those counts: the same figures as percentile_cont over every customer.
        days = {
            "to_intent": _days_from(start, "created_on", "intent_on"),
            "to_won": _days_from(start, "intent_on", "won_on"),
        }
        sets = [("day", "source_id"), ("to_intent",), ("to_won",)]
        by_day_source, *by_days = grouped_counts(rows.annotate(**days), sets, ("intent_on", "won_on"))
        totals: dict = defaultdict(lambda: [0, 0, 0])
        by_source: dict = defaultdict(lambda: [0, 0, 0])
        for (day, source), numbers in by_day_source.items():
            totals[day] = [a + b for a, b in zip(totals[day], numbers, strict=True)]
            if start <= day <= end:
                by_source[source] = [a + b for a, b in zip(by_source[source], numbers, strict=True)]
        daily = [(day, *numbers) for day, numbers in sorted(totals.items())]
        stage_days = [{point: percentile_of_counts(_single(groups), point) for point in POINTS} for groups in by_days]
        return daily, dict(by_source), stage_days

    @staticmethod
    def _source_rows(by_source: dict) -> list[list]:
        """The cohort's stages and rates per source, the largest cohort first (未填写 last)."""
        by_source = {value: numbers for value, numbers in by_source.items() if numbers[0]}
        known = [value for value in by_source if value is not None]
        names = dict(CustomerSource.objects.filter(pk__in=known).values_list("pk", "name"))
        known.sort(key=lambda value: (-by_source[value][0], names.get(value, "")))
        rows = [[names.get(value, str(value)), *by_source[value], *_rates(*by_source[value])] for value in known]
        if None in by_source:
            rows.append([gettext("Not given"), *by_source[None], *_rates(*by_source[None])])
        return rows
