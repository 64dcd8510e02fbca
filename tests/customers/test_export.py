"""Exports: who may export what, masking as on screen, formula neutralising, streaming, the access log."""

from __future__ import annotations

import csv
import datetime
import io
import tracemalloc
import zipfile
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cims.models import PersonalDataAccess
from customers import exporting
from customers.importing import columns
from customers.models import Customer, CustomerLevel, CustomField, Province
from tests.customers.factories import ContractFactory, CustomerFactory, TagFactory, TransactionFactory
from tests.factories import UserFactory

EXPORT = reverse("customers:export")
TRANSACTIONS = reverse("customers:export_transactions")
CONTRACTS = reverse("customers:export_contracts")
LIST = reverse("customers:list")
ALL_URLS = [EXPORT, TRANSACTIONS, CONTRACTS]
HEADERS = [column.header for column in columns.COLUMNS]
ID_NUMBER = "11010519491231002X"
BANK_ACCOUNT = "6222020200112233445"
PAYLOADS = ["==1+1", "@SUM(1)", "+cmd|' /C calc'!A0", "-2+3", "\t=1"]


def english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def download(response) -> bytes:
    assert response.status_code == 200, response.content[:500]
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content)


def csv_rows(content: bytes) -> list[list[str]]:
    assert content.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def xlsx_rows(content: bytes) -> list[list]:
    workbook = openpyxl.load_workbook(io.BytesIO(content))
    return [list(row) for sheet in workbook.worksheets for row in sheet.iter_rows(values_only=True)]


def records(rows: list[list]) -> list[dict]:
    header, *body = rows
    return [dict(zip(header, row, strict=False)) for row in body]


def export_csv(client, **params) -> list[dict]:
    return records(csv_rows(download(client.get(EXPORT, {"format": "csv", **params}))))


def export_xlsx(client, **params) -> list[dict]:
    return records(xlsx_rows(download(client.get(EXPORT, {"format": "xlsx", **params}))))


def make_customers(count: int, *, owner=None, prefix="批量") -> None:
    """Many customers fast: bulk_create still encrypts and indexes through the fields."""
    batch = [
        Customer(
            code=f"T{prefix[:1]}-{index:06d}",
            name=f"{prefix}{index}",
            company="星辰科技有限公司",
            mobile=f"+86139{index:08d}",
            email=f"bulk{index}@example.com",
            address="北京市海淀区中关村大街1号",
            notes="展会上认识" * 4,
            owner=owner,
        )
        for index in range(count)
    ]
    Customer.objects.bulk_create(batch, batch_size=500)


@pytest.fixture
def profile(sales_rep):
    """A customer with every column filled, owned by the sales rep."""
    level, _ = CustomerLevel.objects.get_or_create(name="A")
    customer = CustomerFactory(
        owner=sales_rep,
        name="张伟",
        kind=Customer.ENTERPRISE,
        company="星辰科技有限公司",
        gender="M",
        birth_date=datetime.date(1990, 3, 7),
        mobile="+8613812345678",
        phone="+861062345678",
        email="zhang.wei@example.com",
        address="北京市海淀区中关村大街1号",
        id_number=ID_NUMBER,
        bank_account=BANK_ACCOUNT,
        province=Province.objects.get(short_name="北京"),
        city="北京市",
        level=level,
        status=Customer.Status.WON,
        scale=Customer.Scale.SMALL,
        notes="老客户",
        custom_data={"region": "华北"},
    )
    customer.tags.add(TagFactory(name="重要"), TagFactory(name="展会"))
    return customer


# --- Who may export --------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ALL_URLS)
def test_it_redirects_anonymous_users_to_login(client, db, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("url", ALL_URLS)
@pytest.mark.parametrize("role", ["analyst", "customer"])
def test_it_refuses_analysts_and_portal_customers(cast, client_for, role, url):
    CustomerFactory(owner=cast["sales"])
    assert client_for(cast[role]).get(url).status_code == 403
    assert not PersonalDataAccess.objects.exists()


def _reader_without_export(db):
    """A user who may read customers (all of them) but not export them."""
    user = UserFactory(username="t_reader")
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["access_staff_ui", "view_customer", "view_all_customers", "view_transaction"]
        )
    )
    return user


