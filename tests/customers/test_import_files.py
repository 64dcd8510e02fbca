"""Files people really upload: encodings, formats, renamed binaries, zip bombs, limits."""

from __future__ import annotations

import datetime
import io

import pytest
from django.test import override_settings
from django.utils import translation

from customers.importing import engine, files
from customers.models import Customer, ImportChunk, ImportJob
from tests.customers import import_files as f


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def _create(data: bytes, by, name="customers.csv") -> ImportJob:
    return engine.job_create(upload=f.upload(data, name), file_name=name, by=by)


def _checked(data: bytes, by, name="customers.csv") -> ImportJob:
    job = _create(data, by, name)
    engine.job_check(job)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.CHECKED, job.message
    return job


def _refused(data: bytes, by, name="customers.csv") -> str:
    with pytest.raises(engine.ImportRefused) as refused:
        _create(data, by, name)
    assert not ImportJob.objects.exists() and not ImportChunk.objects.exists()  # nothing written
    return refused.value.message


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (f.gbk_csv(), "GB18030"),
        (f.csv_bytes(bom=True), "UTF-8 (BOM)"),
        (f.csv_bytes(), "UTF-8"),
        (f.csv_bytes(encoding="gb18030"), "GB18030"),
    ],
    ids=["gbk", "utf8-bom", "utf8", "gb18030"],
)
def test_it_detects_the_encoding_and_reads_chinese_headers(sales_rep, data, encoding):
    job = _checked(data, sales_rep)
    assert (job.file_format, job.encoding, job.total_rows, job.to_create) == ("csv", encoding, 2, 2)
    assert [c["key"] for c in job.columns] == ["name", "mobile", "email", "province", "level", "notes"]
    engine.job_commit(job, by=sales_rep)
    assert set(Customer.objects.values_list("name", flat=True)) == {"张伟", "李娜"}


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_it_reads_semicolon_and_tab_separated_files(sales_rep, delimiter):
    job = _checked(f.csv_bytes(delimiter=delimiter), sales_rep)
    assert job.to_create == 2


def test_it_maps_english_keys_and_odd_spacing_and_lists_ignored_headers(sales_rep):
    header = [" Name ", "MOBILE", "ＥＭＡＩＬ", "客户级别*", "微信"]
    job = _checked(f.csv_bytes([["甲", "13812345678", "a@example.com", "A", "wx"]], header), sales_rep)
    assert [c["key"] for c in job.columns] == ["name", "mobile", "email", "level", ""]
    assert job.columns[-1]["header"] == "微信" and job.to_create == 1


def test_it_reads_xlsx_with_date_and_number_cells(sales_rep):
    header = ["客户名称", "手机", "出生日期", "银行账号"]
    rows = [
        ["甲", 13812345678, datetime.datetime(1990, 3, 7), "6222020200112233445"],
        ["乙", 13912345678.0, None, None],
    ]
    job = _checked(f.xlsx_bytes(rows, header, blank_rows_before=2), sales_rep, name="customers.xlsx")
    assert (job.file_format, job.encoding, job.total_rows, job.to_create) == ("xlsx", "", 2, 2)
    engine.job_commit(job, by=sales_rep)
    jia = Customer.objects.get(name="甲")
    assert jia.mobile == "+8613812345678" and jia.birth_date == datetime.date(1990, 3, 7)
    assert Customer.objects.get(name="乙").mobile == "+8613912345678"


def test_it_numbers_lines_as_excel_shows_them(sales_rep):
    rows = [["好", "13812345678"], ["", ""], ["坏", "123"]]
    job = _checked(f.xlsx_bytes(rows, ["客户名称", "手机"], blank_rows_before=1), sales_rep, name="x.xlsx")
    assert job.errors == [{"line": 5, "column": "手机", "reason": "“123” is not a valid phone number."}]
    job = _checked(f.csv_bytes(rows, ["客户名称", "手机"]), sales_rep)
    assert job.errors[0]["line"] == 4


def test_it_keeps_line_numbers_with_quoted_line_breaks(sales_rep):
    data = 'name,mobile,notes\r\n甲,13812345678,"two\r\nlines"\r\n乙,bad,\r\n'.encode()
    job = _checked(data, sales_rep)
    assert job.errors[0]["line"] == 3  # Excel shows the quoted line break inside one row


