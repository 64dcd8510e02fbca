"""The customer pool (公海): customers without an owner, claimed, released and returned.

A customer is in the pool when it is alive and its owner is NULL. Claiming is one conditional
UPDATE (``… WHERE id = %s AND owner_id IS NULL``): of two reps claiming at once, exactly one row is
updated and the other learns that someone else was first. A rep's own claims are serialised by
locking their user row, so parallel claims cannot overshoot POOL_MAX_OWNED either.

The nightly job (``return_idle_customers``) gives back to the pool the customers nobody has
followed up for POOL_IDLE_DAYS days and that have no open opportunity; ``warn_idle_customers``
warns their owners POOL_WARNING_DAYS before. A day is a calendar day in Asia/Shanghai: a customer
last followed up on 1 May (any time that day) returns on the night of 31 May with 30 idle days.
"""

from __future__ import annotations

import datetime

from django.apps import apps
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from customers.models import Customer, CustomerUserObjectPermission
from customers.services import record_history_bulk

CLAIM_REASON = "claimed from pool"
RELEASE_REASON = "released to pool"
RETURN_BATCH = 1000


class PoolError(Exception):
    """A claim or release the pool refuses; the message is for the user."""


def pool_customers() -> QuerySet[Customer]:
    """Live customers without an owner (an erased one is never offered to be claimed)."""
    return Customer.objects.filter(owner__isnull=True, erased_at__isnull=True)


def owned_count(user) -> int:
    return Customer.objects.filter(owner=user).count()


@transaction.atomic
def customer_claim(*, customer_id: int, by) -> Customer:
    """Make ``by`` the owner of pool customer ``customer_id``; PoolError when refused or lost."""
    if not by.has_perm("customers.claim_customer"):
        raise PermissionDenied("customers.claim_customer")
    # One claim of this rep at a time: the count below stays true until this transaction ends.
    User.objects.select_for_update().filter(pk=by.pk).first()
    limit = settings.POOL_MAX_OWNED
    if owned_count(by) >= limit:
        raise PoolError(
            _("You already own %(limit)d customers, the most one person may own. Release some before claiming more.")
            % {"limit": limit}
        )
    now = timezone.now()
    won = Customer.objects.filter(pk=customer_id, owner__isnull=True, erased_at__isnull=True).update(
        owner=by, owner_since=now, updated_at=now
    )
    if not won:
        if Customer.objects.filter(pk=customer_id, erased_at__isnull=True).exists():
            raise PoolError(_("Someone else claimed this customer first."))
        raise PoolError(_("This customer is no longer in the pool."))
    record_history_bulk([customer_id], history_type="~", by=by, reason=CLAIM_REASON, when=now)
    return Customer.objects.get(pk=customer_id)


def may_release(user, customer: Customer) -> bool:
    """The owner, or a manager (who may change every customer)."""
    if customer.owner_id is None:
        return False
    return customer.owner_id == user.pk or user.has_perm("customers.change_all_customers")


@transaction.atomic
def customer_release(*, customer: Customer, by) -> None:
    """Give ``customer`` back to the pool: no owner, and the previous owner's shares removed."""
    if not may_release(by, customer):
        raise PermissionDenied("release")
    previous = customer.owner_id
    now = timezone.now()
    released = Customer.objects.filter(pk=customer.pk, owner_id=previous).update(owner=None, updated_at=now)
    if not released:
        raise PoolError(_("This customer changed owner meanwhile; nothing was released."))
    # Like customer_transfer: the old owner no longer owns it, so their object grants on it go too.
    CustomerUserObjectPermission.objects.filter(user_id=previous, content_object_id=customer.pk).delete()
    record_history_bulk([customer.pk], history_type="~", by=by, reason=RELEASE_REASON, when=now)
    customer.owner = None


# --- The nightly return ----------------------------------------------------------------------------


def _zone():
    from followups.services import _zone  # the app's one Asia/Shanghai day rule (followups builds on customers)

    return _zone()


def _day_start(day: datetime.date) -> datetime.datetime:
    from followups.services import _midnight

    return _midnight(day)


def _open_opportunity_model():
    """followups.Opportunity with the stages that close it, or None while the model does not exist."""
    try:
        model = apps.get_model("followups", "Opportunity")
    except LookupError:
        return None, ()
    stage = getattr(model, "Stage", None)
    closed = tuple(getattr(stage, name) for name in ("WON", "LOST") if stage is not None and hasattr(stage, name)) or (
        "won",
        "lost",
    )
    return model, closed


def _claims_since(since: datetime.datetime):
    history = Customer.history.model
    return history.objects.filter(id=OuterRef("pk"), history_change_reason=CLAIM_REASON, history_date__gte=since)


def active_since(since: datetime.datetime) -> Q:
    """Customers with activity at or after ``since``: created, claimed or transferred to their owner,
    followed up, or with an open opportunity."""
    from followups.models import FollowUp

    q = (
        Q(created_at__gte=since)
        | Q(owner_since__gte=since)
        | Q(Exists(FollowUp.objects.filter(customer=OuterRef("pk"), happened_at__gte=since)))
        | Q(Exists(_claims_since(since)))
    )
    opportunity, closed = _open_opportunity_model()
    if opportunity is not None:
        q |= Q(Exists(opportunity.objects.filter(customer=OuterRef("pk")).exclude(stage__in=closed)))
    return q


