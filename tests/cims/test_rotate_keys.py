"""Key rotation: ``manage.py rotate_field_keys`` re-encrypts everything under the ring's first key."""

import os
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from cims import crypto
from cims.crypto import DecryptionError
from cims.management.commands.rotate_field_keys import encrypted_fields, models_with_encrypted_fields
from customers.models import Contact, Customer
from customers.services import customer_save

pytestmark = pytest.mark.django_db

# Values are written inside override_settings only: the test settings' own ring may use "k1" too.
OLD, NEW = os.urandom(32), os.urandom(32)
ID_NUMBER = "110105194912190021"


def _rotate(*args) -> str:
    out = StringIO()
    call_command("rotate_field_keys", *args, stdout=out)
    return out.getvalue()


def _stored(model) -> list[str]:
    """Every non-empty encrypted value of ``model``'s table, as stored (raw SQL, no decryption)."""
    columns = ", ".join(connection.ops.quote_name(f.column) for f in encrypted_fields(model))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {connection.ops.quote_name(model._meta.db_table)}")  # noqa: S608
        return [value for row in cursor.fetchall() for value in row if value]


def _raw(table: str, columns: str, pk: int) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {table} WHERE id = %s", [pk])  # noqa: S608 - fixed names
        return cursor.fetchone()


TABLES = (Customer, Customer.history.model, Contact, Contact.history.model)


@pytest.fixture
def written_under_k1(sales_rep):
    with override_settings(FIELD_ENCRYPTION_KEYS={"k1": OLD}):
        customers = []
        for n in range(5):
            customer = Customer(
                name=f"客户{n}",
                mobile=f"+86138000000{n:02d}",
                email=f"c{n}@example.com",
                id_number=ID_NUMBER if n == 0 else "",
                address="北京市朝阳区建国路88号" if n == 1 else "",
            )
            customer_save(
                customer=customer, contacts=[Contact(name=f"联系人{n}", phone=f"+86139000000{n:02d}")], by=sales_rep
            )
            customers.append(customer)
        customers[0].bank_account = "6222020200112233445"
        customer_save(customer=customers[0], by=sales_rep)  # a second history row
        Customer.objects.filter(pk=customers[4].pk).update(deleted_at=timezone.now())  # in the recycle bin
    return customers


def test_it_walks_every_model_with_encrypted_columns_including_history():
    found = set(models_with_encrypted_fields())
    assert set(TABLES) <= found
    assert {f.name for f in encrypted_fields(Customer.history.model)} == {
        "phone",
        "mobile",
        "email",
        "address",
        "id_number",
        "bank_account",
    }


def test_it_re_encrypts_everything_under_the_new_key(written_under_k1):
    for model in TABLES:
        assert _stored(model) and all(v.startswith("v1:k1:") for v in _stored(model)), model
    first = written_under_k1[0]
    before = _raw("customers_customer", "mobile_bidx, email_bidx, id_number_bidx, updated_at", first.pk)
    history_rows = Customer.history.count()

    with override_settings(FIELD_ENCRYPTION_KEYS={"k2": NEW, "k1": OLD}):
        # Readable before the rotation: k1 is still in the ring.
        assert Customer.all_objects.get(pk=first.pk).id_number == ID_NUMBER
        # A dry run counts and changes nothing.
        report = _rotate("--dry-run")
        assert "customers.Customer: 5 rows to re-encrypt" in report
        assert "customers.HistoricalCustomer: 6 rows to re-encrypt" in report
        assert all(v.startswith("v1:k1:") for v in _stored(Customer))

        report = _rotate("--batch-size", "2")
        assert "customers.Customer: 5 rows re-encrypted" in report
        assert "customers.HistoricalCustomer: 6 rows re-encrypted" in report
        assert "customers.Contact: 5 rows re-encrypted" in report
        assert "customers.HistoricalContact: 5 rows re-encrypted" in report
        for model in TABLES:
            assert _stored(model) and all(v.startswith("v1:k2:") for v in _stored(model)), model
        # Blind indexes, update stamps and history are untouched: no value changed.
        assert _raw("customers_customer", "mobile_bidx, email_bidx, id_number_bidx, updated_at", first.pk) == before
        assert Customer.history.count() == history_rows

        # A second run finds nothing left to do.
        assert "0 rows re-encrypted" in _rotate()
        assert "customers.Customer: 0 rows re-encrypted" in _rotate()

    with override_settings(FIELD_ENCRYPTION_KEYS={"k2": NEW}):
        # k1 is gone: everything still reads, the recycle bin and the history included.
        for customer in written_under_k1:
            fresh = Customer.all_objects.get(pk=customer.pk)
            assert (fresh.mobile, fresh.email, fresh.id_number) == (customer.mobile, customer.email, customer.id_number)
            assert fresh.contacts.get().phone == customer.contacts.get().phone
        assert {r.mobile for r in Customer.history.all()} == {c.mobile for c in written_under_k1}
        assert Customer.history.filter(id=first.pk).earliest().id_number == ID_NUMBER
        assert Customer.history.filter(id=first.pk).latest().bank_account == "6222020200112233445"
        assert {r.phone for r in Contact.history.all()} == {c.contacts.get().phone for c in written_under_k1}
        assert Customer.objects.get(pk=written_under_k1[1].pk).address == "北京市朝阳区建国路88号"


