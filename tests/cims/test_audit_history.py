"""The change history of every record (/audit/history/): search, keyset pages, diffs, masking, secrets."""

import csv
import datetime
import io

import pytest
from django.apps import apps
from django.urls import reverse
from django.utils import timezone
from simple_history.manager import HistoryDescriptor

from accounts.models import User
from cims.audit_history import HistoryQuery, audited_models, history_page, is_secret_field, iter_history
from cims.models import PersonalDataAccess
from customers.models import Contact, Customer
from lottery.models import LotteryEvent
from tests.customers.factories import ContactFactory, CustomerFactory
from tests.lottery.factories import make_event

HISTORY = reverse("audit:history")
SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))


def page_rows(response) -> list:
    assert response.status_code == 200
    return list(response.context["page"].object_list)


def changed(obj, by, **values):
    for name, value in values.items():
        setattr(obj, name, value)
    obj._history_user = by
    obj.save()
    return obj


def set_history_date(model, when, **filters):
    model.history.model.objects.filter(**filters).update(history_date=when)


# --- Which models --------------------------------------------------------------------------------


def test_it_searches_every_model_that_keeps_a_history():
    expected = {
        model._meta.label_lower
        for model in apps.get_models()
        if isinstance(model.__dict__.get("history"), HistoryDescriptor)
    }
    found = {model._meta.label_lower for model in audited_models()}
    assert found == expected
    assert {"customers.customer", "accounts.user", "lottery.lotteryevent", "complaints.ticket"} <= found


def test_it_treats_secret_and_unmaskable_fields_as_secret():
    historical_customer = Customer.history.model._meta
    assert is_secret_field(historical_customer.get_field("phone_bidx"))
    assert not is_secret_field(historical_customer.get_field("phone"))  # encrypted, but we have a mask for it
    assert not is_secret_field(historical_customer.get_field("name"))
    assert is_secret_field(LotteryEvent._meta.get_field("secret"))
    assert is_secret_field(LotteryEvent._meta.get_field("salt"))
    assert is_secret_field(User._meta.get_field("password"))


# --- Masking and secrets ---------------------------------------------------------------------------


def test_it_masks_a_changed_phone_and_never_shows_it_in_clear(manager, client_for):
    customer = CustomerFactory(mobile="+8613812345678", id_number="110105194912190021")
    changed(customer, manager, mobile="+8613987654321", id_number="110105194912190039")
    html = client_for(manager).get(HISTORY, {"model": "customers.customer"}).content.decode()
    assert "138****5678" in html and "139****4321" in html
    for clear in ("13812345678", "13987654321", "139 8765 4321", "110105194912190021", "110105194912190039"):
        assert clear not in html
    assert "1101**********0039" in html
    assert customer.code in html


def test_it_never_shows_blind_indexes(manager, client_for):
    customer = CustomerFactory(mobile="+8613812345678")
    changed(customer, manager, mobile="+8613987654321")
    html = client_for(manager).get(HISTORY).content.decode()
    customer.refresh_from_db()
    assert customer.mobile_bidx and customer.mobile_bidx not in html


def test_it_never_shows_a_lottery_events_secret_or_salt(administrator, client_for):
    event = make_event(by=administrator)
    changed(event, administrator, name="2026 答谢抽奖（改）", salt="5a17" * 8, secret="5ec2e7" * 10)
    response = client_for(administrator).get(HISTORY, {"model": "lottery.lotteryevent"})
    html = response.content.decode()
    assert "2026 答谢抽奖（改）" in html
    assert "5a17" * 8 not in html and "5ec2e7" * 10 not in html


def test_it_never_shows_a_password_hash(administrator, sales_rep, client_for):
    sales_rep.set_password("a-new-password-1")
    changed(sales_rep, administrator, name="李销售（新）")
    response = client_for(administrator).get(HISTORY, {"model": "accounts.user"})
    html = response.content.decode()
    assert "李销售（新）" in html
    assert sales_rep.password not in html and "md5$" not in html


# --- Diffs -------------------------------------------------------------------------------------------


def test_it_diffs_each_change_against_the_previous_row_of_the_same_object(manager):
    first, second = CustomerFactory(name="甲"), CustomerFactory(name="乙")
    changed(first, manager, name="甲一")
    changed(second, manager, name="乙一")
    changed(first, manager, name="甲二")
    _page, entries = history_page(user=manager, query=HistoryQuery(models=(Customer,), action="~"))
    seen = [(entry.object_id, [(c["old"], c["new"]) for c in entry.changes]) for entry in entries]
    assert seen == [(first.pk, [("甲一", "甲二")]), (second.pk, [("乙", "乙一")]), (first.pk, [("甲", "甲一")])]


