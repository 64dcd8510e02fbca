"""Recording who looked: opening a 360 page, searching by an identifier, signing in and out."""

from __future__ import annotations

import pytest
from django.core.signals import request_finished
from django.db import close_old_connections, connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cims.models import PersonalDataAccess
from customers import views
from tests.customers.factories import ContactFactory, ContractFactory, CustomerFactory, TransactionFactory
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

Action = PersonalDataAccess.Action
LIST = reverse("customers:list")
PHONEBOOK = reverse("customers:phonebook")
MOBILE = "+8613812345678"


def detail(customer):
    return reverse("customers:detail", args=[customer.pk])


def personal_columns(row) -> str:
    return " ".join(
        str(getattr(row, name))
        for name in ("object_type", "object_id", "object_label", "field", "detail", "chain_hash")
    )


def close(response) -> None:
    """What the WSGI server does after sending the body (without closing the test's connection,
    as the test client does too)."""
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(owner=sales_rep, name="王伟", mobile=MOBILE, email="wang.wei@example.com")


# --- The 360 page ---------------------------------------------------------------------------------


def test_it_records_one_view_row_per_opening_of_the_360_page(sales_rep, client_for, customer):
    client = client_for(sales_rep)
    assert client.get(detail(customer), REMOTE_ADDR="10.9.8.7").status_code == 200
    row = PersonalDataAccess.objects.get()
    assert (row.user, row.action, row.object_type, row.object_id, row.object_label) == (
        sales_rep,
        Action.VIEW,
        "customers.customer",
        str(customer.pk),
        customer.code,
    )
    assert row.ip_address == "10.9.8.7" and row.seq is None
    assert "王伟" not in personal_columns(row) and "13812345678" not in personal_columns(row)
    client.get(detail(customer))
    assert PersonalDataAccess.objects.filter(action=Action.VIEW).count() == 2


def test_it_writes_the_view_row_only_once_the_response_is_closed(sales_rep, customer):
    request = RequestFactory().get(detail(customer))
    request.user = sales_rep
    request.session = {}
    response = views.customer_detail(request, customer.pk)
    assert response.status_code == 200
    assert not PersonalDataAccess.objects.exists()  # the page was built without writing the log
    close(response)
    assert PersonalDataAccess.objects.get().action == Action.VIEW


def test_the_view_row_stays_off_the_360_pages_query_budget(
    sales_rep, client_for, customer, django_assert_max_num_queries
):
    for _ in range(5):
        ContactFactory(customer=customer)
        TransactionFactory(customer=customer)
        ContractFactory(customer=customer)
    client = client_for(sales_rep)
    client.get(detail(customer))  # warm caches (content types, permissions) as the page test does
    request = RequestFactory().get(detail(customer))
    request.user = sales_rep
    request.session = client.session
    with django_assert_max_num_queries(31):  # the 360 page's own budget (tests/customers/test_detail.py)
        with CaptureQueriesContext(connection) as page:
            response = views.customer_detail(request, customer.pk)
    assert not any("personaldataaccess" in query["sql"].lower() for query in page.captured_queries)
    with CaptureQueriesContext(connection) as closing:
        close(response)
    # After the response: the look-up of an access request the page was opened under, then the row.
    assert [q["sql"].split()[0].upper() for q in closing.captured_queries] == ["SELECT", "INSERT"]


def test_it_records_nothing_for_refused_or_failed_openings(
    sales_rep, other_sales_rep, analyst, client_for, customer, client
):
    assert client.get(detail(customer)).status_code == 302
    assert client_for(analyst).get(detail(customer)).status_code == 403
    assert client_for(other_sales_rep).get(detail(customer)).status_code == 404
    assert client_for(sales_rep).post(detail(customer)).status_code == 405
    assert client_for(sales_rep).head(detail(customer)).status_code == 200
    assert not PersonalDataAccess.objects.exists()


# --- Searches by an identifier --------------------------------------------------------------------


