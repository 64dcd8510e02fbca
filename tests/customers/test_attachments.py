"""Files kept with customers and contracts: content checks, encrypted storage, who may upload,
download and delete, and the Files tab of the 360 page."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zipfile
import zlib
from urllib.parse import quote

import openpyxl
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from cims.crypto import DecryptionError
from cims.models import PersonalDataAccess
from customers import attachments, services
from customers.models import Attachment, AttachmentContent
from tests.customers.factories import ContractFactory, CustomerFactory

pytestmark = pytest.mark.django_db

# --- Sample files ----------------------------------------------------------------------------------

PDF_BYTES = (
    b"%PDF-1.4\n"
    b"1 0 obj <</Type/Catalog/Pages 2 0 R>> endobj\n"
    b"2 0 obj <</Type/Pages/Kids[3 0 R]/Count 1>> endobj\n"
    b"3 0 obj <</Type/Page/Parent 2 0 R/MediaBox[0 0 100 100]>> endobj\n"
    b"(Hetong zhang san 13812345678)\n"
    b"trailer <</Root 1 0 R>>\n%%EOF\n"
)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


PNG_BYTES = (
    b"\x89PNG\r\n\x1a\n"
    + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    + _png_chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
    + _png_chunk(b"IEND", b"")
)

JPEG_BYTES = (
    b"\xff\xd8"  # SOI
    + b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"  # APP0
    + b"\xff\xdb\x00\x43\x00"
    + bytes(range(1, 65))  # DQT
    + b"\xff\xc0\x00\x0b\x08\x00\x01\x00\x01\x01\x01\x11\x00"  # SOF0, 1x1, one component
    + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"  # SOS
    + b"\x7f\x00"
    + b"\xff\xd9"  # EOI
)


def docx_bytes(*, main_type: str = "wordprocessingml.document.main+xml", extra: dict | None = None) -> bytes:
    buffer = io.BytesIO()
    content_types = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/word/document.xml" '
        f'ContentType="application/vnd.openxmlformats-officedocument.{main_type}"/>'
        "</Types>"
    )
    if "macroEnabled" in main_type:
        content_types = content_types.replace("application/vnd.openxmlformats-officedocument.", "application/vnd.")
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", content_types)
        archive.writestr(
            "_rels/.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'officeDocument" Target="word/document.xml"/></Relationships>',
        )
        archive.writestr(
            "word/document.xml",
            '<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
            "<w:body><w:p><w:r><w:t>报价单</w:t></w:r></w:p></w:body></w:document>",
        )
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def xlsx_bytes() -> bytes:
    workbook = openpyxl.Workbook()
    workbook.active.append(["产品", "数量"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def upload_file(name: str, data: bytes, content_type: str = "application/octet-stream") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


# --- Fixtures and helpers --------------------------------------------------------------------------


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(owner=sales_rep, name="杭州云帆科技有限公司")


@pytest.fixture
def stored(customer, sales_rep):
    return attachments.attachment_upload(
        customer=customer, data=PDF_BYTES, filename="合同 扫描件.pdf", kind=Attachment.Kind.CONTRACT, by=sales_rep
    )


def english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def upload_url(customer):
    return reverse("customers:attachment_upload", args=[customer.pk])


def download_url(attachment):
    return reverse("customers:attachment_download", args=[attachment.pk])


def delete_url(attachment):
    return reverse("customers:attachment_delete", args=[attachment.pk])


def post_upload(client, customer, name="报价单.pdf", data=PDF_BYTES, *, htmx=True, follow=False, **fields):
    payload = {"kind": Attachment.Kind.QUOTE, "file": upload_file(name, data), **fields}
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(upload_url(customer), payload, follow=follow, **headers)


def refusal(data: bytes, name: str) -> str:
    with translation.override("en"):
        with pytest.raises(ValidationError) as caught:
            attachments.inspect_file(data, name)
        return " ".join(caught.value.messages)  # lazy messages: rendered while English is on


# --- Content checks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "content_type", "filename"),
    [
        ("合同.pdf", PDF_BYTES, "application/pdf", "合同.pdf"),
        ("营业执照.PNG", PNG_BYTES, "image/png", "营业执照.png"),
        ("营业执照.jpeg", JPEG_BYTES, "image/jpeg", "营业执照.jpeg"),
        ("报价单.docx", docx_bytes(), attachments.DOCX.content_type, "报价单.docx"),
        ("报价单.xlsx", xlsx_bytes(), attachments.XLSX.content_type, "报价单.xlsx"),
    ],
)
def test_it_accepts_real_pdf_images_and_office_files(name, data, content_type, filename):
    inspected = attachments.inspect_file(data, name)
    assert inspected.file_type.content_type == content_type
    assert inspected.filename == filename
    assert inspected.size == len(data)


def test_it_refuses_a_pdf_renamed_to_png():
    assert "name ends in “.png”" in refusal(PDF_BYTES, "营业执照.png")


def test_it_refuses_an_html_page_named_pdf():
    page = b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>"
    assert "Only PDF, JPG, PNG, Word (.docx) or Excel (.xlsx)" in refusal(page, "合同.pdf")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("setup.pdf", b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200),  # Windows program
        ("logo.png", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
        ("run.pdf", b"#!/bin/sh\nrm -rf /\n"),
        ("files.docx", b"\x1f\x8b\x08\x00" + b"\x00" * 50),  # gzip
        ("notes.pdf", "只是一段文字".encode()),
    ],
)
def test_it_refuses_programs_scripts_svg_and_archives(name, data):
    assert "Only PDF, JPG, PNG, Word (.docx) or Excel (.xlsx)" in refusal(data, name)


def test_it_refuses_a_plain_zip_archive():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert "Only PDF, JPG, PNG" in refusal(buffer.getvalue(), "报价单.docx")


def test_it_refuses_a_zip_bomb_dressed_as_docx():
    bomb = docx_bytes(extra={"word/media/huge.xml": b"\x00" * (4 << 20)})
    assert "zip bomb" in refusal(bomb, "合同.docx")


def test_it_refuses_office_files_with_macros():
    assert "macros" in refusal(docx_bytes(extra={"word/vbaProject.bin": b"\x00" * 64}), "报价.docx")
    assert "macros" in refusal(docx_bytes(main_type="ms-word.document.macroEnabled.main+xml"), "报价.docx")


def test_it_refuses_legacy_and_password_protected_office_files():
    ole2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512
    assert ".doc, .xls" in refusal(ole2, "报价.xls")


@pytest.mark.parametrize(
    ("data", "kind"),
    [(PDF_BYTES[:-7], "PDF"), (PNG_BYTES[:-12], "PNG"), (JPEG_BYTES[:40], "JPEG"), (docx_bytes()[:-30], "Word")],
)
def test_it_refuses_damaged_files(data, kind):
    assert "damaged" in refusal(data, "文件")


def test_it_refuses_a_word_file_whose_compressed_part_is_damaged():
    # The zip directory is intact; the deflate stream of [Content_Types].xml is not (zlib.error).
    data = bytearray(docx_bytes())
    start = 30 + len(b"[Content_Types].xml")  # the first local header, then the member's data
    data[start : start + 6] = b"\xff" * 6
    assert "damaged" in refusal(bytes(data), "合同.docx")


@override_settings(ATTACHMENT_MAX_MB=1)
def test_it_refuses_a_file_over_the_size_limit():
    big = PDF_BYTES[:-6] + b" " * (1 << 20) + b"%%EOF\n"
    assert "up to 1 MB" in refusal(big, "大文件.pdf")
    assert attachments.inspect_file(PDF_BYTES, "小文件.pdf").size == len(PDF_BYTES)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("C:\\Users\\李\\营业执照 2026.pdf", "营业执照 2026.pdf"),
        ("合同\u202efdp.exe.pdf", "合同fdp.exe.pdf"),  # a right-to-left override hiding the real order
        ("报\x00价\x07单.pdf", "报价单.pdf"),
        ('a<b>:"c"|?*.pdf', "a_b___c____.pdf"),
        ("..hidden.pdf", "hidden.pdf"),
        ("扫描件", "扫描件.pdf"),
        ("", "attachment.pdf"),
        ("长" * 300 + ".pdf", "长" * 196 + ".pdf"),
    ],
)
def test_it_cleans_file_names_and_keeps_chinese(name, expected):
    assert attachments.clean_filename(name, attachments.PDF) == expected


# --- Storage -------------------------------------------------------------------------------------


def test_it_stores_the_bytes_encrypted_and_records_who_uploaded(stored, sales_rep):
    with connection.cursor() as cursor:
        cursor.execute("SELECT data FROM customers_attachmentcontent WHERE attachment_id = %s", [stored.pk])
        raw = bytes(cursor.fetchone()[0])
    assert b"%PDF" not in raw and b"13812345678" not in raw and b"Hetong" not in raw
    assert attachments.attachment_bytes(stored) == PDF_BYTES
    assert stored.sha256 == hashlib.sha256(PDF_BYTES).hexdigest()
    assert stored.content_type == "application/pdf" and stored.size == len(PDF_BYTES)
    created = stored.history.get()
    assert created.history_type == "+" and created.history_user == sales_rep


def test_it_binds_the_ciphertext_to_its_attachment(stored, customer, sales_rep):
    other = attachments.attachment_upload(
        customer=customer, data=PNG_BYTES, filename="logo.png", kind=Attachment.Kind.OTHER, by=sales_rep
    )
    AttachmentContent.objects.filter(attachment=other).update(
        data=AttachmentContent.objects.get(attachment=stored).data
    )
    with pytest.raises(DecryptionError):
        attachments.attachment_bytes(other)


def test_it_refuses_a_contract_of_another_customer(customer, sales_rep):
    foreign = ContractFactory(customer=CustomerFactory(owner=sales_rep))
    with translation.override("en"), pytest.raises(ValidationError, match="another customer"):
        attachments.attachment_upload(
            customer=customer, data=PDF_BYTES, filename="a.pdf", kind="contract", contract=foreign, by=sales_rep
        )
    assert not Attachment.objects.exists()


def test_it_writes_nothing_when_the_content_cannot_be_stored(customer, sales_rep, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(AttachmentContent.objects, "create", broken)
    with pytest.raises(RuntimeError):
        attachments.attachment_upload(customer=customer, data=PDF_BYTES, filename="a.pdf", kind="other", by=sales_rep)
    assert not Attachment.objects.exists()


# --- Upload view ---------------------------------------------------------------------------------


def test_it_uploads_a_file_with_htmx_and_lists_it(sales_rep, client_for, customer):
    contract = ContractFactory(customer=customer)
    response = post_upload(english(client_for(sales_rep)), customer, contract=contract.pk)
    assert response.status_code == 200
    attachment = Attachment.objects.get()
    assert attachment.customer == customer and attachment.contract == contract
    assert attachment.kind == "quote" and attachment.filename == "报价单.pdf" and attachment.uploaded_by == sales_rep
    body = response.content.decode()
    assert 'data-testid="attachment-saved"' in body and "报价单.pdf" in body
    assert download_url(attachment) in body and contract.number in body
    assert 'hx-swap-oob="outerHTML:#tab-files-btn .badge" data-testid="attachment-tab-count">1<' in body


def test_it_redirects_to_the_files_tab_without_htmx(sales_rep, client_for, customer):
    response = post_upload(client_for(sales_rep), customer, htmx=False)
    assert response.status_code == 302
    assert response["Location"] == reverse("customers:detail", args=[customer.pk]) + "#tab-files"
    assert Attachment.objects.count() == 1


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("合同.pdf", b"<html><body>hi</body></html>", "Only PDF, JPG, PNG"),
        ("营业执照.png", PDF_BYTES, "Rename it to end in “.pdf”"),
        ("setup.exe", b"MZ" + b"\x00" * 64, "Only PDF, JPG, PNG"),
    ],
)
def test_it_shows_the_refusal_on_the_form_and_stores_nothing(sales_rep, client_for, customer, name, data, message):
    response = post_upload(english(client_for(sales_rep)), customer, name, data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Attachment.objects.exists() and not AttachmentContent.objects.exists()


@override_settings(ATTACHMENT_MAX_MB=1)
def test_it_refuses_an_oversize_upload_on_the_form(sales_rep, client_for, customer):
    big = PDF_BYTES[:-6] + b" " * (1 << 20) + b"%%EOF\n"
    response = post_upload(english(client_for(sales_rep)), customer, "大.pdf", big)
    assert "files up to 1 MB can be uploaded" in response.content.decode()
    assert not Attachment.objects.exists()


def test_it_refuses_bad_form_input(sales_rep, client_for, customer):
    client = english(client_for(sales_rep))
    foreign = ContractFactory(customer=CustomerFactory(owner=sales_rep))
    for fields in ({"contract": foreign.pk}, {"contract": "abc"}, {"kind": "virus"}):
        response = post_upload(client, customer, **fields)
        assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    response = client.post(upload_url(customer), {"kind": "quote"}, HTTP_HX_REQUEST="true")
    assert "This field is required" in response.content.decode()
    assert not Attachment.objects.exists()


def test_it_puts_refusals_in_messages_without_htmx(sales_rep, client_for, customer):
    client = english(client_for(sales_rep))
    response = post_upload(client, customer, "a.pdf", b"<html></html>", htmx=False, follow=True)
    assert "Only PDF, JPG, PNG" in response.content.decode()
    assert not Attachment.objects.exists()


def test_upload_permissions(
    client, client_for, customer, sales_rep, other_sales_rep, service_agent, portal_customer, analyst
):
    response = client.post(upload_url(customer), {"kind": "quote", "file": upload_file("a.pdf", PDF_BYTES)})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    for user in (portal_customer, service_agent, analyst):
        assert post_upload(client_for(user), customer).status_code == 403
    assert post_upload(client_for(other_sales_rep), customer).status_code == 404
    # Shared read-only: may see the customer, may not add to it.
    services.customer_share(customer=customer, user=other_sales_rep, by=sales_rep)
    assert post_upload(client_for(other_sales_rep), customer).status_code == 403
    assert not Attachment.objects.exists()


def test_it_answers_405_to_a_get_of_the_upload_and_delete_urls_and_a_post_of_the_download(
    sales_rep, client_for, customer, stored
):
    client = client_for(sales_rep)
    assert client.get(upload_url(customer)).status_code == 405
    assert client.get(delete_url(stored)).status_code == 405
    assert client.post(download_url(stored)).status_code == 405
    assert Attachment.objects.filter(pk=stored.pk).exists()


def test_a_manager_uploads_to_any_customer(manager, client_for, customer):
    assert post_upload(client_for(manager), customer).status_code == 200
    assert Attachment.objects.get().uploaded_by == manager


# --- Download view -------------------------------------------------------------------------------


def test_it_downloads_the_exact_bytes_with_safe_headers(sales_rep, client_for, stored):
    response = client_for(sales_rep).get(download_url(stored))
    assert response.status_code == 200
    assert response.content == PDF_BYTES
    assert response["Content-Type"] == "application/pdf"
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=UTF-8''{quote('合同 扫描件.pdf')}" in disposition
    assert 'filename="__ ___.pdf"' in disposition  # the ASCII fallback
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    assert response["Content-Security-Policy"].startswith("sandbox")
    assert response["Content-Length"] == str(len(PDF_BYTES))


def test_it_downloads_office_files_byte_identical(sales_rep, client_for, customer):
    data = xlsx_bytes()
    response = post_upload(client_for(sales_rep), customer, "明细.xlsx", data)
    assert response.status_code == 200
    attachment = Attachment.objects.get()
    download = client_for(sales_rep).get(download_url(attachment))
    assert download.content == data and download["Content-Type"] == attachments.XLSX.content_type


def test_it_logs_every_download_without_the_file_name(sales_rep, client_for, stored, customer):
    client = client_for(sales_rep)
    client.get(download_url(stored))
    client.get(download_url(stored))
    logged = list(PersonalDataAccess.objects.all())
    assert len(logged) == 2
    entry = logged[0]
    assert entry.user == sales_rep and entry.action == PersonalDataAccess.Action.EXPORT
    assert entry.object_type == "customers.attachment" and entry.object_id == str(stored.pk)
    assert entry.object_label == customer.code and entry.field == "contract"
    assert "合同" not in entry.detail and stored.sha256[:16] in entry.detail


def test_download_permissions(
    client, client_for, stored, manager, administrator, other_sales_rep, service_agent, portal_customer, analyst
):
    url = download_url(stored)
    response = client.get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    for user in (portal_customer, service_agent, analyst):
        assert client_for(user).get(url).status_code == 403
    assert client_for(other_sales_rep).get(url).status_code == 404
    assert client_for(manager).get(url).status_code == 200
    assert client_for(administrator).get(url).status_code == 200
    assert PersonalDataAccess.objects.count() == 2  # refusals log nothing


def test_a_colleague_the_customer_is_shared_with_may_download(sales_rep, other_sales_rep, client_for, stored, customer):
    services.customer_share(customer=customer, user=other_sales_rep, by=sales_rep)
    assert client_for(other_sales_rep).get(download_url(stored)).content == PDF_BYTES


def test_it_answers_404_to_unknown_ids_and_files_of_deleted_customers(sales_rep, client_for, stored, customer):
    client = client_for(sales_rep)
    assert client.get(reverse("customers:attachment_download", args=[999999])).status_code == 404
    assert client.get(reverse("customers:attachment_download", args=[2**70])).status_code == 404
    services.customer_soft_delete(customer=customer, by=sales_rep)
    assert client.get(download_url(stored)).status_code == 404


# --- Delete view ---------------------------------------------------------------------------------


def test_it_deletes_a_file_and_its_bytes_but_keeps_the_history(sales_rep, client_for, stored):
    response = client_for(sales_rep).post(delete_url(stored), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'data-testid="attachment-saved"' in response.content.decode()
    assert not Attachment.objects.exists() and not AttachmentContent.objects.exists()
    history = Attachment.history.filter(id=stored.pk).order_by("history_date")
    assert [record.history_type for record in history] == ["+", "-"]
    assert history.last().history_user == sales_rep and history.last().filename == "合同 扫描件.pdf"


def test_it_redirects_after_a_delete_without_htmx(manager, client_for, stored, customer):
    response = client_for(manager).post(delete_url(stored))
    assert response.status_code == 302 and response["Location"].endswith("#tab-files")
    assert not Attachment.objects.exists()


def test_delete_permissions(
    client, client_for, stored, customer, sales_rep, other_sales_rep, service_agent, portal_customer
):
    url = delete_url(stored)
    response = client.post(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    for user in (portal_customer, service_agent):
        assert client_for(user).post(url).status_code == 403
    assert client_for(other_sales_rep).post(url).status_code == 404
    services.customer_share(customer=customer, user=other_sales_rep, by=sales_rep)
    assert client_for(other_sales_rep).post(url).status_code == 403  # read-only share
    assert Attachment.objects.filter(pk=stored.pk).exists()


def test_a_second_delete_of_the_same_file_answers_404(sales_rep, client_for, stored):
    client = client_for(sales_rep)
    assert client.post(delete_url(stored)).status_code == 302
    assert client.post(delete_url(stored)).status_code == 404
    assert attachments.attachment_delete(attachment=stored, by=sales_rep) is False
    assert Attachment.history.filter(id=stored.pk, history_type="-").count() == 1


# --- The 360 page --------------------------------------------------------------------------------


def detail(customer):
    return reverse("customers:detail", args=[customer.pk])


def test_the_360_page_shows_the_files_tab_with_the_upload_form_to_the_owner(sales_rep, client_for, stored, customer):
    contract = ContractFactory(customer=customer)
    attachments.attachment_upload(
        customer=customer, data=PNG_BYTES, filename="章.png", kind="contract", contract=contract, by=sales_rep
    )
    body = english(client_for(sales_rep)).get(detail(customer)).content.decode()
    assert 'id="tab-files-btn"' in body
    assert body.count('data-testid="attachment-row"') == 2
    assert "合同 扫描件.pdf" in body and "章.png" in body
    assert 'data-testid="attachment-form"' in body and 'accept=".pdf,.jpg,.jpeg,.png,.docx,.xlsx"' in body
    assert 'data-testid="attachment-delete"' in body
    assert 'data-testid="contract-attachments"' in body  # the paperclip on the contract's row
    assert f'<option value="{contract.pk}">' in body
    assert "attachment-tab-count" not in body  # the out-of-band count is for htmx answers only


def test_the_360_page_hides_the_files_tab_from_service_staff(service_agent, client_for, stored, customer):
    body = client_for(service_agent).get(detail(customer)).content.decode()
    assert 'id="tab-files-btn"' not in body and "合同 扫描件.pdf" not in body


def test_the_360_page_lists_files_read_only_for_a_read_only_share(
    sales_rep, other_sales_rep, client_for, stored, customer
):
    services.customer_share(customer=customer, user=other_sales_rep, by=sales_rep)
    body = client_for(other_sales_rep).get(detail(customer)).content.decode()
    assert "合同 扫描件.pdf" in body
    assert 'data-testid="attachment-form"' not in body and 'data-testid="attachment-delete"' not in body


def test_the_files_tab_costs_a_constant_number_of_queries(manager, client_for, customer, sales_rep):
    client = client_for(manager)
    contract = ContractFactory(customer=customer)

    def add_files(n):
        for i in range(n):
            attachments.attachment_upload(
                customer=customer,
                data=PDF_BYTES,
                filename=f"f{i}.pdf",
                kind="other",
                contract=contract if i % 2 else None,
                by=sales_rep,
            )

    add_files(1)
    client.get(detail(customer))
    with CaptureQueriesContext(connection) as few:
        assert client.get(detail(customer)).status_code == 200
    add_files(10)
    with CaptureQueriesContext(connection) as many:
        assert client.get(detail(customer)).status_code == 200
    assert len(many) == len(few)


def test_the_files_tab_counts_beyond_the_listed_rows(manager, client_for, customer, sales_rep, monkeypatch):
    monkeypatch.setattr(attachments, "ATTACHMENT_ROWS", 3)
    for i in range(5):
        attachments.attachment_upload(
            customer=customer, data=PDF_BYTES, filename=f"{i}.pdf", kind="other", by=sales_rep
        )
    body = english(client_for(manager)).get(detail(customer)).content.decode()
    assert body.count('data-testid="attachment-row"') == 3
    assert "5 files" in body and "the latest 3 shown" in body


# --- Key rotation --------------------------------------------------------------------------------


def test_it_re_encrypts_stored_files_under_the_new_key(customer, sales_rep):
    old, new = os.urandom(32), os.urandom(32)
    with override_settings(FIELD_ENCRYPTION_KEYS={"old": old}):
        first = attachments.attachment_upload(
            customer=customer, data=PDF_BYTES, filename="a.pdf", kind="other", by=sales_rep
        )
    with override_settings(FIELD_ENCRYPTION_KEYS={"new": new, "old": old}):
        second = attachments.attachment_upload(
            customer=customer, data=PNG_BYTES, filename="b.png", kind="other", by=sales_rep
        )
        assert attachments.attachment_contents_rotate(dry_run=True) == 1
        assert bytes(AttachmentContent.objects.get(attachment=first).data).startswith(b"old:")
        assert attachments.attachment_contents_rotate(batch_size=1) == 1
        assert attachments.attachment_contents_rotate() == 0  # a second run finds nothing left
    with override_settings(FIELD_ENCRYPTION_KEYS={"new": new}):  # the old key retired
        assert attachments.attachment_bytes(first) == PDF_BYTES
        assert attachments.attachment_bytes(second) == PNG_BYTES
