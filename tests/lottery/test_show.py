"""The big screen (大屏): only those who run the draw open it, it draws once, and it shows winners masked."""

from __future__ import annotations

import json
import re

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from customers.models import Customer
from lottery.models import LotteryEntry, LotteryEvent, LotteryLog, LotteryWinner
from lottery.services import event_publish
from lottery.show_views import POOL_SIZE, pool_positions
from tests.concurrency import run_at_once
from tests.customers.factories import CustomerFactory
from tests.factories import UserFactory
from tests.lottery.factories import make_event

WON = Customer.Status.WON
SURNAMES = "张王李赵刘陈杨黄周吴徐孙"


@pytest.fixture
def customers(sales_rep):
    people = [
        CustomerFactory(status=WON, owner=sales_rep, name=f"{surname}晓明", mobile=f"+86139{i:08d}")
        for i, surname in enumerate(SURNAMES)
    ]
    people.append(
        CustomerFactory(
            status=WON, owner=sales_rep, kind=Customer.ENTERPRISE, name="上海锦程贸易有限公司", mobile="+8613700001111"
        )
    )
    return people


@pytest.fixture
def event(administrator, customers):
    event = make_event(by=administrator)
    event_publish(event=event, by=administrator)
    return event


def show_url(event) -> str:
    return reverse("lottery:show", args=[event.pk])


def draw_url(event) -> str:
    return reverse("lottery:show_draw", args=[event.pk])


def page_data(response) -> dict:
    """What the page hands its script (the json_script block)."""
    match = re.search(r'<script id="show-data" type="application/json">(.*?)</script>', response.content.decode())
    assert match, "the page embeds its data"
    return json.loads(match.group(1))


def assert_nothing_unmasked(text: str, customers) -> None:
    for customer in customers:
        digits = customer.mobile.removeprefix("+86")
        assert customer.name not in text
        assert digits not in text and customer.mobile not in text


# --- Who may open it --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_sends_anonymous_visitors_to_log_in(event):
    client = Client()
    for response in (client.get(show_url(event)), client.post(draw_url(event))):
        assert response.status_code == 302 and response.url.startswith(reverse("accounts:login"))
    event.refresh_from_db()
    assert event.status == LotteryEvent.Status.PUBLISHED


@pytest.mark.django_db
def test_it_refuses_everyone_who_may_not_run_the_draw(event, client_for, manager, sales_rep, service_agent, analyst):
    for user in (manager, sales_rep, service_agent, analyst):
        client = client_for(user)
        assert client.get(show_url(event)).status_code == 403
        assert client.post(draw_url(event)).status_code == 403
    event.refresh_from_db()
    assert event.status == LotteryEvent.Status.PUBLISHED and not event.winners.exists()


@pytest.mark.django_db
def test_it_refuses_a_portal_customer(event, client_for, portal_customer):
    client = client_for(portal_customer)
    assert client.get(show_url(event)).status_code == 403
    assert client.post(draw_url(event)).status_code == 403


@pytest.mark.django_db
def test_it_answers_404_for_a_draft_and_an_unknown_event(administrator, client_for, customers):
    draft = make_event(by=administrator, name="草稿活动")
    client = client_for(administrator)
    assert client.get(show_url(draft)).status_code == 404
    assert client.post(draw_url(draft)).status_code == 404
    assert client.get(reverse("lottery:show", args=[987654])).status_code == 404
    assert client.post(reverse("lottery:show_draw", args=[987654])).status_code == 404
    draft.refresh_from_db()
    assert draft.status == LotteryEvent.Status.DRAFT


@pytest.mark.django_db
def test_it_answers_405_to_a_get_of_the_draw_and_draws_nothing(event, client_for, administrator):
    client = client_for(administrator)
    assert client.get(draw_url(event)).status_code == 405
    assert client.post(show_url(event)).status_code == 405
    assert not LotteryWinner.objects.filter(event=event).exists()


# --- The page ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_shows_the_tiers_in_draw_order_and_a_masked_pool(
    event, client_for, administrator, customers, django_assert_max_num_queries
):
    client = client_for(administrator)
    with django_assert_max_num_queries(10):
        response = client.get(show_url(event))
    assert response.status_code == 200
    data = page_data(response)
    assert data["event"] == {"name": event.name, "year": event.year}
    assert data["drawn"] is False and data["draw_url"] == draw_url(event)
    assert [(t["name"], t["prize"], t["quantity"]) for t in data["tiers"]] == [
        ("一等奖", "笔记本电脑", 1),
        ("二等奖", "智能手表", 2),
        ("参与奖", "保温杯", 3),
    ]
    assert all(t["winners"] == [] for t in data["tiers"])
    # Every entrant (13 < the pool size), masked: the surname and two stars, 139****xxxx.
    names = sorted(p["name"] for p in data["pool"])
    assert names == sorted([f"{s}**" for s in SURNAMES] + ["上海****"])
    assert all(re.fullmatch(r"13[79]\*{4}\d{4}", p["phone"]) for p in data["pool"])
    assert_nothing_unmasked(json.dumps(data, ensure_ascii=False), customers)
    # Offline: nothing but our own static files, and no inline script beyond the JSON data.
    html = response.content.decode()
    assert re.findall(r'(?:src|href)="(?:https?:)?//', html) == []
    assert re.findall(r"<script(?![^>]*(?:src=|application/json))", html) == []
    assert 'name="csrf-token"' in html


