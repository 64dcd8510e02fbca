"""Customer archive models: numbers, constraints, the recycle bin, the name index."""

import datetime
import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone, translation

from customers.models import Contact, Contract, Customer, Transaction, name_grams
from tests.concurrency import run_at_once
from tests.customers.factories import ContactFactory, ContractFactory, CustomerFactory, TransactionFactory

pytestmark = pytest.mark.django_db


def test_it_numbers_customers_by_year_in_sequence():
    first, second = CustomerFactory(), CustomerFactory()
    year = timezone.localdate().year
    assert re.fullmatch(rf"C{year}-\d{{6}}", first.code)
    assert int(second.code[-6:]) == int(first.code[-6:]) + 1


def test_it_keeps_the_code_when_a_customer_is_saved_again():
    customer = CustomerFactory()
    code = customer.code
    customer.name = "改名"
    customer.save()
    customer.refresh_from_db()
    assert customer.code == code


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrency is proven on PostgreSQL (DATABASE_URL)")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # keeps the shipped lookups for later tests
def test_it_keeps_codes_unique_when_created_at_once():
    results, errors = run_at_once(lambda: [Customer.objects.create(name="并发客户").code for _ in range(5)], threads=8)
    codes = [code for batch in results for code in batch]
    assert not errors
    assert len(codes) == 40
    assert len(set(codes)) == 40
    assert Customer.objects.count() == 40


def test_it_numbers_contracts():
    first, second = ContractFactory(), ContractFactory()
    year = timezone.localdate().year
    assert re.fullmatch(rf"HT{year}-\d{{6}}", first.number)
    assert int(second.number[-6:]) == int(first.number[-6:]) + 1
    assert ContractFactory(number="外部-001").number == "外部-001"


def test_it_allows_one_primary_contact_per_customer():
    customer = CustomerFactory()
    ContactFactory(customer=customer, is_primary=True)
    ContactFactory(customer=customer, is_primary=False)
    ContactFactory(is_primary=True)  # another customer's primary contact is no conflict
    second = Contact(customer=customer, name="第二主联系人", is_primary=True)
    with translation.override("en"), pytest.raises(ValidationError, match="only one primary contact"):
        second.validate_constraints()
    with pytest.raises(IntegrityError), transaction.atomic():
        second.save()
    assert customer.contacts.filter(is_primary=True).count() == 1


@pytest.mark.parametrize("amount", ["0", "0.00", "-0.00"])
def test_it_refuses_a_transaction_of_nothing_but_keeps_a_refund(amount):
    customer = CustomerFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        TransactionFactory(customer=customer, amount=amount)
    assert not Transaction.objects.exists()
    kept = TransactionFactory(customer=customer, amount="0.01")
    refund = TransactionFactory(customer=customer, amount="-1.00")
    kept.refresh_from_db()
    refund.refresh_from_db()
    assert (kept.amount, refund.amount) == (Decimal("0.01"), Decimal("-1.00"))


def test_it_refuses_a_contract_that_ends_before_it_starts():
    customer = CustomerFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        ContractFactory(customer=customer, start_date="2026-06-01", end_date="2026-05-31")
    contract = ContractFactory(customer=customer, start_date="2026-06-01", end_date="2026-06-01")
    contract.refresh_from_db()
    assert contract.end_date == datetime.date(2026, 6, 1)
    contract.end_date = datetime.date(2026, 5, 1)
    with translation.override("en"), pytest.raises(ValidationError, match="end date cannot be before"):
        contract.validate_constraints()


def test_it_refuses_a_negative_contract_amount():
    with pytest.raises(IntegrityError), transaction.atomic():
        ContractFactory(amount="-5")
    assert not Contract.objects.exists()


def test_it_hides_soft_deleted_customers_from_the_default_manager():
    alive, deleted = CustomerFactory(), CustomerFactory(deleted_at=timezone.now())
    assert list(Customer.objects.all()) == [alive]
    assert set(Customer.all_objects.all()) == {alive, deleted}
    assert deleted.is_deleted and not alive.is_deleted
    # Related lookups (a contact's customer) still reach a deleted customer: the base manager.
    contact = ContactFactory(customer=deleted)
    assert Contact.objects.get(pk=contact.pk).customer == deleted


def test_it_fills_the_name_index_on_save():
    customer = CustomerFactory(name="王伟", company="ACME 科技")
    assert customer.name_grams == name_grams("王伟 ACME 科技")
    assert {"王", "伟", "王伟", "ac", "科技"} <= set(customer.name_grams.split())
    customer.name = "李娜"
    customer.save()
    customer.refresh_from_db()
    assert "李娜" in customer.name_grams.split() and "王伟" not in customer.name_grams.split()


def test_it_fills_the_name_index_and_blind_indexes_on_bulk_create():
    Customer.objects.bulk_create(
        [
            Customer(code="C2000-000001", name="王伟", mobile="+8613812345678"),
            Customer(code="C2000-000002", name="张三丰"),
        ]
    )
    by_code = {c.code: c for c in Customer.objects.all()}
    assert "王伟" in by_code["C2000-000001"].name_grams.split()
    assert by_code["C2000-000001"].mobile_bidx and by_code["C2000-000001"].mobile == "+8613812345678"
    assert "三丰" in by_code["C2000-000002"].name_grams.split()


def test_it_finds_names_by_substring():
    wang = CustomerFactory(name="王伟")
    CustomerFactory(name="王小伟")
    company = CustomerFactory(name="李雷", company="华为技术有限公司")
    assert list(Customer.objects.search_name("王伟")) == [wang]
    assert list(Customer.objects.search_name("华为")) == [company]
    assert Customer.objects.search_name("伟").count() == 2
    assert Customer.objects.search_name("  ").count() == 3


def test_it_finds_names_by_substring_inside_a_subquery_and_a_union():
    contact = ContactFactory(customer__name="王伟")
    CustomerFactory(name="王小伟")
    # As a subquery the customer table is aliased (U0): the name filter must follow the alias.
    assert list(Contact.objects.filter(customer__in=Customer.objects.search_name("王伟"))) == [contact]
    customers = Customer.objects.all()
    assert list(customers.filter(code="none") | customers.search_name("王伟")) == [contact.customer]
