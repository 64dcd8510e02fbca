"""The key figures of the staff dashboard: this week, month, quarter or year to date (Asia/Shanghai)
against the same span of the period before (November 1–24 against October 1–24; Monday to today
against last Monday to the same weekday), scoped exactly as the reports are.

Customers and sales come from ``reports.sources`` (the daily rollups for those who see every
customer, the facts for a rep); contracts, tasks and tickets are read live. One grouped query per
subject (seven in all), the days folded into the chart's periods here, in Python.
"""

from __future__ import annotations

import datetime
from calendar import monthrange
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django import forms
from django.conf import settings
from django.db.models import Count, Q, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from complaints.models import Ticket
from customers.models import Contract
from followups.models import Task
from reports import charts, facts, periods
from reports.filters import ReportFilters, sees_all
from reports.library.service import ticket_facts_in_scope, tickets_in_scope
from reports.registry import MONEY, NUMBER, PERCENT, RATING, TEXT, Chart, Figure, Table
from reports.sources import CENT, customer_source, money, sales_source

WEEK, MONTH, QUARTER, YEAR = periods.WEEK, periods.MONTH, periods.QUARTER, periods.YEAR
PERIODS = [(WEEK, _("This week")), (MONTH, _("This month")), (QUARTER, _("This quarter")), (YEAR, _("This year"))]
DEFAULT_PERIOD = MONTH
# What a chart's bar or point stands for, per period shown: a week or month by day, a quarter by
# ISO week, a year by month.
GRAIN = {WEEK: periods.DAY, MONTH: periods.DAY, QUARTER: periods.WEEK, YEAR: periods.MONTH}
_MONTHS_BACK = {MONTH: 1, QUARTER: 3, YEAR: 12}


class PeriodForm(forms.Form):
    period = forms.ChoiceField(choices=PERIODS, required=False)


def period_from(data) -> str:
    """The period asked for in the query string; anything else (missing, misspelt) the default."""
    form = PeriodForm(data)
    if form.is_valid() and form.cleaned_data["period"]:
        return form.cleaned_data["period"]
    return DEFAULT_PERIOD


def current_time() -> datetime.datetime:
    return timezone.now()


@dataclass(frozen=True)
class Span:
    """The period to date and the same span of the period before it."""

    period: str
    start: datetime.date
    end: datetime.date
    previous_start: datetime.date
    previous_end: datetime.date

    @property
    def grain(self) -> str:
        return GRAIN[self.period]