def test_it_selects_only_rows_with_a_value_under_an_older_key(written_under_k1, sales_rep):
    with override_settings(FIELD_ENCRYPTION_KEYS={"k2": NEW, "k1": OLD}):
        customer_save(customer=Customer(name="新客户", mobile="+8613800009999"), by=sales_rep)  # under k2
        assert "customers.Customer: 5 rows to re-encrypt" in _rotate("--dry-run")
        # Nothing encrypted left in a row: nothing to do there.
        Customer.all_objects.filter(pk=written_under_k1[2].pk).update(mobile="", email="")
        assert "customers.Customer: 4 rows to re-encrypt" in _rotate("--dry-run")
        # One column rewritten under k2, another still under k1: the row is still stale.
        Customer.all_objects.filter(pk=written_under_k1[3].pk).update(mobile="+8613800008888")
        assert "customers.Customer: 4 rows to re-encrypt" in _rotate("--dry-run")
        assert "customers.Customer: 4 rows re-encrypted" in _rotate()
        assert Customer.objects.get(pk=written_under_k1[3].pk).email == "c3@example.com"


def test_it_refuses_a_value_under_a_key_missing_from_the_ring(written_under_k1):
    customer = written_under_k1[0]
    with override_settings(FIELD_ENCRYPTION_KEYS={"k2": NEW}):
        with pytest.raises(DecryptionError):
            Customer.objects.get(pk=customer.pk)
        with pytest.raises(DecryptionError):
            list(Customer.objects.values_list("mobile", flat=True))
        with pytest.raises(CommandError, match="not in FIELD_ENCRYPTION_KEYS"):
            _rotate()
    assert all(v.startswith("v1:k1:") for v in _stored(Customer))  # nothing half-done


def test_it_stops_at_a_batch_with_an_unreadable_value_and_leaves_that_batch_alone(written_under_k1):
    with override_settings(FIELD_ENCRYPTION_KEYS={"k9": os.urandom(32)}):
        Customer.all_objects.filter(pk=written_under_k1[3].pk).update(email="lost@example.com")  # under k9
    with override_settings(FIELD_ENCRYPTION_KEYS={"k2": NEW, "k1": OLD}):
        with pytest.raises(CommandError, match=r"customers\.Customer, rows .*'k9' is not in FIELD_ENCRYPTION_KEYS"):
            _rotate("--batch-size", "2")
        # Batches before it are done, its own batch is untouched, nothing after it was started.
        assert _email_key_ids() == ["k2", "k2", "k1", "k9", "k1"]


def _email_key_ids() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT email FROM customers_customer ORDER BY id")
        return [crypto.key_id_of(value) for (value,) in cursor.fetchall()]


def test_it_refuses_a_ciphertext_copied_into_another_column(written_under_k1):
    customer = written_under_k1[0]
    with override_settings(FIELD_ENCRYPTION_KEYS={"k1": OLD}):
        assert Customer.objects.get(pk=customer.pk).mobile == customer.mobile
        with connection.cursor() as cursor:
            cursor.execute("UPDATE customers_customer SET phone = mobile WHERE id = %s", [customer.pk])
        with pytest.raises(DecryptionError):
            Customer.objects.get(pk=customer.pk)


def test_it_refuses_a_ciphertext_copied_from_another_row_of_another_model(written_under_k1):
    customer = written_under_k1[0]
    contact = Contact.objects.only("pk").get(customer=customer)
    with override_settings(FIELD_ENCRYPTION_KEYS={"k1": OLD}):
        assert Contact.objects.get(pk=contact.pk).phone
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE customers_contact SET phone = (SELECT mobile FROM customers_customer WHERE id = %s) WHERE id = %s",
                [customer.pk, contact.pk],
            )
        with pytest.raises(DecryptionError):
            Contact.objects.get(pk=contact.pk)


def test_it_refuses_a_batch_size_below_one():
    with pytest.raises(CommandError):
        _rotate("--batch-size", "0")
