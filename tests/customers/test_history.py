"""History (django-simple-history) stores ciphertext only and records who changed what."""

import pytest
from django.db import connection

from customers.models import Contact, Customer
from customers.services import customer_reveal_field, customer_save, customer_transfer
from tests.customers.factories import TagFactory

pytestmark = pytest.mark.django_db

ID_NUMBER = "110105194912190021"
SECRETS = {
    "phone": "13812345678",
    "new mobile": "13987654321",
    "old mobile": "13711112222",
    "contact phone": "13655556666",
    "ID number": ID_NUMBER,
    "bank account": "6222020200112233445",
    "email": "zhang.wei@example.com",
    "address": "建国路88号",
}


def _rows_as_text(table: str) -> list[str]:
    quoted = connection.ops.quote_name(table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {quoted}")  # noqa: S608 - a table name from the introspection
        return [" ".join("" if value is None else str(value) for value in row) for row in cursor.fetchall()]


def _plaintext_in(table: str) -> list[tuple[str, str]]:
    return [(name, table) for row in _rows_as_text(table) for name, secret in SECRETS.items() if secret in row]


@pytest.fixture
def archive(sales_rep, other_sales_rep, manager):
    customer = Customer(
        name="王伟",
        kind=Customer.ENTERPRISE,
        phone="+8613812345678",
        mobile="+8613711112222",
        email="zhang.wei@example.com",
        address="北京市朝阳区建国路88号",
        id_number=ID_NUMBER,
        bank_account="6222020200112233445",
    )
    contacts = [Contact(name="张经理", phone="+8613655556666", is_primary=True)]
    customer_save(customer=customer, contacts=contacts, by=sales_rep)
    customer.tags.add(TagFactory())
    customer.mobile = "+8613987654321"
    customer_save(customer=customer, by=other_sales_rep)
    contact = customer.contacts.get()
    contact.title = "总经理"
    customer_save(customer=customer, contacts=[contact], by=other_sales_rep)
    customer_transfer(customer_ids=[customer.pk], to=other_sales_rep, by=manager)  # history written in SQL
    customer_reveal_field(user=manager, customer_pk=customer.pk, field="id_number")  # the access log
    return customer


def test_it_keeps_plaintext_out_of_the_history_tables(archive):
    for model in (Customer, Contact):
        table = model.history.model._meta.db_table
        assert len(_rows_as_text(table)) >= 2, table
        assert _plaintext_in(table) == []


def test_it_keeps_plaintext_out_of_the_customer_and_contact_tables(archive):
    for model in (Customer, Contact):
        assert _rows_as_text(model._meta.db_table)
        assert _plaintext_in(model._meta.db_table) == []


def test_it_keeps_plaintext_out_of_every_table(archive):
    found = [hit for table in connection.introspection.table_names() for hit in _plaintext_in(table)]
    assert found == []


def test_it_would_notice_plaintext(archive):
    # The scan itself works: a value put into a plain column is found, in the table and its history.
    archive.notes = f"身份证 {ID_NUMBER}"
    archive.save()
    assert ("ID number", "customers_customer") in _plaintext_in("customers_customer")
    assert ("ID number", "customers_historicalcustomer") in _plaintext_in("customers_historicalcustomer")


def test_it_still_reads_the_values_from_history(archive):
    records = list(archive.history.order_by("history_date", "history_id"))
    # created, tagged, mobile changed, saved with its contact, transferred
    assert [r.mobile for r in records] == ["+8613711112222"] * 2 + ["+8613987654321"] * 3
    assert {r.id_number for r in records} == {ID_NUMBER}
    assert archive.contacts.get().history.earliest().phone == "+8613655556666"


def test_it_records_who_changed_what(archive, sales_rep, other_sales_rep, manager):
    records = list(archive.history.order_by("history_date", "history_id"))
    assert records[0].history_type == "+" and records[0].history_user == sales_rep
    change = next(r for r in records if r.mobile != records[0].mobile)
    assert change.history_user == other_sales_rep
    delta = change.diff_against(change.prev_record)
    assert [(c.field, c.old, c.new) for c in delta.changes] == [("mobile", "+8613711112222", "+8613987654321")]
    assert records[-1].history_user == manager and records[-1].history_change_reason == "transfer"
    contact_records = list(Contact.history.order_by("history_date", "history_id"))
    assert [(r.history_type, r.history_user) for r in contact_records] == [("+", sales_rep), ("~", other_sales_rep)]
