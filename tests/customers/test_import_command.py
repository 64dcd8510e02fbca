"""``manage.py import_customers``: the import engine from the command line."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from cims.models import PersonalDataAccess
from customers.models import Customer, ImportChunk, ImportJob
from tests.customers import import_files as f
from tests.customers.factories import CustomerFactory


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def _write(tmp_path, data: bytes, name: str = "customers.csv"):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _call(*args, **options) -> str:
    out = io.StringIO()
    call_command("import_customers", *args, stdout=out, **options)
    return out.getvalue()


def test_it_imports_and_prints_the_summary(tmp_path, administrator, sales_rep):
    rows = [*f.ROWS, ["坏行", "123", "", "", "", ""]]
    out = _call(_write(tmp_path, f.gbk_csv(rows)), owner=sales_rep.username, acting=administrator.username)
    assert "(CSV, GB18030)" in out
    assert "3 rows: 2 to create, 0 to update, 0 to skip, 1 rejected." in out
    assert "line 4, 手机: “123” is not a valid phone number." in out
    assert "2 created, 0 updated, 0 skipped, 1 rejected" in out
    assert set(Customer.objects.values_list("owner", flat=True)) == {sales_rep.pk}
    history = Customer.history.filter(history_type="+")
    assert {h.history_user_id for h in history} == {administrator.pk}
    assert PersonalDataAccess.objects.get(action="import").user == administrator


def test_it_imports_as_the_first_superuser_by_default(tmp_path, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "x-Very-long-9")
    _call(_write(tmp_path, f.xlsx_bytes(), "c.xlsx"))
    assert set(Customer.objects.values_list("owner", "created_by")) == {(root.pk, root.pk)}


def test_a_dry_run_writes_nothing(tmp_path, administrator):
    out = _call(_write(tmp_path, f.csv_bytes()), acting=administrator.username, dry_run=True)
    assert "2 to create" in out and "Dry run: nothing was written." in out
    assert not Customer.objects.exists() and not ImportChunk.objects.exists()
    assert ImportJob.objects.get().status == ImportJob.Status.CANCELLED


def test_it_updates_duplicates_when_asked(tmp_path, administrator):
    existing = CustomerFactory(name="旧", mobile="+8613812345678", owner=administrator)
    out = _call(_write(tmp_path, f.csv_bytes()), acting=administrator.username, on_duplicate="update")
    assert "1 created, 1 updated" in out
    existing.refresh_from_db()
    assert existing.name == "张伟"


def test_it_fails_when_every_row_is_rejected(tmp_path, administrator):
    path = _write(tmp_path, f.csv_bytes([["", "123", "", "", "", ""]]))
    with pytest.raises(CommandError, match="every row was rejected"):
        _call(path, acting=administrator.username)
    assert not Customer.objects.exists()


def test_it_fails_on_a_refused_file(tmp_path, administrator):
    with pytest.raises(CommandError, match="looks like a PNG file"):
        _call(_write(tmp_path, f.PNG_BYTES, "x.csv"), acting=administrator.username)
    with pytest.raises(CommandError, match="No such file"):
        _call(str(tmp_path / "missing.csv"), acting=administrator.username)


def test_it_fails_on_unknown_users_and_a_rep_importing_for_another(tmp_path, sales_rep, other_sales_rep):
    path = _write(tmp_path, f.csv_bytes())
    with pytest.raises(CommandError, match="No active user"):
        _call(path, acting="ghost")
    with pytest.raises(CommandError, match="only for yourself"):
        _call(path, acting=sales_rep.username, owner=other_sales_rep.username)
    assert not Customer.objects.exists()


def test_it_needs_a_superuser_or_as(tmp_path, db):
    with pytest.raises(CommandError, match="--as"):
        _call(_write(tmp_path, f.csv_bytes()))


def test_it_succeeds_when_everything_is_already_there(tmp_path, administrator):
    path = _write(tmp_path, f.csv_bytes())
    _call(path, acting=administrator.username)
    out = _call(path, acting=administrator.username)
    assert "already imported as import #" in out and "Nothing to import" in out
    assert Customer.objects.count() == 2
