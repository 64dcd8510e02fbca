"""manage.py seed_demo: realistic, correctly encrypted demo customers that normal creation continues after."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from accounts import roles
from accounts.models import User
from cims.normalize import normalize_email, normalize_id_number, normalize_phone
from customers.models import Contact, Contract, Customer, Transaction, name_grams
from customers.services import exact_search
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def seed(customers: int = 200, **options) -> str:
    out = io.StringIO()
    call_command("seed_demo", customers=customers, not_production=True, stdout=out, **options)
    return out.getvalue()


def code_number(code: str) -> int:
    return int(code.split("-", 1)[1])


def test_it_seeds_customers_with_unique_codes_and_their_records():
    output = seed(200)

    codes = list(Customer.all_objects.values_list("code", flat=True))
    assert len(codes) == 200
    assert len(set(codes)) == 200
    year = timezone.localdate().year
    assert all(re.fullmatch(rf"C{year}-\d{{6}}", code) for code in codes)
    assert set(Customer.all_objects.values_list("kind", flat=True)) == {Customer.INDIVIDUAL, Customer.ENTERPRISE}
    assert Contact.objects.exists()
    assert Transaction.objects.exists()
    assert all(amount > 0 for amount in Transaction.objects.values_list("amount", flat=True))
    assert Customer.all_objects.filter(tags__isnull=False).exists()
    assert "Seeded 200 customers" in output


def test_it_spreads_owners_over_sales_reps_and_reuses_existing_ones():
    existing = UserFactory(username="sales1", role=roles.SALES)

    seed(300)

    reps = User.objects.filter(username__regex=r"^sales\d+$", groups__name=roles.SALES)
    assert reps.count() == 10
    assert User.objects.filter(username="sales1").count() == 1
    owners = set(Customer.all_objects.values_list("owner_id", flat=True))
    assert owners <= set(reps.values_list("pk", flat=True))
    assert existing.pk in owners
    assert len(owners) >= 5


def test_it_encrypts_personal_fields_at_rest_and_they_decrypt():
    seed(200)

    customer = Customer.all_objects.exclude(mobile="").exclude(email="").first()
    with connection.cursor() as cursor:
        cursor.execute("SELECT mobile, email FROM customers_customer WHERE id = %s", [customer.pk])
        stored_mobile, stored_email = cursor.fetchone()
    assert stored_mobile.startswith("v1:")
    assert customer.mobile not in stored_mobile
    assert customer.email not in stored_email
    # Stored in the normalised form the forms would store: E.164 phones, valid emails and IDs.
    for row in Customer.all_objects.all():
        for phone in (row.phone, row.mobile):
            if phone:
                assert normalize_phone(phone) == phone
        if row.email:
            assert normalize_email(row.email) == row.email
        if row.id_number:
            assert normalize_id_number(row.id_number) == row.id_number
            assert row.id_number[6:14] == f"{row.birth_date:%Y%m%d}"
    assert Customer.all_objects.exclude(id_number="").exists()
    for contact in Contact.objects.all()[:50]:
        assert normalize_phone(contact.phone) == contact.phone


def test_it_finds_a_seeded_mobile_through_the_blind_index():
    seed(200)
    customer = Customer.objects.exclude(mobile="").last()
    national = f"{customer.mobile[3:6]} {customer.mobile[6:10]} {customer.mobile[10:]}"  # as a person types it

    found = exact_search(Customer.objects.all(), national)

    assert customer in found


def test_it_fills_name_grams_for_substring_search():
    seed(200)

    for customer in Customer.all_objects.all():
        assert customer.name_grams
        assert customer.name_grams == name_grams(f"{customer.name} {customer.company}")
    customer = Customer.objects.filter(kind=Customer.ENTERPRISE).first()
    assert customer in Customer.objects.search_name(customer.name[2:5])


def test_it_finds_seeded_two_and_three_character_names_by_substring():
    seed(300)
    individuals = Customer.objects.filter(kind=Customer.INDIVIDUAL)
    for length in (2, 3):
        person = next(c for c in individuals if len(c.name) == length)
        found = list(Customer.objects.search_name(person.name))
        assert person in found
        assert all(person.name in c.name or person.name in c.company for c in found)


def test_it_continues_the_code_sequence_after_the_seed():
    seed(200)
    last_seeded = max(code_number(code) for code in Customer.all_objects.values_list("code", flat=True))

    created = Customer.objects.create(name="新客户")

    assert code_number(created.code) == last_seeded + 1


def test_it_adds_more_without_collisions_when_run_twice():
    seed(150, batch_size=40)
    seed(150, batch_size=70)

    codes = list(Customer.all_objects.values_list("code", flat=True))
    assert len(codes) == 300
    assert len(set(codes)) == 300
    numbers = list(Contract.objects.values_list("number", flat=True))
    assert len(numbers) == len(set(numbers))
    # A second run draws other people, not the same ones again.
    first, second = (
        set(Customer.all_objects.order_by("pk").values_list("name", flat=True)[i : i + 150]) for i in (0, 150)
    )
    assert first != second


def test_it_writes_no_history_rows():
    seed(100)

    assert Customer.history.count() == 0
    assert Contact.history.count() == 0


def test_it_refuses_to_run_with_debug_off_unless_told():
    with override_settings(DEBUG=False), pytest.raises(CommandError):
        call_command("seed_demo", customers=10, stdout=io.StringIO())
    assert not Customer.all_objects.exists()


def test_it_rejects_bad_numbers():
    with pytest.raises(CommandError):
        seed(-1)
    with pytest.raises(CommandError):
        seed(10, batch_size=0)
