"""The portal's home and profile pages: the customer sees their own data as we hold it and corrects
only the fields the company allows (portal:profile, accounts:portal_home)."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from accounts.portal import PORTAL_CHANGE_REASON
from complaints.models import Ticket, TicketCategory
from complaints.services import ticket_file
from customers.models import Customer, CustomerLevel
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

URL = "/portal/profile/"


@pytest.fixture
def record(portal_customer_record, sales_rep):
    Customer.objects.filter(pk=portal_customer_record.pk).update(
        owner=sales_rep, mobile="+8613800138000", address="杭州市西湖区文三路 1 号"
    )
    portal_customer_record.refresh_from_db()
    return portal_customer_record


@pytest.fixture
def me(portal_customer, record, client_for):
    return client_for(portal_customer)


def _post(client, **data):
    return client.post(URL, data, HTTP_ACCEPT_LANGUAGE="en")


# --- Who may open it ---------------------------------------------------------------------------


def test_it_sends_anonymous_users_to_log_in(db):
    response = Client().get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("role", ["administrator", "manager", "sales_rep", "service_agent", "analyst"])
def test_it_refuses_staff(request, record, client_for, role):
    client = client_for(request.getfixturevalue(role))
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"mobile": "13900139000"}).status_code == 403


def test_it_answers_404_once_the_customer_is_erased(me, record):
    Customer.all_objects.filter(pk=record.pk).update(erased_at=timezone.now())
    assert me.get(URL).status_code == 404


def test_it_refuses_other_methods(me):
    assert me.delete(URL).status_code == 405


# --- What it shows -------------------------------------------------------------------------------


def test_it_shows_my_own_data_unmasked_and_nothing_internal(me, record, sales_rep):
    level = CustomerLevel.objects.create(name="钻石VIP")
    Customer.objects.filter(pk=record.pk).update(level=level, notes="内部备注：难缠")
    page = me.get(URL).content.decode()
    assert record.code in page and record.name in page
    assert "138 0013 8000" in page and "138****8000" not in page
    assert "杭州市西湖区文三路 1 号" in page
    assert "钻石VIP" not in page and "内部备注" not in page and sales_rep.name not in page


def test_it_shows_only_the_allowed_fields_in_the_form(me):
    form = me.get(URL).context["form"]
    assert set(form.fields) == {"phone", "mobile", "email", "address", "city"}


@override_settings(PORTAL_EDITABLE_FIELDS=["mobile", "name", "id_number", "owner"])
def test_it_never_offers_fields_outside_the_portal_list_whatever_the_setting(me):
    assert set(me.get(URL).context["form"].fields) == {"mobile"}


# --- Corrections ---------------------------------------------------------------------------------


def test_it_saves_a_correction_normalized_with_history(me, record, portal_customer):
    response = _post(me, mobile="139 0013 9000", email="Liu@Example.COM", address="新地址 8 号", city="杭州", phone="")
    assert response.status_code == 302 and response["Location"] == URL
    record.refresh_from_db()
    assert record.mobile == "+8613900139000" and record.email == "liu@example.com"
    assert record.address == "新地址 8 号" and record.city == "杭州"
    latest = record.history.latest()
    assert latest.history_user == portal_customer and latest.history_change_reason == PORTAL_CHANGE_REASON
    # The login follows the corrected address: a new-password link no longer goes to the old one.
    portal_customer.refresh_from_db()
    assert portal_customer.email == "liu@example.com"


def test_it_finds_the_customer_by_the_corrected_number(me, record):
    from customers.services import exact_search

    _post(me, mobile="13900139000", email=record.email, address=record.address)
    assert list(exact_search(Customer.objects.all(), "139 0013 9000")) == [Customer.objects.get(pk=record.pk)]


def test_it_ignores_forged_fields(me, record, sales_rep, other_sales_rep):
    level = CustomerLevel.objects.create(name="测试等级")
    response = _post(
        me,
        mobile="13900139000",
        name="改名",
        owner=other_sales_rep.pk,
        owner_id=other_sales_rep.pk,
        level=level.pk,
        status=Customer.Status.WON,
        id_number="11010519491231002X",
        notes="hacked",
        code="C0000-000001",
    )
    assert response.status_code == 302
    record.refresh_from_db()
    assert record.mobile == "+8613900139000"
    assert record.name == "刘女士" and record.owner == sales_rep and record.level is None
    assert record.status == Customer.Status.PROSPECT and record.id_number == "" and record.notes == ""
    assert record.code != "C0000-000001"


@override_settings(PORTAL_EDITABLE_FIELDS=["mobile"])
def test_it_ignores_a_field_the_setting_leaves_out(me, record):
    _post(me, mobile="13900139000", address="不许改")
    record.refresh_from_db()
    assert record.mobile == "+8613900139000" and record.address == "杭州市西湖区文三路 1 号"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"mobile": "12345"}, "mobile"),
        ({"mobile": "C2026-000123"}, "mobile"),
        ({"email": "not an address"}, "email"),
        ({"address": "x" * 201}, "address"),
    ],
)
def test_it_refuses_bad_input_with_a_message(me, record, data, field):
    response = _post(me, **{"mobile": "13800138000", **data})
    assert response.status_code == 422
    assert response.context["form"].errors[field]
    record.refresh_from_db()
    assert record.mobile == "+8613800138000"
    # The rejected value is not shown as what we hold.
    held = dict(response.context["rows"])
    assert "12345" not in str(held.values())


def test_it_writes_no_history_when_nothing_changed(me, record):
    before = record.history.count()
    response = _post(me, mobile="138 0013 8000", email=record.email, address=record.address, city=record.city, phone="")
    assert response.status_code == 302
    assert record.history.count() == before


def test_it_does_not_reveal_another_customer_with_the_same_number(me, record):
    other = CustomerFactory(name="隔壁老王", mobile="+8613900139000", owner=None)
    response = _post(me, mobile="13900139000", email=record.email, address=record.address)
    assert response.status_code == 302
    page = me.get(URL).content.decode()
    assert other.name not in page and other.code not in page


# --- The portal home -----------------------------------------------------------------------------


def test_the_home_counts_my_open_requests(
    me, record, portal_customer, other_portal_customer_record, other_portal_customer
):
    category = TicketCategory.objects.get_or_create(name="其他")[0]
    common = {
        "kind": Ticket.Kind.INQUIRY,
        "category": category,
        "severity": Ticket.Severity.MEDIUM,
        "channel": Ticket.Channel.PORTAL,
        "subject": "咨询",
        "description": "请问……",
        "by_customer": True,
    }
    for _ in range(2):
        ticket_file(customer=record, by=portal_customer, **common)
    ticket_file(customer=other_portal_customer_record, by=other_portal_customer, **common)
    page = me.get("/accounts/portal/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-testid="open-tickets"' in page and "2 open" in page
    for url in ("/portal/profile/", "/portal/tickets/", "/portal/privacy/"):
        assert f'href="{url}"' in page


def test_the_home_works_without_a_customer_record(portal_customer, client_for):
    response = client_for(portal_customer).get("/accounts/portal/")
    assert response.status_code == 200 and 'data-testid="open-tickets"' not in response.content.decode()
