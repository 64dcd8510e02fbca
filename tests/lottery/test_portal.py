"""A customer's lottery record: the portal page (their own entries; the result only once announced),
the 抽奖记录 card of the 360° page, and their personal-data export."""

from __future__ import annotations

import io
import json

import openpyxl
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from customers.models import Customer
from lottery.models import LotteryEntry, LotteryWinner
from lottery.services import TierData, event_announce, event_draw, event_publish
from tests.lottery.factories import make_event

pytestmark = pytest.mark.django_db

PAGE = reverse("portal:lottery")
WON = Customer.Status.WON
ONE_PRIZE = (TierData("一等奖", "笔记本电脑", 1, 1),)


@pytest.fixture
def me(portal_customer_record, sales_rep):
    Customer.objects.filter(pk=portal_customer_record.pk).update(status=WON, owner=sales_rep)
    portal_customer_record.refresh_from_db()
    return portal_customer_record


@pytest.fixture
def other(other_portal_customer_record, other_sales_rep):
    Customer.objects.filter(pk=other_portal_customer_record.pk).update(status=WON, owner=other_sales_rep)
    return other_portal_customer_record


@pytest.fixture
def portal(client_for, portal_customer, me):
    return client_for(portal_customer)


@pytest.fixture
def other_portal(client_for, other_portal_customer, other):
    return client_for(other_portal_customer)


def _lottery(administrator, *, name="2026 年末客户答谢抽奖", year=2026, tiers=ONE_PRIZE, draw=False, announce=False):
    event = make_event(by=administrator, name=name, year=year, tiers=tiers)
    event_publish(event=event, by=administrator)
    if draw or announce:
        event_draw(event=event, by=administrator)
    if announce:
        event_announce(event=event, by=administrator)
    event.refresh_from_db()
    return event


def _entry(event, customer) -> LotteryEntry:
    return LotteryEntry.objects.get(event=event, customer=customer)


def _body(client, url=PAGE) -> str:
    with translation.override("en"):
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    return response.content.decode()


# --- Who may enter ---------------------------------------------------------------------------------


def test_it_sends_an_anonymous_user_to_log_in(client):
    response = client.get(PAGE)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_refuses_staff(client_for, sales_rep, manager, administrator):
    for user in (sales_rep, manager, administrator):
        assert client_for(user).get(PAGE).status_code == 403


def test_it_refuses_other_methods(portal):
    assert portal.post(PAGE).status_code == 405


def test_it_links_to_the_page_from_the_portal_home(portal):
    body = portal.get(reverse("accounts:portal_home")).content.decode()
    assert f'href="{PAGE}"' in body and 'data-testid="card-lottery"' in body


# --- What the customer sees ------------------------------------------------------------------------


def test_it_shows_an_empty_page_to_a_customer_in_no_lottery(client_for, portal_customer, portal_customer_record):
    body = _body(client_for(portal_customer))  # a prospect: never eligible
    assert 'data-testid="lottery-empty"' in body and 'data-testid="lottery-entry"' not in body


def test_it_shows_my_entry_and_never_another_customers(portal, administrator, me, other):
    event = _lottery(administrator)
    mine, theirs = _entry(event, me), _entry(event, other)
    body = _body(portal)
    assert body.count('data-testid="lottery-entry"') == 1
    assert mine.entry_id in body and theirs.entry_id not in body
    assert reverse("lottery:public", args=[event.pk]) in body
    assert 'data-testid="pending"' in body and "The results will be shown once they are announced." in body


def test_it_keeps_the_result_back_until_the_announcement(portal, other_portal, administrator, me, other):
    event = _lottery(administrator, draw=True)
    assert LotteryWinner.objects.filter(event=event).count() == 1
    for client in (portal, other_portal):
        body = _body(client)
        assert 'data-testid="pending"' in body
        assert 'data-testid="won"' not in body and 'data-testid="not-won"' not in body and "笔记本电脑" not in body


def test_it_tells_the_winner_and_the_others_once_announced(portal, other_portal, administrator, me, other):
    event = _lottery(administrator, announce=True)
    winner = LotteryWinner.objects.get(event=event).customer
    clients = {me.pk: portal, other.pk: other_portal}
    body = _body(clients.pop(winner.pk))
    assert 'data-testid="won"' in body and "You won 一等奖: 笔记本电脑" in body
    (loser,) = clients.values()
    body = _body(loser)
    assert 'data-testid="not-won"' in body and "笔记本电脑" not in body


