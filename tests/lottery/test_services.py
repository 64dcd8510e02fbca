"""The lottery's life: draft → 已公示 → 已开奖 → 已公布, each step once, nothing published ever changing."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from customers.models import Customer
from lottery import algorithm
from lottery.models import LotteryEntry, LotteryEvent, LotteryLog, LotteryWinner
from lottery.services import (
    LotteryRefused,
    TierData,
    event_announce,
    event_draw,
    event_problems,
    event_publish,
    event_save,
    event_set_public_value,
)
from tests.customers.factories import CustomerFactory
from tests.lottery.factories import make_event

pytestmark = pytest.mark.django_db
WON = Customer.Status.WON


@pytest.fixture
def customers(sales_rep):
    return [CustomerFactory(status=WON, owner=sales_rep) for _ in range(12)]


def test_it_publishes_the_eligible_customers_as_a_canonical_list(administrator, customers):
    CustomerFactory(status=Customer.Status.PROSPECT)
    event = make_event(by=administrator)
    event_publish(event=event, by=administrator)
    event.refresh_from_db()
    assert event.status == LotteryEvent.Status.PUBLISHED and event.entry_count == 12
    entries = list(LotteryEntry.objects.filter(event=event).order_by("position"))
    assert [e.customer_id for e in entries] != [] and {e.customer_id for e in entries} == {c.pk for c in customers}
    assert [e.entry_id for e in entries] == sorted(e.entry_id for e in entries)
    canonical = algorithm.canonical_list(algorithm.Entry(e.entry_id, e.weight) for e in entries)
    assert algorithm.list_hash(canonical) == event.list_hash
    assert algorithm.commitment(bytes.fromhex(event.secret)) == event.commitment
    salt = bytes.fromhex(event.salt)
    assert all(algorithm.pseudonym(salt, e.customer_id) == e.entry_id for e in entries)


def test_it_draws_once_and_the_result_verifies(administrator, customers):
    event = make_event(by=administrator)
    event_publish(event=event, by=administrator)
    event_set_public_value(event=event, by=administrator, value="福彩3D 2026-12-31: 4 0 7")
    winners = event_draw(event=event, by=administrator)
    assert len(winners) == 6 and len({w.customer_id for w in winners}) == 6
    event.refresh_from_db()
    assert event.status == LotteryEvent.Status.DRAWN and event.drawn_by == administrator and event.drawn_at
    assert event_problems(event) == []
    with pytest.raises(LotteryRefused):
        event_draw(event=event, by=administrator)
    assert LotteryWinner.objects.filter(event=event).count() == 6
    assert LotteryLog.objects.filter(event=event, action="refused").count() == 1


def test_it_refuses_to_change_a_published_event_and_logs_it(administrator, customers):
    event = make_event(by=administrator)
    event_publish(event=event, by=administrator)
    with pytest.raises(LotteryRefused):
        event_save(
            event=event,
            by=administrator,
            fields={"name": "改名"},
            levels=[],
            weights={},
            tiers=[TierData("特等奖", "汽车", 1, 0)],
        )
    event.refresh_from_db()
    assert event.name != "改名" and event.tiers.count() == 3
    assert LotteryLog.objects.filter(event=event, action="refused").exists()


def test_it_detects_a_changed_entry_and_stops_the_draw(administrator, customers):
    event = make_event(by=administrator)
    event_publish(event=event, by=administrator)
    LotteryEntry.objects.filter(event=event, position=0).update(weight=50)
    assert any("hash" in p for p in event_problems(event))
    with pytest.raises(LotteryRefused):
        event_draw(event=event, by=administrator)
    event.refresh_from_db()
    assert event.status == LotteryEvent.Status.PUBLISHED and not event.winners.exists()


def test_it_announces_and_tells_each_winners_rep_once(
    administrator, customers, sales_rep, settings, django_capture_on_commit_callbacks
):
    from lottery.services import winners_notify

    settings.CELERY_TASK_ALWAYS_EAGER = True
    event = make_event(by=administrator)
    event_publish(event=event, by=administrator)
    event_draw(event=event, by=administrator)
    with django_capture_on_commit_callbacks(execute=True):
        event_announce(event=event, by=administrator)
    notes = sales_rep.notifications.filter(key__startswith="lottery-win:")
    assert notes.count() == 6 and all(n.url.startswith("/customers/") for n in notes)
    assert not LotteryWinner.objects.filter(event=event, notified_at__isnull=True).exists()
    assert winners_notify(event=event) == 0 and notes.count() == 6


def test_verify_lottery_command_says_match(administrator, customers, capsys):
    event = make_event(by=administrator)
    event_publish(event=event, by=administrator)
    event_draw(event=event, by=administrator)
    call_command("verify_lottery", str(event.pk))
    assert "MATCH" in capsys.readouterr().out


def test_the_database_refuses_a_second_win_for_one_customer(administrator, customers):
    from django.db import IntegrityError, transaction

    event = make_event(by=administrator)
    event_publish(event=event, by=administrator)
    winners = event_draw(event=event, by=administrator)
    first = LotteryWinner.objects.get(pk=winners[0].pk)
    other_entry = LotteryEntry.objects.filter(event=event).exclude(win__isnull=False).first()
    with pytest.raises(IntegrityError), transaction.atomic():
        LotteryWinner.objects.create(
            event=event, rank=99, tier=first.tier, position=99, entry=other_entry, customer=first.customer
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        LotteryWinner.objects.create(
            event=event,
            rank=100,
            tier=first.tier,
            position=first.position,
            entry=other_entry,
            customer=other_entry.customer,
        )


def test_verify_lottery_command_says_mismatch_and_exits_1_after_a_database_edit(administrator, customers, capsys):
    event = make_event(by=administrator)
    event_publish(event=event, by=administrator)
    event_draw(event=event, by=administrator)
    winner = LotteryWinner.objects.filter(event=event).order_by("rank").first()
    loser = LotteryEntry.objects.filter(event=event, win__isnull=True).first()
    # Someone with database access hands the first prize to another customer.
    LotteryWinner.objects.filter(pk=winner.pk).update(entry=loser, customer=loser.customer)
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_lottery", f"{event.year} {event.name}")
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "winner 1" in out


def test_it_takes_the_public_value_once_and_only_before_the_draw(administrator, customers):
    event = make_event(by=administrator)
    with pytest.raises(LotteryRefused):
        event_set_public_value(event=event, by=administrator, value="12345")  # a draft
    event_publish(event=event, by=administrator)
    for bad in ("", " 12345", "12345\n", "x" * 1025):
        with pytest.raises(LotteryRefused):
            event_set_public_value(event=event, by=administrator, value=bad)
    event_set_public_value(event=event, by=administrator, value="双色球 2026150: 03 08 15 21 27 33 + 09")
    with pytest.raises(LotteryRefused):
        event_set_public_value(event=event, by=administrator, value="another")
    event.refresh_from_db()
    assert event.public_value == "双色球 2026150: 03 08 15 21 27 33 + 09" and event.public_value_by == administrator


def test_it_refuses_to_publish_without_tiers_or_entrants_and_writes_nothing(administrator, customers):
    from lottery.services import event_delete

    no_tiers = make_event(by=administrator, name="无奖项", tiers=())
    with pytest.raises(LotteryRefused):
        event_publish(event=no_tiers, by=administrator)
    nobody = make_event(by=administrator, name="无人符合", statuses=[Customer.Status.LOST])
    with pytest.raises(LotteryRefused):
        event_publish(event=nobody, by=administrator)
    for event in (no_tiers, nobody):
        event.refresh_from_db()
        assert event.status == LotteryEvent.Status.DRAFT and event.published_at is None and not event.entries.exists()
    event_delete(event=nobody, by=administrator)
    assert not LotteryEvent.objects.filter(pk=nobody.pk).exists()


def test_it_refuses_to_delete_a_published_event(administrator, customers):
    from lottery.services import event_delete

    event = make_event(by=administrator)
    event_publish(event=event, by=administrator)
    with pytest.raises(LotteryRefused):
        event_delete(event=event, by=administrator)
    assert LotteryEvent.objects.filter(pk=event.pk).exists()


def test_it_announces_only_a_drawn_event_once(administrator, customers):
    event = make_event(by=administrator)
    with pytest.raises(LotteryRefused):
        event_announce(event=event, by=administrator)
    event_publish(event=event, by=administrator)
    with pytest.raises(LotteryRefused):
        event_announce(event=event, by=administrator)
    event_draw(event=event, by=administrator)
    event_announce(event=event, by=administrator)
    with pytest.raises(LotteryRefused):
        event_announce(event=event, by=administrator)
    assert LotteryLog.objects.filter(event=event, action="announced").count() == 1