def test_it_refuses_a_reader_without_the_export_permission_and_hides_the_buttons(db, client_for):
    client = client_for(_reader_without_export(db))
    CustomerFactory()
    assert client.get(EXPORT).status_code == 403
    assert client.get(TRANSACTIONS).status_code == 403
    page = client.get(LIST)
    assert page.status_code == 200 and b'data-testid="export-buttons"' not in page.content


def test_it_refuses_transactions_to_an_exporter_who_may_not_view_them(db, client_for):
    user = UserFactory(username="t_exporter")
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["access_staff_ui", "view_customer", "export_customers"])
    )
    client = client_for(user)
    assert client.get(TRANSACTIONS).status_code == 403
    assert client.get(CONTRACTS).status_code == 403
    assert client.get(EXPORT).status_code == 200


@pytest.mark.parametrize("url", ALL_URLS)
def test_it_answers_405_to_a_post(manager, client_for, url):
    assert client_for(manager).post(url, {"format": "csv"}).status_code == 405


@pytest.mark.parametrize("url", ALL_URLS)
def test_it_refuses_an_unknown_format_with_a_message(manager, client_for, url):
    response = english(client_for(manager)).get(url, {"format": "pdf"})
    assert response.status_code == 400
    assert b"Choose CSV or XLSX" in response.content
    assert not PersonalDataAccess.objects.exists()


def test_it_refuses_a_bad_filter_instead_of_exporting_everything(manager, client_for):
    CustomerFactory()
    response = english(client_for(manager)).get(EXPORT, {"format": "csv", "status": "bogus", "level": "x"})
    assert response.status_code == 400
    assert b"filter is not valid" in response.content
    assert not PersonalDataAccess.objects.exists()


def test_it_refuses_a_bad_date_range_for_transactions(manager, client_for):
    response = client_for(manager).get(TRANSACTIONS, {"date_from": "2026-02-01", "date_to": "2026-01-01"})
    assert response.status_code == 400
    assert client_for(manager).get(TRANSACTIONS, {"date_from": "not a date"}).status_code == 400


# --- Scope and masking --------------------------------------------------------------------------------


def test_it_exports_a_sales_rep_only_their_own_customers(sales_rep, other_sales_rep, client_for):
    mine = CustomerFactory(owner=sales_rep)
    theirs = CustomerFactory(owner=other_sales_rep)
    codes = [row["客户编号"] for row in export_csv(client_for(sales_rep))]
    assert codes == [mine.code]
    assert theirs.code not in codes


def test_it_exports_a_sales_rep_nothing_outside_their_scope_even_by_customer_id(sales_rep, other_sales_rep, client_for):
    theirs = CustomerFactory(owner=other_sales_rep)
    TransactionFactory(customer=theirs)
    ContractFactory(customer=theirs)
    client = client_for(sales_rep)
    assert records(csv_rows(download(client.get(TRANSACTIONS, {"customer": theirs.pk})))) == []
    assert records(csv_rows(download(client.get(CONTRACTS, {"customer": theirs.pk})))) == []


def test_it_exports_masked_values_to_service_whatever_the_parameters_say(profile, service_agent, client_for):
    client = client_for(service_agent)
    crafted = {"unmasked": "1", "masked": "0", "export_unmasked_customers": "1", "clear": "true"}
    for row in (export_csv(client, **crafted)[0], export_xlsx(client, **crafted)[0]):
        assert row["手机"] == "138****5678"
        assert row["电话"] == "106****5678"
        assert row["邮箱"] == "z***@example.com"
        assert row["地址"] == "北京市海淀区****"
        assert row["身份证号"] == "1101**********002X"
        assert row["银行账号"] == "6222 **** **** 3445"
    assert set(PersonalDataAccess.objects.values_list("masked", flat=True)) == {True}


