"""Writes of follow-up records (跟进记录), and the 360 timeline of a customer.

A follow-up is written only by someone who may edit its customer (customers.access.can_edit):
a sales rep for the customers they own or that are shared with them for editing, a manager for
everyone's; service staff read them only. A next contact date becomes a task (待办) at 09:00
Asia/Shanghai that day, which the reminder job picks up.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.access import can_edit
from customers.models import Contract, Customer, StatusChange, Transaction
from followups.models import FollowUp, Opportunity, Task

# A follow-up may be dated a little ahead of the server's clock (a phone that runs fast).
FUTURE_TOLERANCE = datetime.timedelta(minutes=5)
# When the task for a next contact date falls due, in the company's time zone.
CONTACT_TIME = datetime.time(9, 0)
EDITABLE_FIELDS = (
    "contact",
    "opportunity",
    "kind",
    "happened_at",
    "content",
    "result",
    "next_contact_date",
    "satisfaction",
)


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def contact_due_at(date: datetime.date) -> datetime.datetime:
    """09:00 in Asia/Shanghai on ``date``: when the task for a next contact date falls due."""
    return datetime.datetime.combine(date, CONTACT_TIME, tzinfo=_zone())


def validate_followup(values: dict[str, Any], *, customer: Customer, today: datetime.date | None = None) -> None:
    """The rules of a follow-up record, as a ValidationError by field (the form shows them)."""
    errors: dict[str, str] = {}
    now = timezone.now()
    happened_at = values.get("happened_at")
    if happened_at is not None and happened_at > now + FUTURE_TOLERANCE:
        errors["happened_at"] = _("A follow-up cannot happen in the future.")
    satisfaction = values.get("satisfaction")
    if satisfaction is not None:
        if values.get("kind") != FollowUp.Kind.RETURN_VISIT:
            errors["satisfaction"] = _("Only a return visit has a satisfaction score.")
        elif not 1 <= satisfaction <= 5:
            errors["satisfaction"] = _("Satisfaction is a score from 1 to 5.")
    next_date = values.get("next_contact_date")
    if next_date is not None and next_date < (today or timezone.localdate(now, _zone())):
        errors["next_contact_date"] = _("The next contact date cannot be in the past.")
    contact = values.get("contact")
    if contact is not None and contact.customer_id != customer.pk:
        errors["contact"] = _("This contact belongs to another customer.")
    opportunity = values.get("opportunity")
    if opportunity is not None and opportunity.customer_id != customer.pk:
        errors["opportunity"] = _("This opportunity belongs to another customer.")
    if not (values.get("content") or "").strip():
        errors["content"] = _("Say what was discussed.")
    if errors:
        raise ValidationError(errors)


def may_edit_followup(user, followup: FollowUp) -> bool:
    """Its author, or a manager (who may change every customer), and only within the customer scope."""
    if not user.has_perm("followups.change_followup"):
        return False
    if followup.created_by_id != user.pk and not user.has_perm("customers.change_all_customers"):
        return False
    return can_edit(user, followup.customer)


def _sync_task(followup: FollowUp, *, by) -> Task | None:
    """The open task of ``followup``'s next contact date: created, moved, or (date cleared) removed."""
    task = followup.tasks.filter(done=False).order_by("id").first()
    if followup.next_contact_date is None:
        if task is not None:
            task._history_user = by
            task.delete()
        return None
    due_at = contact_due_at(followup.next_contact_date)
    if task is None:
        customer = followup.customer
        task = Task(
            title=_("Contact %(name)s") % {"name": customer.name},
            customer=customer,
            followup=followup,
            due_at=due_at,
            assignee_id=customer.owner_id or by.pk,
            created_by=by,
        )
    elif task.due_at == due_at:
        return task
    task.due_at = due_at
    task._history_user = by
    task.save()
    return task


@transaction.atomic
def followup_create(
    *,
    customer: Customer,
    by,
    content: str,
    kind: str = FollowUp.Kind.PHONE,
    happened_at: datetime.datetime | None = None,
    result: str = "",
    next_contact_date: datetime.date | None = None,
    satisfaction: int | None = None,
    contact=None,
    opportunity=None,
) -> FollowUp:
    """Record a follow-up of ``customer`` by ``by`` (PermissionDenied unless ``by`` may edit the customer)."""
    if not by.has_perm("followups.add_followup") or not can_edit(by, customer):
        raise PermissionDenied("followups.add_followup")
    values = {
        "customer": customer,
        "contact": contact,
        "opportunity": opportunity,
        "kind": kind,
        "happened_at": happened_at or timezone.now(),
        "content": content,
        "result": result,
        "next_contact_date": next_contact_date,
        "satisfaction": satisfaction,
    }
    validate_followup(values, customer=customer)
    followup = FollowUp(**values, created_by=by)
    followup._history_user = by
    followup.save()
    _sync_task(followup, by=by)
    return followup


