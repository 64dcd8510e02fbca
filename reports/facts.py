"""The summary tables the reports read, rebuilt with set-based SQL (``facts_refresh``).

``CustomerFact`` holds each live customer's dimensions and lifecycle dates, ``SalesFact`` each
transaction with the credited rep and the customer's dimensions, ``TicketFact`` each ticket of a
live customer with its dates, hours and SLA outcome: narrow rows that a report scans or indexes
without touching the wide customer and ticket tables. Celery beat runs ``facts_refresh`` every
``REPORT_REFRESH_MINUTES``; each page shows ``freshness()``.

A refresh is an upsert of what changed plus a delete of what is gone, in one transaction: readers
keep seeing the previous figures until it commits, and an unchanged row is not written again
(PostgreSQL's ``IS DISTINCT FROM`` guard), so a refresh of a million quiet customers writes almost
nothing. Two refreshes at once queue on the state row's lock.
"""

from __future__ import annotations

import datetime
import time

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from reports.models import CustomerFact, SalesFact, SummaryState, TicketFact

CUSTOMERS, SALES, TICKETS = "customer_facts", "sales_facts", "ticket_facts"
ALL = (CUSTOMERS, SALES, TICKETS)
# The summaries the daily rollups are rebuilt from (and whose refresh time includes them).
ROLLED_UP = (CUSTOMERS, SALES)

# First day a customer reached 意向 or anything past it, and 成交 or past it (售后中 comes after 成交).
_INTENT_OR_LATER = ("intent", "won", "after_sales")
_WON_OR_LATER = ("won", "after_sales")

_CUSTOMER_COLUMNS = [
    "owner_id",
    "department_id",
    "kind",
    "status",
    "source_id",
    "level_id",
    "customer_type_id",
    "province_id",
    "industry_id",
    "created_on",
    "intent_on",
    "won_on",
]
_SALES_COLUMNS = [
    "customer_id",
    "day",
    "amount",
    "rep_id",
    "department_id",
    "source_id",
    "level_id",
    "customer_type_id",
    "province_id",
    "industry_id",
]
_TICKET_COLUMNS = [
    "customer_id",
    "created_on",
    "category_id",
    "severity",
    "channel",
    "kind",
    "status",
    "assignee_id",
    "owner_id",
    "department_id",
    "source_id",
    "level_id",
    "customer_type_id",
    "province_id",
    "industry_id",
    "first_response_hours",
    "resolve_hours",
    "due",
    "breached",
    "rating",
    "rated_on",
]