def test_it_records_an_exact_phone_search_without_the_phone(sales_rep, client_for, customer):
    other = CustomerFactory(owner=sales_rep, phone=MOBILE)
    CustomerFactory(owner=sales_rep)
    response = client_for(sales_rep).get(LIST, {"q": "138 1234 5678"}, REMOTE_ADDR="10.0.0.5")
    assert response.status_code == 200
    rows = list(PersonalDataAccess.objects.order_by("object_id"))
    assert [(r.action, r.object_type, r.object_id, r.object_label, r.field, r.rows) for r in rows] == [
        (Action.SEARCH, "customers.customer", str(found.pk), found.code, "phone", 2)
        for found in sorted([customer, other], key=lambda c: c.pk)
    ]
    assert all(r.user == sales_rep and r.ip_address == "10.0.0.5" for r in rows)
    for row in rows:
        assert "1381234" not in personal_columns(row) and "5678" not in row.detail + row.object_label


def test_it_records_email_and_id_number_searches_by_kind(sales_rep, client_for, customer):
    client = client_for(sales_rep)
    client.get(LIST, {"q": "Wang.Wei@Example.com"})
    client.get(LIST, {"q": "11010519491231002X"})
    assert list(PersonalDataAccess.objects.order_by("id").values_list("field", "rows")) == [
        ("email", 1),
        ("id_number", 0),  # nothing found is recorded too: someone looked for that number
    ]


def test_it_caps_the_rows_of_a_search_and_keeps_the_total(manager, client_for):
    for _ in range(23):
        CustomerFactory(mobile=MOBILE)
    client_for(manager).get(LIST, {"q": "13812345678"})
    rows = PersonalDataAccess.objects.filter(action=Action.SEARCH)
    assert rows.count() == 20 and set(rows.values_list("rows", flat=True)) == {23}


def test_it_does_not_record_name_or_code_searches_or_paging(sales_rep, client_for, customer):
    client = client_for(sales_rep)
    for q in ("王伟", customer.code.lower(), ""):
        assert client.get(LIST, {"q": q}).status_code == 200
    assert client.get(LIST, {"q": MOBILE, "after": "garbage"}).status_code == 200
    assert not PersonalDataAccess.objects.exists()


def test_it_records_a_phone_book_search_by_phone(sales_rep, client_for, customer):
    wanted = ContactFactory(customer=customer, phone="+8613911112222")
    ContactFactory(customer=customer, phone="+8613911112223")
    client = client_for(sales_rep)
    assert client.get(PHONEBOOK, {"q": "139-1111-2222"}).status_code == 200
    row = PersonalDataAccess.objects.get()
    assert (row.action, row.object_type, row.object_id, row.object_label, row.field, row.rows) == (
        Action.SEARCH,
        "customers.contact",
        str(wanted.pk),
        customer.code,
        "phone",
        1,
    )
    assert "1111" not in personal_columns(row)
    client.get(PHONEBOOK, {"q": "黄"})
    assert PersonalDataAccess.objects.count() == 1


# --- Signing in and out ---------------------------------------------------------------------------


def test_it_records_a_login_and_a_logout(sales_rep):
    client = Client()
    response = client.post(
        "/accounts/login/", {"username": sales_rep.username, "password": PASSWORD}, REMOTE_ADDR="10.1.1.1"
    )
    assert response.status_code == 302
    client.post(reverse("accounts:logout"), REMOTE_ADDR="10.1.1.2")
    rows = list(PersonalDataAccess.objects.order_by("id"))
    assert [(r.action, r.user, r.object_type, r.object_id, r.ip_address) for r in rows] == [
        (Action.LOGIN, sales_rep, "accounts.user", str(sales_rep.pk), "10.1.1.1"),
        (Action.LOGOUT, sales_rep, "accounts.user", str(sales_rep.pk), "10.1.1.2"),
    ]


def test_it_records_a_failed_login_with_the_username_and_never_the_password(sales_rep, caplog):
    response = Client().post(
        "/accounts/login/", {"username": sales_rep.username, "password": "wrong-secret-123"}, REMOTE_ADDR="10.2.2.2"
    )
    assert response.status_code == 200
    row = PersonalDataAccess.objects.get()
    assert (row.action, row.user, row.object_type, row.object_label, row.ip_address) == (
        Action.LOGIN_FAILED,
        None,
        "accounts.user",
        sales_rep.username,
        "10.2.2.2",
    )
    assert "wrong-secret" not in personal_columns(row)
    assert any("login failed" in message for message in caplog.messages)  # the security log line stays


def test_a_test_clients_force_login_is_not_a_sign_in(sales_rep, client_for):
    client_for(sales_rep)
    assert not PersonalDataAccess.objects.exists()
