"""The API of transactions and contracts (customers.api_records): the UI's rules through another door."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import ApiToken
from customers.models import Contract, Transaction, TransactionLine
from customers.products import transaction_record
from tests.api.conftest import ApiClient
from tests.customers.factories import ContractFactory, CustomerFactory, ProductFactory, TransactionFactory

pytestmark = pytest.mark.django_db


def url(basename: str, pk: int | None = None) -> str:
    if pk is None:
        return reverse(f"api:{basename}-list")
    return reverse(f"api:{basename}-detail", args=[pk])


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(owner=sales_rep, name="海淀科技")


@pytest.fixture
def other_customer(other_sales_rep):
    return CustomerFactory(owner=other_sales_rep, name="朝阳贸易")


@pytest.fixture
def rep_api(api_for, sales_rep):
    return api_for(sales_rep)[0]


def error_fields(response) -> dict:
    return response.json()["error"].get("fields", {})


# --- Who may reach what --------------------------------------------------------------------------


@pytest.mark.parametrize("basename", ["transaction", "contract"])
def test_it_answers_anonymous_requests_with_401(basename):
    response = ApiClient(None).get(url(basename))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("basename", ["transaction", "contract"])
def test_it_refuses_a_role_without_the_model_permission(api_for, analyst, basename):
    api, _token = api_for(analyst)
    response = api.get(url(basename))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_it_refuses_writes_to_a_role_that_only_reads(api_for, service_agent, customer):
    api, _token = api_for(service_agent)
    assert api.get(url("transaction")).status_code == 200
    response = api.post(url("transaction"), {"customer": customer.pk, "amount": "10.00", "product": "x"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize("basename", ["transaction", "contract"])
def test_it_refuses_writes_with_a_read_only_token(api_for, sales_rep, customer, basename):
    api, _token = api_for(sales_rep, scope=ApiToken.Scope.READ)
    response = api.post(url(basename), {"customer": customer.pk})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "read_only_token"


def test_it_hides_another_reps_customers_records(rep_api, customer, other_customer):
    mine = TransactionFactory(customer=customer)
    theirs = TransactionFactory(customer=other_customer)
    their_contract = ContractFactory(customer=other_customer)
    listed = [row["id"] for row in rep_api.get(url("transaction")).json()["results"]]
    assert listed == [mine.pk]
    assert rep_api.get(url("transaction", theirs.pk)).status_code == 404
    assert rep_api.patch(url("transaction", theirs.pk), {"product": "改"}).status_code == 404
    assert rep_api.get(url("contract", their_contract.pk)).status_code == 404
    assert rep_api.patch(url("contract", their_contract.pk), {"title": "改"}).status_code == 404
    assert rep_api.get(url("contract")).json()["results"] == []


def test_it_answers_404_for_a_record_of_a_customer_out_of_reach(rep_api, other_customer):
    response = rep_api.post(
        url("transaction"),
        {
            "customer": other_customer.pk,
            "date": "2026-03-01",
            "amount": "99.00",
            "product": "墨盒",
            "channel": "online",
        },
    )
    assert response.status_code == 404
    assert not Transaction.objects.exists()


def test_it_answers_403_for_a_customer_the_user_may_only_read(api_for, sales_rep, other_customer):
    from guardian.shortcuts import assign_perm

    assign_perm("customers.view_customer", sales_rep, other_customer)
    api, _token = api_for(sales_rep)
    record = ContractFactory(customer=other_customer)
    assert api.get(url("contract", record.pk)).status_code == 200
    response = api.patch(url("contract", record.pk), {"title": "改"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "read_only_record"
    response = api.post(
        url("contract"),
        {
            "customer": other_customer.pk,
            "title": "框架",
            "amount": "0",
            "start_date": "2026-01-01",
            "end_date": "2026-12-31",
        },
    )
    assert response.status_code == 403


# --- Transactions --------------------------------------------------------------------------------


def test_it_records_a_transaction_credited_to_the_customers_owner(api_for, manager, sales_rep, customer):
    api, _token = api_for(manager)
    response = api.post(
        url("transaction"),
        {
            "customer": customer.pk,
            "date": "2026-03-01",
            "amount": "1280.00",
            "product": "年度套餐",
            "channel": "online",
        },
    )
    assert response.status_code == 201, response.json()
    record = Transaction.objects.get()
    assert (record.amount, record.product, record.rep, record.created_by) == (
        Decimal("1280.00"),
        "年度套餐",
        sales_rep,
        manager,
    )
    assert response.json()["customer"] == customer.pk
    assert response.json()["customer_code"] == customer.code
    assert record.history.first().history_change_reason.startswith("API")


def test_it_validates_a_transaction_with_the_ui_form(rep_api, customer):
    response = rep_api.post(url("transaction"), {"customer": customer.pk, "date": "2026-03-01", "amount": "0"})
    assert response.status_code == 400
    fields = error_fields(response)
    assert fields["amount"][0]["code"] == "zero"
    assert fields["product"][0]["code"] == "required"
    assert not Transaction.objects.exists()


def test_it_refuses_a_bad_amount_by_name(rep_api, customer):
    response = rep_api.post(url("transaction"), {"customer": customer.pk, "amount": "lots", "product": "x"})
    assert response.status_code == 400
    assert "amount" in error_fields(response)


@pytest.mark.parametrize("field", ["rep", "created_by", "lines", "id", "owner"])
def test_it_refuses_server_set_fields_by_name(rep_api, customer, sales_rep, field):
    body = {"customer": customer.pk, "date": "2026-03-01", "amount": "10.00", "product": "x", field: sales_rep.pk}
    response = rep_api.post(url("transaction"), body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "field_not_allowed"
    assert list(error_fields(response)) == [field]
    assert not Transaction.objects.exists()


def test_it_changes_a_transaction_but_never_its_customer(rep_api, customer, sales_rep):
    record = TransactionFactory(customer=customer, created_by=sales_rep)
    response = rep_api.patch(url("transaction", record.pk), {"amount": "-300.00", "channel": "phone"})
    assert response.status_code == 200, response.json()
    record.refresh_from_db()
    assert (record.amount, record.channel, record.product) == (Decimal("-300.00"), "phone", "年度服务套餐")
    other = CustomerFactory(owner=sales_rep)
    response = rep_api.patch(url("transaction", record.pk), {"customer": other.pk})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "field_not_allowed"


def test_it_shows_product_lines_and_keeps_them_on_an_edit(api_for, sales_rep, customer):
    product = ProductFactory(stock_quantity=Decimal(10))
    record = transaction_record(
        customer=customer,
        by=sales_rep,
        date=datetime.date(2026, 3, 1),
        channel="offline",
        lines=[{"product": product, "quantity": Decimal(2), "unit_price": Decimal("50.00")}],
    )
    api, _token = api_for(sales_rep)
    data = api.get(url("transaction", record.pk)).json()
    assert data["amount"] == "100.00"
    assert [(line["product"], line["quantity"], line["line_total"]) for line in data["lines"]] == [
        (product.pk, "2.00", "100.00")
    ]
    response = api.patch(url("transaction", record.pk), {"amount": "5.00"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "field_not_allowed"
    response = api.patch(url("transaction", record.pk), {"date": "2026-03-02"})
    assert response.status_code == 200, response.json()
    record.refresh_from_db()
    product.refresh_from_db()
    assert record.date == datetime.date(2026, 3, 2) and record.amount == Decimal("100.00")
    assert TransactionLine.objects.filter(transaction=record).count() == 1
    assert product.stock_quantity == Decimal(8)  # the unchanged lines moved no stock


def test_it_filters_transactions_by_customer_and_date(rep_api, customer, sales_rep):
    second = CustomerFactory(owner=sales_rep)
    early = TransactionFactory(customer=customer, date=datetime.date(2026, 1, 5))
    late = TransactionFactory(customer=customer, date=datetime.date(2026, 2, 5))
    TransactionFactory(customer=second, date=datetime.date(2026, 2, 6))
    rows = rep_api.get(url("transaction"), {"customer": customer.pk}).json()["results"]
    assert [row["id"] for row in rows] == [late.pk, early.pk]
    rows = rep_api.get(url("transaction"), {"customer": customer.pk, "date_to": "2026-01-31"}).json()["results"]
    assert [row["id"] for row in rows] == [early.pk]


@pytest.mark.parametrize(
    "params,field",
    [
        ({"date_from": "2026-13-01"}, "date_from"),
        ({"date_from": "2026-02-01", "date_to": "2026-01-01"}, "date_to"),
        ({"customer": "abc"}, "customer"),
        ({"customer": str(2**70)}, "customer"),
    ],
)
def test_it_refuses_a_bad_filter_by_name(rep_api, params, field):
    response = rep_api.get(url("transaction"), params)
    assert response.status_code == 400
    assert field in error_fields(response)


def test_it_creates_a_transaction_once_for_a_repeated_idempotency_key(rep_api, customer):
    body = {"customer": customer.pk, "date": "2026-03-01", "amount": "10.00", "product": "x", "channel": "offline"}
    first = rep_api.post(url("transaction"), body, HTTP_IDEMPOTENCY_KEY="order-42")
    second = rep_api.post(url("transaction"), body, HTTP_IDEMPOTENCY_KEY="order-42")
    assert (first.status_code, second.status_code) == (201, 201)
    assert second["Idempotent-Replayed"] == "true"
    assert first.json()["id"] == second.json()["id"]
    assert Transaction.objects.count() == 1


def test_it_lists_transactions_within_a_query_budget(rep_api, customer, django_assert_max_num_queries):
    product = ProductFactory()
    for index in range(35):
        record = TransactionFactory(customer=customer)
        if index % 3 == 0:
            TransactionLine.objects.create(transaction=record, product=product, quantity=1, unit_price="10.00")
    with django_assert_max_num_queries(10):
        response = rep_api.get(url("transaction"), {"page_size": 50})
    assert len(response.json()["results"]) == 35


# --- Contracts -----------------------------------------------------------------------------------


def test_it_records_a_contract_numbered_automatically(rep_api, customer, sales_rep):
    body = {
        "customer": customer.pk,
        "title": "年度合作协议",
        "amount": "50000.00",
        "start_date": "2026-01-01",
        "end_date": "2026-12-31",
    }
    response = rep_api.post(url("contract"), body)
    assert response.status_code == 201, response.json()
    contract = Contract.objects.get()
    assert contract.number.startswith("HT") and response.json()["number"] == contract.number
    assert (contract.created_by, contract.status) == (sales_rep, Contract.Status.ACTIVE)


def test_it_validates_a_contract_with_the_ui_form(rep_api, customer):
    ContractFactory(customer=customer, number="HT-TAKEN")
    body = {
        "customer": customer.pk,
        "number": "ht-taken",
        "title": "协议",
        "amount": "-1",
        "start_date": "2026-02-01",
        "end_date": "2026-01-01",
    }
    response = rep_api.post(url("contract"), body)
    assert response.status_code == 400
    fields = error_fields(response)
    assert {"number", "amount", "end_date"} <= set(fields)
    assert Contract.objects.count() == 1


def test_it_changes_a_contract_and_keeps_its_number_when_emptied(rep_api, customer):
    contract = ContractFactory(customer=customer)
    number = contract.number
    response = rep_api.patch(url("contract", contract.pk), {"number": "", "status": "terminated"})
    assert response.status_code == 200, response.json()
    contract.refresh_from_db()
    assert (contract.number, contract.status) == (number, Contract.Status.TERMINATED)


def test_it_filters_contracts_by_status_and_refuses_an_unknown_one(rep_api, customer):
    active = ContractFactory(customer=customer)
    ContractFactory(customer=customer, status=Contract.Status.EXPIRED)
    rows = rep_api.get(url("contract"), {"status": "active"}).json()["results"]
    assert [row["id"] for row in rows] == [active.pk]
    response = rep_api.get(url("contract"), {"status": "bogus"})
    assert response.status_code == 400 and "status" in error_fields(response)


def test_it_refuses_the_server_set_fields_of_a_contract(rep_api, customer, sales_rep):
    contract = ContractFactory(customer=customer)
    response = rep_api.patch(url("contract", contract.pk), {"created_by": sales_rep.pk})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "field_not_allowed"


def test_it_lists_contracts_within_a_query_budget(rep_api, customer, django_assert_max_num_queries):
    for _ in range(35):
        ContractFactory(customer=customer)
    with django_assert_max_num_queries(8):
        response = rep_api.get(url("contract"), {"page_size": 50})
    assert len(response.json()["results"]) == 35
