"""Contract expiry and renewals (合同到期提醒), run daily by Celery beat (followups.tasks.contract_renewals).

A contract in force whose end date falls within CONTRACT_RENEWAL_DAYS gives its customer's owner a
notification and a renewal task, exactly once per contract and end date: the notification key
``contract-renewal:<contract>:<end date>`` is unique per user, and the task is created only by the
run whose notification was really inserted, in the same transaction. A contract still in force
after its end date becomes EXPIRED, with a history row.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import CharField, Exists, OuterRef, QuerySet, Value
from django.db.models.functions import Cast, Concat
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from cims import webhooks
from customers.models import Contract, Customer
from followups.models import Notification
from followups.reminders import notify, task_create
from followups.services import _zone, contact_due_at

# The renewal task falls due this long before the contract ends (or today, when that has passed).
TASK_LEAD = datetime.timedelta(days=7)
EXPIRED_REASON = "expired automatically"


def renewal_key(contract: Contract) -> str:
    return f"contract-renewal:{contract.pk}:{contract.end_date.isoformat()}"


def _today(today: datetime.date | None) -> datetime.date:
    return today or timezone.localdate(timezone.now(), _zone())


def expiring_contracts(*, today: datetime.date | None = None, days: int | None = None) -> QuerySet[Contract]:
    """Contracts in force that end between ``today`` and ``days`` days later, of live customers."""
    today = _today(today)
    days = settings.CONTRACT_RENEWAL_DAYS if days is None else days
    return Contract.objects.filter(
        status=Contract.Status.ACTIVE,
        end_date__gte=today,
        end_date__lte=today + datetime.timedelta(days=days),
        customer__deleted_at__isnull=True,
    )


def expiring_contracts_for(user, *, today: datetime.date | None = None) -> QuerySet[Contract]:
    """What the dashboard lists: expiring contracts of the customers ``user`` may see."""
    return expiring_contracts(today=today).filter(customer__in=Customer.objects.visible_to(user))


def notify_renewals(*, today: datetime.date | None = None) -> int:
    """Remind owners of contracts ending soon and give them a renewal task; returns how many."""
    today = _today(today)
    # A key already used by anyone (an earlier owner too) means the reminder and its task exist.
    reminded = Notification.objects.filter(key=OuterRef("renewal_key"))
    due = (
        expiring_contracts(today=today)
        .filter(customer__owner__isnull=False)
        .annotate(
            renewal_key=Concat(
                Value("contract-renewal:"),
                Cast("pk", CharField()),
                Value(":"),
                Cast("end_date", CharField()),
                output_field=CharField(),
            )
        )
        .exclude(Exists(reminded))
        .select_related("customer__owner")
        .order_by("end_date", "pk")
    )
    created = 0
    for contract in due.iterator(chunk_size=500):
        created += _remind(contract, today=today)
    return created


@transaction.atomic
def _remind(contract: Contract, *, today: datetime.date) -> int:
    customer = contract.customer
    owner = customer.owner
    notification = notify(
        user=owner,
        key=renewal_key(contract),
        title=_("Contract %(number)s ends on %(date)s") % {"number": contract.number, "date": contract.end_date},
        body=f"{customer.code} {customer.name} · {contract.title}",
        url=reverse("customers:detail", args=[customer.pk]),
    )
    if notification is None:
        return 0  # another run (or worker) reminded this contract already
    webhooks.emit("contract.expiring", payload_for=lambda: webhooks.contract_data(contract))
    task_create(
        title=_("Renew contract %(number)s") % {"number": contract.number},
        due_at=contact_due_at(max(contract.end_date - TASK_LEAD, today)),
        assignee=owner,
        customer=customer,
        by=None,
    )
    return 1


def expire_contracts(*, today: datetime.date | None = None) -> int:
    """Contracts in force after their end date become EXPIRED, each with a history row."""
    today = _today(today)
    expired = 0
    with transaction.atomic():
        # Few per day: saved one by one so that django-simple-history records each change.
        for contract in Contract.objects.select_for_update().filter(status=Contract.Status.ACTIVE, end_date__lt=today):
            contract.status = Contract.Status.EXPIRED
            contract._change_reason = EXPIRED_REASON
            contract.save(update_fields=["status"])
            expired += 1
    return expired


def run_contract_renewals(*, today: datetime.date | None = None) -> dict[str, int]:
    today = _today(today)
    return {"expired": expire_contracts(today=today), "reminded": notify_renewals(today=today)}
