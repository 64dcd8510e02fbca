"""What a report is, the registry of reports, and how a report becomes a page, a chart and a file.

A report is a ``Report`` subclass registered with ``@register``: it names who may open it and
computes a ``ReportResult`` from ``ReportFilters`` — key figures, plotly charts and the tables
holding every chart's data. The page (``reports.views.report``), the XLSX/CSV export and the
scheduled e-mail all render that one result, so a figure is computed in exactly one place.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from openpyxl import Workbook
from openpyxl.styles import Font
from plotly.utils import PlotlyJSONEncoder

from customers.exporting import XML_ILLEGAL, neutralise
from reports.filters import ReportFilters

REPORTS: dict[str, type[Report]] = {}

MONEY = "money"
PERCENT = "percent"
NUMBER = "number"
DAYS = "days"
HOURS = "hours"
RATING = "rating"
TEXT = "text"


@dataclass
class Figure:
    """A key figure (a KPI card): its value, the previous period's, and how to show them."""

    label: str
    value: object
    kind: str = NUMBER
    previous: object = None
    note: str = ""
    # True when a rise is bad news (overdue tasks, breaches): the change is coloured accordingly.
    lower_is_better: bool = False

    @property
    def change(self) -> Decimal | None:
        from reports.periods import change

        if self.value is None or self.previous is None:
            return None
        return change(self.value, self.previous)


@dataclass
class Table:
    """Rows of a report; ``kinds`` says how each column is formatted (MONEY, PERCENT …)."""

    key: str
    title: str
    headers: list[str]
    rows: list[list]
    kinds: list[str] = field(default_factory=list)
    note: str = ""

    def column_kind(self, index: int) -> str:
        return self.kinds[index] if index < len(self.kinds) else TEXT


@dataclass
class Chart:
    """A plotly figure (a dict: ``data`` and ``layout``), and the key of the table with its data."""

    key: str
    title: str
    figure: dict
    table: str = ""

    def as_json(self) -> str:
        return json.dumps(self.figure, cls=PlotlyJSONEncoder, ensure_ascii=False)


@dataclass
class ReportResult:
    figures: list[Figure] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self, key: str) -> Table | None:
        return next((table for table in self.tables if table.key == key), None)

    @property
    def row_count(self) -> int:
        return sum(len(table.rows) for table in self.tables)


class Report:
    """Subclass, set the class attributes, implement ``compute``, and ``@register`` it."""

    key: str = ""
    title: str = ""
    description: str = ""
    icon: str = "bar-chart-line"
    # The user needs reports.view_report and one of these (empty: none more).
    permissions: tuple[str, ...] = ()
    # The summary tables the figures come from (reports.facts), for the freshness line.
    summaries: tuple[str, ...] = ()
    default_period: str = "month"

    @classmethod
    def allowed(cls, user) -> bool:
        if not user.has_perm("reports.view_report"):
            return False
        return not cls.permissions or any(user.has_perm(perm) for perm in cls.permissions)

    def compute(self, filters: ReportFilters) -> ReportResult:
        raise NotImplementedError


def register(cls: type[Report]) -> type[Report]:
    if not cls.key or cls.key in REPORTS:
        raise ValueError(f"report key {cls.key!r} is empty or taken")
    REPORTS[cls.key] = cls
    return cls


def reports_for(user) -> list[type[Report]]:
    return [cls for cls in REPORTS.values() if cls.allowed(user)]


# --- Formatting ------------------------------------------------------------------------------------


def display(value, kind: str) -> str:
    """A value as the page shows it: ¥1,234.50, 12.5%, 3.2 天 …; — when there is none."""
    if value is None or value == "":
        return "—"
    if kind == MONEY:
        return f"¥{Decimal(value):,.2f}"
    if kind == PERCENT:
        return f"{Decimal(value) * 100:.1f}%"
    if kind == DAYS:
        return _("%(days)s d") % {"days": f"{float(value):,.1f}"}
    if kind == HOURS:
        return _("%(hours)s h") % {"hours": f"{float(value):,.1f}"}
    if kind == RATING:
        return f"{float(value):.2f}"
    if kind == NUMBER and isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        if isinstance(value, float):
            return f"{value:,.1f}"
        return f"{value:,}"
    return str(value)


def _cell(value, kind: str):
    """A value as a file cell: numbers stay numbers (percentages as fractions), text made inert."""
    if value is None:
        return None
    if kind == PERCENT:
        return float(value)
    if isinstance(value, Decimal):
        return float(value) if kind != MONEY else value
    if isinstance(value, datetime.date | int | float):
        return value
    return _text(value)


def _text(value) -> str:
    """Text for a file: inert as a formula, without the control characters XML (XLSX) refuses
    (a vertical tab pasted from Word into a lost reason)."""
    return neutralise(XML_ILLEGAL.sub("", str(value)))


def _filter_rows(report: Report, filters: ReportFilters, freshness) -> list[list]:
    rows = [
        [_("Report"), str(report.title)],
        [pgettext("date range", "From"), filters.start.isoformat()],
        [pgettext("date range", "To"), filters.end.isoformat()],
    ]
    rows += [[label, value] for label, value in filters.labels.items()]
    rows.append([_("Figures as of"), timezone.localtime(freshness).strftime("%Y-%m-%d %H:%M") if freshness else "—"])
    rows.append([_("Exported at"), timezone.localtime().strftime("%Y-%m-%d %H:%M")])
    return rows


def to_xlsx(report: Report, filters: ReportFilters, result: ReportResult, freshness=None) -> bytes:
    """One sheet for the filters and key figures, then one per table (each chart's data is a table)."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = _("Filters")[:31]
    for row in _filter_rows(report, filters, freshness):
        sheet.append([_text(cell) for cell in row])
    if result.figures:
        sheet.append([])
        sheet.append([_("Key figure"), _("Value"), _("Previous period"), _("Change")])
        for figure in result.figures:
            change = figure.change
            sheet.append(
                [
                    _text(figure.label),
                    _cell(figure.value, figure.kind),
                    _cell(figure.previous, figure.kind),
                    float(change) if change is not None else None,
                ]
            )
    used = {sheet.title}
    for table in result.tables:
        title = "".join(ch for ch in _text(table.title) if ch not in "[]:*?/\\'")[:28] or table.key
        while title in used:
            title = title[:26] + "_" + str(len(used))
        used.add(title)
        ws = workbook.create_sheet(title)
        ws.append([_text(header) for header in table.headers])
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in table.rows:
            ws.append([_cell(value, table.column_kind(index)) for index, value in enumerate(row)])
        for index, kind in enumerate(table.kinds, start=1):
            number_format = {MONEY: "#,##0.00", PERCENT: "0.0%"}.get(kind)
            if number_format:
                for (cell,) in ws.iter_rows(min_row=2, min_col=index, max_col=index):
                    cell.number_format = number_format
        ws.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def to_csv(report: Report, filters: ReportFilters, result: ReportResult, freshness=None) -> bytes:
    """UTF-8 with a BOM (Excel reads Chinese): the filters, then each table under its title."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    for row in _filter_rows(report, filters, freshness):
        writer.writerow([neutralise(cell) for cell in row])
    for table in result.tables:
        writer.writerow([])
        writer.writerow([neutralise(str(table.title))])
        writer.writerow([neutralise(str(header)) for header in table.headers])
        for row in table.rows:
            writer.writerow(
                [
                    "" if value is None else format(value, "f") if isinstance(value, Decimal) else _cell(value, kind)
                    for value, kind in ((value, table.column_kind(i)) for i, value in enumerate(row))
                ]
            )
    return buffer.getvalue().encode("utf-8")
