"""The service report (服务分析): tickets filed per period and by category, severity and channel;
the time to first response and to resolution (median and p90); the SLA breach rate; satisfaction
by category and by agent.

Tickets are read from the summary table ``reports.TicketFact`` (refreshed with the other facts,
``reports.facts``): a narrow row per ticket of a live customer with its Shanghai dates, hours and
SLA outcome, so a year of tickets is a scan of a small table by date rather than of the wide
ticket table with an anti-join on deleted customers. A handful of grouped queries over the range
and the one before it, days folded into periods here (``reports.periods.fold``), percentiles in
the database on PostgreSQL (``reports.sql``). The dashboard's open tickets stay live
(``tickets_in_scope``).
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from django.db import connection
from django.db.models import (
    Case,
    Count,
    F,
    FloatField,
    Func,
    IntegerField,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from complaints.models import Ticket, TicketCategory
from reports import charts, facts, periods
from reports.filters import ReportFilters
from reports.models import TicketFact
from reports.registry import HOURS, NUMBER, PERCENT, RATING, TEXT, Chart, Figure, Report, ReportResult, Table, register
from reports.sql import PercentileCont

POINTS = [50, 90]
# The agent chart stays readable; the table under it lists every agent.
AGENTS_SHOWN = 20


class Hours(Func):
    """The hours from datetime column ``start`` to ``end``, as a float (NULL when either is).

    PostgreSQL subtracts to an interval and takes its seconds; SQLite keeps datetimes as UTC text,
    where subtracting them would compare strings, so there the two Julian day numbers are
    subtracted (fractional days, exact to well under a second).
    """

    output_field = FloatField()
    arity = 2
    template = "(CAST(EXTRACT(EPOCH FROM (%(expressions)s)) AS double precision) / 3600.0)"
    arg_joiner = " - "

    def __init__(self, end, start, **extra):
        super().__init__(
            F(end) if isinstance(end, str) else end, F(start) if isinstance(start, str) else start, **extra
        )

    def as_sqlite(self, compiler, connection, **extra_context):
        end, end_params = compiler.compile(self.source_expressions[0])
        start, start_params = compiler.compile(self.source_expressions[1])
        return f"((julianday({end}) - julianday({start})) * 24.0)", (*end_params, *start_params)


def tickets_in_scope(filters: ReportFilters) -> QuerySet:
    """The live tickets the filters cover (what must be current, such as the open ones now): of the
    live customers in the user's scope (service staff and report-wide users: every customer) and
    the customer dimensions; the rep and department filters select the customer's current owner."""
    tickets = Ticket.objects.filter(filters.customers_q("customer"), filters.people_q("customer__owner"))
    return filters.live_only(tickets).order_by()


def ticket_facts_in_scope(filters: ReportFilters) -> QuerySet:
    """The ticket facts the filters cover: the user's scope on the customer, the customer
    dimensions and the owner (rep and department filters) as of the last refresh, on the fact."""
    return TicketFact.objects.filter(
        filters.scope_q("customer_id"), filters.dimension_q(), filters.people_q("owner_id", "department_id")
    ).order_by()


TIMES = {"response": "first_response_hours", "resolve": "resolve_hours"}