def test_it_samples_the_pool_at_evenly_spaced_positions_of_a_large_list():
    positions = pool_positions(1_000_000)
    assert len(positions) == POOL_SIZE == len(set(positions))
    assert 0 <= positions[0] < 1_000_000 // POOL_SIZE and positions[-1] < 1_000_000
    assert {b - a for a, b in zip(positions, positions[1:], strict=False)} == {1_000_000 // POOL_SIZE}
    assert pool_positions(5) == [0, 1, 2, 3, 4]
    assert pool_positions(0) == []
    # The offset is drawn afresh, so the sample is not always the same lines.
    assert len({pool_positions(1_000_000)[0] for _ in range(20)}) > 1


# --- The draw ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_draws_once_and_answers_the_winners_masked_by_tier(event, client_for, administrator, customers):
    response = client_for(administrator).post(draw_url(event))
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True and body["drawn"] is True
    assert [(t["name"], len(t["winners"])) for t in body["tiers"]] == [("一等奖", 1), ("二等奖", 2), ("参与奖", 3)]
    winners = {w.entry.entry_id: w for w in LotteryWinner.objects.select_related("entry", "customer")}
    assert len(winners) == 6
    for tier in body["tiers"]:
        for row in tier["winners"]:
            customer = winners[row["entry_id"]].customer
            assert row["name"] == (customer.name[:2] + "****" if customer.is_enterprise else customer.name[0] + "**")
            assert row["phone"] == customer.mobile[3:6] + "****" + customer.mobile[-4:]
            assert set(row) == {"rank", "position", "entry_id", "name", "phone"}
    assert_nothing_unmasked(response.content.decode("unicode_escape"), customers)
    event.refresh_from_db()
    assert event.status == LotteryEvent.Status.DRAWN and event.drawn_by == administrator and event.drawn_at
    assert LotteryLog.objects.filter(event=event, action=LotteryLog.Action.DRAWN, user=administrator).count() == 1


@pytest.mark.django_db
def test_a_second_draw_is_refused_with_the_same_winners(event, client_for, administrator):
    client = client_for(administrator)
    first = client.post(draw_url(event)).json()
    before = list(LotteryWinner.objects.filter(event=event).order_by("rank").values_list("pk", "entry_id"))
    second = client.post(draw_url(event))
    assert second.status_code == 409
    body = second.json()
    assert body["ok"] is False and body["drawn"] is True and body["message"]
    assert body["tiers"] == first["tiers"]
    assert list(LotteryWinner.objects.filter(event=event).order_by("rank").values_list("pk", "entry_id")) == before
    assert LotteryLog.objects.filter(event=event, action=LotteryLog.Action.DRAWN).count() == 1
    assert LotteryLog.objects.filter(event=event, action=LotteryLog.Action.REFUSED, user=administrator).count() == 1


@pytest.mark.django_db
def test_a_reloaded_page_after_the_draw_shows_the_winners_masked_even_to_an_admin(
    event, client_for, administrator, customers
):
    client = client_for(administrator)
    assert administrator.has_perm("lottery.view_winner_details")
    client.post(draw_url(event))
    response = client.get(show_url(event))
    assert response.status_code == 200
    data = page_data(response)
    assert data["drawn"] is True
    assert sum(len(t["winners"]) for t in data["tiers"]) == 6
    assert_nothing_unmasked(json.dumps(data, ensure_ascii=False), customers)
    assert_nothing_unmasked(response.content.decode(), customers)


@pytest.mark.django_db
def test_a_draw_the_data_no_longer_allows_is_refused_with_a_message(event, client_for, administrator):
    LotteryEntry.objects.filter(event=event, position=0).update(weight=50)  # edited behind our back
    response = client_for(administrator).post(draw_url(event))
    assert response.status_code == 409
    body = response.json()
    assert body["ok"] is False and body["drawn"] is False and body["tiers"] == []
    assert "哈希" in body["message"] or "hash" in body["message"]
    event.refresh_from_db()
    assert event.status == LotteryEvent.Status.PUBLISHED and not event.winners.exists()


@pytest.mark.django_db
def test_the_draw_needs_the_csrf_token_the_page_carries(event, administrator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(administrator, backend="django.contrib.auth.backends.ModelBackend")
    assert client.post(draw_url(event)).status_code == 403
    assert not LotteryWinner.objects.filter(event=event).exists()
    page = client.get(show_url(event)).content.decode()
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)
    response = client.post(draw_url(event), headers={"X-CSRFToken": token})
    assert response.status_code == 200 and response.json()["ok"] is True


@pytest.mark.django_db(transaction=True)
def test_two_screens_pressing_space_at_once_make_one_draw():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers and its test database is not shared between threads; needs PostgreSQL")
    from accounts import roles

    admins = [UserFactory(role=roles.ADMIN, is_staff=True) for _ in range(3)]
    for i in range(8):
        CustomerFactory(status=WON, name=f"并发{i}号")
    event = make_event(by=admins[0])
    event_publish(event=event, by=admins[0])
    clients = []
    for admin in admins:
        client = Client()
        client.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
        clients.append(client)

    def press_space():
        response = clients.pop().post(draw_url(event))
        return response.status_code, response.json()

    results, errors = run_at_once(press_space, threads=3)
    assert errors == []
    assert sorted(status for status, _body in results) == [200, 409, 409]
    drawn = [body["tiers"] for status, body in results if status == 200][0]
    assert all(body["tiers"] == drawn for _status, body in results)
    assert LotteryWinner.objects.filter(event=event).count() == 6
    assert LotteryLog.objects.filter(event=event, action=LotteryLog.Action.DRAWN).count() == 1
