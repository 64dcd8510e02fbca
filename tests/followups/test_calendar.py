"""The calendar (日程) shows today and the days ahead by Shanghai day; the past is in the history."""

import datetime
import re
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from followups.models import Note
from tests.customers.factories import CustomerFactory
from tests.followups.factories import FollowUpFactory, TaskFactory

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
# 20:00 in Shanghai on the 23rd is 12:00 UTC: the same day in both.
NOW = datetime.datetime(2026, 11, 23, 20, 0, tzinfo=SHANGHAI)


@pytest.fixture
def frozen(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW.astimezone(datetime.UTC))
    return NOW


def _at(day, hour, minute):
    return datetime.datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


def _days(html: str) -> dict[str, str]:
    """The HTML of each day's card on the calendar, by date."""
    parts = re.split(r'data-testid="day-(\d{4}-\d{2}-\d{2})"', html)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_it_sends_anonymous_users_to_login(client):
    for name in ("followups:calendar", "followups:history"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "login" in response["Location"]


def test_it_refuses_roles_without_an_agenda(client_for, analyst):
    assert client_for(analyst).get(reverse("followups:calendar")).status_code == 403
    assert client_for(analyst).get(reverse("followups:history")).status_code == 403


def test_it_refuses_post(client_for, sales_rep):
    assert client_for(sales_rep).post(reverse("followups:calendar")).status_code == 405


def test_it_places_tasks_by_shanghai_day_at_midnight(client_for, sales_rep, frozen, django_assert_max_num_queries):
    TaskFactory(customer=None, assignee=sales_rep, title="just after midnight", due_at=_at(24, 0, 5))
    TaskFactory(customer=None, assignee=sales_rep, title="just before midnight", due_at=_at(23, 23, 55))
    TaskFactory(customer=None, assignee=sales_rep, title="early today", due_at=_at(23, 0, 5))
    TaskFactory(customer=None, assignee=sales_rep, title="yesterday late", due_at=_at(22, 23, 55))
    TaskFactory(
        customer=None,
        assignee=sales_rep,
        title="last day",
        due_at=datetime.datetime(2026, 12, 6, 23, 59, tzinfo=SHANGHAI),
    )
    TaskFactory(
        customer=None, assignee=sales_rep, title="beyond", due_at=datetime.datetime(2026, 12, 7, 0, 0, tzinfo=SHANGHAI)
    )
    client = client_for(sales_rep)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("followups:calendar"))
    html = response.content.decode()
    days = _days(html)
    assert list(days)[0] == "2026-11-23" and list(days)[-1] == "2026-12-06" and len(days) == 14
    # 2026-11-24 00:05 in Shanghai is 2026-11-23 16:05 UTC: it is on the 24th.
    assert "just after midnight" in days["2026-11-24"] and "just after midnight" not in days["2026-11-23"]
    assert "just before midnight" in days["2026-11-23"] and "early today" in days["2026-11-23"]
    assert "last day" in days["2026-12-06"] and "beyond" not in html
    # The past is not a calendar day; an open task from then is flagged as overdue above it.
    assert "yesterday late" not in "".join(days.values())
    assert 'data-testid="calendar-overdue"' in html and "yesterday late" in html


def test_it_shows_next_contact_dates_of_own_customers_and_own_notes(client_for, sales_rep, other_sales_rep, frozen):
    mine = CustomerFactory(owner=sales_rep, name="我的客户")
    theirs = CustomerFactory(owner=other_sales_rep, name="别人的客户")
    FollowUpFactory(customer=mine, next_contact_date=datetime.date(2026, 11, 25))
    FollowUpFactory(customer=theirs, next_contact_date=datetime.date(2026, 11, 25))
    FollowUpFactory(customer=mine, next_contact_date=datetime.date(2026, 11, 20), content="past contact")
    Note.objects.create(author=sales_rep, date=datetime.date(2026, 11, 24), text="bring the brochure")
    Note.objects.create(author=other_sales_rep, date=datetime.date(2026, 11, 24), text="someone else's secret")
    Note.objects.create(author=sales_rep, date=datetime.date(2026, 11, 22), text="yesterday's note")
    TaskFactory(customer=None, assignee=other_sales_rep, title="their task", due_at=_at(24, 9, 0))
    html = client_for(sales_rep).get(reverse("followups:calendar")).content.decode()
    days = _days(html)
    assert "我的客户" in days["2026-11-25"] and "别人的客户" not in html
    assert "bring the brochure" in days["2026-11-24"]
    assert "secret" not in html and "yesterday" not in html and "their task" not in html


def test_the_history_holds_the_past_and_searches_it(client_for, sales_rep, other_sales_rep, frozen):
    customer = CustomerFactory(owner=sales_rep, name="华东贸易")
    Note.objects.create(author=sales_rep, date=datetime.date(2026, 11, 20), text="price list sent")
    Note.objects.create(author=sales_rep, date=datetime.date(2026, 11, 23), text="today's note")
    Note.objects.create(author=other_sales_rep, date=datetime.date(2026, 11, 20), text="price of theirs")
    TaskFactory(customer=customer, assignee=sales_rep, title="price check", done=True, done_at=_at(21, 10, 0))
    TaskFactory(customer=customer, assignee=sales_rep, title="open price task", due_at=_at(21, 10, 0))
    FollowUpFactory(customer=customer, created_by=sales_rep, happened_at=_at(22, 15, 0), content="discussed price")
    client = client_for(sales_rep)
    html = client.get(reverse("followups:history")).content.decode()
    assert "price list sent" in html and "price check" in html and "discussed price" in html
    assert "today&#x27;s note" not in html and "open price task" not in html and "theirs" not in html
    found = client.get(reverse("followups:history"), {"q": "list"}).content.decode()
    assert "price list sent" in found and "price check" not in found and "discussed price" not in found
    only_tasks = client.get(reverse("followups:history"), {"q": "price", "kind": "task"}).content.decode()
    assert "price check" in only_tasks and "price list sent" not in only_tasks


def test_the_history_pages(client_for, sales_rep, frozen, django_assert_max_num_queries):
    for day in range(30):
        Note.objects.create(
            author=sales_rep, date=datetime.date(2026, 10, 1) + datetime.timedelta(days=day), text=f"note {day:02d}"
        )
    client = client_for(sales_rep)
    with django_assert_max_num_queries(14):
        first = client.get(reverse("followups:history")).content.decode()
    second = client.get(reverse("followups:history"), {"page": 2}).content.decode()
    assert first.count('data-testid="history-note"') == 25 and "note 29" in first and "note 04" not in first
    assert second.count('data-testid="history-note"') == 5 and "note 04" in second and "note 00" in second


def test_the_history_survives_bad_input(client_for, sales_rep):
    client = client_for(sales_rep)
    for params in (
        {"page": "x"},
        {"page": "999"},
        {"page": "9" * 30},
        {"page": "-5"},
        {"kind": "bogus"},
        {"q": "x" * 500},
    ):
        assert client.get(reverse("followups:history"), params).status_code == 200