def test_it_links_records_to_their_pages(manager):
    customer = CustomerFactory()
    contact = ContactFactory(customer=customer, name="张三")
    _page, entries = history_page(user=manager, query=HistoryQuery(models=(Customer, Contact)))
    urls = {entry.model_label: entry.url for entry in entries}
    assert urls["customers.customer"] == reverse("customers:detail", args=[customer.pk])
    assert urls["customers.contact"] == reverse("customers:detail", args=[customer.pk])
    labels = {entry.model_label: entry.label for entry in entries}
    assert labels["customers.contact"] == "张**" and contact.name not in labels.values()


def test_it_masks_a_contacts_name_in_its_changes(manager):
    contact = ContactFactory(name="张三")
    changed(contact, manager, name="李四", title="采购经理")
    _page, entries = history_page(user=manager, query=HistoryQuery(models=(Contact,), action="~"))
    assert {(c["old"], c["new"]) for c in entries[0].changes} == {("张**", "李**"), ("—", "采购经理")}


# --- Filters -------------------------------------------------------------------------------------------


def test_it_filters_by_model(manager, client_for):
    CustomerFactory()
    make_event(by=manager)
    rows = page_rows(client_for(manager).get(HISTORY, {"model": "lottery.lotteryevent"}))
    assert rows and {row.model_label for row in rows} == {"lottery.lotteryevent"}
    everything = page_rows(client_for(manager).get(HISTORY))
    assert {"lottery.lotteryevent", "customers.customer"} <= {row.model_label for row in everything}


def test_it_filters_by_who_changed(manager, sales_rep, client_for):
    customer = CustomerFactory()
    changed(customer, sales_rep, name="由销售修改")
    changed(customer, manager, name="由经理修改")
    rows = page_rows(client_for(manager).get(HISTORY, {"user": sales_rep.pk}))
    assert [(row.who, row.changes[0]["new"]) for row in rows] == [(sales_rep, "由销售修改")]


def test_it_filters_by_record_id_and_customer_code(manager, client_for):
    wanted, other = CustomerFactory(), CustomerFactory()
    changed(wanted, manager, name="要找的")
    changed(other, manager, name="别的")
    client = client_for(manager)
    by_code = page_rows(client.get(HISTORY, {"record": wanted.code.lower()}))
    assert {(row.model_label, row.object_id) for row in by_code} == {("customers.customer", wanted.pk)}
    assert len(by_code) == 2
    by_id = page_rows(client.get(HISTORY, {"model": "customers.customer", "record": str(other.pk)}))
    assert {row.object_id for row in by_id} == {other.pk}


def test_it_filters_by_change_type(manager, client_for):
    contact = ContactFactory()
    changed(contact, manager, title="经理")
    contact.delete()
    client = client_for(manager)
    actions = {
        a: [row.action for row in page_rows(client.get(HISTORY, {"action": a, "model": "customers.contact"}))]
        for a in "+~-"
    }
    assert actions["+"] == ["+"]
    assert actions["~"] == ["~"]
    assert actions["-"] == ["-"]


def test_it_filters_by_days_in_shanghai_time(manager, client_for):
    early, late = CustomerFactory(), CustomerFactory()
    # 2026-03-01 23:30 in Shanghai is still 1 March there, though 15:30 UTC.
    set_history_date(Customer, datetime.datetime(2026, 3, 1, 23, 30, tzinfo=SHANGHAI), id=early.pk)
    set_history_date(Customer, datetime.datetime(2026, 3, 2, 0, 30, tzinfo=SHANGHAI), id=late.pk)
    client = client_for(manager)
    first_day = page_rows(client.get(HISTORY, {"date_from": "2026-03-01", "date_to": "2026-03-01"}))
    assert [(row.model_label, row.object_id) for row in first_day] == [("customers.customer", early.pk)]
    second_day = page_rows(client.get(HISTORY, {"date_from": "2026-03-02", "model": "customers.customer"}))
    assert [row.object_id for row in second_day] == [late.pk]


@pytest.mark.parametrize(
    "params",
    [
        {"date_from": "2026-13-45"},
        {"date_from": "2026-03-02", "date_to": "2026-03-01"},
        {"user": "abc"},
        {"user": "999999"},
        {"model": "auth.permission"},
        {"action": "x"},
        {"record": "'; drop table --"},
        {"record": "C2026-999999"},
        {"record": "C2026-000001", "model": "lottery.lotteryevent"},
        {"record": "9" * 40},
    ],
)
def test_it_answers_bad_filters_with_an_error_and_no_rows(manager, client_for, params):
    CustomerFactory()
    response = client_for(manager).get(HISTORY, params)
    assert response.status_code == 200
    assert response.context["form"].errors
    assert page_rows(response) == []
    assert 'data-testid="filter-errors"' in response.content.decode()


def test_it_ignores_a_forged_cursor(manager, client_for):
    CustomerFactory()
    params = {"model": "customers.customer", "after": "forged:cursor", "before": "%%%"}
    assert len(page_rows(client_for(manager).get(HISTORY, params))) == 1