def test_it_exports_to_a_sales_rep_what_they_see_on_screen(profile, sales_rep, client_for):
    row = export_csv(client_for(sales_rep))[0]
    assert row["手机"] == "138 1234 5678"  # in clear, formatted for reading as on the 360° page
    assert row["邮箱"] == "zhang.wei@example.com"
    assert row["地址"] == "北京市海淀区中关村大街1号"
    assert row["身份证号"] == "1101**********002X"  # masked for everyone on screen
    assert row["银行账号"] == "6222 **** **** 3445"
    assert PersonalDataAccess.objects.get().masked is True


def test_it_exports_a_manager_without_the_unmasked_permission_masked_id_numbers(profile, manager, client_for):
    row = export_csv(client_for(manager))[0]
    assert row["身份证号"] == "1101**********002X"
    assert PersonalDataAccess.objects.get().masked is True


def test_it_exports_clear_values_to_an_administrator_with_the_unmasked_permission(profile, administrator, client_for):
    assert administrator.has_perm("customers.export_unmasked_customers")
    client = client_for(administrator)
    for row in (export_csv(client)[0], export_xlsx(client)[0]):
        assert row["身份证号"] == ID_NUMBER
        assert row["银行账号"] == BANK_ACCOUNT
        assert row["手机"] == "138 1234 5678"
    log = PersonalDataAccess.objects.first()
    assert log.masked is False and log.user == administrator


# --- Values --------------------------------------------------------------------------------------------


def test_it_writes_every_column_as_people_read_it(profile, sales_rep, client_for):
    CustomField.objects.create(label="区域", key="region", field_type=CustomField.TEXT)
    rows = csv_rows(download(client_for(sales_rep).get(EXPORT, {"format": "csv"})))
    assert rows[0] == [*HEADERS, "区域"]
    row = records(rows)[0]
    assert row["客户编号"] == profile.code
    assert row["客户名称"] == "张伟"
    assert row["个人/企业"] == "企业"
    assert row["性别"] == "男"
    assert row["出生日期"] == "1990-03-07"
    assert row["所在省份"] == "北京市"
    assert row["客户级别"] == "A"
    assert row["客户状态"] == "成交客户"
    assert row["企业规模"] == "20-99人"
    assert row["负责人"] == sales_rep.username
    assert sorted(row["标签"].split(",")) == ["展会", "重要"]
    assert row["区域"] == "华北"
    assert datetime.datetime.strptime(row["创建时间"], "%Y-%m-%d %H:%M:%S")


def test_it_leaves_empty_values_empty(manager, client_for):
    CustomerFactory(name="只有名字", mobile="", email="", status=Customer.Status.PROSPECT)
    client = client_for(manager)
    row = export_csv(client)[0]
    for header in (
        "手机",
        "电话",
        "邮箱",
        "所在单位",
        "出生日期",
        "所在省份",
        "客户级别",
        "负责人",
        "标签",
        "身份证号",
    ):
        assert row[header] == "", header
    assert "None" not in row.values()
    row = export_xlsx(client)[0]
    assert row["客户名称"] == "只有名字"
    assert row["手机"] is None and row["所在单位"] is None and row["负责人"] is None


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_it_neutralises_formula_payloads(manager, client_for, fmt):
    CustomerFactory(name=PAYLOADS[0], company=PAYLOADS[1], notes=PAYLOADS[2], city=PAYLOADS[3], fax=PAYLOADS[4])
    client = client_for(manager)
    row = export_csv(client)[0] if fmt == "csv" else export_xlsx(client)[0]
    assert row["客户名称"] == "'==1+1"
    assert row["所在单位"] == "'@SUM(1)"
    assert row["备注"] == "'+cmd|' /C calc'!A0"
    assert row["城市"] == "'-2+3"
    assert row["传真"] == "'\t=1"


def test_it_neutralises_every_dangerous_first_character():
    for start in exporting.FORMULA_STARTS:
        assert exporting.neutralise(f"{start}1") == f"'{start}1"
    assert exporting.neutralise("张伟") == "张伟"
    assert exporting.neutralise("") == ""
    assert exporting.neutralise(None) == ""
    assert exporting.neutralise(Decimal("-2.50")) == Decimal("-2.50")  # a number is not a formula


