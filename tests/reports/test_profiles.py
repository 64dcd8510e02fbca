"""Customer profiles (客户画像): the nightly job on a data set whose answers are worked out by hand,
the explanations, the pages, and the owners' tasks a manager creates in one click.

The data set (``world``), as of NOW = 2026-03-10 10:00 Asia/Shanghai. Windows: 12 months =
2025-03-11 … 2026-03-10; the last 6 months = 2025-09-11 … 2026-03-10, the 6 before = 2025-03-11 …
2025-09-10. Thresholds: 高价值 top 20%; 沉睡 90 days (a purchase on or before 2025-12-10 and no
follow-up since 2025-12-11 00:00); 高活跃低转化 ≥ 3 follow-ups in 10 days (since 2026-03-01 00:00
+08:00 = 2026-02-28 16:00 UTC); 新客户 10 days (created since the same instant); 流失风险: a contract
ending 2026-03-10 … 2026-05-09, score ≥ 40, rating ≤ 2, spend down more than 30%.

    customer  owner  purchases in 12 months (refunds)         last purchase  recency  F  net 12 m
    c1        rep    5,000 + 3,000 + 2,000 (−500 refund)      2026-03-01        9     3   9,500.00
              (9,999.00 on 2025-01-15 is older; moved from other_rep, who keeps the credit)
    c2        rep    20,000                                   2026-02-20       18     1  20,000.00
    c3        other  1,000 + 1,000                            2025-11-20      110     2   2,000.00
    c4        rep    800                                      2025-04-01      343     1     800.00
    c5        rep    (5,000 on 2024-12-01: older)             2024-12-01      464     0       0.00
    c10       rep    10,000 (before) + 2,000 (recent)         2025-12-01       99     2  12,000.00
    c11       rep    1,000 (before) + 800 (recent)            2026-01-10       59     2   1,800.00
    c14       rep    5,000 (before), −1,000 refund (recent)   2025-05-01      313     1   4,000.00
    c13       rep    100,000 — deleted: no profile, not ranked

Buyers (bought in 12 months): c1 c2 c3 c4 c10 c11 c14 — seven. Score = 1 + ⌊5 × position ÷ 7⌋
(position 0–6 in ascending order; equal figures take the middle of their positions):

    R by last purchase: c4 1, c14 1, c3 2, c10 3, c11 3, c2 4, c1 5      (positions 0 … 6)
    F by purchases:     c2 c4 c14 (once, positions 0–2, middle 1) 1; c3 c10 c11 (twice, 3–5,
                        middle 4: 1 + ⌊20 ÷ 7⌋) 3; c1 (3 times, position 6) 5
    M by net amount:    c4 1, c11 1, c3 2, c14 3, c1 3, c10 4, c2 5

Tags: 高价值 = rank × 100 ≤ 20 × 7 → rank 1: c2 (threshold ¥20,000.00). 沉睡: c3 (no follow-up)
and c5 (its last follow-up 2025-12-10 23:30 +08:00 is half an hour before the window); c4, c10, c14
bought long ago but were followed up. 高活跃低转化: c6 (3 follow-ups from 2026-03-01 00:30 +08:00;
the one at 2026-02-28 23:30 +08:00 is outside); c7 has 4 but a won opportunity. 新客户: c8 created
2026-03-01 00:30 +08:00; c9 at 2026-02-28 23:30 +08:00 is not. 流失风险: c10 risk 100 (open
complaint 40 + return-visit satisfaction 2 → 30 + spend 2,000 < 70% of 10,000 → 30), c11 risk 40
(a complaint filed 2026-02-01, closed); c14 risk 30 (spend −1,000 < 70% of 5,000; contract ends
2026-05-09, the window's last day) — below 40; c12's contract ends 2026-06-30 (too late), c15's
contract is expired.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.db.models import Q
from django.template import Context, Template
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation
from guardian.shortcuts import assign_perm

from complaints.models import Ticket, TicketCategory
from customers.models import Contract, Transaction
from followups.models import FollowUp, Opportunity, Task
from followups.services import contact_due_at
from reports import profiles
from reports.models import CustomerProfile, ProfileRule, ProfileTag, SummaryState
from tests.customers.factories import CustomerFactory
from tests.factories import UserFactory

SH = ZoneInfo("Asia/Shanghai")
D = datetime.date


def at(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=SH)


NOW = at(2026, 3, 10, 10, 0)
LONG_AGO = at(2025, 1, 1, 9, 0)
K = ProfileRule.Kind


def rule(kind: str) -> ProfileRule:
    return ProfileRule.objects.get(kind=kind)


def tags_by_customer() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for name, kind in ProfileTag.objects.values_list("customer__name", "rule__kind"):
        found.setdefault(name, set()).add(kind)
    return found


@pytest.fixture
def world(db, sales_rep, other_sales_rep):
    """The data set of the module docstring; returns the customers by name."""
    ProfileRule.objects.filter(kind=K.HIGH_VALUE).update(percent=20)
    ProfileRule.objects.filter(kind=K.DORMANT).update(days=90)
    ProfileRule.objects.filter(kind=K.BUSY_NO_WIN).update(days=10, count=3)
    ProfileRule.objects.filter(kind=K.NEW).update(days=10)
    ProfileRule.objects.filter(kind=K.CHURN_RISK).update(days=60, percent=30, score=40, rating=2)
    c = {}
    for name in ("c1", "c2", "c4", "c5", "c6", "c7", "c10", "c11", "c12", "c13", "c14", "c15"):
        c[name] = CustomerFactory(name=name, owner=sales_rep, created_at=LONG_AGO)
    c["c3"] = CustomerFactory(name="c3", owner=other_sales_rep, created_at=LONG_AGO)
    c["c8"] = CustomerFactory(name="c8", owner=sales_rep, created_at=at(2026, 3, 1, 0, 30))
    c["c9"] = CustomerFactory(name="c9", owner=sales_rep, created_at=at(2026, 2, 28, 23, 30))

    def buy(name, day, amount, rep=None):
        Transaction.objects.create(
            customer=c[name], date=day, amount=Decimal(amount), product="服务", rep=rep or c[name].owner
        )

    # c1 was other_sales_rep's when it bought (the sales stay credited to them), then moved.
    for day, amount in ((D(2026, 3, 1), "5000.00"), (D(2025, 12, 1), "3000.00"), (D(2025, 6, 1), "2000.00")):
        buy("c1", day, amount, rep=other_sales_rep)
    buy("c1", D(2025, 1, 15), "9999.00", rep=other_sales_rep)
    buy("c1", D(2026, 3, 5), "-500.00")
    buy("c2", D(2026, 2, 20), "20000.00")
    buy("c3", D(2025, 11, 10), "1000.00")
    buy("c3", D(2025, 11, 20), "1000.00")
    buy("c4", D(2025, 4, 1), "800.00")
    buy("c5", D(2024, 12, 1), "5000.00")
    buy("c10", D(2025, 5, 1), "10000.00")
    buy("c10", D(2025, 12, 1), "2000.00")
    buy("c11", D(2025, 6, 1), "1000.00")
    buy("c11", D(2026, 1, 10), "800.00")
    buy("c14", D(2025, 5, 1), "5000.00")
    buy("c14", D(2026, 1, 15), "-1000.00")
    buy("c13", D(2026, 3, 1), "100000.00")

    def follow(name, when, **extra):
        FollowUp.objects.create(
            customer=c[name], happened_at=when, content="电话沟通", created_by=c[name].owner, **extra
        )

    follow("c4", at(2026, 1, 20, 10, 0))
    follow("c5", at(2025, 12, 10, 23, 30))
    for when in (at(2026, 3, 1, 0, 30), at(2026, 3, 5, 14, 0), at(2026, 3, 9, 15, 0), at(2026, 2, 28, 23, 30)):
        follow("c6", when)
    for day in (2, 4, 6, 8):
        follow("c7", at(2026, 3, day, 11, 0))
    follow("c10", at(2026, 2, 15, 10, 0), kind=FollowUp.Kind.RETURN_VISIT, satisfaction=2)
    follow("c14", at(2026, 2, 1, 10, 0))
    Opportunity.objects.create(
        customer=c["c7"], title="年度采购", stage=Opportunity.Stage.WON, owner=sales_rep, amount=Decimal("1000.00")
    )
    Opportunity.objects.create(customer=c["c6"], title="试用", stage=Opportunity.Stage.NEGOTIATION, owner=sales_rep)

    for name, end, status in (
        ("c10", D(2026, 4, 1), Contract.Status.ACTIVE),
        ("c11", D(2026, 4, 20), Contract.Status.ACTIVE),
        ("c12", D(2026, 6, 30), Contract.Status.ACTIVE),
        ("c14", D(2026, 5, 9), Contract.Status.ACTIVE),
        ("c15", D(2026, 4, 1), Contract.Status.EXPIRED),
    ):
        Contract.objects.create(
            customer=c[name],
            title="年度合作",
            amount=Decimal("1.00"),
            start_date=D(2025, 1, 1),
            end_date=end,
            status=status,
        )
    category, _created = TicketCategory.objects.get_or_create(name="产品质量")

    def ticket(name, created, status, **extra):
        return Ticket.objects.create(
            customer=c[name],
            category=category,
            subject="投诉",
            description="…",
            status=status,
            created_at=created,
            **extra,
        )

    ticket("c10", at(2026, 1, 5, 9, 0), Ticket.Status.NEW)
    ticket("c11", at(2026, 2, 1, 9, 0), Ticket.Status.CLOSED, rating=4, rated_at=at(2026, 2, 10, 9, 0))
    ticket("c11", at(2025, 10, 1, 9, 0), Ticket.Status.CLOSED)
    ticket("c12", at(2026, 3, 1, 9, 0), Ticket.Status.NEW)
    ticket("c15", at(2026, 3, 1, 9, 0), Ticket.Status.NEW)
    # An inquiry is not a complaint.
    ticket("c14", at(2026, 3, 1, 9, 0), Ticket.Status.NEW, kind=Ticket.Kind.INQUIRY)

    c["c1"].owner = sales_rep
    c["c1"].save(update_fields=["owner"])
    c["c13"].deleted_at = at(2026, 3, 2, 9, 0)
    c["c13"].save(update_fields=["deleted_at"])
    return c


EXPECTED_TAGS = {
    "c2": {K.HIGH_VALUE},
    "c3": {K.DORMANT},
    "c5": {K.DORMANT},
    "c6": {K.BUSY_NO_WIN},
    "c8": {K.NEW},
    "c10": {K.CHURN_RISK},
    "c11": {K.CHURN_RISK},
}


# --- The nightly job -------------------------------------------------------------------------------


def test_it_computes_rfm_figures_and_scores_by_hand(world):
    result = profiles.profiles_refresh(now=NOW)
    assert result["profiles"] == 14  # 15 customers, c13 deleted
    rows = {p.customer.name: p for p in CustomerProfile.objects.select_related("customer")}
    assert "c13" not in rows
    expected = {
        # name: last purchase, recency, frequency, net 12 months, R, F, M
        "c1": (D(2026, 3, 1), 9, 3, Decimal("9500.00"), 5, 5, 3),
        "c2": (D(2026, 2, 20), 18, 1, Decimal("20000.00"), 4, 1, 5),
        "c3": (D(2025, 11, 20), 110, 2, Decimal("2000.00"), 2, 3, 2),
        "c4": (D(2025, 4, 1), 343, 1, Decimal("800.00"), 1, 1, 1),
        "c5": (D(2024, 12, 1), 464, 0, Decimal("0.00"), None, None, None),
        "c6": (None, None, 0, Decimal("0.00"), None, None, None),
        "c10": (D(2025, 12, 1), 99, 2, Decimal("12000.00"), 3, 3, 4),
        "c11": (D(2026, 1, 10), 59, 2, Decimal("1800.00"), 3, 3, 1),
        "c14": (D(2025, 5, 1), 313, 1, Decimal("4000.00"), 1, 1, 3),
    }
    for name, figures in expected.items():
        p = rows[name]
        got = (p.last_purchase_on, p.recency_days, p.frequency, p.monetary, p.r_score, p.f_score, p.m_score)
        assert got == figures, name
    assert (rows["c6"].followups_recent, rows["c6"].has_won_opportunity) == (3, False)
    assert (rows["c7"].followups_recent, rows["c7"].has_won_opportunity) == (4, True)
    assert rows["c6"].last_contact_at == at(2026, 3, 9, 15, 0)
    assert rows["c9"].last_contact_at is None
    risks = {name: p.renewal_risk for name, p in rows.items() if p.renewal_risk}
    assert risks == {"c10": 100, "c11": 40, "c14": 30}
    assert all(p.computed_at == NOW for p in rows.values())


def test_it_gives_equal_figures_the_score_of_their_middle_place(db, sales_rep):
    # Five buyers, all last buying on 2026-03-01: R ties five ways. Positions 0–4, middle 2:
    # 1 + ⌊5 × 2 / 5⌋ = 3 for all. F: four bought once (positions 0–3, middle 1.5: 1 + ⌊7.5 / 5⌋ = 2),
    # one twice (position 4: 1 + ⌊20 / 5⌋ = 5). M: ¥100 … ¥400 and ¥1,000, all different: 1 … 5.
    for name, amounts in (
        ("a", ["100.00"]),
        ("b", ["200.00"]),
        ("c", ["300.00"]),
        ("d", ["400.00"]),
        ("e", ["500.00", "500.00"]),
    ):
        customer = CustomerFactory(name=name, owner=sales_rep, created_at=LONG_AGO)
        for amount in amounts:
            Transaction.objects.create(customer=customer, date=D(2026, 3, 1), amount=Decimal(amount), product="x")
    profiles.profiles_refresh(now=NOW)
    scores = {
        p.customer.name: (p.r_score, p.f_score, p.m_score) for p in CustomerProfile.objects.select_related("customer")
    }
    assert scores == {"a": (3, 2, 1), "b": (3, 2, 2), "c": (3, 2, 3), "d": (3, 2, 4), "e": (3, 5, 5)}


def test_it_gives_each_customer_the_tags_worked_out_by_hand(world):
    result = profiles.profiles_refresh(now=NOW)
    assert tags_by_customer() == EXPECTED_TAGS
    assert result["tags"] == {K.HIGH_VALUE: 1, K.DORMANT: 2, K.BUSY_NO_WIN: 1, K.NEW: 1, K.CHURN_RISK: 2}
    high = ProfileTag.objects.get(rule__kind=K.HIGH_VALUE)
    assert Decimal(str(high.reason["threshold"])) == Decimal("20000")
    assert (high.reason["rank"], high.reason["buyers"]) == (1, 7)
    assert SummaryState.objects.get(name=profiles.STATE).rows == 14
    assert profiles.freshness() == NOW


def test_it_changes_the_outcome_when_an_administrator_changes_a_threshold(world):
    profiles.profiles_refresh(now=NOW)
    ProfileRule.objects.filter(kind=K.HIGH_VALUE).update(percent=30)  # rank × 100 ≤ 210: ranks 1 and 2
    ProfileRule.objects.filter(kind=K.BUSY_NO_WIN).update(count=4)  # c6 has 3: out; c7 has 4 but won
    ProfileRule.objects.filter(kind=K.CHURN_RISK).update(score=30)  # c14's 30 now counts
    # 100 days: c3 (110 days, never followed up) still; c5's follow-up of 2025-12-10 now falls in
    # the window (since 2025-12-01 00:00); c10 bought 99 days ago.
    ProfileRule.objects.filter(kind=K.DORMANT).update(days=100)
    profiles.profiles_refresh(now=NOW)
    assert tags_by_customer() == {
        "c2": {K.HIGH_VALUE},
        "c10": {K.HIGH_VALUE, K.CHURN_RISK},
        "c3": {K.DORMANT},
        "c8": {K.NEW},
        "c11": {K.CHURN_RISK},
        "c14": {K.CHURN_RISK},
    }
    threshold = ProfileTag.objects.get(rule__kind=K.HIGH_VALUE, customer__name="c2").reason["threshold"]
    assert Decimal(str(threshold)) == Decimal("12000")


def test_it_keeps_since_across_refreshes_and_drops_tags_no_longer_earned(world):
    profiles.profiles_refresh(now=NOW)
    first = {(t.customer.name, t.rule.kind): t.since for t in ProfileTag.objects.select_related("customer", "rule")}
    assert first[("c2", K.HIGH_VALUE)] == NOW
    later = at(2026, 3, 11, 10, 0)
    # A day on: c8 (created 2026-03-01 00:30) is 11 days old; c6's window starts 2026-03-02, so
    # its follow-up of 2026-03-01 00:30 drops out (2 left). c12 buys big and becomes the top buyer.
    Transaction.objects.create(customer=world["c12"], date=D(2026, 3, 11), amount=Decimal("50000.00"), product="x")
    profiles.profiles_refresh(now=later)
    second = {(t.customer.name, t.rule.kind): t.since for t in ProfileTag.objects.select_related("customer", "rule")}
    assert ("c8", K.NEW) not in second
    assert ("c6", K.BUSY_NO_WIN) not in second
    assert second[("c3", K.DORMANT)] == NOW  # kept, since unchanged
    assert second[("c10", K.CHURN_RISK)] == NOW
    # Eight buyers now: rank × 100 ≤ 160 → rank 1 only, c12 (c2 drops out).
    assert second[("c12", K.HIGH_VALUE)] == later
    assert ("c2", K.HIGH_VALUE) not in second


def test_it_leaves_deleted_customers_out(world):
    profiles.profiles_refresh(now=NOW)
    assert not ProfileTag.objects.filter(customer=world["c13"]).exists()
    world["c2"].deleted_at = NOW
    world["c2"].save(update_fields=["deleted_at"])
    profiles.profiles_refresh(now=NOW)
    assert not CustomerProfile.objects.filter(customer=world["c2"]).exists()
    # Six buyers: rank × 100 ≤ 120 → c10 (¥12,000.00) is the top one now.
    assert set(ProfileTag.objects.filter(rule__kind=K.HIGH_VALUE).values_list("customer__name", flat=True)) == {"c10"}


def test_it_removes_the_tags_of_a_rule_switched_off(world, manager, client_for):
    profiles.profiles_refresh(now=NOW)
    ProfileRule.objects.filter(kind=K.DORMANT).update(is_active=False)
    # Until the night, its tags are still stored but count for nothing.
    page = client_for(manager).get(reverse("reports:profile_tag", args=[rule(K.DORMANT).pk]))
    assert list(page.context["page"].object_list) == [] and page.context["count"].value == 0
    assert profiles.profile_tasks_create(rule=rule(K.DORMANT), by=manager) == 0
    result = profiles.profiles_refresh(now=NOW)
    assert not ProfileTag.objects.filter(rule__kind=K.DORMANT).exists()
    assert result["tags"][K.DORMANT] == 0


def test_it_runs_on_an_empty_database(db):
    result = profiles.profiles_refresh(now=NOW)
    assert result["profiles"] == 0
    assert not ProfileTag.objects.exists()


# --- Explanations ----------------------------------------------------------------------------------


def _tag(name: str, kind: str) -> ProfileTag:
    return ProfileTag.objects.select_related("rule", "customer__profile").get(customer__name=name, rule__kind=kind)


def test_it_explains_each_tag_with_its_figures(world):
    profiles.profiles_refresh(now=NOW)
    with translation.override("en"):
        texts = {
            kind: profiles.explain(_tag(name, kind), _tag(name, kind).customer.profile)
            for name, kind in (
                ("c2", K.HIGH_VALUE),
                ("c5", K.DORMANT),
                ("c6", K.BUSY_NO_WIN),
                ("c8", K.NEW),
                ("c10", K.CHURN_RISK),
            )
        }
        c11 = profiles.explain(_tag("c11", K.CHURN_RISK), None)
    assert texts[K.HIGH_VALUE] == (
        "Net spend in the last 12 months ¥20,000.00, in the top 20% of buyers (threshold ¥20,000.00, ranked 1 of 7)."
    )
    assert texts[K.DORMANT] == (
        "Last purchase on 2024-12-01, 464 days ago; no purchase or follow-up in the last 90 days "
        "(last follow-up: 2025-12-10)."
    )
    assert texts[K.BUSY_NO_WIN] == "3 follow-ups in the last 10 days (at least 3) and no won opportunity."
    assert texts[K.NEW] == "Created on 2026-03-01, within the last 10 days."
    assert texts[K.CHURN_RISK] == (
        "Renewal risk 100/100 (tagged from 40): an active contract ends on 2026-04-01; an open or recent "
        "complaint (+40); low satisfaction: average rating 2.00, at most 2 (+30); spend fell to ¥2,000.00 in "
        "the last 6 months from ¥10,000.00 in the 6 before (+30)."
    )
    assert c11 == (
        "Renewal risk 40/100 (tagged from 40): an active contract ends on 2026-04-20; an open or recent complaint (+40)."
    )


def test_it_explains_a_rule_from_the_profile_alone(world):
    profiles.profiles_refresh(now=NOW)
    profile = CustomerProfile.objects.get(customer__name="c1")
    with translation.override("en"):
        assert profiles.explain(rule(K.HIGH_VALUE), profile) == (
            "Net spend in the last 12 months ¥9,500.00, in the top 20% of buyers."
        )


def test_it_shows_rfm_and_explained_tags_on_the_360_page(world, sales_rep, client_for):
    profiles.profiles_refresh(now=NOW)
    client = client_for(sales_rep)
    page = client.get(reverse("customers:detail", args=[world["c10"].pk]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-testid="customer-profile"' in page
    assert "R 3</span>" in page and "F 3</span>" in page and "M 4</span>" in page
    assert "Renewal risk 100/100 (tagged from 40): an active contract ends on 2026-04-01" in page
    assert "流失风险" in page and "续约风险回访" in page


def test_it_hides_the_profile_from_the_360_page_without_the_permission(world, service_agent, client_for):
    profiles.profiles_refresh(now=NOW)
    page = client_for(service_agent).get(reverse("customers:detail", args=[world["c10"].pk])).content.decode()
    assert 'data-testid="customer-profile"' not in page


def test_it_renders_the_360_block_in_two_queries(world, sales_rep):
    profiles.profiles_refresh(now=NOW)
    request = RequestFactory().get("/")
    request.user = sales_rep
    sales_rep.has_perm("reports.view_profiletag")  # the permission cache, loaded once per request anyway
    template = Template("{% load profile_tags %}{% customer_profile customer %}")
    with CaptureQueriesContext(connection) as queries:
        html = template.render(Context({"request": request, "customer": world["c2"]}))
    assert len(queries) <= 2
    assert "高价值客户" in html


# --- The profile page ------------------------------------------------------------------------------


def _counts(response) -> dict[str, int]:
    return {rule.kind: rule.tagged for rule in response.context["rules"] if rule.is_active}


def test_it_counts_every_customer_for_a_manager(world, manager, client_for, django_assert_max_num_queries):
    profiles.profiles_refresh(now=NOW)
    client = client_for(manager)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("reports:profiles"), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert _counts(response) == {K.HIGH_VALUE: 1, K.DORMANT: 2, K.BUSY_NO_WIN: 1, K.NEW: 1, K.CHURN_RISK: 2}
    rfm = response.context["rfm"]
    # R: c4 c14 → 1; c3 → 2; c10 c11 → 3; c2 → 4; c1 → 5. F: 1 ×3, 3 ×3, 5 ×1. M: 1 ×2, 2, 3 ×2, 4, 5.
    assert rfm == {"profiled": 14, "scored": 7, "r": [2, 1, 2, 1, 1], "f": [3, 0, 3, 0, 1], "m": [2, 1, 2, 1, 1]}
    page = response.content.decode()
    assert 'data-testid="chart-rfm"' in page and 'data-testid="table-rfm"' in page
    assert 'data-testid="create-tasks-dormant"' in page
    # Each rule in words with its thresholds, and its suggested action.
    assert "At least 3 follow-ups in the last 10 days and no won opportunity." in page
    assert "The top 20% of buyers by net spend in the last 12 months" in page
    assert "沉睡客户唤醒回访" in page


def test_it_counts_only_a_reps_own_customers(world, sales_rep, other_sales_rep, client_for):
    profiles.profiles_refresh(now=NOW)
    mine = client_for(sales_rep).get(reverse("reports:profiles"))
    assert _counts(mine) == {K.HIGH_VALUE: 1, K.DORMANT: 1, K.BUSY_NO_WIN: 1, K.NEW: 1, K.CHURN_RISK: 2}
    assert mine.context["rfm"]["profiled"] == 13
    theirs = client_for(other_sales_rep).get(reverse("reports:profiles"))
    # c1's old sales are other_sales_rep's, but the customer is not theirs any more.
    assert _counts(theirs) == {K.HIGH_VALUE: 0, K.DORMANT: 1, K.BUSY_NO_WIN: 0, K.NEW: 0, K.CHURN_RISK: 0}
    assert theirs.context["rfm"] == {
        "profiled": 1,
        "scored": 1,
        "r": [0, 1, 0, 0, 0],
        "f": [0, 0, 1, 0, 0],
        "m": [0, 1, 0, 0, 0],
    }
    assert 'data-testid="create-tasks-' not in mine.content.decode()


def test_it_filters_a_managers_page_by_owner(world, manager, other_sales_rep, client_for):
    profiles.profiles_refresh(now=NOW)
    response = client_for(manager).get(reverse("reports:profiles"), {"owner": other_sales_rep.pk})
    assert _counts(response) == {K.HIGH_VALUE: 0, K.DORMANT: 1, K.BUSY_NO_WIN: 0, K.NEW: 0, K.CHURN_RISK: 0}


def test_it_answers_a_bad_owner_with_a_form_error(world, manager, client_for):
    response = client_for(manager).get(reverse("reports:profiles"), {"owner": "x'1"})
    assert response.status_code == 200
    assert 'data-testid="filter-error"' in response.content.decode()
    assert (
        client_for(manager)
        .get(reverse("reports:profile_tag", args=[rule(K.DORMANT).pk]), {"owner": "9" * 30})
        .status_code
        == 200
    )


def test_it_shows_an_analyst_counts_but_no_customer(world, analyst, client_for):
    profiles.profiles_refresh(now=NOW)
    client = client_for(analyst)
    response = client.get(reverse("reports:profiles"))
    assert response.status_code == 200
    assert _counts(response)[K.DORMANT] == 2
    page = response.content.decode()
    assert world["c3"].code not in page and world["c5"].code not in page
    assert reverse("reports:profile_tag", args=[rule(K.DORMANT).pk]) not in page
    assert client.get(reverse("reports:profile_tag", args=[rule(K.DORMANT).pk])).status_code == 403


def test_it_says_when_the_profiles_were_never_computed(manager, client_for):
    response = client_for(manager).get(reverse("reports:profiles"))
    assert response.status_code == 200 and response.context["computed_at"] is None
    assert response.context["rfm"]["profiled"] == 0


def test_it_guards_the_profile_pages(world, roleless_user, service_agent, manager, client_for, client):
    for url in (reverse("reports:profiles"), reverse("reports:profile_tag", args=[rule(K.DORMANT).pk])):
        assert client.get(url).status_code == 302  # anonymous: to the login page
        assert client_for(roleless_user).get(url).status_code == 403
        assert client_for(service_agent).get(url).status_code == 403
        assert client_for(manager).post(url).status_code == 405
    assert client_for(manager).get(reverse("reports:profile_tag", args=[999_999])).status_code == 404


# --- Who carries a tag -----------------------------------------------------------------------------


def test_it_lists_the_tagged_customers_with_why(world, manager, client_for, django_assert_max_num_queries):
    profiles.profiles_refresh(now=NOW)
    client, url = client_for(manager), reverse("reports:profile_tag", args=[rule(K.DORMANT).pk])
    with django_assert_max_num_queries(12):
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    # Newest customer first (c3 was created after c5).
    assert [c.name for c in response.context["page"].object_list] == ["c3", "c5"]
    page = response.content.decode()
    assert world["c5"].code in page and "Last purchase on 2024-12-01, 464 days ago" in page
    # No contact details: the factory gave every customer a mobile and an e-mail.
    for name in ("c3", "c5"):
        assert world[name].mobile not in page and world[name].email not in page


def test_it_lists_only_a_reps_own_tagged_customers(world, sales_rep, client_for):
    profiles.profiles_refresh(now=NOW)
    response = client_for(sales_rep).get(reverse("reports:profile_tag", args=[rule(K.DORMANT).pk]))
    assert [c.name for c in response.context["page"].object_list] == ["c5"]
    assert response.context["count"].value == 1


def test_it_pages_the_tagged_customers_by_keyset(world, manager, client_for, monkeypatch):
    from reports import profile_views

    profiles.profiles_refresh(now=NOW)
    monkeypatch.setattr(profile_views, "PER_PAGE", 1)
    client = client_for(manager)
    url = reverse("reports:profile_tag", args=[rule(K.DORMANT).pk])
    first = client.get(url)
    assert [c.name for c in first.context["page"].object_list] == ["c3"]
    second = client.get(f"{url}?{first.context['next_query']}")
    assert [c.name for c in second.context["page"].object_list] == ["c5"]
    assert client.get(url, {"after": "not-a-cursor"}).status_code == 200


# --- Tasks for the owners --------------------------------------------------------------------------


def test_it_creates_one_task_per_tagged_customer_for_its_owner(
    world, manager, sales_rep, other_sales_rep, client_for, django_assert_max_num_queries
):
    profiles.profiles_refresh(now=NOW)
    dormant = rule(K.DORMANT)
    # An open task of the same title already there (c5): skipped. A done one does not count.
    Task.objects.create(title=dormant.action, customer=world["c5"], assignee=sales_rep, due_at=NOW)
    Task.objects.create(title=dormant.action, customer=world["c3"], assignee=other_sales_rep, due_at=NOW, done=True)
    client, url = client_for(manager), reverse("reports:profile_tasks", args=[dormant.pk])
    with django_assert_max_num_queries(16):
        response = client.post(url)
    assert response.status_code == 302
    created = Task.objects.filter(title=dormant.action, done=False, created_by=manager)
    assert [(t.customer.name, t.assignee) for t in created] == [("c3", other_sales_rep)]
    due = contact_due_at(timezone.localdate(timezone.now(), SH) + datetime.timedelta(days=dormant.action_days))
    assert created.get().due_at == due
    assert created.get().history.count() == 1
    assert [str(m) for m in client.get(response.url).context["messages"]] == [_created_message(1)]
    # Second click: nothing new.
    again = client.post(url, follow=True)
    assert [str(m) for m in again.context["messages"]] == [_created_message(0)]
    assert Task.objects.filter(title=dormant.action, done=False).count() == 2


def _created_message(count: int) -> str:
    from django.utils.translation import gettext

    return gettext("Tasks created for the owners of %(count)s customers.") % {"count": count}


def test_it_creates_tasks_only_in_the_clickers_scope(world, sales_rep, other_sales_rep, client_for):
    profiles.profiles_refresh(now=NOW)
    lead = UserFactory(username="t_lead", name="组长")
    group = Group.objects.create(name="画像组长")
    group.permissions.set(
        Permission.objects.filter(
            Q(content_type__app_label="accounts", codename="access_staff_ui")
            | Q(content_type__app_label="customers", codename="view_customer")
            | Q(content_type__app_label="reports", codename__in=["view_profiletag", "act_on_profiles"])
        )
    )
    lead.groups.add(group)
    assign_perm("customers.view_customer", lead, world["c3"])  # one dormant customer shared with the lead
    response = client_for(lead).post(reverse("reports:profile_tasks", args=[rule(K.DORMANT).pk]))
    assert response.status_code == 302
    assert list(Task.objects.values_list("customer__name", "assignee_id")) == [("c3", other_sales_rep.pk)]


def test_it_refuses_tasks_to_a_rep_and_other_methods(world, sales_rep, manager, client_for, client):
    url = reverse("reports:profile_tasks", args=[rule(K.DORMANT).pk])
    assert client_for(sales_rep).post(url).status_code == 403
    assert client_for(manager).get(url).status_code == 405
    assert client.post(url).status_code == 302
    assert client_for(manager).post(reverse("reports:profile_tasks", args=[999_999])).status_code == 404
    assert not Task.objects.exists()
    with pytest.raises(profiles.PermissionDenied):
        profiles.profile_tasks_create(rule=rule(K.DORMANT), by=sales_rep)


def test_it_hands_a_large_click_to_celery(world, manager, client_for, monkeypatch):
    from reports import tasks

    profiles.profiles_refresh(now=NOW)
    queued = []
    monkeypatch.setattr(profiles, "SYNC_TASK_LIMIT", 1)
    monkeypatch.setattr(tasks.create_profile_tasks, "delay", lambda *args: queued.append(args))
    dormant = rule(K.DORMANT)
    client_for(manager).post(reverse("reports:profile_tasks", args=[dormant.pk]))
    assert queued == [(dormant.pk, manager.pk)]
    assert not Task.objects.exists()
    # What the Celery task runs.
    assert profiles.profile_tasks_job(rule=dormant, by=manager) == 2
    assert set(Task.objects.values_list("customer__name", flat=True)) == {"c3", "c5"}


def test_it_says_when_a_rule_suggests_no_action(world, manager, client_for):
    profiles.profiles_refresh(now=NOW)
    ProfileRule.objects.filter(kind=K.DORMANT).update(action="")
    response = client_for(manager).post(reverse("reports:profile_tasks", args=[rule(K.DORMANT).pk]), follow=True)
    assert response.status_code == 200 and not Task.objects.exists()


# --- Admin -----------------------------------------------------------------------------------------


def test_it_lets_an_administrator_edit_thresholds_within_bounds(administrator, client_for):
    client = client_for(administrator)
    high = rule(K.HIGH_VALUE)
    url = reverse("admin:reports_profilerule_change", args=[high.pk])
    form = {
        "name": high.name,
        "color": high.color,
        "is_active": "on",
        "percent": "150",
        "days": high.days,
        "count": high.count,
        "score": high.score,
        "rating": high.rating,
        "action": high.action,
        "action_days": high.action_days,
        "sort_order": high.sort_order,
    }
    assert client.post(url, form).status_code == 200  # the form again, with the error
    assert rule(K.HIGH_VALUE).percent == 20
    assert client.post(url, {**form, "percent": "10"}).status_code == 302
    assert rule(K.HIGH_VALUE).percent == 10
    assert rule(K.HIGH_VALUE).history.count() == 1
    for name in ("customerprofile", "profiletag", "summarystate", "reportsubscription", "profilerule"):
        assert client.get(reverse(f"admin:reports_{name}_changelist")).status_code == 200
    assert client.get(reverse("admin:reports_profiletag_add")).status_code == 403


def test_it_keeps_rule_thresholds_in_range_in_the_admin(client_for, administrator):
    rule = ProfileRule.objects.get(kind=K.HIGH_VALUE)
    url = reverse("admin:reports_profilerule_change", args=[rule.pk])
    data = {
        "name": rule.name,
        "color": rule.color,
        "is_active": "on",
        "percent": "0",
        "days": "0",
        "count": "5",
        "score": "101",
        "rating": "6",
        "action": rule.action,
        "action_days": "3",
        "sort_order": "10",
    }
    response = client_for(administrator).post(url, data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["percent"] == ["1 到 100 之间的百分比。"] and errors["days"] == ["至少 1 天。"]
    assert errors["score"] == ["1 到 100 之间的分数。"] and errors["rating"] == ["1 到 5 之间的评分。"]
    rule.refresh_from_db()
    assert rule.percent == 20
