"""Who may enter a lottery event, and with how many entries: the one rule, read in SQL.

Always out: customers in the recycle bin (deleted or merged away) and erased ones. Then the event's
rules: lifecycle statuses, levels (none chosen: any), net purchases dated in the event's year of at
least the minimum, a contract in force at some time in the year (in force or expired since — a
draft or a terminated contract does not count, since when it ended is not known), created before a
date (Asia/Shanghai midnight), and our own staff left out unless the event says otherwise.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator

from django.db.models import Exists, OuterRef, QuerySet, Sum
from django.utils import timezone

from customers.models import Contract, Customer, Transaction
from lottery.models import LotteryEvent


def year_bounds(year: int) -> tuple[datetime.date, datetime.date]:
    return datetime.date(year, 1, 1), datetime.date(year, 12, 31)


def eligible_customers(event: LotteryEvent) -> QuerySet[Customer]:
    first, last = year_bounds(event.year)
    customers = Customer.objects.filter(erased_at__isnull=True, merged_into__isnull=True)
    statuses = list(event.statuses or [])
    customers = customers.filter(status__in=statuses)
    if event.pk:
        level_ids = list(event.levels.values_list("pk", flat=True))
        if level_ids:
            customers = customers.filter(level__in=level_ids)
    if event.exclude_employees:
        customers = customers.filter(is_employee=False)
    if event.created_before:
        midnight = timezone.make_aware(datetime.datetime.combine(event.created_before, datetime.time.min))
        customers = customers.filter(created_at__lt=midnight)
    if event.require_active_contract:
        in_force = Contract.objects.filter(
            customer=OuterRef("pk"),
            status__in=[Contract.Status.ACTIVE, Contract.Status.EXPIRED],
            start_date__lte=last,
            end_date__gte=first,
        )
        customers = customers.filter(Exists(in_force))
    if event.min_amount is not None and event.min_amount > 0:
        buyers = (
            Transaction.objects.filter(date__gte=first, date__lte=last)
            .order_by()
            .values("customer")
            .annotate(total=Sum("amount"))
            .filter(total__gte=event.min_amount)
            .values("customer")
        )
        customers = customers.filter(pk__in=buyers)
    return customers.order_by()


def level_weights(event: LotteryEvent) -> dict[int, int]:
    """Entries per customer by level id; a level not listed holds one."""
    return dict(event.weights.values_list("level_id", "weight"))


def eligible_with_weights(event: LotteryEvent, *, chunk_size: int = 20_000) -> Iterator[tuple[int, int]]:
    """(customer id, weight) of every eligible customer, streamed."""
    weights = level_weights(event)
    get = weights.get
    for customer_id, level_id in (
        eligible_customers(event).values_list("pk", "level_id").iterator(chunk_size=chunk_size)
    ):
        yield customer_id, get(level_id, 1)
