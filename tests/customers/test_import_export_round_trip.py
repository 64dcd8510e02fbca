"""An exported file, fixed and imported again: the same headers, values that parse back, formulas
neutralised on the way out and restored on the way in."""

from __future__ import annotations

import pytest

from customers import exporting
from customers.importing import engine
from customers.models import Customer, CustomerLevel, ImportJob, Province, Tag
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def export_bytes(user, fmt: str) -> bytes:
    _name, _type, chunks = exporting.export_customers(user=user, queryset=Customer.objects.all(), fmt=fmt)
    return b"".join(chunks)


def import_file(data: bytes, name: str, by, on_duplicate: str) -> ImportJob:
    from django.core.files.uploadedfile import SimpleUploadedFile

    job = engine.job_create(upload=SimpleUploadedFile(name, data), file_name=name, by=by, on_duplicate=on_duplicate)
    engine.job_check(job)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.CHECKED, job.message
    return job


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_unmasked_export_imports_back_into_an_empty_archive_as_the_same_customers(administrator, fmt):
    tag = Tag.objects.create(name="老客户")
    original = CustomerFactory(
        name='=HYPERLINK("http://evil")',  # a formula a spreadsheet must not run, kept as text
        company="+星辰科技",
        kind=Customer.INDIVIDUAL,
        gender="F",
        mobile="+8613812345678",
        phone="+861062345678",
        email="zhang.wei@example.com",
        id_number="11010519491231002X",
        birth_date="1949-12-31",
        province=Province.objects.get(short_name="广东"),
        city="广州",
        address="天河区体育西路1号",
        level=CustomerLevel.objects.get(name="A"),
        status=Customer.Status.WON,
        notes="@备注",
        owner=administrator,
    )
    original.tags.add(tag)
    data = export_bytes(administrator, fmt)

    Customer.all_objects.all().delete()
    job = import_file(data, f"export.{fmt}", administrator, "skip")
    assert (job.to_create, job.rejected) == (1, 0), job.errors
    engine.job_commit(job, by=administrator)

    copy = Customer.objects.get()
    assert copy.code != original.code  # a new record, numbered by CIMS
    for field in ("name", "company", "gender", "mobile", "phone", "email", "id_number", "city", "address", "notes"):
        assert getattr(copy, field) == getattr(original, field), field
    assert copy.birth_date.isoformat() == "1949-12-31"
    assert (copy.province_id, copy.level_id, copy.status, copy.owner) == (
        original.province_id,
        original.level_id,
        Customer.Status.WON,
        administrator,
    )
    assert list(copy.tags.values_list("name", flat=True)) == ["老客户"]


def test_re_importing_an_export_finds_every_customer_as_a_duplicate(administrator):
    for number in range(5):
        CustomerFactory(name=f"客户{number}", mobile=f"+8613900000{number:03d}", owner=administrator)
    job = import_file(export_bytes(administrator, "csv"), "export.csv", administrator, "skip")
    assert (job.to_create, job.to_skip, job.rejected) == (0, 5, 0)


def test_a_masked_export_does_not_overwrite_real_values_on_re_import(sales_rep):
    customer = CustomerFactory(name="李娜", mobile="+8613812345678", id_number="11010519491231002X", owner=sales_rep)
    data = export_bytes(sales_rep, "csv")  # the ID number is masked for a sales rep
    assert b"1101**********002X" in data
    job = import_file(data, "export.csv", sales_rep, "update")
    # The masked ID number does not parse: the row is refused rather than overwriting the real one.
    assert job.rejected == 1 and job.to_update == 0
    customer.refresh_from_db()
    assert customer.id_number == "11010519491231002X"