# --- Pages and budgets -------------------------------------------------------------------------------


def test_it_pages_across_models_without_skipping_or_repeating(manager, client_for):
    customers = [CustomerFactory() for _ in range(30)]
    contacts = [ContactFactory(customer=customers[0]) for _ in range(30)]
    same_moment = timezone.now() - datetime.timedelta(days=1)
    # Ties on time across two tables: the order (time, model, id) must still be total.
    set_history_date(Customer, same_moment)
    set_history_date(Contact, same_moment)
    events = [make_event(by=manager, name=f"活动{n}") for n in range(5)]
    client = client_for(manager)
    first = client.get(HISTORY)
    rows = page_rows(first)
    assert len(rows) == 50 and first.context["next_query"]
    second = client.get(f"{HISTORY}?{first.context['next_query']}")
    more = page_rows(second)
    assert len({(row.model_label, row.history_id) for row in rows + more}) == len(rows + more)
    seen = {(row.model_label, row.object_id) for row in rows + more}
    expected = {("customers.customer", c.pk) for c in customers} | {("customers.contact", c.pk) for c in contacts}
    expected |= {("lottery.lotteryevent", e.pk) for e in events}
    assert expected <= seen
    order = [(row.when, row.model_label, row.history_id) for row in rows + more]
    assert order == sorted(order, reverse=True)  # newest first, ties broken by model and id
    back = client.get(f"{HISTORY}?{second.context['previous_query']}")
    assert [(r.model_label, r.object_id) for r in page_rows(back)] == [(r.model_label, r.object_id) for r in rows]


def test_it_shows_all_models_within_a_query_budget(manager, client_for, django_assert_max_num_queries):
    for n in range(30):
        customer = CustomerFactory()
        changed(customer, manager, name=f"改名{n}", mobile=f"+86137{n:08d}")
        ContactFactory(customer=customer)
    client = client_for(manager)
    client.get(HISTORY)  # the session and permissions, once
    models = len(audited_models())
    # A light query per model, the whole rows of the models on the page, and the fixed costs.
    with django_assert_max_num_queries(models + 14):
        response = client.get(HISTORY)
    assert len(page_rows(response)) == 50


def test_it_shows_one_model_within_a_query_budget(manager, client_for, django_assert_max_num_queries):
    for n in range(60):
        changed(CustomerFactory(), manager, name=f"改名{n}")
    client = client_for(manager)
    client.get(HISTORY)
    with django_assert_max_num_queries(12):
        response = client.get(HISTORY, {"model": "customers.customer", "action": "~"})
    rows = page_rows(response)
    assert len(rows) == 50 and all(row.changes for row in rows)


# --- The export --------------------------------------------------------------------------------------

EXPORT = reverse("audit:history_export")


def test_it_exports_the_filtered_history_masked_and_logs_it(manager, client_for):
    customer = CustomerFactory(mobile="+8613812345678")
    changed(customer, manager, mobile="+8613987654321")
    CustomerFactory()
    response = client_for(manager).get(EXPORT, {"record": customer.code, "format": "csv"})
    assert response.status_code == 200 and response["Cache-Control"] == "private, no-store"
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")
    text = body.decode("utf-8-sig")
    header, *rows = list(csv.reader(io.StringIO(text)))
    assert [row[3] for row in rows] == [str(customer.pk), str(customer.pk)]
    assert "138****5678" in text and "139****4321" in text
    assert "13812345678" not in text and "13987654321" not in text
    export = PersonalDataAccess.objects.get(action="export")
    assert (export.object_type, export.rows, export.user) == ("history", 2, manager)
    assert export.detail == f"model=customers.customer&object_id={customer.pk}"


def test_it_pages_through_the_whole_history_when_exporting(manager, client_for):
    for n in range(20):
        changed(CustomerFactory(), manager, name=f"改名{n}")
    response = client_for(manager).get(EXPORT, {"model": "customers.customer", "format": "xlsx"})
    assert response.status_code == 200 and b"".join(response.streaming_content).startswith(b"PK")
    entries = list(iter_history(user=manager, query=HistoryQuery(models=(Customer,)), batch=7))
    assert len(entries) == 40 and len({entry.history_id for entry in entries}) == 40


@pytest.mark.parametrize("role", ["sales", "service", "analyst", "customer"])
def test_it_refuses_the_history_export_and_logs_nothing(cast, client_for, role):
    assert client_for(cast[role]).get(EXPORT).status_code == 403
    assert not PersonalDataAccess.objects.filter(action="export").exists()


@pytest.mark.parametrize("params", [{"format": "doc"}, {"date_from": "nope"}, {"record": "C2026-999999"}])
def test_it_refuses_a_bad_history_export(manager, client_for, params):
    assert client_for(manager).get(EXPORT, params).status_code == 400
