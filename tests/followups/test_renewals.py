"""Contract expiry and renewals: reminders and renewal tasks exactly once, expiry automatic, dashboard card."""

import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from customers.models import Contract
from followups import renewals
from followups.models import Notification, Task
from tests.concurrency import run_at_once
from tests.customers.factories import ContractFactory, CustomerFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
TODAY = datetime.date(2026, 6, 1)


def contract(owner, *, end, status=Contract.Status.ACTIVE, **kwargs):
    return ContractFactory(
        customer=CustomerFactory(owner=owner, **kwargs),
        start_date=datetime.date(2025, 1, 1),
        end_date=end,
        status=status,
    )


@pytest.mark.django_db
@override_settings(CONTRACT_RENEWAL_DAYS=30)
def test_it_reminds_the_owner_and_creates_one_renewal_task_even_if_run_twice(sales_rep):
    soon = contract(sales_rep, end=TODAY + datetime.timedelta(days=20))
    last_day = contract(sales_rep, end=TODAY + datetime.timedelta(days=30))
    contract(sales_rep, end=TODAY + datetime.timedelta(days=31))  # not yet
    contract(sales_rep, end=TODAY + datetime.timedelta(days=5), status=Contract.Status.TERMINATED)
    contract(None, end=TODAY + datetime.timedelta(days=5))  # in the pool: nobody to remind
    contract(sales_rep, end=TODAY + datetime.timedelta(days=5), deleted_at=timezone.now())

    assert renewals.notify_renewals(today=TODAY) == 2
    assert renewals.notify_renewals(today=TODAY) == 0
    keys = set(Notification.objects.filter(user=sales_rep).values_list("key", flat=True))
    assert keys == {
        f"contract-renewal:{soon.pk}:{soon.end_date.isoformat()}",
        f"contract-renewal:{last_day.pk}:{last_day.end_date.isoformat()}",
    }
    tasks = {task.customer_id: task for task in Task.objects.filter(assignee=sales_rep)}
    assert len(tasks) == 2
    task = tasks[soon.customer_id]
    assert task.title == f"续签合同 {soon.number}"  # the jobs run in the site's language (zh-hans)
    assert timezone.localtime(task.due_at, SHANGHAI).date() == soon.end_date - datetime.timedelta(days=7)


@pytest.mark.django_db
def test_the_task_is_due_today_when_the_end_is_less_than_a_week_away(sales_rep):
    ending = contract(sales_rep, end=TODAY + datetime.timedelta(days=3))
    renewals.notify_renewals(today=TODAY)
    task = Task.objects.get(customer=ending.customer)
    assert timezone.localtime(task.due_at, SHANGHAI).date() == TODAY


@pytest.mark.django_db
def test_a_new_owner_gets_no_second_task(sales_rep, other_sales_rep):
    ending = contract(sales_rep, end=TODAY + datetime.timedelta(days=10))
    renewals.notify_renewals(today=TODAY)
    ending.customer.owner = other_sales_rep
    ending.customer.save()
    assert renewals.notify_renewals(today=TODAY) == 0
    assert Task.objects.filter(customer=ending.customer).count() == 1


@pytest.mark.django_db
def test_a_moved_end_date_is_reminded_again(sales_rep):
    ending = contract(sales_rep, end=TODAY + datetime.timedelta(days=10))
    renewals.notify_renewals(today=TODAY)
    ending.end_date = TODAY + datetime.timedelta(days=12)
    ending.save()
    assert renewals.notify_renewals(today=TODAY) == 1


@pytest.mark.django_db
def test_contracts_past_their_end_date_expire_with_history(sales_rep):
    ended = contract(sales_rep, end=TODAY - datetime.timedelta(days=1))
    ends_today = contract(sales_rep, end=TODAY)
    terminated = contract(sales_rep, end=TODAY - datetime.timedelta(days=9), status=Contract.Status.TERMINATED)
    assert renewals.expire_contracts(today=TODAY) == 1
    assert renewals.expire_contracts(today=TODAY) == 0
    statuses = dict(Contract.objects.values_list("pk", "status"))
    assert statuses[ended.pk] == Contract.Status.EXPIRED
    assert statuses[ends_today.pk] == Contract.Status.ACTIVE
    assert statuses[terminated.pk] == Contract.Status.TERMINATED
    latest = ended.history.order_by("-history_id").first()
    assert latest.status == Contract.Status.EXPIRED and latest.history_change_reason == "expired automatically"


@pytest.mark.django_db
def test_the_daily_task_expires_and_reminds(sales_rep):
    from followups.tasks import contract_renewals

    contract(sales_rep, end=timezone.localdate() - datetime.timedelta(days=1))
    contract(sales_rep, end=timezone.localdate() + datetime.timedelta(days=2))
    assert contract_renewals() == {"expired": 1, "reminded": 1}
    assert contract_renewals() == {"expired": 0, "reminded": 0}


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_still_create_one_task_per_contract():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    from tests.factories import UserFactory

    owner = UserFactory(role="sales")
    for days in range(10):
        contract(owner, end=TODAY + datetime.timedelta(days=days))
    results, errors = run_at_once(lambda: renewals.notify_renewals(today=TODAY), threads=3)
    assert errors == [] and sum(results) == 10
    assert Task.objects.count() == 10 and Notification.objects.count() == 10


@pytest.mark.django_db
def test_the_dashboard_lists_expiring_contracts_the_user_may_see(client_for, sales_rep, other_sales_rep, analyst):
    today = timezone.localdate()
    mine = contract(sales_rep, end=today + datetime.timedelta(days=5))
    theirs = contract(other_sales_rep, end=today + datetime.timedelta(days=6))
    contract(sales_rep, end=today + datetime.timedelta(days=90))
    response = client_for(sales_rep).get(reverse("reports:dashboard"), HTTP_ACCEPT_LANGUAGE="en")
    body = response.content.decode()
    assert response.context["expiring_count"] == 1
    assert 'data-testid="expiring-card"' in body and mine.number in body and theirs.number not in body
    assert "Contracts ending in the next 30 days" in body
    response = client_for(analyst).get(reverse("reports:dashboard"))
    assert 'data-testid="expiring-card"' not in response.content.decode()
