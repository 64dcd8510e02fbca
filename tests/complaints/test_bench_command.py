"""Smoke test of ``manage.py bench_complaints`` (the complaint desk benchmark of ``make bench``) on a tiny dataset.

The figures themselves are the benchmark's business (docs/performance.md); this only proves the
command builds realistic tickets without breaking the numbering, drives every scenario through
the real views, reuses what it built and replaces only its own tickets.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Count, QuerySet

from cims.models import Sequence
from complaints.models import Ticket, TicketCategory, TicketEvent

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the benchmark runs on PostgreSQL only"),
]

SCENARIOS = (
    "team queue, agent",
    "team queue, all statuses, agent",
    "my tickets, agent",
    "team queue, open + high, agent",
    "team queue, SLA breached, agent",
    "search by number, agent",
    "search by customer name, agent",
    "team queue, deep page, agent",
    "ticket detail, ~200 events, agent",
    "360 tickets fragment, big customer, owner",
    "desk, sales rep",
    "desk, sales rep, all statuses",
)


def _bench(**options) -> str:
    out = io.StringIO()
    defaults = {
        "customers": 80,
        "tickets": 600,
        "big": 2,
        "long": 1,
        "repeat": 3,
        "warmup": 1,
        "any_database": True,
    }
    call_command("bench_complaints", stdout=out, **(defaults | options))
    return out.getvalue()


def _rows(output: str) -> list[str]:
    """The scenario rows of the Markdown table."""
    return [
        line for line in output.splitlines() if line.startswith("| ") and not line.startswith(("| scenario", "| ---"))
    ]


def _built() -> QuerySet[Ticket]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM bench_complaints_seed WHERE key = 'ticket_ids'")
        first, _dash, last = cursor.fetchone()[0].partition("-")
    return Ticket.objects.filter(pk__range=(int(first), int(last)))


def test_it_builds_the_tickets_measures_every_scenario_and_reuses_them():
    output = _bench()
    tickets = _built()
    assert tickets.count() == 600
    # 8 % open (new / assigned / in progress), the rest resolved or closed, most rated.
    open_share = tickets.open().count() / 600
    assert 0.03 < open_share < 0.15
    assert not tickets.filter(status=Ticket.Status.NEW).exclude(assignee=None).exists()
    assert not tickets.filter(status__in=["resolved", "closed"], resolved_at=None).exists()
    done = tickets.filter(status__in=["resolved", "closed"])
    assert 0.45 < done.exclude(rating=None).count() / done.count() < 0.75
    # 2–6 events a ticket, apart from the long one; events never before the ticket was filed.
    per_ticket = dict(TicketEvent.objects.filter(ticket__in=tickets).values_list("ticket").annotate(n=Count("pk")))
    long_ids = set(json.loads(_meta("long_ids")))
    assert len(long_ids) == 1
    assert all(2 <= n <= 6 for pk, n in per_ticket.items() if pk not in long_ids)
    assert all(n >= 150 for pk, n in per_ticket.items() if pk in long_ids)
    assert len(per_ticket) == 600
    # The agents work their categories; every assignee is one of them.
    agents = set(TicketCategory.objects.values_list("agents__username", flat=True))
    assert {f"service{n}" for n in range(1, 21)} <= agents
    assert set(tickets.exclude(assignee=None).values_list("assignee__username", flat=True)) <= agents
    # Numbers follow the filing order, and each year's sequence is past them: a ticket filed now
    # takes the next number instead of colliding.
    by_year: dict[str, int] = {}
    for number in tickets.values_list("number", flat=True):
        year, seq = number[1:].split("-")
        by_year[year] = max(by_year.get(year, 0), int(seq))
    for year, highest in by_year.items():
        assert Sequence.objects.get(name=f"ticket:{year}").last_value >= highest
    ordered = list(tickets.order_by("pk").values_list("created_at", flat=True))
    assert ordered == sorted(ordered)
    filed = Ticket.objects.create(
        customer=tickets.first().customer,
        category=TicketCategory.objects.first(),
        subject="after the benchmark",
        description="-",
    )
    assert filed.number not in set(tickets.values_list("number", flat=True))

    rows = _rows(output)
    assert [row.split(" | ")[0][2:] for row in rows] == list(SCENARIOS)
    assert "no next-page link" not in output
    built = set(tickets.values_list("pk", flat=True))

    again = _bench(only="my tickets")
    assert "Reusing the ticket data" in again
    assert set(_built().values_list("pk", flat=True)) == built
    assert [row.split(" | ")[0][2:] for row in _rows(again)] == ["my tickets, agent"]


def test_it_replaces_only_its_own_tickets_on_a_rebuild():
    _bench(only="my tickets")
    before = set(_built().values_list("pk", flat=True))
    others = set(Ticket.objects.exclude(pk__in=before).values_list("pk", flat=True))  # load_demo's, say
    _bench(tickets=300, only="my tickets")
    after = set(_built().values_list("pk", flat=True))
    assert len(after) == 300
    assert not after & before
    assert not Ticket.objects.filter(pk__in=before).exists()
    assert not TicketEvent.objects.filter(ticket_id__in=before).exists()
    assert set(Ticket.objects.exclude(pk__in=after).values_list("pk", flat=True)) == others


def test_it_refuses_a_database_not_named_for_benchmarks():
    original = connection.settings_dict["NAME"]
    connection.settings_dict["NAME"] = "cims"  # the check reads the name only; nothing is written
    try:
        with pytest.raises(CommandError, match="lacks 'bench'"):
            call_command("bench_complaints", customers=10, tickets=10, stdout=io.StringIO())
    finally:
        connection.settings_dict["NAME"] = original
    assert not Ticket.objects.exists()


def _meta(key: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM bench_complaints_seed WHERE key = %s", [key])
        return cursor.fetchone()[0]