@transaction.atomic
def followup_update(*, followup: FollowUp, by, **changes) -> FollowUp:
    """Change a follow-up (its author or a manager); the history keeps what it said before."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"not editable: {', '.join(sorted(unknown))}")
    if not may_edit_followup(by, followup):
        raise PermissionDenied("followups.change_followup")
    values = {name: getattr(followup, name) for name in EDITABLE_FIELDS} | changes
    # An unchanged next contact date already in the past (an old record) is not an error.
    today = timezone.localdate(timezone.now(), _zone())
    if values["next_contact_date"] == followup.next_contact_date and followup.next_contact_date:
        today = min(today, followup.next_contact_date)
    validate_followup(values, customer=followup.customer, today=today)
    date_changed = values["next_contact_date"] != followup.next_contact_date
    for name, value in values.items():
        setattr(followup, name, value)
    followup._history_user = by
    followup.save()
    if date_changed:
        _sync_task(followup, by=by)
    return followup


# --- The 360 timeline ----------------------------------------------------------------------------

TIMELINE_PAGE = 20
# Rank of each source among items at the same moment (higher comes first, newest-first order).
SOURCE_RANK = {"opportunity": 5, "followup": 4, "status": 3, "transaction": 2, "contract": 1}
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


@dataclass
class TimelineItem:
    source: str  # opportunity, followup, status, transaction or contract
    when: datetime.datetime
    obj: Any

    @property
    def key(self) -> tuple[datetime.datetime, int, int]:
        return (self.when, SOURCE_RANK[self.source], self.obj.pk)

    @property
    def cursor(self) -> str:
        micros = (self.when - EPOCH) // datetime.timedelta(microseconds=1)
        return f"{micros}_{self.source}_{self.obj.pk}"


@dataclass
class TimelinePage:
    items: list[TimelineItem]
    next_cursor: str | None


def parse_cursor(raw: str | None) -> tuple[datetime.datetime, int, int] | None:
    """The position a page starts after; None (from the newest) for anything malformed."""
    if not raw:
        return None
    try:
        stamp, source, pk = raw.split("_")
        when = EPOCH + datetime.timedelta(microseconds=int(stamp))
        return (when, SOURCE_RANK[source], int(pk))
    except (ValueError, KeyError, OverflowError, OSError):
        return None


def _before_datetime(field: str, rank: int, cursor) -> Q:
    """Rows of a timestamped source that come after ``cursor`` in newest-first order."""
    when, cursor_rank, pk = cursor
    if rank < cursor_rank:
        return Q(**{f"{field}__lte": when})
    if rank > cursor_rank:
        return Q(**{f"{field}__lt": when})
    # ``t <= when AND (t < when OR id < pk)``: the same rows as ``t < when OR (t = when AND id < pk)``,
    # but the first term bounds the index range, so a deep page starts at the cursor instead of
    # reading the customer's newer rows first (docs/performance.md).
    return Q(**{f"{field}__lte": when}) & (Q(**{f"{field}__lt": when}) | Q(pk__lt=pk))


def _before_date(field: str, rank: int, cursor) -> Q:
    """The same for a dated source, whose items stand at midnight (Asia/Shanghai) of their date."""
    when, cursor_rank, pk = cursor
    local = when.astimezone(_zone())
    at_midnight = local.time() == datetime.time(0) and local.microsecond == 0
    # midnight(date) < when  ⇔  date < first_after
    first_after = local.date() if at_midnight else local.date() + datetime.timedelta(days=1)
    earlier = Q(**{f"{field}__lt": first_after})
    if not at_midnight or rank > cursor_rank:
        return earlier
    same = Q(**{field: local.date()})
    if rank < cursor_rank:
        return earlier | same
    # As in _before_datetime: bounded by ``date <= cursor's date`` (here first_after is that date).
    return Q(**{f"{field}__lte": first_after}) & (earlier | Q(pk__lt=pk))


def _midnight(date: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(date, datetime.time(0), tzinfo=_zone())


def customer_timeline(*, customer: Customer, user, cursor: str | None = None, size: int = TIMELINE_PAGE):
    """One page of ``customer``'s timeline, newest first: opportunities (when opened), follow-ups,
    status changes, transactions and contracts (at their start date), those the user may view.

    Each source is read once per page (``size + 1`` rows in time order, from an index on customer
    and time), merged here; the cursor is the last item's (time, source, id), so a page costs the
    same whether it is the first or the thousandth.
    """
    position = parse_cursor(cursor)
    perms = user.get_all_permissions()
    sources = []
    if "followups.view_opportunity" in perms:
        sources.append(
            (
                "opportunity",
                "created_at",
                Opportunity.objects.filter(customer=customer).select_related("owner"),
                _before_datetime,
                lambda obj: obj.created_at,
            )
        )
    if "followups.view_followup" in perms:
        sources.append(
            (
                "followup",
                "happened_at",
                customer.followups.select_related("created_by", "contact", "opportunity"),
                _before_datetime,
                lambda obj: obj.happened_at,
            )
        )
    if "customers.view_statuschange" in perms:
        sources.append(
            (
                "status",
                "changed_at",
                StatusChange.objects.filter(customer=customer).select_related("changed_by"),
                _before_datetime,
                lambda obj: obj.changed_at,
            )
        )
    if "customers.view_transaction" in perms:
        sources.append(
            (
                "transaction",
                "date",
                Transaction.objects.filter(customer=customer),
                _before_date,
                lambda obj: _midnight(obj.date),
            )
        )
    if "customers.view_contract" in perms:
        sources.append(
            (
                "contract",
                "start_date",
                Contract.objects.filter(customer=customer),
                _before_date,
                lambda obj: _midnight(obj.start_date),
            )
        )
    items: list[TimelineItem] = []
    for source, field, queryset, before, when_of in sources:
        if position is not None:
            queryset = queryset.filter(before(field, SOURCE_RANK[source], position))
        for obj in queryset.order_by(f"-{field}", "-pk")[: size + 1]:
            items.append(TimelineItem(source, when_of(obj), obj))
    items.sort(key=lambda item: item.key, reverse=True)
    page = items[:size]
    next_cursor = page[-1].cursor if len(items) > size else None
    return TimelinePage(page, next_cursor)
