"""Customer files made by the tests themselves: CSV in the encodings people send, XLSX, bad files.

Shared by the engine, command, view and browser tests. Each builder returns bytes; ``upload``
wraps them as the file a view or the engine receives.
"""

from __future__ import annotations

import csv
import io
import zipfile

from django.core.files.uploadedfile import SimpleUploadedFile

HEADER = ["客户名称", "手机", "邮箱", "所在省份", "客户级别", "备注"]
ROWS = [
    ["张伟", "13812345678", "zhang.wei@example.com", "广东", "A", "展会上认识"],
    ["李娜", "13912345678", "li.na@example.com", "北京市", "B", ""],
]
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 4


def csv_text(rows, header=None, delimiter=",") -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header if header is not None else HEADER)
    writer.writerows(rows)
    return buffer.getvalue()


def csv_bytes(rows=ROWS, header=None, encoding="utf-8", bom=False, delimiter=",") -> bytes:
    data = csv_text(rows, header, delimiter).encode(encoding)
    return (b"\xef\xbb\xbf" + data) if bom else data


def gbk_csv(rows=ROWS, header=None) -> bytes:
    return csv_bytes(rows, header, encoding="gbk")


def xlsx_bytes(rows=ROWS, header=None, blank_rows_before: int = 0) -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(header if header is not None else HEADER)
    for _ in range(blank_rows_before):
        sheet.append([])
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def zip_bomb_xlsx() -> bytes:
    """A workbook-shaped zip whose sheet inflates 1000:1 (200 MB of zeros from ~200 kB)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
            block = b"0" * (1 << 20)
            for _ in range(200):
                member.write(block)
    return buffer.getvalue()


def plain_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "not a workbook")
    return buffer.getvalue()


def upload(data: bytes, name: str = "customers.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data)


def numbered_rows(count: int, start: int = 0) -> list[list[str]]:
    """``count`` distinct valid customers (mobile numbers 1380000xxxx …)."""
    return [
        [f"客户{start + i}", f"138{start + i:08d}", f"c{start + i}@example.com", "广东", "A", ""] for i in range(count)
    ]