def test_it_lists_my_events_newest_first_in_a_few_queries(
    portal, administrator, me, other, django_assert_max_num_queries
):
    _lottery(administrator, name="2025 年会抽奖", year=2025, announce=True)
    _lottery(administrator, name="2026 年末客户答谢抽奖", year=2026)
    # Session, user, permissions (2), the customer, then one query for every entry with its event and win.
    with django_assert_max_num_queries(9):
        body = _body(portal)
    assert body.count('data-testid="lottery-entry"') == 2
    assert body.index("2026 年末客户答谢抽奖") < body.index("2025 年会抽奖")


def test_it_hides_draft_lotteries(portal, administrator, me):
    make_event(by=administrator, name="草稿中的抽奖")
    body = _body(portal)
    assert "草稿中的抽奖" not in body and 'data-testid="lottery-empty"' in body


# --- The 360° page ---------------------------------------------------------------------------------


def _detail(customer) -> str:
    return reverse("customers:detail", args=[customer.pk])


def test_it_shows_wins_and_entries_on_the_360_page(client_for, sales_rep, administrator, me):
    # `me` alone is entered, so `me` wins the one prize.
    event = _lottery(administrator, draw=True)
    body = _body(client_for(sales_rep), _detail(me))
    assert 'data-testid="lottery-card"' in body and "Lottery record" in body
    assert body.count('data-testid="lottery-win"') == 1 and "一等奖" in body and "笔记本电脑" in body
    assert _entry(event, me).entry_id in body


def test_it_shows_a_customer_in_no_lottery_as_such(client_for, sales_rep, me):
    body = _body(client_for(sales_rep), _detail(me))
    assert 'data-testid="lottery-none"' in body and 'data-testid="lottery-win"' not in body


def test_it_keeps_the_360_card_from_a_rep_who_cannot_see_the_customer(client_for, other_sales_rep, administrator, me):
    event = _lottery(administrator, draw=True)
    response = client_for(other_sales_rep).get(_detail(me))
    assert response.status_code == 404
    assert _entry(event, me).entry_id not in response.content.decode()


def test_it_reads_the_lottery_record_of_the_360_page_in_one_query(client_for, manager, administrator, me):
    client = client_for(manager)
    _lottery(administrator, name="第一场", draw=True)
    client.get(_detail(me))
    with CaptureQueriesContext(connection) as few:
        assert client.get(_detail(me)).status_code == 200
    _lottery(administrator, name="第二场", draw=True)
    _lottery(administrator, name="第三场", year=2025)
    with CaptureQueriesContext(connection) as many:
        body = client.get(_detail(me)).content.decode()
    assert body.count('data-testid="lottery-win"') == 2
    assert len(many) == len(few)


# --- The personal-data export ----------------------------------------------------------------------


def _export(fmt: str) -> str:
    return reverse("portal:privacy_export", args=[fmt])


def test_it_exports_my_entries_and_announced_wins(portal, administrator, me):
    announced = _lottery(administrator, name="2025 年会抽奖", year=2025, announce=True)
    drawn = _lottery(administrator, name="2026 年末客户答谢抽奖", year=2026, draw=True)
    data = json.loads(portal.post(_export("json")).content)
    assert data["lottery_entries"] == [
        {
            "event": "2026 年末客户答谢抽奖",
            "year": 2026,
            "entry_id": _entry(drawn, me).entry_id,
            "weight": 1,
            "status": "drawn",
        },
        {
            "event": "2025 年会抽奖",
            "year": 2025,
            "entry_id": _entry(announced, me).entry_id,
            "weight": 1,
            "status": "announced",
        },
    ]
    # The 2026 win is not told before its announcement, here as in the portal.
    assert [(w["event"], w["tier"], w["prize"]) for w in data["lottery_wins"]] == [
        ("2025 年会抽奖", "一等奖", "笔记本电脑")
    ]
    assert data["lottery_wins"][0]["drawn_at"]


def test_it_exports_my_lottery_record_as_readable_sheets(portal, administrator, me, other):
    event = _lottery(administrator, announce=True)
    won = LotteryWinner.objects.get(event=event).customer_id == me.pk
    with translation.override("en"):
        response = portal.post(_export("xlsx"), HTTP_ACCEPT_LANGUAGE="en")
    workbook = openpyxl.load_workbook(io.BytesIO(response.content))
    entries = list(workbook["Lottery entries"].iter_rows(values_only=True))
    assert entries[0] == ("Lottery", "Year", "Entry id", "Entries (weight)", "Status")
    assert entries[1:] == [("2026 年末客户答谢抽奖", 2026, _entry(event, me).entry_id, 1, "Announced")]
    assert _entry(event, other).entry_id not in str(entries)
    wins = list(workbook["Lottery wins"].iter_rows(min_row=2, values_only=True))
    assert [row[:4] for row in wins] == ([("2026 年末客户答谢抽奖", 2026, "一等奖", "笔记本电脑")] if won else [])