@pytest.mark.parametrize("name", ["customers.csv", "customers.xlsx", "customers.xls"])
def test_it_refuses_a_renamed_picture(sales_rep, name):
    assert "looks like a PNG file" in _refused(f.PNG_BYTES, sales_rep, name)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", "EXE"),
    ],
)
def test_it_refuses_other_binaries(sales_rep, data, expected):
    assert expected in _refused(data, sales_rep, "x.csv")


def test_it_refuses_random_bytes(sales_rep):
    data = bytes((i * 7919 + 13) % 256 for i in range(5000))
    assert _refused(data, sales_rep, "x.csv")


def test_it_refuses_a_zip_that_is_not_a_workbook(sales_rep):
    assert "not an Excel workbook" in _refused(f.plain_zip(), sales_rep, "x.xlsx")


def test_it_refuses_a_zip_bomb(sales_rep):
    data = f.zip_bomb_xlsx()
    assert len(data) < 1_000_000
    assert "zip bomb" in _refused(data, sales_rep, "bomb.xlsx")


def test_it_refuses_a_damaged_workbook(sales_rep):
    assert "damaged" in _refused(f.xlsx_bytes()[:400], sales_rep, "x.xlsx")


def test_it_sniffs_legacy_xls_by_its_ole2_signature(sales_rep):
    fake = files.OLE2_MAGIC + bytes(600)
    assert files.sniff_format(io.BytesIO(fake)) == files.XLS
    assert "damaged" in _refused(fake, sales_rep, "old.xls")


def test_it_refuses_undecodable_text(sales_rep):
    data = "客户名称,手机\n".encode() + b"\xff\xfe\x80\xff abc\n"
    assert "neither UTF-8 nor GBK" in _refused(data, sales_rep)


def test_it_refuses_utf16_text(sales_rep):
    assert "UTF-16" in _refused(f.csv_text(f.ROWS).encode("utf-16"), sales_rep)


def test_it_refuses_empty_and_header_only_files(sales_rep):
    assert _refused(b"", sales_rep) == "The file is empty."
    assert _refused(b"\r\n\r\n", sales_rep) == "The file is empty."
    assert "no data rows" in _refused(f.csv_bytes([]), sales_rep)
    assert "no data rows" in _refused(f.xlsx_bytes([]), sales_rep, "x.xlsx")


def test_it_names_missing_required_columns(sales_rep):
    message = _refused(f.csv_bytes([["13812345678"]], ["手机"]), sales_rep)
    assert "客户名称" in message


@override_settings(IMPORT_MAX_ROWS=3)
def test_it_refuses_files_with_too_many_rows(sales_rep):
    assert "more than 3 rows" in _refused(f.csv_bytes(f.numbered_rows(4)), sales_rep)
    # XLSX rows are counted by the check: the job fails with the message, no plan is stored.
    job = _create(f.xlsx_bytes(f.numbered_rows(4)), sales_rep, "x.xlsx")
    engine.job_check(job)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED and "more than 3 rows" in job.message
    assert not ImportChunk.objects.filter(job=job, kind__in=["plan", "rejects"]).exists()
    assert _checked(f.csv_bytes(f.numbered_rows(3)), sales_rep).to_create == 3


@override_settings(IMPORT_MAX_UPLOAD_MB=1)
def test_it_refuses_files_over_the_size_limit(sales_rep):
    data = f.csv_bytes(f.numbered_rows(25000))
    assert len(data) > 1024 * 1024
    assert "larger than 1 MB" in _refused(data, sales_rep)


def test_it_reads_a_file_of_several_stored_pieces(sales_rep, monkeypatch):
    monkeypatch.setattr(files, "CHUNK_SIZE", 1000)
    data = f.csv_bytes(f.numbered_rows(300))
    job = _checked(data, sales_rep)
    assert ImportChunk.objects.filter(job=job, kind="source").count() == len(data) // 1000 + 1
    assert job.to_create == 300 and job.file_sha256 == __import__("hashlib").sha256(data).hexdigest()
    xlsx = f.xlsx_bytes(f.numbered_rows(300))
    assert _checked(xlsx, sales_rep, "x.xlsx").to_create == 300


def test_it_reads_a_real_file_on_disk(sales_rep, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_bytes(f.gbk_csv())
    with path.open("rb") as handle:
        job = engine.job_create(upload=handle, file_name=path.name, by=sales_rep)
    assert job.encoding == "GB18030" and job.total_rows == 2