def _utc_offset_hours() -> int:
    """Asia/Shanghai is UTC+8 all year (no daylight saving), which SQLite's date() needs spelled out."""
    offset = timezone.now().astimezone(datetime.UTC).astimezone(timezone.get_default_timezone()).utcoffset()
    return int(offset.total_seconds() // 3600)


def _local_date(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"({column} AT TIME ZONE %(tz)s)::date"
    return f"date({column}, '{_utc_offset_hours():+d} hours')"


def _hours(end: str, start: str) -> str:
    """Hours from datetime column ``start`` to ``end`` as a float, NULL when either is. SQLite keeps
    datetimes as UTC text: subtract the Julian day numbers there (exact to well under a second)."""
    if connection.vendor == "postgresql":
        return f"(CAST(EXTRACT(EPOCH FROM ({end} - {start})) AS double precision) / 3600.0)"
    return f"((julianday({end}) - julianday({start})) * 24.0)"


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


def _upsert(table: str, key: str, columns: list[str], select: str) -> str:
    names = ", ".join([key, *columns])
    updates = ", ".join(f"{column} = excluded.{column}" for column in columns)
    sql = f"INSERT INTO {table} ({names}) {select} ON CONFLICT ({key}) DO UPDATE SET {updates}"
    if connection.vendor == "postgresql":
        old = ", ".join(f"{table}.{column}" for column in columns)
        new = ", ".join(f"excluded.{column}" for column in columns)
        sql += f" WHERE ({old}) IS DISTINCT FROM ({new})"
    return sql


def _customer_sql() -> tuple[str, str]:
    """The upsert of every live customer's row, and the delete of rows of customers gone."""
    created = _local_date("c.created_at")
    intent_at = _local_date(f"min(CASE WHEN s.to_status IN {_in(_INTENT_OR_LATER)} THEN s.changed_at END)")
    won_at = _local_date(f"min(CASE WHEN s.to_status IN {_in(_WON_OR_LATER)} THEN s.changed_at END)")
    select = f"""
        SELECT c.id, c.owner_id, e.department_id, c.kind, c.status, c.source_id, c.level_id,
               c.customer_type_id, c.province_id, c.industry_id, {created},
               -- A customer who reached a stage without a recorded change (imported as 成交, say)
               -- reached it when created.
               COALESCE(s.intent_on, CASE WHEN c.status IN {_in(_INTENT_OR_LATER)} THEN {created} END),
               COALESCE(s.won_on, CASE WHEN c.status IN {_in(_WON_OR_LATER)} THEN {created} END)
        FROM customers_customer c
        LEFT JOIN accounts_employee e ON e.user_id = c.owner_id
        LEFT JOIN (
            SELECT s.customer_id, {intent_at} AS intent_on, {won_at} AS won_on
            FROM customers_statuschange s GROUP BY s.customer_id
        ) s ON s.customer_id = c.id
        WHERE c.deleted_at IS NULL
    """  # noqa: S608 - constants and column names, no user input
    upsert = _upsert("reports_customerfact", "customer_id", _CUSTOMER_COLUMNS, select)
    delete = (
        "DELETE FROM reports_customerfact WHERE NOT EXISTS (SELECT 1 FROM customers_customer c "
        "WHERE c.id = reports_customerfact.customer_id AND c.deleted_at IS NULL)"
    )
    return upsert, delete


def _sales_sql() -> tuple[str, str]:
    """The upsert of every live customer's transactions (after the customer facts), and the
    delete of transactions gone or of customers gone."""
    select = """
        SELECT t.id, t.customer_id, t.date, t.amount, t.rep_id, e.department_id,
               f.source_id, f.level_id, f.customer_type_id, f.province_id, f.industry_id
        FROM customers_transaction t
        JOIN reports_customerfact f ON f.customer_id = t.customer_id
        LEFT JOIN accounts_employee e ON e.user_id = t.rep_id
        WHERE true
    """
    upsert = _upsert("reports_salesfact", "transaction_id", _SALES_COLUMNS, select)
    delete = (
        "DELETE FROM reports_salesfact WHERE NOT EXISTS (SELECT 1 FROM customers_transaction t "
        "JOIN reports_customerfact f ON f.customer_id = t.customer_id "
        "WHERE t.id = reports_salesfact.transaction_id)"
    )
    return upsert, delete


def _ticket_sql() -> tuple[str, str]:
    """The upsert of every live customer's tickets (after the customer facts; owner, department
    and dimensions from them), and the delete of tickets gone or of customers gone.

    Breached: resolved after the due time, or unresolved and past it at the refresh (``%(now)s``);
    a closed ticket was resolved first, so it keeps its resolved_at."""
    select = f"""
        SELECT t.id, t.customer_id, {_local_date("t.created_at")}, t.category_id, t.severity, t.channel,
               t.kind, t.status, t.assignee_id, f.owner_id, f.department_id, f.source_id, f.level_id,
               f.customer_type_id, f.province_id, f.industry_id,
               {_hours("t.first_response_at", "t.created_at")}, {_hours("t.resolved_at", "t.created_at")},
               CASE WHEN t.sla_due_at IS NULL THEN false ELSE true END,
               CASE WHEN t.sla_due_at IS NOT NULL AND (t.resolved_at > t.sla_due_at
                         OR (t.resolved_at IS NULL AND t.sla_due_at < %(now)s)) THEN true ELSE false END,
               t.rating, {_local_date("t.rated_at")}
        FROM complaints_ticket t
        JOIN reports_customerfact f ON f.customer_id = t.customer_id
        WHERE true
    """  # noqa: S608 - constants and column names, no user input
    upsert = _upsert("reports_ticketfact", "ticket_id", _TICKET_COLUMNS, select)
    delete = (
        "DELETE FROM reports_ticketfact WHERE NOT EXISTS (SELECT 1 FROM complaints_ticket t "
        "JOIN reports_customerfact f ON f.customer_id = t.customer_id "
        "WHERE t.id = reports_ticketfact.ticket_id)"
    )
    return upsert, delete


ROLLUP_DIMENSIONS = ("source", "level", "customer_type", "province", "industry")


def _rollup_sql() -> list[str]:
    """Rebuild both daily rollups from the facts: the plain totals (dim "") and one split per
    customer dimension. UNION ALL of plain GROUP BYs, which both databases run the same way."""
    customer_parts, sales_parts = [], []
    for dim in ("", *ROLLUP_DIMENSIONS):
        value = f"{dim}_id" if dim else "CAST(NULL AS integer)"
        customer_parts.append(
            f"""INSERT INTO reports_customerdaily
                (day, owner_id, department_id, dim, value, created, reached_intent, reached_won, cohort_intent, cohort_won)
            SELECT day, owner_id, department_id, '{dim}', value, sum(created), sum(ri), sum(rw), sum(ci), sum(cw)
            FROM (
                SELECT created_on AS day, owner_id, department_id, {value} AS value, 1 AS created, 0 AS ri, 0 AS rw,
                       CASE WHEN intent_on IS NULL THEN 0 ELSE 1 END AS ci, CASE WHEN won_on IS NULL THEN 0 ELSE 1 END AS cw
                FROM reports_customerfact
                UNION ALL
                SELECT intent_on, owner_id, department_id, {value}, 0, 1, 0, 0, 0
                FROM reports_customerfact WHERE intent_on IS NOT NULL
                UNION ALL
                SELECT won_on, owner_id, department_id, {value}, 0, 0, 1, 0, 0
                FROM reports_customerfact WHERE won_on IS NOT NULL
            ) events
            GROUP BY day, owner_id, department_id, value"""  # noqa: S608 - constants only
        )
        sales_parts.append(
            f"""INSERT INTO reports_salesdaily
                (day, rep_id, department_id, dim, value, net_amount, orders, order_amount, refunds, refund_amount)
            SELECT day, rep_id, department_id, '{dim}', {value}, sum(amount),
                   sum(CASE WHEN amount > 0 THEN 1 ELSE 0 END), sum(CASE WHEN amount > 0 THEN amount ELSE 0 END),
                   sum(CASE WHEN amount < 0 THEN 1 ELSE 0 END), sum(CASE WHEN amount < 0 THEN amount ELSE 0 END)
            FROM reports_salesfact
            GROUP BY day, rep_id, department_id, {value}"""  # noqa: S608 - constants only
        )
    return ["DELETE FROM reports_customerdaily", *customer_parts, "DELETE FROM reports_salesdaily", *sales_parts]


def facts_refresh() -> dict[str, float]:
    """Bring the summary tables up to date; returns the seconds each took."""
    timings: dict[str, float] = {}
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with transaction.atomic():
        states = {}
        for name in ALL:
            SummaryState.objects.get_or_create(name=name)
            states[name] = SummaryState.objects.select_for_update().get(name=name)
        for name, model, (upsert, delete) in (
            (CUSTOMERS, CustomerFact, _customer_sql()),
            (SALES, SalesFact, _sales_sql()),
            (TICKETS, TicketFact, _ticket_sql()),
        ):
            started = time.monotonic()
            params = {"now": now}
            if connection.vendor == "postgresql":
                params["tz"] = settings.TIME_ZONE
            with connection.cursor() as cursor:
                cursor.execute(upsert, params if "%(" in upsert else None)
                cursor.execute(delete)
            state = states[name]
            state.refreshed_at = timezone.now()
            state.seconds = round(time.monotonic() - started, 3)
            state.rows = model.objects.count()
            state.save()
            timings[name] = state.seconds
        started = time.monotonic()
        with connection.cursor() as cursor:
            for statement in _rollup_sql():
                cursor.execute(statement)
            if connection.vendor == "postgresql":
                # Rebuilt wholesale: fresh statistics keep the planner on the (dim, value, day) index.
                cursor.execute("ANALYZE reports_customerdaily, reports_salesdaily")
        timings["rollups"] = round(time.monotonic() - started, 3)
        for name in ROLLED_UP:
            # The rollups are part of what each state vouches for.
            SummaryState.objects.filter(name=name).update(seconds=states[name].seconds + timings["rollups"] / 2)
    return timings


def freshness(names=ALL) -> datetime.datetime | None:
    """When the oldest of ``names`` was last refreshed; None if one never was."""
    found = {state.name: state.refreshed_at for state in SummaryState.objects.filter(name__in=names)}
    if any(found.get(name) is None for name in names):
        return None
    return min(found[name] for name in names)
