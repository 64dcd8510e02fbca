"""Reporting periods: days, ISO weeks, months, quarters and years of Asia/Shanghai dates.

Queries group by day (a date column of the summary tables, or a datetime turned into its local
date by ``local_date``); the days are folded into periods here, in Python, over at most a few
thousand rows. One rule for every database, and every period of the range is present, empty
ones included.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import DateField, Func
from django.db.models.functions import Cast, TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

DAY, WEEK, MONTH, QUARTER, YEAR = "day", "week", "month", "quarter", "year"
PERIOD_CHOICES = [
    (DAY, _("Daily")),
    (WEEK, _("Weekly")),
    (MONTH, _("Monthly")),
    (QUARTER, _("Quarterly")),
    (YEAR, _("Yearly")),
]
# The most buckets a chart shows: a daily chart over ten years would be unreadable and slow.
MAX_BUCKETS = {DAY: 400, WEEK: 260, MONTH: 240, QUARTER: 80, YEAR: 50}


def zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def today() -> datetime.date:
    return timezone.localdate(timezone=zone())


def bucket_start(day: datetime.date, period: str) -> datetime.date:
    """The first day of the period ``day`` falls in (Monday for ISO weeks)."""
    if period == DAY:
        return day
    if period == WEEK:
        return day - datetime.timedelta(days=day.weekday())
    if period == MONTH:
        return day.replace(day=1)
    if period == QUARTER:
        return datetime.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    if period == YEAR:
        return datetime.date(day.year, 1, 1)
    raise ValueError(period)


def next_bucket(start: datetime.date, period: str) -> datetime.date:
    if period == DAY:
        return start + datetime.timedelta(days=1)
    if period == WEEK:
        return start + datetime.timedelta(days=7)
    if period == YEAR:
        return start.replace(year=start.year + 1)
    months = 1 if period == MONTH else 3
    month = start.month - 1 + months
    return datetime.date(start.year + month // 12, month % 12 + 1, 1)


def buckets(start: datetime.date, end: datetime.date, period: str) -> list[datetime.date]:
    """The start of every period from the one holding ``start`` to the one holding ``end``."""
    found, current = [], bucket_start(start, period)
    while current <= end:
        found.append(current)
        current = next_bucket(current, period)
    return found


def bucket_count(start: datetime.date, end: datetime.date, period: str) -> int:
    return len(buckets(start, end, period))


def label(start: datetime.date, period: str) -> str:
    """How a period is named on an axis and in a table: 2026-11-24, 2026-W48, 2026-11, 2026 Q4, 2026."""
    if period == DAY:
        return start.isoformat()
    if period == WEEK:
        year, week, _weekday = start.isocalendar()
        return f"{year}-W{week:02d}"
    if period == MONTH:
        return f"{start.year}-{start.month:02d}"
    if period == QUARTER:
        return f"{start.year} Q{(start.month - 1) // 3 + 1}"
    return str(start.year)


def fold(
    rows: Iterable[tuple], start: datetime.date, end: datetime.date, period: str, *, width: int = 1
) -> dict[datetime.date, list]:
    """Sum daily rows ``(day, value, value, …)`` into the periods of ``start``…``end``: every
    period present (zeros for empty ones), rows outside the range ignored."""
    totals: dict[datetime.date, list] = {key: [0] * width for key in buckets(start, end, period)}
    for row in rows:
        day = row[0]
        if day is None or day < start or day > end:
            continue
        slot = totals[bucket_start(day, period)]
        for index in range(width):
            value = row[index + 1]
            if value is not None:
                slot[index] += value
    return totals


def previous_range(start: datetime.date, end: datetime.date) -> tuple[datetime.date, datetime.date]:
    """The range of the same length right before ``start``…``end``."""
    length = (end - start).days + 1
    return start - datetime.timedelta(days=length), start - datetime.timedelta(days=1)


def local_bounds(start: datetime.date, end: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    """Aware datetimes from ``start`` 00:00 to the midnight after ``end``, in Asia/Shanghai: a
    datetime column falls in the range when ``low <= value < high``."""
    tz = zone()
    low = datetime.datetime.combine(start, datetime.time.min, tzinfo=tz)
    high = datetime.datetime.combine(end + datetime.timedelta(days=1), datetime.time.min, tzinfo=tz)
    return low, high


def local_date(field: str) -> Func:
    """An expression for the Asia/Shanghai date of datetime column ``field`` (group by it)."""
    return TruncDate(field, tzinfo=zone())


def as_date(field: str) -> Cast:
    return Cast(field, DateField())


def ratio(numerator, denominator, *, digits: int = 4) -> Decimal | None:
    """numerator / denominator, rounded; None when there is nothing to divide by."""
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(Decimal(1).scaleb(-digits))


def change(current, previous) -> Decimal | None:
    """The relative change from ``previous`` to ``current`` (0.25 is +25%); None without a base."""
    if current is None or previous in (None, 0):
        return None
    return ratio(Decimal(current) - Decimal(previous), abs(Decimal(previous)))


def median(values: list) -> float | None:
    return percentile(values, 50)


def percentile(values: list, p: float) -> float | None:
    """The ``p``-th percentile by linear interpolation (PostgreSQL's percentile_cont); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * p / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


Formatter = Callable[[object], str]