def test_it_writes_a_csv_with_a_bom_that_the_csv_module_reads(profile, manager, client_for):
    response = client_for(manager).get(EXPORT, {"format": "csv"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    content = download(response)
    assert content.startswith(b"\xef\xbb\xbf\xe5\xae\xa2\xe6\x88\xb7\xe7\xbc\x96\xe5\x8f\xb7")  # BOM + 客户编号
    rows = csv_rows(content)
    assert rows[0][:3] == ["客户编号", "客户名称", "个人/企业"] and len(rows) == 2


def test_it_writes_an_xlsx_that_openpyxl_loads(profile, manager, client_for):
    response = client_for(manager).get(EXPORT, {"format": "xlsx"})
    assert response["Content-Type"] == exporting.CONTENT_TYPES["xlsx"]
    content = download(response)
    assert zipfile.ZipFile(io.BytesIO(content)).testzip() is None
    workbook = openpyxl.load_workbook(io.BytesIO(content))
    sheet = workbook.active
    assert sheet.title == "客户"
    assert [cell.value for cell in sheet[1]][:3] == ["客户编号", "客户名称", "个人/企业"]
    assert sheet["A1"].font.b and sheet.freeze_panes == "A2"
    assert sheet["B2"].value == "张伟"


def test_it_drops_characters_an_xlsx_cannot_hold():
    content = b"".join(exporting.stream_xlsx(["名称"], [["a\x01b\x0bc\ud800"], ["<&>\"'"]]))
    assert xlsx_rows(content) == [["名称"], ["abc"], ["<&>\"'"]]


def test_it_continues_a_long_export_on_another_sheet(monkeypatch):
    monkeypatch.setattr(exporting, "XLSX_MAX_ROWS", 3)  # the header and two rows per sheet
    content = b"".join(exporting.stream_xlsx(["n"], [[str(i)] for i in range(5)], title="客户"))
    workbook = openpyxl.load_workbook(io.BytesIO(content))
    assert workbook.sheetnames == ["客户", "客户 (2)", "客户 (3)"]
    assert [[row[0] for row in sheet.iter_rows(values_only=True)] for sheet in workbook.worksheets] == [
        ["n", "0", "1"],
        ["n", "2", "3"],
        ["n", "4"],
    ]


def test_it_writes_an_empty_export_as_a_header_row(manager, client_for):
    assert csv_rows(download(client_for(manager).get(EXPORT)))[1:] == []
    assert xlsx_rows(download(client_for(manager).get(EXPORT, {"format": "xlsx"}))) == [HEADERS]
    assert list(PersonalDataAccess.objects.values_list("rows", flat=True)) == [0, 0]


# --- Filters, order and the log ----------------------------------------------------------------------


def test_it_applies_the_list_filters(manager, client_for):
    won = CustomerFactory(name="成交甲", status=Customer.Status.WON, mobile="+8613900000001")
    CustomerFactory(name="潜在乙", status=Customer.Status.PROSPECT, mobile="+8613900000002")
    client = client_for(manager)
    assert [row["客户编号"] for row in export_csv(client, status="won")] == [won.code]
    # A phone number is found through the blind index, written as people type it.
    assert [row["客户名称"] for row in export_csv(client, q="139 0000 0002")] == ["潜在乙"]


def test_it_sorts_like_the_list(manager, client_for):
    for name in ("乙", "甲", "丙"):
        CustomerFactory(name=f"Z{name}" if name == "乙" else f"A{name}")
    client = client_for(manager)
    names = [row["客户名称"] for row in export_csv(client, sort="name")]
    assert names == sorted(names)
    newest_first = [row["客户编号"] for row in export_csv(client)]
    assert newest_first == sorted(newest_first, reverse=True)


def test_it_ignores_the_list_page_cursor_and_exports_every_page(manager, client_for):
    make_customers(40)
    assert len(export_csv(client_for(manager), after="garbage", per_page="30")) == 40


def test_it_logs_the_export_with_rows_filter_and_masking(manager, client_for):
    for _ in range(3):
        CustomerFactory(status=Customer.Status.WON)
    CustomerFactory(status=Customer.Status.LOST)
    download(client_for(manager).get(EXPORT, {"format": "xlsx", "status": "won", "q": "13800000001"}))
    log = PersonalDataAccess.objects.get()
    assert log.action == PersonalDataAccess.Action.EXPORT
    assert log.object_type == "customers.customer"
    assert log.user == manager and log.masked is True and log.ip_address == "127.0.0.1"
    assert "status=won" in log.detail
    assert "13800000001" not in log.detail and "q=…" in log.detail  # never a personal value
    assert log.rows == 0  # the search matched none of the won customers


def test_it_counts_the_exported_rows_in_the_log(manager, client_for):
    for _ in range(3):
        CustomerFactory(status=Customer.Status.WON)
    rows = export_csv(client_for(manager), status="won")
    assert PersonalDataAccess.objects.get().rows == len(rows) == 3


def test_it_streams_the_download_as_an_attachment(manager, client_for):
    CustomerFactory()
    response = client_for(manager).get(EXPORT, {"format": "xlsx"})
    assert isinstance(response, StreamingHttpResponse)
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="customers-') and ".xlsx" in disposition
    assert "filename*=UTF-8''customers-" in disposition
    assert response["Cache-Control"] == "private, no-store"
    assert response["X-Content-Type-Options"] == "nosniff"  # the one download response's headers
    download(response)


def test_it_sends_an_htmx_request_to_the_download_address(manager, client_for):
    response = client_for(manager).get(EXPORT, {"format": "csv", "status": "won"}, headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response["HX-Redirect"] == f"{EXPORT}?format=csv&status=won"
    assert not PersonalDataAccess.objects.exists()  # the download itself is logged, not the hop


def test_it_shows_export_buttons_carrying_the_current_filters(sales_rep, client_for):
    page = client_for(sales_rep).get(LIST, {"status": "won"})
    content = page.content.decode()
    assert 'data-testid="export-buttons"' in content
    assert f'href="{EXPORT}?status=won&amp;format=csv"' in content
    assert f'href="{EXPORT}?status=won&amp;format=xlsx"' in content
    assert "hx-include=\"[data-testid='filter-form']\"" in content


def test_it_links_a_customers_transactions_and_contracts_exports_on_the_detail_page(profile, sales_rep, client_for):
    content = client_for(sales_rep).get(reverse("customers:detail", args=[profile.pk])).content.decode()
    assert f"{TRANSACTIONS}?customer={profile.pk}&amp;format=csv" in content
    assert f"{CONTRACTS}?customer={profile.pk}&amp;format=xlsx" in content


# --- Bounded memory and queries -----------------------------------------------------------------------


def _peak_export_memory(user, fmt: str) -> tuple[int, int]:
    """(peak traced bytes, bytes written) of one whole export, consumed chunk by chunk."""
    tracemalloc.start()
    try:
        export = exporting.export_customers(user=user, queryset=Customer.objects.all(), fmt=fmt)
        written = sum(len(chunk) for chunk in export[2])
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, written


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_it_exports_in_memory_bounded_by_the_chunk_not_the_row_count(manager, monkeypatch, fmt):
    monkeypatch.setattr(exporting, "CHUNK_SIZE", 100)
    monkeypatch.setattr(exporting, "FLUSH_BYTES", 16 * 1024)
    make_customers(400, prefix="甲")
    small_peak, small_size = _peak_export_memory(manager, fmt)
    make_customers(1600, prefix="乙")
    large_peak, large_size = _peak_export_memory(manager, fmt)
    assert large_size > 4 * small_size  # five times the rows ...
    assert large_peak < 1.6 * small_peak  # ... in about the same memory


def _export_queries(client, **params) -> int:
    with CaptureQueriesContext(connection) as queries:
        download(client.get(EXPORT, params))
    return len(queries)


def test_it_exports_within_a_query_budget_independent_of_the_row_count(
    manager, client_for, django_assert_max_num_queries
):
    CustomField.objects.create(label="区域", key="region", field_type=CustomField.TEXT)
    level, _ = CustomerLevel.objects.get_or_create(name="A")
    tag = TagFactory()
    for _ in range(3):
        CustomerFactory(owner=manager, level=level).tags.add(tag)
    client = client_for(manager)
    client.get(LIST)  # warm the session
    few = _export_queries(client, status="prospect", level=level.pk)
    for _ in range(30):
        CustomerFactory(owner=manager, level=level).tags.add(tag)
    with django_assert_max_num_queries(15):
        many = _export_queries(client, status="prospect", level=level.pk)
    assert many == few


def test_it_exports_a_sales_rep_within_the_query_budget(sales_rep, client_for, django_assert_max_num_queries):
    for _ in range(20):
        CustomerFactory(owner=sales_rep).tags.add(TagFactory())
    client = client_for(sales_rep)
    with django_assert_max_num_queries(15):
        assert len(records(csv_rows(download(client.get(EXPORT))))) == 20


# --- Transactions and contracts ------------------------------------------------------------------------


def test_it_exports_the_transactions_of_visible_customers(sales_rep, other_sales_rep, client_for):
    mine = CustomerFactory(owner=sales_rep, name="我的客户")
    TransactionFactory(customer=mine, date=datetime.date(2026, 1, 5), amount="1280.00", product="=HYPERLINK(1)")
    TransactionFactory(customer=mine, date=datetime.date(2025, 12, 1), amount="99.50", channel="online")
    TransactionFactory(customer=CustomerFactory(owner=other_sales_rep), date=datetime.date(2026, 1, 6))
    client = client_for(sales_rep)
    rows = csv_rows(download(client.get(TRANSACTIONS)))
    assert rows[0] == ["客户编号", "客户名称", "日期", "金额（元）", "产品/说明", "渠道"]
    assert rows[1:] == [
        [mine.code, "我的客户", "2026-01-05", "1280.00", "'=HYPERLINK(1)", "门店"],
        [mine.code, "我的客户", "2025-12-01", "99.50", "年度服务套餐", "线上"],
    ]
    in_january = records(xlsx_rows(download(client.get(TRANSACTIONS, {"format": "xlsx", "date_from": "2026-01-01"}))))
    assert len(in_january) == 1 and in_january[0]["金额（元）"] == 1280  # a number in Excel
    log = PersonalDataAccess.objects.filter(object_type="customers.transaction").first()
    assert log.rows == 1 and log.detail == "date_from=2026-01-01" and log.masked is None


def test_it_exports_the_contracts_of_visible_customers(sales_rep, other_sales_rep, client_for):
    mine = CustomerFactory(owner=sales_rep, name="我的客户")
    active = ContractFactory(customer=mine, title="年度合作协议", amount="50000.00")
    ContractFactory(customer=mine, title="旧协议", status="expired", start_date="2025-01-01", end_date="2025-12-31")
    ContractFactory(customer=CustomerFactory(owner=other_sales_rep))
    client = client_for(sales_rep)
    rows = records(csv_rows(download(client.get(CONTRACTS, {"status": "active", "customer": mine.pk}))))
    assert rows == [
        {
            "客户编号": mine.code,
            "客户名称": "我的客户",
            "合同编号": active.number,
            "合同名称": "年度合作协议",
            "金额（元）": "50000.00",
            "开始日期": "2026-01-01",
            "结束日期": "2026-12-31",
            "状态": "生效中",
        }
    ]
    every = records(xlsx_rows(download(client.get(CONTRACTS, {"format": "xlsx"}))))
    assert [row["状态"] for row in every] == ["生效中", "已到期"]


def test_it_formats_phones_as_the_screen_does():
    from cims.normalize import format_phone

    numbers = [f"+86{prefix}{suffix}" for prefix in range(130, 200) for suffix in ("12345678", "00000000")]
    numbers += ["+861062345678", "+8675512345678", "+85291234567", "+14155552671", ""]
    assert [exporting.format_phone_fast(n) for n in numbers] == [format_phone(n) for n in numbers]