def ticket_times(tickets: QuerySet, categories: list[int]) -> dict:
    """The hours to first response and to resolution of ``tickets`` (those filed in the range):
    median and p90 overall and by category, ``{"response": {"all": {50: h, 90: h}, "categories":
    {pk: {50: h, 90: h}}}, "resolve": …}``. A ticket not yet answered (resolved) is left out of
    that measure; None where no ticket is left. ``tickets`` are TicketFact rows.

    PostgreSQL computes all of it in one pass over the facts, each percentile an ordered-set
    aggregate with a FILTER per category (reports.sql.PercentileCont): ``reports.sql.percentiles``
    would scan and sort the range once per measure and grouping, four times. SQLite fetches the
    values and applies the same interpolation (``reports.periods.percentile``).
    """
    if connection.vendor != "postgresql":
        rows = list(tickets.values_list("category_id", *TIMES.values()))
        found = {}
        for index, name in enumerate(TIMES, start=1):
            everyone, by_category = [], defaultdict(list)
            for row in rows:
                if row[index] is not None:
                    everyone.append(row[index])
                    by_category[row[0]].append(row[index])
            found[name] = {
                "all": {point: periods.percentile(everyone, point) for point in POINTS},
                "categories": {
                    pk: {point: periods.percentile(hours, point) for point in POINTS}
                    for pk, hours in by_category.items()
                },
            }
        return found
    aggregates = {}
    for name, column in TIMES.items():
        hours = F(column)
        for point in POINTS:
            aggregates[f"{name}_{point}"] = PercentileCont(hours, point / 100)
            for pk in categories:
                aggregates[f"{name}_{point}_{pk}"] = PercentileCont(hours, point / 100, filter=Q(category_id=pk))
    row = tickets.aggregate(**aggregates)
    return {
        name: {
            "all": {point: row[f"{name}_{point}"] for point in POINTS},
            "categories": {
                pk: {point: row[f"{name}_{point}_{pk}"] for point in POINTS}
                for pk in categories
                if row[f"{name}_50_{pk}"] is not None
            },
        }
        for name in TIMES
    }


def _measures() -> dict:
    return {
        "filed": Count("pk"),
        "resolved": Count("pk", filter=Q(resolve_hours__isnull=False)),
        "with_due": Count("pk", filter=Q(due=True)),
        "breached": Count("pk", filter=Q(breached=True)),
    }


def _hours(value: float | None) -> float | None:
    # Two decimals: the databases' float arithmetic differs in the last digits, a reader never does.
    return None if value is None else round(float(value), 2)


def _average(total, count) -> Decimal | None:
    return periods.ratio(total, count, digits=2)


def _share(part, whole) -> Decimal | None:
    return periods.ratio(part, whole)


def agent_labels(ids) -> dict[int, str]:
    """Display names of the agents: one query for all of them."""
    ids = [pk for pk in ids if pk is not None]
    if not ids:
        return {}
    users = User.objects.filter(pk__in=ids).only("pk", "name", "first_name", "last_name", "username")
    return {user.pk: user.display_name for user in users}


