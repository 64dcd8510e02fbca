"""Smoke test of ``manage.py bench_followups`` (the benchmark of ``make bench``) on a tiny dataset.

The figures themselves are the benchmark's business (docs/performance.md); this only proves the
command builds its data, drives every scenario through the real views and reuses what it built.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Count

from customers.models import Transaction
from followups.models import FollowUp, Opportunity

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the benchmark runs on PostgreSQL only"),
]

SCENARIOS = (
    "360 page, typical customer",
    "360 page, big customer",
    "timeline first page, big customer",
    "timeline deep cursor page, big customer",
    "pipeline, manager (everyone's)",
    "pipeline, manager ?rep=",
    "pipeline, sales rep",
    "pipeline, sales rep with 2,000 customers",
)


def _bench(**options) -> str:
    out = io.StringIO()
    defaults = {"customers": 60, "followups": 900, "big": 2, "repeat": 3, "warmup": 1, "any_database": True}
    call_command("bench_followups", stdout=out, **(defaults | options))
    return out.getvalue()


def _rows(output: str) -> list[str]:
    """The scenario rows of the Markdown table."""
    return [
        line for line in output.splitlines() if line.startswith("| ") and not line.startswith(("| scenario", "| ---"))
    ]


def test_it_builds_the_data_measures_every_scenario_and_reuses_the_data():
    transactions_before = Transaction.objects.count()  # none yet: seed_demo adds them
    output = _bench()
    assert FollowUp.objects.count() == 900
    assert Opportunity.objects.count() == 54  # 6 % of the follow-ups
    assert Transaction.objects.count() > transactions_before
    # The two big customers hold the most follow-ups (the timeline's worst case).
    per_customer = FollowUp.objects.values("customer").annotate(n=Count("pk")).order_by("-n")
    assert per_customer[0]["n"] >= 5 * per_customer[len(per_customer) // 2]["n"]
    rows = _rows(output)
    assert [row.split(" | ")[0][2:] for row in rows] == list(SCENARIOS)
    # One query count for every run of a timeline scenario, whichever customer it drew (the 360 page
    # may differ by one: Django skips a prefetch when a customer has no transactions; a board by two:
    # a small board ranks its cards with a window query per part of the scope, an empty one reads none).
    for row in rows:
        low, _dash, high = row.split(" | ")[4].partition("–")
        spread = int(high) - int(low) if high else 0
        assert spread <= (1 if "360 page" in row else 2 if "pipeline" in row else 0), row
    followup_ids = set(FollowUp.objects.values_list("pk", flat=True)[:50])

    again = _bench(only="pipeline, sales rep")
    assert "Reusing the follow-up data" in again
    assert set(FollowUp.objects.values_list("pk", flat=True)[:50]) == followup_ids
    assert [row.split(" | ")[0][2:] for row in _rows(again)] == list(SCENARIOS[-2:])


def test_it_refuses_a_database_not_named_for_benchmarks():
    original = connection.settings_dict["NAME"]
    connection.settings_dict["NAME"] = "cims"  # the check reads the name only; nothing is written
    try:
        with pytest.raises(CommandError, match="lacks 'bench'"):
            call_command("bench_followups", customers=10, followups=10, stdout=io.StringIO())
    finally:
        connection.settings_dict["NAME"] = original
    assert not FollowUp.objects.exists()
