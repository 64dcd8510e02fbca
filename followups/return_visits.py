"""Who is due a return visit (回访): customers with a recent sale or resolved complaint and no return
visit since.

The events are a transaction, a won opportunity and a complaint resolved (投诉 resolved or closed).
The customer falls due ``RETURN_VISIT_AFTER_DAYS`` after their latest event in the window the
manager looks at, and stays due until a follow-up of the type "return visit" is recorded on or
after that event's day.

The list is driven from the sales in the window (indexed by customer and date), not from the whole
archive, so it stays cheap however many customers there are.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db.models import DateField, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Greatest, TruncDate
from django.utils import timezone

from customers.models import Customer, Transaction
from followups.models import FollowUp, Opportunity
from followups.services import _midnight, _zone  # the app's one Asia/Shanghai day rule


def _latest_events(start: datetime.date, today: datetime.date) -> tuple[Subquery, Subquery, Subquery, Q]:
    """The latest transaction day, won-opportunity day and resolved-complaint day per customer in
    [start, today], and a Q() selecting the customers that have any."""
    from complaints.models import Ticket

    transactions = Transaction.objects.filter(date__gte=start, date__lte=today)
    won = Opportunity.objects.filter(
        stage=Opportunity.Stage.WON,
        closed_at__gte=_midnight(start),
        closed_at__lt=_midnight(today + datetime.timedelta(days=1)),
    )
    last_transaction = Subquery(
        transactions.filter(customer=OuterRef("pk")).order_by("-date").values("date")[:1], output_field=DateField()
    )
    last_won = Subquery(
        won.filter(customer=OuterRef("pk"))
        .order_by("-closed_at")
        .annotate(day=TruncDate("closed_at", tzinfo=_zone()))
        .values("day")[:1],
        output_field=DateField(),
    )
    resolved = Ticket.objects.filter(
        kind=Ticket.Kind.COMPLAINT,
        status__in=[Ticket.Status.RESOLVED, Ticket.Status.CLOSED],
        resolved_at__gte=_midnight(start),
        resolved_at__lt=_midnight(today + datetime.timedelta(days=1)),
    )
    last_resolved = Subquery(
        resolved.filter(customer=OuterRef("pk"))
        .order_by("-resolved_at")
        .annotate(day=TruncDate("resolved_at", tzinfo=_zone()))
        .values("day")[:1],
        output_field=DateField(),
    )
    candidates = (
        Q(pk__in=transactions.values("customer_id"))
        | Q(pk__in=won.values("customer_id"))
        | Q(pk__in=resolved.values("customer_id"))
    )
    return last_transaction, last_won, last_resolved, candidates


def return_visits_due(
    *, user, today: datetime.date | None = None, window_days: int = 90, rep=None, upcoming: bool = False
) -> QuerySet[Customer]:
    """Customers ``user`` may see whose latest sale in the last ``window_days`` has had no return
    visit since: those already due (``upcoming=False``), or those that will fall due (``upcoming``).

    Each row carries ``last_sale`` (the latest event's date), ``last_transaction``, ``last_won``,
    ``last_resolved`` and
    ``last_return_visit`` (a datetime or None); ordered by the longest overdue first.
    """
    today = today or timezone.localdate(timezone.now(), _zone())
    start = today - datetime.timedelta(days=window_days)
    cutoff = today - datetime.timedelta(days=settings.RETURN_VISIT_AFTER_DAYS)
    last_transaction, last_won, last_resolved, candidates = _latest_events(start, today)
    visits = FollowUp.objects.filter(customer=OuterRef("pk"), kind=FollowUp.Kind.RETURN_VISIT)
    customers = (
        Customer.objects.visible_to(user)
        .filter(candidates)
        .annotate(last_transaction=last_transaction, last_won=last_won, last_resolved=last_resolved)
        # GREATEST of three possibly-missing days, written so that SQLite (whose MAX() is NULL when
        # any is) and PostgreSQL agree.
        .annotate(
            last_sale=Greatest(
                Coalesce("last_transaction", "last_won", "last_resolved"),
                Coalesce("last_won", "last_resolved", "last_transaction"),
                Coalesce("last_resolved", "last_transaction", "last_won"),
                output_field=DateField(),
            )
        )
        .annotate(
            visited_since=Exists(
                visits.annotate(day=TruncDate("happened_at", tzinfo=_zone())).filter(day__gte=OuterRef("last_sale"))
            ),
            last_return_visit=Subquery(visits.order_by("-happened_at").values("happened_at")[:1]),
        )
        .filter(visited_since=False)
    )
    customers = customers.filter(last_sale__gt=cutoff) if upcoming else customers.filter(last_sale__lte=cutoff)
    if rep is not None:
        customers = customers.filter(owner=rep)
    return customers.select_related("owner").order_by("last_sale", "pk")


def due_date(last_sale: datetime.date) -> datetime.date:
    return last_sale + datetime.timedelta(days=settings.RETURN_VISIT_AFTER_DAYS)