@register
class ServiceReport(Report):
    key = "service"
    title = _("Service analysis")
    description = _(
        "Tickets by category, severity and channel; time to first response and to resolution; "
        "the SLA breach rate; customer satisfaction by category and agent."
    )
    icon = "headset"
    permissions = ("reports.view_all_reports", "complaints.view_ticket")
    summaries = (facts.CUSTOMERS, facts.TICKETS)
    default_period = periods.MONTH

    def compute(self, filters: ReportFilters) -> ReportResult:
        before_start, _before_end = filters.previous
        tickets = ticket_facts_in_scope(filters)
        both = tickets.filter(created_on__gte=before_start, created_on__lte=filters.end)
        filed = tickets.filter(created_on__gte=filters.start, created_on__lte=filters.end)

        by_day = list(
            both.values("created_on")
            .annotate(**_measures())
            .values_list("created_on", "filed", "resolved", "with_due", "breached")
        )
        by_dims = list(
            filed.values("category_id", "severity", "channel").annotate(
                **_measures(), open=Count("pk", filter=Q(status__in=Ticket.OPEN_STATUSES))
            )
        )
        categories = dict(TicketCategory.objects.order_by("sort_order", "name").values_list("pk", "name"))
        times = ticket_times(filed, list(categories))
        ratings = list(
            tickets.filter(rated_on__gte=before_start, rated_on__lte=filters.end, rating__isnull=False)
            .annotate(
                window=Case(
                    When(rated_on__gte=filters.start, then=Value(1)), default=Value(0), output_field=IntegerField()
                )
            )
            .values("window", "category_id", "assignee_id")
            .annotate(n=Count("pk"), total=Sum("rating"))
        )
        agents = agent_labels({row["assignee_id"] for row in ratings if row["window"] == 1})

        result = ReportResult()
        current, previous = self._period_parts(result, filters, by_day)
        self._dimension_parts(result, by_dims, categories)
        self._time_parts(result, times, categories)
        satisfaction = self._satisfaction_parts(result, ratings, categories, agents)
        result.figures = self._figures(current, previous, times, satisfaction)
        result.notes = self._notes(filters)
        return result

    # --- Parts --------------------------------------------------------------------------------

    def _period_parts(self, result: ReportResult, filters: ReportFilters, by_day: list) -> tuple[list, list]:
        previous = [0, 0, 0, 0]
        for row in by_day:
            if row[0] is not None and row[0] < filters.start:
                previous = [a + b for a, b in zip(previous, row[1:], strict=True)]
        folded = periods.fold(by_day, filters.start, filters.end, filters.period, width=4)
        rows = [
            [periods.label(bucket, filters.period), filed, resolved, with_due, breached, _share(breached, with_due)]
            for bucket, (filed, resolved, with_due, breached) in folded.items()
        ]
        current = [sum(row[index] for row in rows) for index in range(1, 5)]
        result.tables.append(
            Table(
                "periods",
                _("Tickets per period"),
                [
                    _("Period"),
                    _("Filed"),
                    _("Resolved since"),
                    _("With a due time"),
                    _("SLA breached"),
                    _("Breach rate"),
                ],
                rows,
                [TEXT, NUMBER, NUMBER, NUMBER, NUMBER, PERCENT],
            )
        )
        result.charts.append(
            Chart(
                "periods",
                _("Tickets filed and resolved, and the SLA breach rate"),
                charts.line(
                    [row[0] for row in rows],
                    [(_("Breach rate (%)"), [None if row[5] is None else row[5] * 100 for row in rows])],
                    bars=[(_("Filed"), [row[1] for row in rows]), (_("Resolved since"), [row[2] for row in rows])],
                    y_title=str(_("Tickets")),
                    y2_title=str(_("Breach rate (%)")),
                ),
                table="periods",
            )
        )
        return current, previous

    def _dimension_parts(self, result: ReportResult, by_dims: list, categories: dict) -> None:
        total = sum(row["filed"] for row in by_dims)
        sums: dict[str, dict] = {"category_id": {}, "severity": {}, "channel": {}}
        for row in by_dims:
            for dim, found in sums.items():
                slot = found.setdefault(row[dim], [0, 0, 0, 0])
                for index, name in enumerate(("filed", "open", "with_due", "breached")):
                    slot[index] += row[name]

        category_rows = [
            [categories.get(pk, str(pk)), n, _share(n, total), open_, breached, _share(breached, with_due)]
            for pk, (n, open_, with_due, breached) in _in_order(sums["category_id"], list(categories))
        ]
        result.tables.append(
            Table(
                "categories",
                _("Tickets by category"),
                [_("Category"), _("Filed"), _("Share of tickets"), _("Open now"), _("SLA breached"), _("Breach rate")],
                category_rows,
                [TEXT, NUMBER, PERCENT, NUMBER, NUMBER, PERCENT],
            )
        )
        severity_labels = dict(Ticket.Severity.choices)
        severity_rows = [
            [str(severity_labels.get(key, key)), n, _share(n, total), breached, _share(breached, with_due)]
            for key, (n, _open, with_due, breached) in _in_order(sums["severity"], list(severity_labels))
        ]
        result.tables.append(
            Table(
                "severities",
                _("Tickets by severity"),
                [_("Severity"), _("Filed"), _("Share of tickets"), _("SLA breached"), _("Breach rate")],
                severity_rows,
                [TEXT, NUMBER, PERCENT, NUMBER, PERCENT],
            )
        )
        channel_labels = dict(Ticket.Channel.choices)
        channel_rows = [
            [str(channel_labels.get(key, key)), n, _share(n, total)]
            for key, (n, _open, _due, _breached) in _in_order(sums["channel"], list(channel_labels))
        ]
        result.tables.append(
            Table(
                "channels",
                _("Tickets by channel"),
                [_("Channel"), _("Filed"), _("Share of tickets")],
                channel_rows,
                [TEXT, NUMBER, PERCENT],
            )
        )
        if category_rows:
            result.charts.append(
                Chart(
                    "categories",
                    _("Tickets by category"),
                    charts.bar(
                        [row[0] for row in category_rows],
                        [
                            (_("Filed"), [row[1] for row in category_rows]),
                            (_("SLA breached"), [row[4] for row in category_rows]),
                        ],
                        y_title=str(_("Tickets")),
                    ),
                    table="categories",
                )
            )
        if severity_rows:
            result.charts.append(
                Chart(
                    "severities",
                    _("Tickets by severity"),
                    charts.pie([row[0] for row in severity_rows], [row[1] for row in severity_rows]),
                    table="severities",
                )
            )
        if channel_rows:
            result.charts.append(
                Chart(
                    "channels",
                    _("Tickets by channel"),
                    charts.pie([row[0] for row in channel_rows], [row[1] for row in channel_rows]),
                    table="channels",
                )
            )

    def _time_parts(self, result: ReportResult, times: dict, categories: dict) -> None:
        response, resolve = times["response"], times["resolve"]
        rows = [
            [
                str(_("All categories")),
                _hours(response["all"][50]),
                _hours(response["all"][90]),
                _hours(resolve["all"][50]),
                _hours(resolve["all"][90]),
            ]
        ]
        found = set(response["categories"]) | set(resolve["categories"])
        empty = dict.fromkeys(POINTS)
        for pk in [pk for pk in categories if pk in found] + sorted(pk for pk in found if pk not in categories):
            first, done = response["categories"].get(pk, empty), resolve["categories"].get(pk, empty)
            rows.append(
                [categories.get(pk, str(pk)), _hours(first[50]), _hours(first[90]), _hours(done[50]), _hours(done[90])]
            )
        result.tables.append(
            Table(
                "times",
                _("Time to first response and to resolution (hours)"),
                [
                    _("Category"),
                    _("First response, median"),
                    _("First response, p90"),
                    _("Resolution, median"),
                    _("Resolution, p90"),
                ],
                rows,
                [TEXT, HOURS, HOURS, HOURS, HOURS],
                note=_("Hours from filing; tickets not yet answered or resolved are left out of that column."),
            )
        )
        if len(rows) > 1:
            result.charts.append(
                Chart(
                    "times",
                    _("Median hours to first response and to resolution"),
                    charts.bar(
                        [row[0] for row in rows[1:]],
                        [
                            (_("First response, median"), [row[1] for row in rows[1:]]),
                            (_("Resolution, median"), [row[3] for row in rows[1:]]),
                        ],
                        y_title=str(_("Hours")),
                    ),
                    table="times",
                )
            )

    def _satisfaction_parts(self, result: ReportResult, ratings: list, categories: dict, agents: dict) -> dict:
        by_category: dict = defaultdict(lambda: [0, 0])
        by_agent: dict = defaultdict(lambda: [0, 0])
        totals = {0: [0, 0], 1: [0, 0]}
        for row in ratings:
            totals[row["window"]][0] += row["n"]
            totals[row["window"]][1] += row["total"]
            if row["window"] == 1:
                for found, key in ((by_category, row["category_id"]), (by_agent, row["assignee_id"])):
                    found[key][0] += row["n"]
                    found[key][1] += row["total"]
        category_rows = [
            [categories.get(pk, str(pk)), n, _average(total, n)]
            for pk, (n, total) in _in_order(by_category, list(categories))
        ]
        unassigned = str(_("Unassigned"))
        agent_rows = sorted(
            (
                [agents.get(pk, unassigned) if pk else unassigned, n, _average(total, n)]
                for pk, (n, total) in by_agent.items()
            ),
            key=lambda row: (-row[2], -row[1], row[0]),
        )
        result.tables.append(
            Table(
                "satisfaction_categories",
                _("Satisfaction by category"),
                [_("Category"), _("Ratings"), _("Average (1–5)")],
                category_rows,
                [TEXT, NUMBER, RATING],
                note=_("Tickets rated in the range, whenever they were filed."),
            )
        )
        result.tables.append(
            Table(
                "satisfaction_agents",
                _("Satisfaction by agent"),
                [_("Agent"), _("Ratings"), _("Average (1–5)")],
                agent_rows,
                [TEXT, NUMBER, RATING],
                note=_("The agent the ticket is assigned to now."),
            )
        )
        if category_rows:
            result.charts.append(
                Chart(
                    "satisfaction_categories",
                    _("Average satisfaction by category"),
                    charts.bar(
                        [row[0] for row in category_rows],
                        [(_("Average (1–5)"), [row[2] for row in category_rows])],
                        y_title=str(_("Average (1–5)")),
                    ),
                    table="satisfaction_categories",
                )
            )
        if agent_rows:
            shown = agent_rows[:AGENTS_SHOWN]
            result.charts.append(
                Chart(
                    "satisfaction_agents",
                    _("Average satisfaction by agent"),
                    charts.bar(
                        [row[0] for row in shown],
                        [(_("Average (1–5)"), [row[2] for row in shown])],
                        horizontal=True,
                        y_title=str(_("Average (1–5)")),
                    ),
                    table="satisfaction_agents",
                )
            )
        return {
            "current": (_average(totals[1][1], totals[1][0]), totals[1][0]),
            "previous": (_average(totals[0][1], totals[0][0]), totals[0][0]),
        }

    def _figures(self, current: list, previous: list, times: dict, satisfaction: dict) -> list[Figure]:
        response, resolve = times["response"], times["resolve"]
        average, count = satisfaction["current"]
        return [
            Figure(_("Tickets filed"), current[0], NUMBER, previous=previous[0]),
            Figure(
                _("SLA breach rate"),
                _share(current[3], current[2]),
                PERCENT,
                previous=_share(previous[3], previous[2]),
                lower_is_better=True,
                note=_("%(breached)s of %(due)s tickets with a due time") % {"breached": current[3], "due": current[2]},
            ),
            Figure(
                _("First response, median"),
                _hours(response["all"][50]),
                HOURS,
                lower_is_better=True,
                note=_p90(response["all"][90]),
            ),
            Figure(
                _("Resolution, median"),
                _hours(resolve["all"][50]),
                HOURS,
                lower_is_better=True,
                note=_p90(resolve["all"][90]),
            ),
            Figure(
                _("Average satisfaction"),
                average,
                RATING,
                previous=satisfaction["previous"][0],
                note=_("%(count)s ratings") % {"count": count},
            ),
        ]

    def _notes(self, filters: ReportFilters) -> list[str]:
        notes = [
            _(
                "SLA breach rate = tickets filed in the range that were resolved after their due time, or were "
                "unresolved and past it at the last refresh of the summary tables, ÷ tickets filed in the range "
                "that have a due time."
            ),
            _(
                "Times are hours from filing to the first reply the customer saw and to resolution (median and "
                "90th percentile); satisfaction counts the tickets rated in the range (1–5)."
            ),
            _(
                "Read from the summary tables: the figures, the status (open now) and the owner are as of "
                "their last refresh. The rep and department filters select the customer's owner."
            ),
        ]
        if not filters.sees_every_customer:
            notes.append(_("The figures cover the tickets of the customers you may see now."))
        return notes


def _p90(value) -> str:
    if value is None:
        return ""
    return _("p90: %(hours)s h") % {"hours": f"{_hours(value):,.1f}"}


def _in_order(found: dict, order: list):
    """``found``'s items in the given key order, keys not in it after them."""
    for key in order:
        if key in found:
            yield key, found[key]
    for key in sorted((key for key in found if key not in order), key=str):
        yield key, found[key]
