"""Scheduled reports: subscribing from a report page, when an e-mail is due, what it carries, and
what happens when the subscriber may no longer see the report."""

from __future__ import annotations

import datetime
import io
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.urls import reverse
from openpyxl import load_workbook

from accounts.models import User
from cims.models import PersonalDataAccess
from customers.models import Transaction
from reports.facts import facts_refresh
from reports.models import ReportSubscription
from reports.registry import MONEY, REPORTS, TEXT, Figure, Report, ReportResult, Table
from reports.sources import money, sales_source
from reports.subscriptions import is_due, subscriptions_send_due
from tests.customers.factories import CustomerFactory

SH = ZoneInfo("Asia/Shanghai")


def at(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=SH)


class _Sales(Report):
    key = "probe_sales"
    title = "Probe sales"
    summaries = ("sales_facts",)
    permissions = ("reports.view_all_reports", "customers.view_transaction")

    def compute(self, filters):
        rows, measures = sales_source(filters, filters.start, filters.end)
        net = money(rows.aggregate(**measures)["net_amount"])
        rows = [[f"row {n}", Decimal(n)] for n in range(1, 21)]
        return ReportResult(
            figures=[Figure("Net sales", net, MONEY)],
            tables=[Table("rows", "Rows", ["Row", "Amount"], rows, [TEXT, MONEY])],
        )


@pytest.fixture(autouse=True)
def probe():
    REPORTS[_Sales.key] = _Sales
    yield
    REPORTS.pop(_Sales.key, None)


WEDNESDAY = at(2026, 11, 18, 10)


def _subscription(user, frequency="weekly", created=WEDNESDAY, query="period=day"):
    subscription = ReportSubscription.objects.create(user=user, report=_Sales.key, query=query, frequency=frequency)
    ReportSubscription.objects.filter(pk=subscription.pk).update(created_at=created)
    subscription.refresh_from_db()
    return subscription


def test_it_subscribes_with_the_filters_but_not_the_dates(client_for, manager):
    url = reverse("reports:subscribe", args=[_Sales.key])
    response = client_for(manager).post(
        url, {"frequency": "monthly", "query": "start=2026-01-01&end=2026-03-31&period=week&source="}
    )
    assert response.status_code == 302
    subscription = ReportSubscription.objects.get()
    assert (subscription.user, subscription.frequency, subscription.query) == (manager, "monthly", "period=week")


@pytest.mark.parametrize(
    "data", [{"frequency": "hourly", "query": ""}, {"frequency": "daily", "query": "start=nonsense"}]
)
def test_it_refuses_a_bad_subscription(client_for, manager, data):
    response = client_for(manager).post(reverse("reports:subscribe", args=[_Sales.key]), data)
    assert response.status_code == 302 and not ReportSubscription.objects.exists()


def test_it_refuses_to_subscribe_without_an_address_or_the_report(client_for, manager, roleless_user):
    User.objects.filter(pk=manager.pk).update(email="")
    client_for(manager).post(reverse("reports:subscribe", args=[_Sales.key]), {"frequency": "daily", "query": ""})
    assert not ReportSubscription.objects.exists()
    response = client_for(roleless_user).post(
        reverse("reports:subscribe", args=[_Sales.key]), {"frequency": "daily", "query": ""}
    )
    assert response.status_code == 403


def test_it_unsubscribes_only_ones_own(client_for, manager, other_sales_rep):
    theirs = _subscription(other_sales_rep)
    mine = _subscription(manager)
    assert client_for(manager).post(reverse("reports:subscription_delete", args=[theirs.pk])).status_code == 404
    assert client_for(manager).post(reverse("reports:subscription_delete", args=[mine.pk])).status_code == 302
    assert list(ReportSubscription.objects.all()) == [theirs]


def test_it_is_due_once_per_period_counting_from_creation(manager):
    weekly = _subscription(manager, "weekly", created=at(2026, 11, 18, 10))  # a Wednesday
    assert not is_due(weekly, datetime.date(2026, 11, 22))  # Sunday: same ISO week
    assert is_due(weekly, datetime.date(2026, 11, 23))  # Monday
    monthly = _subscription(manager, "monthly", created=at(2026, 11, 18, 10))
    assert not is_due(monthly, datetime.date(2026, 11, 30)) and is_due(monthly, datetime.date(2026, 12, 1))
    daily = _subscription(manager, "daily", created=at(2026, 11, 18, 23, 59))
    assert not is_due(daily, datetime.date(2026, 11, 18)) and is_due(daily, datetime.date(2026, 11, 19))


def test_it_emails_a_due_report_with_the_workbook_once(manager, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    Transaction.objects.create(
        customer=customer, date=datetime.date(2026, 11, 20), amount=Decimal("800.00"), product="x"
    )
    Transaction.objects.create(
        customer=customer, date=datetime.date(2026, 11, 22), amount=Decimal("-50.00"), product="x"
    )
    Transaction.objects.create(customer=customer, date=datetime.date(2026, 11, 23), amount=Decimal("7.00"), product="x")
    facts_refresh()
    subscription = _subscription(manager, "weekly")
    assert subscriptions_send_due(now=at(2026, 11, 23, 7)) == 1
    [message] = mail.outbox
    assert message.to == [manager.email]
    # The range ends yesterday (Sunday 11-22) and spans the daily default of 30 days: 800 − 50.
    assert "2026-10-24" in message.subject and "2026-11-22" in message.subject
    html = message.alternatives[0][0]
    assert "¥750.00" in html and "row 15" in html and "row 16" not in html
    name, content, kind = message.attachments[0]
    assert name.endswith(".xlsx") and kind.startswith("application/vnd.openxmlformats")
    assert load_workbook(io.BytesIO(content))["Rows"].max_row == 21
    log = PersonalDataAccess.objects.get(action="export", object_type="report")
    assert log.user == manager and f"subscription={subscription.pk}" in log.detail
    assert subscriptions_send_due(now=at(2026, 11, 23, 8)) == 0
    subscription.refresh_from_db()
    assert subscription.last_sent_at == at(2026, 11, 23, 7) and subscription.last_error == ""


def test_it_stops_sending_to_someone_who_lost_the_report(sales_rep):
    subscription = _subscription(sales_rep, "daily")
    sales_rep.groups.clear()
    assert subscriptions_send_due(now=at(2026, 11, 23, 7)) == 0
    assert mail.outbox == []
    subscription.refresh_from_db()
    assert subscription.last_error and subscription.last_sent_at is None


def test_it_keeps_a_sending_failure_and_tries_again(manager, monkeypatch):
    subscription = _subscription(manager, "daily")

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send", refuse)
    assert subscriptions_send_due(now=at(2026, 11, 23, 7)) == 0
    subscription.refresh_from_db()
    assert "ConnectionRefusedError" in subscription.last_error and subscription.last_sent_at is None
    monkeypatch.undo()
    assert subscriptions_send_due(now=at(2026, 11, 23, 9)) == 1