def idle_cutoff(today: datetime.date, days: int) -> datetime.datetime:
    """Activity before this moment means ``days`` or more idle calendar days on ``today``."""
    return _day_start(today - datetime.timedelta(days=days - 1))


def idle_customers(*, today: datetime.date, days: int) -> QuerySet[Customer]:
    """Owned customers idle for ``days`` calendar days or more on ``today``."""
    # An erased customer keeps its owner (its sales still count) and never goes back to the pool.
    return Customer.objects.filter(owner__isnull=False, erased_at__isnull=True).exclude(
        active_since(idle_cutoff(today, days))
    )


def _today(today: datetime.date | None) -> datetime.date:
    return today or timezone.localdate(timezone.now(), _zone())


def return_idle_customers(*, today: datetime.date | None = None) -> int:
    """Give idle customers back to the pool; their owners are told. Returns how many went back.

    Batch by batch, each in its own transaction: the idle rows are locked and their owners read,
    then one UPDATE … WHERE id IN (…) empties them, the old owners' shares are removed and one
    history row per customer is copied in SQL.
    """
    from followups.reminders import notify

    today = _today(today)
    days = settings.POOL_IDLE_DAYS
    reason = f"returned to pool: no follow-up for {days} days"
    total = 0
    while True:
        with transaction.atomic():
            pairs = list(
                idle_customers(today=today, days=days)
                .select_for_update(of=("self",))
                .order_by("pk")
                .values_list("pk", "owner_id", "code", "name")[:RETURN_BATCH]
            )
            if not pairs:
                break
            ids = [pk for pk, *_ in pairs]
            now = timezone.now()
            Customer.objects.filter(pk__in=ids, owner__isnull=False).update(owner=None, updated_at=now)
            for owner_id in {owner for _pk, owner, *_ in pairs}:
                CustomerUserObjectPermission.objects.filter(
                    user_id=owner_id, content_object_id__in=[pk for pk, owner, *_ in pairs if owner == owner_id]
                ).delete()
            record_history_bulk(ids, history_type="~", by=None, reason=reason, when=now)
            owners = User.objects.in_bulk({owner for _pk, owner, *_ in pairs})
            for pk, owner_id, code, name in pairs:
                notify(
                    user=owners[owner_id],
                    key=f"pool-return:{pk}:{today.isoformat()}",
                    title=_("%(code)s %(name)s went back to the customer pool") % {"code": code, "name": name},
                    body=_("No follow-up for %(days)d days.") % {"days": days},
                    url=reverse("customers:pool"),
                )
            total += len(pairs)
    return total


def warn_idle_customers(*, today: datetime.date | None = None) -> int:
    """Warn owners, once per customer and due date, that a customer returns to the pool soon."""
    from followups.models import FollowUp, Notification
    from followups.reminders import notify

    today = _today(today)
    days = settings.POOL_IDLE_DAYS
    lead = settings.POOL_WARNING_DAYS
    if lead <= 0 or lead >= days:
        return 0
    # Idle for (days - lead) days or more but not yet for ``days`` (those return tonight).
    soon = (
        Customer.objects.filter(owner__isnull=False, erased_at__isnull=True)
        .exclude(active_since(idle_cutoff(today, days - lead)))
        .filter(active_since(idle_cutoff(today, days)))
        .annotate(
            last_followup=Subquery(
                FollowUp.objects.filter(customer=OuterRef("pk")).order_by("-happened_at").values("happened_at")[:1]
            ),
            last_claim=Subquery(
                Customer.history.model.objects.filter(id=OuterRef("pk"), history_change_reason=CLAIM_REASON)
                .order_by("-history_date")
                .values("history_date")[:1]
            ),
        )
        .order_by("pk")
        .values_list("pk", "owner_id", "code", "name", "created_at", "last_followup", "last_claim")
    )
    sent = 0
    rows = list(soon.iterator(chunk_size=1000))
    for start in range(0, len(rows), 1000):
        chunk = rows[start : start + 1000]
        planned = {}
        for pk, owner_id, code, name, created_at, last_followup, last_claim in chunk:
            last = max(moment for moment in (created_at, last_followup, last_claim) if moment is not None)
            due = timezone.localdate(last, _zone()) + datetime.timedelta(days=days)
            planned[(owner_id, f"pool-warning:{pk}:{due.isoformat()}")] = (code, name, due)
        existing = set(
            Notification.objects.filter(key__in=[key for _owner, key in planned]).values_list("user_id", "key")
        )
        owners = User.objects.in_bulk({owner for owner, _key in planned})
        for (owner_id, key), (code, name, due) in planned.items():
            if (owner_id, key) in existing:
                continue
            created = notify(
                user=owners[owner_id],
                key=key,
                title=_("%(code)s %(name)s returns to the pool on %(date)s")
                % {"code": code, "name": name, "date": due.isoformat()},
                body=_("Record a follow-up before then to keep this customer."),
                url=reverse("customers:detail", args=[int(key.split(":")[1])]),
            )
            sent += created is not None
    return sent


__all__ = [
    "CLAIM_REASON",
    "RELEASE_REASON",
    "PoolError",
    "active_since",
    "customer_claim",
    "customer_release",
    "idle_customers",
    "may_release",
    "owned_count",
    "pool_customers",
    "return_idle_customers",
    "warn_idle_customers",
]
