"""The audit pages: who may enter, the access log's filters, seal state and export, the old address."""

import csv
import datetime
import io

import pytest
from django.urls import reverse

from accounts import roles
from cims.models import PersonalDataAccess, log_personal_data_access
from tests.customers.factories import ContactFactory, CustomerFactory

HISTORY = reverse("audit:history")
ACCESS_LOG = reverse("audit:access_log")
EXPORT = reverse("audit:access_log_export")
SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
A = PersonalDataAccess.Action


def rows_of(response) -> list:
    assert response.status_code == 200
    return list(response.context["page"].object_list)


def log(user, action=A.REVEAL, *, customer=None, **kwargs):
    if customer is not None:
        kwargs.update(object_type="customers.customer", object_id=customer.pk, object_label=customer.code)
    kwargs.setdefault("object_type", "customers.customer")
    return log_personal_data_access(user=user, action=action, **kwargs)


def exported_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")  # a BOM, for Excel
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


# --- Who may enter ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [HISTORY, ACCESS_LOG, EXPORT])
def test_it_redirects_anonymous_users_to_login(client, db, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("url", [HISTORY, ACCESS_LOG])
@pytest.mark.parametrize("role", [roles.ADMIN, roles.MANAGER])
def test_it_serves_managers_and_administrators(cast, client_for, role, url):
    assert client_for(cast[role]).get(url).status_code == 200


@pytest.mark.parametrize("url", [HISTORY, ACCESS_LOG, EXPORT])
@pytest.mark.parametrize("role", [roles.SALES, roles.SERVICE, roles.ANALYST, roles.CUSTOMER])
def test_it_refuses_everyone_else(cast, client_for, role, url):
    assert client_for(cast[role]).get(url).status_code == 403


@pytest.mark.parametrize("url", [HISTORY, ACCESS_LOG, EXPORT])
def test_it_answers_405_to_a_post(manager, client_for, url):
    assert client_for(manager).post(url).status_code == 405


# --- The access log -----------------------------------------------------------------------------------


def test_it_lists_the_access_log_newest_first(manager, sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep)
    log(sales_rep, customer=customer, field="mobile")
    log(manager, A.EXPORT, rows=12)
    response = client_for(manager).get(ACCESS_LOG)
    assert [row.action for row in rows_of(response)] == ["export", "reveal"]
    assert customer.code in response.content.decode()


def test_it_filters_the_access_log_by_user_action_and_ip(manager, sales_rep, client_for):
    log(sales_rep, field="mobile")
    log(manager, field="email")
    log(manager, A.EXPORT)
    PersonalDataAccess.objects.filter(field="email").update(ip_address="203.0.113.7")
    client = client_for(manager)
    assert [(r.user, r.field) for r in rows_of(client.get(ACCESS_LOG, {"user": sales_rep.pk}))] == [
        (sales_rep, "mobile")
    ]
    assert {r.field for r in rows_of(client.get(ACCESS_LOG, {"action": "reveal"}))} == {"mobile", "email"}
    assert [r.field for r in rows_of(client.get(ACCESS_LOG, {"ip": "203.0.113.7"}))] == ["email"]


def test_it_finds_who_looked_at_a_customer_by_its_code(manager, sales_rep, service_agent, client_for):
    customer, other = CustomerFactory(), CustomerFactory()
    log(sales_rep, A.VIEW, customer=customer)
    log(service_agent, A.SEARCH, customer=customer, field="mobile")
    log(manager, A.VIEW, customer=other)
    log(manager, A.EXPORT, object_type="customers.transaction", object_id=customer.pk)
    rows = rows_of(client_for(manager).get(ACCESS_LOG, {"record": customer.code}))
    assert [(r.user, r.action) for r in rows] == [(service_agent, "search"), (sales_rep, "view")]


def test_it_finds_phone_book_searches_of_a_customers_contacts_by_its_code(manager, service_agent, client_for):
    customer = CustomerFactory()
    contact, stranger = ContactFactory(customer=customer), ContactFactory()
    log(service_agent, A.SEARCH, object_type="customers.contact", object_id=contact.pk, field="phone")
    log(service_agent, A.SEARCH, object_type="customers.contact", object_id=stranger.pk, field="phone")
    rows = rows_of(client_for(manager).get(ACCESS_LOG, {"record": customer.code}))
    assert [(r.object_type, r.object_id) for r in rows] == [("customers.contact", str(contact.pk))]
    only_customer = {"record": customer.code, "object_type": "customers.customer"}
    assert rows_of(client_for(manager).get(ACCESS_LOG, only_customer)) == []


def test_it_filters_by_object_type_and_id(manager, client_for):
    customer = CustomerFactory()
    log(manager, A.EXPORT, object_type="customers.transaction", object_id=customer.pk)
    log(manager, A.VIEW, customer=customer)
    params = {"object_type": "customers.transaction", "record": str(customer.pk)}
    assert [r.action for r in rows_of(client_for(manager).get(ACCESS_LOG, params))] == ["export"]


def test_it_filters_by_days_in_shanghai_time(manager, client_for):
    late_evening = log(manager, field="mobile")
    next_morning = log(manager, field="email")
    PersonalDataAccess.objects.filter(pk=late_evening.pk).update(
        created_at=datetime.datetime(2026, 3, 1, 23, 30, tzinfo=SHANGHAI)
    )
    PersonalDataAccess.objects.filter(pk=next_morning.pk).update(
        created_at=datetime.datetime(2026, 3, 2, 0, 30, tzinfo=SHANGHAI)
    )
    client = client_for(manager)
    one_day = {"date_from": "2026-03-01", "date_to": "2026-03-01"}
    assert [r.field for r in rows_of(client.get(ACCESS_LOG, one_day))] == ["mobile"]
    assert [r.field for r in rows_of(client.get(ACCESS_LOG, {"date_from": "2026-03-02", "date_to": "2026-03-02"}))] == [
        "email"
    ]


def test_it_shows_whether_each_row_is_sealed(manager, client_for):
    log(manager, field="mobile")
    sealed = log(manager, field="email")
    PersonalDataAccess.objects.filter(pk=sealed.pk).update(seq=4242, chain_hash="ab" * 32)
    html = client_for(manager).get(ACCESS_LOG, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "4242" in html and "pending" in html


@pytest.mark.parametrize(
    "params",
    [
        {"user": "abc"},
        {"user": "999999"},
        {"action": "delete"},
        {"ip": "999.1.1.1"},
        {"date_from": "yesterday"},
        {"date_from": "2026-03-02", "date_to": "2026-03-01"},
        {"object_type": "'; drop table"},
        {"record": "C2026-999999"},
        {"record": "<script>"},
        {"record": "C2026-000001", "object_type": "lottery.event"},
    ],
)
def test_it_answers_bad_filters_with_an_error_and_no_rows(manager, client_for, params):
    log(manager, A.EXPORT)
    response = client_for(manager).get(ACCESS_LOG, params)
    assert response.status_code == 200
    assert response.context["form"].errors and rows_of(response) == []
    assert 'data-testid="filter-errors"' in response.content.decode()


def test_it_ignores_a_forged_cursor(manager, client_for):
    log(manager, A.EXPORT)
    assert len(rows_of(client_for(manager).get(ACCESS_LOG, {"after": "zzz", "before": "-1"}))) == 1


def test_it_pages_the_access_log_within_a_query_budget(manager, client_for, django_assert_max_num_queries):
    for _ in range(60):
        log(manager)
    client = client_for(manager)
    client.get(ACCESS_LOG)
    with django_assert_max_num_queries(12):
        first = client.get(ACCESS_LOG)
    assert len(rows_of(first)) == 50 and first.context["count"].value == 60
    second = client.get(f"{ACCESS_LOG}?{first.context['next_query']}")
    assert len(rows_of(second)) == 10


# --- The export --------------------------------------------------------------------------------------


def test_it_exports_the_filtered_rows_and_logs_the_export(manager, sales_rep, client_for):
    customer = CustomerFactory(mobile="+8613812345678")
    log(sales_rep, A.VIEW, customer=customer)
    log(sales_rep, customer=customer, field="mobile")
    log(manager, A.VIEW, customer=customer)
    response = client_for(manager).get(EXPORT, {"user": sales_rep.pk, "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Cache-Control"] == "private, no-store"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["Content-Disposition"].startswith('attachment; filename="access-log-')
    header, *rows = exported_rows(response)
    assert len(header) == 12
    assert [(row[1], row[2], row[5]) for row in rows] == [
        ("t_sales1", "reveal", customer.code),
        ("t_sales1", "view", customer.code),
    ]
    export = PersonalDataAccess.objects.get(action=A.EXPORT)
    assert export.user == manager and export.object_type == "cims.personaldataaccess" and export.rows == 2
    assert export.detail == f"user={sales_rep.pk}"
    assert "13812345678" not in export.detail


def test_it_exports_xlsx(manager, client_for):
    log(manager)
    response = client_for(manager).get(EXPORT, {"format": "xlsx"})
    assert response.status_code == 200 and "spreadsheetml" in response["Content-Type"]
    assert b"".join(response.streaming_content).startswith(b"PK")
    assert PersonalDataAccess.objects.filter(action=A.EXPORT, object_type="cims.personaldataaccess").count() == 1


def test_it_logs_nothing_when_the_export_is_refused(sales_rep, client_for):
    assert client_for(sales_rep).get(EXPORT).status_code == 403
    assert not PersonalDataAccess.objects.filter(action=A.EXPORT).exists()


@pytest.mark.parametrize("params", [{"format": "pdf"}, {"user": "abc"}, {"date_from": "2026-02-30"}])
def test_it_refuses_a_bad_export_request_with_a_message(manager, client_for, params):
    response = client_for(manager).get(EXPORT, params, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "export" in response.content.decode().lower()
    assert not PersonalDataAccess.objects.filter(action=A.EXPORT).exists()


# --- Links to it ----------------------------------------------------------------------------------------


def test_it_sends_the_old_address_to_the_audit_page_with_its_filters(manager, client_for):
    response = client_for(manager).get(reverse("customers:access_log"), {"action": "reveal", "user": manager.pk})
    assert response.status_code == 301
    assert response["Location"] == f"{ACCESS_LOG}?action=reveal&user={manager.pk}"


def test_it_refuses_the_old_address_to_sales(sales_rep, client_for):
    assert client_for(sales_rep).get(reverse("customers:access_log")).status_code == 403


def test_it_links_the_360_page_to_who_looked_at_the_customer(manager, sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep)
    link = 'data-testid="action-access-log"'
    manager_page = client_for(manager).get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert link in manager_page and f"{ACCESS_LOG}?record={customer.code}" in manager_page
    sales_page = client_for(sales_rep).get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert link not in sales_page
