"""The pipeline board: columns by stage, totals to the fen, the rep filter and a constant query count."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from followups import opportunities as services
from tests.customers.factories import CustomerFactory
from tests.followups.test_opportunities import OpportunityFactory

pytestmark = pytest.mark.django_db


def _columns(user, **kwargs):
    return {column.stage: column for column in services.pipeline_board(user=user, **kwargs)}


def test_it_totals_each_column_to_the_yuan(sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    OpportunityFactory(customer=customer, stage="proposal", amount=Decimal("12345.67"), probability=50)
    OpportunityFactory(customer=customer, stage="proposal", amount=Decimal("0.33"), probability=33)
    OpportunityFactory(customer=customer, stage="proposal", amount=Decimal("9999999.99"), probability=75)
    OpportunityFactory(customer=customer, stage="initial", amount=Decimal("100.00"), probability=10)
    columns = _columns(sales_rep)
    proposal = columns["proposal"]
    assert proposal.count == 3
    assert proposal.amount == Decimal("10012345.99")
    # 12345.67×0.5 + 0.33×0.33 + 9999999.99×0.75 = 6172.835 + 0.1089 + 7499999.9925 = 7506172.9364
    assert proposal.weighted == Decimal("7506172.94")
    assert (columns["initial"].count, columns["initial"].amount, columns["initial"].weighted) == (
        1,
        Decimal("100.00"),
        Decimal("10.00"),
    )
    assert (columns["won"].count, columns["won"].amount) == (0, Decimal("0.00"))
    totals = services.pipeline_totals(list(columns.values()))
    assert totals == {"count": 4, "amount": Decimal("10012445.99"), "weighted": Decimal("7506182.94")}


def test_closed_columns_are_not_in_the_open_total(sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    OpportunityFactory(customer=customer, stage="won", amount=Decimal("500.00"), probability=100)
    OpportunityFactory(customer=customer, stage="needs", amount=Decimal("200.00"), probability=30)
    columns = _columns(sales_rep)
    assert columns["won"].amount == Decimal("500.00")
    assert services.pipeline_totals(list(columns.values()))["amount"] == Decimal("200.00")


def test_a_rep_sees_only_their_customers_and_a_manager_filters_by_rep(sales_rep, other_sales_rep, manager):
    mine = OpportunityFactory(customer=CustomerFactory(owner=sales_rep))
    theirs = OpportunityFactory(customer=CustomerFactory(owner=other_sales_rep))
    assert [c.pk for c in _columns(sales_rep)["initial"].cards] == [mine.pk]
    assert {c.pk for c in _columns(manager)["initial"].cards} == {mine.pk, theirs.pk}
    assert [c.pk for c in _columns(manager, rep=other_sales_rep)["initial"].cards] == [theirs.pk]


def test_it_limits_the_cards_per_column_and_counts_the_rest(sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    OpportunityFactory.create_batch(4, customer=customer, stage="needs")
    OpportunityFactory.create_batch(2, customer=customer, stage="initial")
    columns = _columns(sales_rep, limit=3)
    assert (len(columns["needs"].cards), columns["needs"].count, columns["needs"].more) == (3, 4, 1)
    assert (len(columns["initial"].cards), columns["initial"].more) == (2, 0)


def test_the_board_page_shows_columns_totals_and_a_more_link(sales_rep, client_for, monkeypatch):
    monkeypatch.setattr(services, "BOARD_LIMIT", 2)
    customer = CustomerFactory(owner=sales_rep)
    OpportunityFactory.create_batch(3, customer=customer, stage="negotiation", amount=Decimal("1000.10"))
    response = client_for(sales_rep).get(reverse("followups:pipeline"), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('data-testid="pipeline-column"') == 6
    assert html.count('data-testid="opportunity-card"') == 2
    assert "¥3000.30" in html
    assert 'data-testid="column-more"' in html and "?stage=negotiation" in html


def test_the_board_query_count_does_not_grow(manager, sales_rep, client_for, django_assert_max_num_queries):
    customer = CustomerFactory(owner=sales_rep)
    OpportunityFactory.create_batch(3, customer=customer)
    client = client_for(manager)
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("followups:pipeline"), {"rep": sales_rep.pk}).status_code == 200
    for stage in ("initial", "needs", "proposal", "negotiation", "won", "lost"):
        OpportunityFactory.create_batch(8, customer=CustomerFactory(owner=sales_rep), stage=stage)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(reverse("followups:pipeline"), {"rep": sales_rep.pk}).status_code == 200
    with django_assert_max_num_queries(14):
        assert client.get(reverse("followups:pipeline")).status_code == 200


def test_a_manager_filter_by_rep_on_the_page(manager, sales_rep, other_sales_rep, client_for):
    OpportunityFactory(customer=CustomerFactory(owner=sales_rep), title="李的商机")
    OpportunityFactory(customer=CustomerFactory(owner=other_sales_rep), title="王的商机")
    html = client_for(manager).get(reverse("followups:pipeline"), {"rep": other_sales_rep.pk}).content.decode()
    assert "王的商机" in html and "李的商机" not in html


def test_a_rep_has_no_rep_filter_and_a_posted_rep_is_ignored(sales_rep, other_sales_rep, client_for):
    OpportunityFactory(customer=CustomerFactory(owner=sales_rep), title="李的商机")
    html = client_for(sales_rep).get(reverse("followups:pipeline"), {"rep": other_sales_rep.pk}).content.decode()
    assert "李的商机" in html and 'data-testid="pipeline-filter"' not in html


def test_the_board_refuses_post(sales_rep, client_for):
    assert client_for(sales_rep).post(reverse("followups:pipeline")).status_code == 405


def test_a_reps_totals_count_a_customer_owned_and_shared_with_them_once(sales_rep, other_sales_rep):
    from guardian.shortcuts import assign_perm

    own = CustomerFactory(owner=sales_rep)
    assign_perm("customers.view_customer", sales_rep, own)  # owned and shared: one customer
    shared = CustomerFactory(owner=other_sales_rep)
    assign_perm("customers.view_customer", sales_rep, shared)
    hidden = CustomerFactory(owner=other_sales_rep)
    for customer, amount in ((own, "100.10"), (shared, "20.02"), (hidden, "9999.00")):
        OpportunityFactory(customer=customer, owner=other_sales_rep, stage="initial", amount=Decimal(amount))
    initial = {c.stage: c for c in services.pipeline_board(user=sales_rep)}["initial"]
    assert (initial.count, initial.amount) == (2, Decimal("120.12"))


def test_small_and_large_boards_pick_the_same_first_cards(sales_rep, other_sales_rep, monkeypatch):
    """A small board ranks its cards with a window query, a large one walks the board index per
    stage (WINDOW_MAX): the same cards in the same order either way, shared customers included."""
    import datetime

    from guardian.shortcuts import assign_perm

    own, shared = CustomerFactory(owner=sales_rep), CustomerFactory(owner=other_sales_rep)
    assign_perm("customers.view_customer", sales_rep, shared)
    for n in range(7):
        for customer in (own, shared):
            OpportunityFactory(
                customer=customer, owner=other_sales_rep, stage="needs" if n % 2 else "initial",
                expected_close_date=None if n == 3 else datetime.date(2026, 12, 1 + n),
            )  # fmt: skip
    OpportunityFactory(customer=CustomerFactory(owner=other_sales_rep), stage="initial")  # not theirs

    def cards(window_max):
        monkeypatch.setattr(services, "WINDOW_MAX", window_max)
        return {c.stage: [card.pk for card in c.cards] for c in services.pipeline_board(user=sales_rep, limit=3)}

    small, large = cards(5000), cards(0)
    assert small == large
    assert len(small["initial"]) == len(small["needs"]) == 3
