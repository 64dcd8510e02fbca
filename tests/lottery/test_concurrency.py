"""Two requests at once: each lottery step happens once, the other is refused and logged.

Every step is a compare-and-set on the event row (lottery.services): the second request waits on the
row lock, then finds the status moved on and changes nothing. Proven on PostgreSQL, where the two
threads really run at once on their own connections.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from customers.models import Customer
from lottery.models import LotteryEntry, LotteryEvent, LotteryLog, LotteryWinner
from lottery.services import (
    LotteryRefused,
    TierData,
    event_draw,
    event_publish,
    event_save,
    event_set_public_value,
    total_prizes,
)
from tests.concurrency import run_at_once
from tests.customers.factories import CustomerFactory
from tests.lottery.factories import make_event

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="concurrency is proven on PostgreSQL (DATABASE_URL); SQLite serialises writers",
    ),
    pytest.mark.django_db(transaction=True),
]

WON = Customer.Status.WON
A = LotteryLog.Action


@pytest.fixture
def customers(sales_rep):
    return [CustomerFactory(status=WON, owner=sales_rep) for _ in range(12)]


def attempt(step):
    """Call ``step`` on a fresh copy of the event (each thread its own), "done" or "refused"."""

    def run():
        try:
            step()
        except LotteryRefused:
            return "refused"
        return "done"

    return run


def actions(event) -> list[str]:
    return sorted(LotteryLog.objects.filter(event=event).exclude(action=A.CREATED).values_list("action", flat=True))


def fresh(event) -> LotteryEvent:
    return LotteryEvent.objects.get(pk=event.pk)


def test_it_draws_once_when_two_draws_start_at_once(administrator, customers):
    event = make_event(by=administrator)
    event_publish(event=event, by=administrator)

    results, errors = run_at_once(attempt(lambda: event_draw(event=fresh(event), by=administrator)), threads=2)

    assert errors == []
    assert sorted(results) == ["done", "refused"]
    event.refresh_from_db()
    assert event.status == LotteryEvent.Status.DRAWN
    winners = LotteryWinner.objects.filter(event=event)
    assert winners.count() == total_prizes(event) == 6
    assert sorted(winners.values_list("rank", flat=True)) == [1, 2, 3, 4, 5, 6]  # one set, not two
    assert actions(event) == [A.DRAWN, A.PUBLISHED, A.REFUSED]


def test_it_publishes_one_entry_list_when_two_publications_start_at_once(administrator, customers):
    event = make_event(by=administrator)

    results, errors = run_at_once(attempt(lambda: event_publish(event=fresh(event), by=administrator)), threads=2)

    assert errors == []
    assert sorted(results) == ["done", "refused"]
    event.refresh_from_db()
    assert event.status == LotteryEvent.Status.PUBLISHED and event.entry_count == 12
    entries = LotteryEntry.objects.filter(event=event)
    assert entries.count() == 12
    assert set(entries.values_list("customer_id", flat=True)) == {c.pk for c in customers}
    assert actions(event) == [A.PUBLISHED, A.REFUSED]


@pytest.mark.parametrize("round_", range(3))
def test_it_saves_before_publishing_or_refuses_the_save(administrator, customers, round_):
    """The edit adds prospects and a top prize: either both are in what was published, or the edit
    was refused and nothing of it is."""
    prospects = [CustomerFactory(status=Customer.Status.PROSPECT) for _ in range(3)]
    event = make_event(by=administrator, name=f"并发抽奖 {round_}")
    tiers = [TierData("特等奖", "汽车", 1, 0), TierData("一等奖", "笔记本电脑", 1, 1)]

    def save():
        event_save(
            event=fresh(event),
            by=administrator,
            fields={"statuses": [WON, Customer.Status.PROSPECT]},
            levels=[],
            weights={},
            tiers=tiers,
        )

    def publish():
        event_publish(event=fresh(event), by=administrator)

    steps = iter([save, publish])
    lock = threading.Lock()

    def one():
        with lock:
            step = next(steps)
        return step.__name__, attempt(step)()

    results, errors = run_at_once(one, threads=2)

    assert errors == []
    outcome = dict(results)
    assert outcome["publish"] == "done"
    event.refresh_from_db()
    published = set(LotteryEntry.objects.filter(event=event).values_list("customer_id", flat=True))
    tier_names = [t["name"] for t in event.published_rules["tiers"]]
    if outcome["save"] == "done":
        assert published == {c.pk for c in customers + prospects} and event.entry_count == 15
        assert tier_names == ["特等奖", "一等奖"]
        assert actions(event) == [A.PUBLISHED]
    else:
        assert published == {c.pk for c in customers} and event.entry_count == 12
        assert tier_names == ["一等奖", "二等奖", "参与奖"] and event.statuses == [WON]
        assert actions(event) == [A.PUBLISHED, A.REFUSED]


def test_it_keeps_one_public_value_when_two_are_entered_at_once(administrator, customers):
    event = make_event(by=administrator)
    event_publish(event=event, by=administrator)
    values = ["福彩3D 2026-12-31: 4 0 7", "体彩排列3 2026-12-31: 9 1 5"]
    lock = threading.Lock()

    def enter():
        with lock:
            value = values.pop()
        return value, attempt(lambda: event_set_public_value(event=fresh(event), by=administrator, value=value))()

    results, errors = run_at_once(enter, threads=2)

    assert errors == []
    assert sorted(outcome for _v, outcome in results) == ["done", "refused"]
    (kept,) = [value for value, outcome in results if outcome == "done"]
    event.refresh_from_db()
    assert event.public_value == kept and event.public_value_by == administrator
    assert actions(event) == [A.PUBLIC_VALUE, A.PUBLISHED, A.REFUSED]
    assert LotteryLog.objects.get(event=event, action=A.PUBLIC_VALUE).detail == kept
