"""The 360 timeline: follow-ups, status changes, transactions and contracts, newest first, paged."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from customers.models import StatusChange
from followups.services import customer_timeline, parse_cursor
from tests.customers.factories import ContractFactory, CustomerFactory, TransactionFactory
from tests.followups.factories import FollowUpFactory

pytestmark = pytest.mark.django_db
TZ = timezone.get_default_timezone()


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(owner=sales_rep)


def at(day, hour=12):
    return datetime.datetime(2026, 3, day, hour, 0, tzinfo=TZ)


def timeline_url(customer):
    return reverse("followups:timeline", args=[customer.pk])


def test_it_merges_every_source_newest_first(sales_rep, customer):
    followup = FollowUpFactory(customer=customer, happened_at=at(10))
    status = StatusChange.objects.create(
        customer=customer, from_status="prospect", to_status="intent", changed_at=at(8)
    )
    transaction = TransactionFactory(customer=customer, date=datetime.date(2026, 3, 9))
    contract = ContractFactory(customer=customer, start_date=datetime.date(2026, 3, 11), end_date="2026-12-31")
    FollowUpFactory(customer=CustomerFactory(owner=sales_rep))  # another customer's
    page = customer_timeline(customer=customer, user=sales_rep)
    assert [(i.source, i.obj.pk) for i in page.items] == [
        ("contract", contract.pk),
        ("followup", followup.pk),
        ("transaction", transaction.pk),
        ("status", status.pk),
    ]
    assert page.next_cursor is None


def test_it_pages_without_gaps_or_repeats_even_on_equal_times(sales_rep, customer):
    expected = set()
    for n in range(25):
        expected.add(("followup", FollowUpFactory(customer=customer, happened_at=at(1 + n % 5)).pk))
    for n in range(10):
        day = datetime.date(2026, 3, 1 + n % 5)
        expected.add(("transaction", TransactionFactory(customer=customer, date=day).pk))
        midnight = datetime.datetime.combine(day, datetime.time(0), tzinfo=TZ)
        change = StatusChange.objects.create(
            customer=customer, from_status="prospect", to_status="intent", changed_at=midnight
        )
        expected.add(("status", change.pk))
    seen, keys, cursor = [], [], None
    while True:
        page = customer_timeline(customer=customer, user=sales_rep, cursor=cursor, size=7)
        seen += [(i.source, i.obj.pk) for i in page.items]
        keys += [i.key for i in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == len(expected) and set(seen) == expected
    assert keys == sorted(keys, reverse=True)


def test_it_ignores_a_malformed_cursor(sales_rep, client_for, customer):
    FollowUpFactory(customer=customer)
    assert parse_cursor("garbage") is None and parse_cursor("1_nosuch_2") is None
    response = client_for(sales_rep).get(timeline_url(customer), {"before": "9999999999999999999999_followup_x"})
    assert response.status_code == 200


def test_it_shows_an_older_link_that_loads_the_next_page(sales_rep, client_for, customer):
    for n in range(25):
        FollowUpFactory(customer=customer, happened_at=at(1, 0) + datetime.timedelta(hours=n), content=f"第{n}次")
    client = client_for(sales_rep)
    body = client.get(timeline_url(customer), HTTP_HX_REQUEST="true").content.decode()
    assert body.count('data-testid="timeline-item"') == 20 and "第24次" in body and "第4次" not in body
    cursor = customer_timeline(customer=customer, user=sales_rep).next_cursor
    assert f"?before={cursor}" in body
    older = client.get(timeline_url(customer), {"before": cursor}, HTTP_HX_REQUEST="true").content.decode()
    assert older.count('data-testid="timeline-item"') == 5 and "第4次" in older and "第5次" not in older
    assert 'data-testid="timeline-more"' not in older


def test_service_staff_see_it_read_only(service_agent, sales_rep, client_for, customer):
    FollowUpFactory(customer=customer, created_by=sales_rep)
    body = client_for(service_agent).get(timeline_url(customer)).content.decode()
    assert 'data-testid="timeline-item"' in body and 'data-testid="followup-edit"' not in body
    body = client_for(sales_rep).get(timeline_url(customer)).content.decode()
    assert 'data-testid="followup-edit"' in body


def test_it_refuses_outsiders(other_sales_rep, analyst, client_for, client, customer):
    assert client_for(other_sales_rep).get(timeline_url(customer)).status_code == 404
    assert client_for(analyst).get(timeline_url(customer)).status_code == 403
    assert client.get(timeline_url(customer)).status_code == 302
    assert client_for(other_sales_rep).post(timeline_url(customer)).status_code in (404, 405)


def test_a_page_costs_the_same_number_of_queries(sales_rep, client_for, customer, django_assert_max_num_queries):
    for n in range(40):
        FollowUpFactory(customer=customer, happened_at=at(1) + datetime.timedelta(hours=n))
        TransactionFactory(customer=customer, date=datetime.date(2026, 3, 1) + datetime.timedelta(days=n % 20))
        StatusChange.objects.create(customer=customer, from_status="prospect", to_status="intent", changed_at=at(2))
    client = client_for(sales_rep)
    cursor = customer_timeline(customer=customer, user=sales_rep).next_cursor
    with django_assert_max_num_queries(15):
        assert client.get(timeline_url(customer)).status_code == 200
    with django_assert_max_num_queries(15):
        assert client.get(timeline_url(customer), {"before": cursor}).status_code == 200