def _months_back(day: datetime.date, months: int) -> datetime.date:
    """The same day ``months`` earlier, or that month's last day when it is shorter (March 31 →
    February 28); a month's last day maps to the last day (June 30 → March 31, the whole quarter)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    last = monthrange(year, month)[1]
    if day.day == monthrange(day.year, day.month)[1]:
        return datetime.date(year, month, last)
    return datetime.date(year, month, min(day.day, last))


def span_for(period: str, today: datetime.date) -> Span:
    start = periods.bucket_start(today, period)
    previous_start = periods.bucket_start(start - datetime.timedelta(days=1), period)
    if period == WEEK:
        previous_end = today - datetime.timedelta(days=7)
    else:
        previous_end = _months_back(today, _MONTHS_BACK[period])
    return Span(period, start, today, previous_start, previous_end)


@dataclass
class Board:
    """What the figures partial shows."""

    span: Span
    figures: list[Figure] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def period(self) -> str:
        return self.span.period

    @property
    def periods(self) -> list:
        return PERIODS

    @property
    def chart_prefix(self) -> str:
        # The chart ids name the period, so a browser test can wait for the new chart after a switch.
        return f"dash-{self.span.period}"


def average_order_value(net: Decimal, orders: int) -> Decimal | None:
    """客单价: net sales per order, to the cent (the sales report's rule); None without orders."""
    if not orders:
        return None
    return (Decimal(net) / orders).quantize(CENT, rounding=ROUND_HALF_UP)


def _window(day: datetime.date, span: Span) -> str | None:
    if span.start <= day <= span.end:
        return "current"
    if span.previous_start <= day <= span.previous_end:
        return "previous"
    return None


class _Sums:
    """Daily rows summed into this period and the previous one, and folded into the chart's grain."""

    def __init__(self, span: Span, rows: list[tuple], width: int):
        self.span, self.rows, self.width = span, rows, width
        self.current = [0] * width
        self.previous = [0] * width
        for row in rows:
            which = row[0] and _window(row[0], span)
            if which:
                slot = self.current if which == "current" else self.previous
                for index in range(width):
                    slot[index] += row[index + 1] or 0

    def series(self, index: int = 0) -> tuple[list[str], list, list[str], list]:
        """Labels and values of this period's buckets and of the previous period's, aligned by position."""
        span = self.span
        now = periods.fold(self.rows, span.start, span.end, span.grain, width=self.width)
        before = periods.fold(self.rows, span.previous_start, span.previous_end, span.grain, width=self.width)
        return (
            [periods.label(key, span.grain) for key in now],
            [values[index] for values in now.values()],
            [periods.label(key, span.grain) for key in before],
            [values[index] for values in before.values()],
        )


def _by_position(figure: dict) -> dict:
    """The x axis as categories: the previous period's values sit under this period's dates by
    position (the 3rd day against the 3rd day), and plotly would otherwise draw ISO dates on a
    time axis, with hours between two days of a week."""
    figure["layout"].setdefault("xaxis", {})["type"] = "category"
    return figure


def _comparison_table(key: str, title, measure, sums: _Sums, index: int = 0, kind: str = NUMBER, convert=None):
    labels, values, before_labels, before_values = sums.series(index)
    convert = convert or (lambda value: value)
    rows = []
    for position in range(max(len(labels), len(before_labels))):
        rows.append(
            [
                labels[position] if position < len(labels) else "",
                convert(values[position]) if position < len(values) else None,
                before_labels[position] if position < len(before_labels) else "",
                convert(before_values[position]) if position < len(before_values) else None,
            ]
        )
    table = Table(
        key,
        title,
        [_("This period"), measure, _("Previous period"), measure],
        rows,
        [TEXT, kind, TEXT, kind],
    )
    return table, rows


class KeyFigures:
    """The dashboard's figures for ``user`` over ``span``, computed at ``now``."""

    def __init__(self, user, span: Span, now: datetime.datetime):
        self.user, self.span, self.now = user, span, now
        self.filters = ReportFilters(user=user, start=span.start, end=span.end, period=span.grain)
        self.all = sees_all(user)
        self.may_sales = self.all or user.has_perm("customers.view_transaction")
        self.may_contracts = self.all or user.has_perm("customers.view_contract")
        self.may_tasks = user.has_perm("followups.view_task")
        self.may_tickets = self.all or user.has_perm("complaints.view_ticket")
        # Service staff (the whole ticket queue, not every report): tickets before customers and sales.
        self.tickets_first = user.has_perm("complaints.view_all_tickets") and not self.all

    def board(self) -> Board:
        board = Board(self.span)
        groups = {"customers": self._customers(board)}
        if self.may_sales:
            groups["sales"] = self._sales(board)
        if self.may_contracts:
            groups["contracts"] = self._contracts()
        if self.may_tasks:
            groups["tasks"] = self._tasks()
        if self.may_tickets:
            groups["tickets"] = self._tickets(board)
        order = ["customers", "sales", "contracts", "tasks", "tickets"]
        if self.tickets_first:
            order = ["tickets", "tasks", "customers", "sales", "contracts"]
        for name in order:
            board.figures += groups.get(name, [])
        chart_order = ["tickets", "sales", "customers"] if self.tickets_first else ["sales", "customers", "tickets"]
        board.charts.sort(key=lambda chart: chart_order.index(chart.key))
        board.tables.sort(key=lambda table: chart_order.index(table.key))
        board.notes = self._notes()
        return board

    # --- Customers ----------------------------------------------------------------------------

    def _customers(self, board: Board) -> list[Figure]:
        span = self.span
        rows, measures = customer_source(self.filters, None, span.end, "created")
        by_day = list(rows.order_by().values("day").annotate(n=measures["customers"]).values_list("day", "n"))
        rows, measures = customer_source(self.filters, span.previous_start, span.end, "won")
        won = _Sums(
            span, list(rows.order_by().values("day").annotate(n=measures["customers"]).values_list("day", "n")), 1
        )
        new = _Sums(span, by_day, 1)
        total = sum(n for _day, n in by_day)
        total_before = sum(n for day, n in by_day if day <= span.previous_end)

        table, rows = _comparison_table("customers", _("New customers"), _("New customers"), new)
        board.tables.append(table)
        board.charts.append(
            Chart(
                "customers",
                _("New customers, this period and the previous one"),
                _by_position(
                    charts.bar(
                        [row[0] for row in rows],
                        [
                            (_("This period"), [row[1] for row in rows]),
                            (_("Previous period"), [row[3] for row in rows]),
                        ],
                        y_title=str(_("Customers")),
                    )
                ),
                table="customers",
            )
        )
        return [
            Figure(_("Customers"), total, NUMBER, previous=total_before, note=_("All customers in your view")),
            Figure(_("New customers"), new.current[0], NUMBER, previous=new.previous[0]),
            Figure(
                _("Conversion rate (won ÷ new)"),
                periods.ratio(won.current[0], new.current[0]),
                PERCENT,
                previous=periods.ratio(won.previous[0], new.previous[0]),
                note=_("%(won)s first reached 成交 ÷ %(new)s new this period")
                % {"won": won.current[0], "new": new.current[0]},
            ),
        ]

    # --- Sales and contracts ------------------------------------------------------------------

    def _sales(self, board: Board) -> list[Figure]:
        span = self.span
        rows, measures = sales_source(self.filters, span.previous_start, span.end)
        by_day = list(
            rows.order_by()
            .values("day")
            .annotate(net=measures["net_amount"], orders=measures["orders"])
            .values_list("day", "net", "orders")
        )
        sums = _Sums(span, by_day, 2)
        net, orders = money(sums.current[0]), sums.current[1]
        net_before, orders_before = money(sums.previous[0]), sums.previous[1]
        table, table_rows = _comparison_table("sales", _("Net sales"), _("Net sales"), sums, 0, MONEY, money)
        board.tables.append(table)
        board.charts.append(
            Chart(
                "sales",
                _("Net sales, this period and the previous one"),
                _by_position(
                    charts.line(
                        [row[0] for row in table_rows],
                        [
                            (_("This period"), [row[1] for row in table_rows]),
                            (_("Previous period"), [row[3] for row in table_rows]),
                        ],
                        y_title=str(_("CNY")),
                    )
                ),
                table="sales",
            )
        )
        return [
            Figure(_("Net sales"), net, MONEY, previous=net_before, note=_("Refunds subtracted")),
            Figure(
                _("Average order value"),
                average_order_value(net, orders),
                MONEY,
                previous=average_order_value(net_before, orders_before),
                note=_("Net sales ÷ %(orders)s orders") % {"orders": orders},
            ),
        ]

    def _contracts(self) -> list[Figure]:
        span = self.span
        contracts = Contract.objects.filter(start_date__gte=span.previous_start, start_date__lte=span.end).filter(
            self.filters.customers_q("customer"), self.filters.people_q("customer__owner")
        )
        rows = (
            self.filters.live_only(contracts.exclude(status=Contract.Status.DRAFT))
            .order_by()
            .values("start_date")
            .annotate(total=Sum("amount"))
            .values_list("start_date", "total")
        )
        sums = _Sums(span, list(rows), 1)
        return [
            Figure(
                _("Contract value"),
                money(sums.current[0]),
                MONEY,
                previous=money(sums.previous[0]),
                note=_("Contracts starting this period, drafts left out"),
            )
        ]

    # --- Tasks and tickets --------------------------------------------------------------------

    def _tasks(self) -> list[Figure]:
        tasks = Task.objects.open()
        if not self.all:
            tasks = tasks.filter(assignee=self.user)
        found = tasks.aggregate(open=Count("pk"), overdue=Count("pk", filter=Q(due_at__lt=self.now)))
        whose = _("Everyone's, now") if self.all else _("Yours, now")
        return [
            Figure(_("Open tasks"), found["open"], NUMBER, note=whose),
            Figure(_("Overdue tasks"), found["overdue"], NUMBER, note=whose, lower_is_better=True),
        ]

    def _tickets(self, board: Board) -> list[Figure]:
        span, now = self.span, self.now
        # Open tickets and those past their SLA must be current: read live, through the partial
        # index ticket_open_sla (status open), a few thousand rows whatever the history.
        by_status = {
            row[0]: (row[1], row[2])
            for row in tickets_in_scope(self.filters)
            .filter(status__in=Ticket.OPEN_STATUSES)
            .values("status")
            .annotate(open=Count("pk"), breached=Count("pk", filter=Q(sla_due_at__lt=now)))
            .values_list("status", "open", "breached")
        }
        # Filed and rated in either span: from the ticket facts (as of their refresh), by date.
        filed_now = Q(created_on__gte=span.start, created_on__lte=span.end)
        filed_before = Q(created_on__gte=span.previous_start, created_on__lte=span.previous_end)
        rated_now = Q(rated_on__gte=span.start, rated_on__lte=span.end, rating__isnull=False)
        rated_before = Q(rated_on__gte=span.previous_start, rated_on__lte=span.previous_end, rating__isnull=False)
        flow = {
            name: value or 0
            for name, value in ticket_facts_in_scope(self.filters)
            .filter(
                Q(created_on__gte=span.previous_start, created_on__lte=span.end)
                | Q(rated_on__gte=span.previous_start, rated_on__lte=span.end)
            )
            .aggregate(
                filed=Count("pk", filter=filed_now),
                filed_before=Count("pk", filter=filed_before),
                rated=Count("pk", filter=rated_now),
                rating_sum=Sum("rating", filter=rated_now),
                rated_before=Count("pk", filter=rated_before),
                rating_sum_before=Sum("rating", filter=rated_before),
            )
            .items()
        }
        open_count = sum(n for n, _breached in by_status.values())
        breached = sum(b for _n, b in by_status.values())

        labels = dict(Ticket.Status.choices)
        rows = []
        for status in Ticket.OPEN_STATUSES:
            n, late = by_status.get(status, (0, 0))
            rows.append([str(labels[status]), n - late, late])
        board.tables.append(
            Table(
                "tickets",
                _("Open tickets by status"),
                [_("Status"), _("Within the SLA"), _("SLA breached")],
                rows,
                [TEXT, NUMBER, NUMBER],
            )
        )
        board.charts.append(
            Chart(
                "tickets",
                _("Open tickets by status"),
                charts.bar(
                    [row[0] for row in rows],
                    [(_("Within the SLA"), [row[1] for row in rows]), (_("SLA breached"), [row[2] for row in rows])],
                    stacked=True,
                    y_title=str(_("Tickets")),
                ),
                table="tickets",
            )
        )
        return [
            Figure(_("Open tickets"), open_count, NUMBER, note=_("Now"), lower_is_better=True),
            Figure(_("Open tickets past their SLA"), breached, NUMBER, note=_("Now"), lower_is_better=True),
            Figure(_("Tickets filed"), flow["filed"], NUMBER, previous=flow["filed_before"], lower_is_better=True),
            Figure(
                _("Average satisfaction"),
                periods.ratio(flow["rating_sum"] or 0, flow["rated"], digits=2),
                RATING,
                previous=periods.ratio(flow["rating_sum_before"] or 0, flow["rated_before"], digits=2),
                note=_("%(count)s ratings this period") % {"count": flow["rated"]},
            ),
        ]

    def _notes(self) -> list[str]:
        notes = [
            _(
                "Conversion rate = customers who first reached 成交 this period ÷ customers created this period. "
                "Average order value (客单价) = net sales (refunds subtracted) ÷ orders (positive transactions)."
            )
        ]
        if not self.filters.sees_every_customer:
            notes.append(_("The figures cover the customers you may see now."))
        if self.may_tasks:
            notes.append(
                _("Tasks: every open task, whoever it is assigned to.")
                if self.all
                else _("Tasks: the open tasks assigned to you.")
            )
        if self.may_tickets:
            notes.append(
                _(
                    "Open tickets and tasks are read live; customers, sales and the tickets filed and rated come "
                    "from the summary tables."
                )
            )
        return notes


def key_figures(user, period: str, *, now: datetime.datetime | None = None) -> Board:
    now = now or current_time()
    today = timezone.localtime(now, periods.zone()).date()
    return KeyFigures(user, span_for(period, today), now).board()


def context_for(request, *, freshness: bool = True) -> dict:
    """The template context of the figures (and, for the whole page, how fresh they are)."""
    period = period_from(request.GET)
    context = {
        "board": key_figures(request.user, period),
        "dashboard_url": reverse("reports:dashboard"),
        "figures_url": reverse("reports:dashboard_figures"),
    }
    if freshness:
        when = facts.freshness()
        context.update(freshness=when, freshness_pending=when is None, refresh_minutes=settings.REPORT_REFRESH_MINUTES)
    return context
