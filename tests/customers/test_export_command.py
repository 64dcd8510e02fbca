"""``manage.py export_customers``: the web export's engine from the command line, as a named user."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from cims.models import PersonalDataAccess
from customers.management.commands.export_customers import Command
from customers.models import Customer
from tests.customers.factories import CustomerFactory

ID_NUMBER = "11010519491231002X"


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("export_customers", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def csv_records(text: str) -> list[dict]:
    assert text.startswith("\ufeff")
    header, *rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    return [dict(zip(header, row, strict=True)) for row in rows]


def exit_code(monkeypatch, *args) -> int:
    """The exit status ``manage.py export_customers ARGS`` ends with."""
    # run_from_argv closes every connection when it ends, which would end the test's transaction.
    monkeypatch.setattr("django.core.management.base.connections.close_all", lambda: None)
    command = Command(stdout=io.StringIO(), stderr=io.StringIO())
    try:
        command.run_from_argv(["manage.py", "export_customers", *args])
    except SystemExit as exit:
        return exit.code
    return 0


@pytest.fixture
def customers(sales_rep, other_sales_rep):
    return {
        "mine": CustomerFactory(
            owner=sales_rep, name="我的客户", mobile="+8613812345678", id_number=ID_NUMBER, status="won"
        ),
        "prospect": CustomerFactory(owner=sales_rep, name="潜在客户", status="prospect"),
        "theirs": CustomerFactory(owner=other_sales_rep, name="别人的客户", status="won"),
    }


def test_it_exports_what_the_user_may_see_to_standard_output(customers, sales_rep):
    out, err = run("--as", sales_rep.username)
    rows = csv_records(out)
    assert sorted(row["客户名称"] for row in rows) == ["我的客户", "潜在客户"]
    assert err.strip() == "2 customers exported to standard output"


def test_it_masks_as_the_user_sees_on_screen(customers, service_agent, administrator):
    masked = {row["客户名称"]: row for row in csv_records(run("--as", service_agent.username)[0])}
    assert masked["我的客户"]["手机"] == "138****5678"
    assert masked["我的客户"]["身份证号"] == "1101**********002X"
    clear = {row["客户名称"]: row for row in csv_records(run("--as", administrator.username)[0])}
    assert clear["我的客户"]["身份证号"] == ID_NUMBER
    assert list(PersonalDataAccess.objects.order_by("id").values_list("masked", flat=True)) == [True, False]


def test_it_applies_the_filters(customers, manager):
    rows = csv_records(run("--as", manager.username, "--status", "won")[0])
    assert sorted(row["客户名称"] for row in rows) == sorted(["我的客户", "别人的客户"])
    rows = csv_records(run("--as", manager.username, "--search", "138 1234 5678")[0])
    assert [row["客户名称"] for row in rows] == ["我的客户"]
    rows = csv_records(run("--as", manager.username, "--filter", "kind=individual", "--filter", "sort=name")[0])
    assert len(rows) == 3


def test_it_writes_csv_to_a_file(customers, sales_rep, tmp_path):
    target = tmp_path / "out.csv"
    out, err = run("--as", sales_rep.username, "-o", str(target))
    assert out == ""
    assert err.strip() == f"2 customers exported to {target}"
    assert len(csv_records(target.read_text(encoding="utf-8"))) == 2
    assert not (tmp_path / "out.csv.part").exists()


def test_it_writes_xlsx_to_a_file(customers, manager, tmp_path):
    target = tmp_path / "客户.xlsx"
    _out, err = run("--format", "xlsx", "--as", manager.username, "-o", str(target), "--status", "won")
    assert "2 customers exported" in err
    sheet = openpyxl.load_workbook(target).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:2] == ("客户编号", "客户名称") and len(rows) == 3


def test_it_logs_the_export_as_from_the_command_line(customers, manager):
    run("--as", manager.username, "--status", "won", "--search", "13812345678")
    log = PersonalDataAccess.objects.get()
    assert log.user == manager and log.action == PersonalDataAccess.Action.EXPORT
    assert log.rows == 1 and log.ip_address is None
    assert log.detail.startswith("command line: ") and "status=won" in log.detail
    assert "13812345678" not in log.detail


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as", "nobody"], "No user named 'nobody'"),
        (["--as", "t_analyst"], "may not export customers"),
        (["--as", "t_customer1"], "may not export customers"),
        (["--as", "t_manager", "--format", "xlsx"], "needs -o FILE"),
        (["--as", "t_manager", "--filter", "level"], "KEY=VALUE"),
        (["--as", "t_manager", "--filter", "password=x"], "Unknown filter: password"),
        (["--as", "t_manager", "--filter", "created_from=yesterday"], "Invalid filter"),
        (["--as", "t_manager", "-o", "/nonexistent/dir/out.csv"], "Cannot write"),
    ],
)
def test_it_refuses_bad_requests_and_writes_nothing(cast, args, message):
    CustomerFactory()
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not PersonalDataAccess.objects.exists()


def test_it_refuses_an_inactive_user(sales_rep):
    sales_rep.is_active = False
    sales_rep.save(update_fields=["is_active"])
    with pytest.raises(CommandError, match="inactive"):
        run("--as", sales_rep.username)


def test_it_exits_non_zero_when_refused_and_zero_when_done(customers, sales_rep, analyst, monkeypatch, tmp_path):
    assert exit_code(monkeypatch, "--as", analyst.username) == 1
    assert exit_code(monkeypatch, "--as", "nobody") == 1
    assert exit_code(monkeypatch, "--as", sales_rep.username, "-o", str(tmp_path / "ok.csv")) == 0
    assert (tmp_path / "ok.csv").exists()


def test_it_requires_the_user_and_a_known_format(db):
    with pytest.raises(CommandError):
        run("--format", "pdf", "--as", "t_manager")
    with pytest.raises(CommandError):
        run()


def test_it_leaves_no_file_when_the_export_fails_midway(customers, manager, tmp_path, monkeypatch):
    from customers import exporting

    def broken(*args, **kwargs):
        yield b"half a file"
        raise RuntimeError("disk full")

    monkeypatch.setattr(exporting, "stream_csv", broken)
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError):
        run("--as", manager.username, "-o", str(target))
    assert not target.exists() and not (tmp_path / "out.csv.part").exists()
    assert Customer.objects.count() == 3
