"""Every upload form caps the size and checks the content by its bytes: customer files, the
customer import, the desk's tickets and comments, the portal's tickets and replies.

Each form: an oversized file → a message (before a byte is read), a disguised file (a program or a
web page named .pdf/.csv) → a message, a good file → accepted."""

from __future__ import annotations

import io
import struct
import zlib

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse
from django.utils import translation
from django.utils.datastructures import MultiValueDict
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from complaints.forms import CommentForm, TicketForm
from complaints.forms_portal import PortalTicketForm, ReplyForm
from complaints.models import Ticket, TicketCategory
from customers.attachments import AttachmentForm, detect_type, looks_like_markup
from customers.forms_import import ImportUploadForm
from customers.models import ImportJob
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

PDF = (
    b"%PDF-1.4\n1 0 obj <</Type/Catalog/Pages 2 0 R>> endobj\n"
    b"2 0 obj <</Type/Pages/Kids[]/Count 0>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"
)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


PNG = (
    b"\x89PNG\r\n\x1a\n"
    + _chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    + _chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
    + _chunk(b"IEND", b"")
)
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(200)
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
CSV_UTF8 = "客户名称,手机\n张伟,13812345678\n".encode()
CSV_GB18030 = "客户名称,手机\n张伟,13812345678\n".encode("gb18030")


def _xlsx() -> bytes:
    workbook = openpyxl.Workbook()
    workbook.active.append(["客户名称", "手机"])
    workbook.active.append(["张伟", "13812345678"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def upload(name: str, data: bytes, content_type: str = "application/pdf") -> SimpleUploadedFile:
    # The browser's content type is whatever the name suggests: it is never believed.
    return SimpleUploadedFile(name, data, content_type=content_type)


def oversized(mb: int) -> bytes:
    return PDF[:-6] + b"%" * (mb * 1024 * 1024) + b"%%EOF\n"


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(owner=sales_rep)


@pytest.fixture
def category():
    return TicketCategory.objects.get_or_create(name="产品质量")[0]


@pytest.fixture(autouse=True)
def english():
    # Some refusals are translated when they are raised: the forms are validated in English.
    with translation.override("en"):
        yield


def english_errors(form, field: str) -> str:
    return " ".join(str(error) for error in form.errors.get(field, []))


# --- Customer files (customers.attachments.AttachmentForm) ----------------------------------------


def attachment_form(customer, file) -> AttachmentForm:
    return AttachmentForm({"kind": "other"}, {"file": file}, customer=customer)


@override_settings(ATTACHMENT_MAX_MB=1)
def test_it_refuses_an_oversized_customer_file(customer):
    form = attachment_form(customer, upload("合同.pdf", oversized(1)))
    assert not form.is_valid()
    assert "files up to 1 MB" in english_errors(form, "file")


@pytest.mark.parametrize(("name", "data"), [("合同.pdf", EXE), ("合同.pdf", HTML), ("logo.png", SVG)])
def test_it_refuses_a_disguised_customer_file(customer, name, data):
    form = attachment_form(customer, upload(name, data))
    assert not form.is_valid()
    assert "Only PDF, JPG, PNG" in english_errors(form, "file")


def test_it_accepts_a_real_customer_file(customer):
    form = attachment_form(customer, upload("合同.pdf", PDF))
    assert form.is_valid(), form.errors
    assert form.inspected.file_type.content_type == "application/pdf"


# --- The customer import (customers.forms_import.ImportUploadForm) --------------------------------


def import_form(user, file) -> ImportUploadForm:
    return ImportUploadForm({"on_duplicate": "skip"}, {"file": file}, user=user)


@override_settings(IMPORT_MAX_UPLOAD_MB=1)
def test_it_refuses_an_oversized_import(sales_rep):
    data = CSV_UTF8 + "张伟,13812345678\n".encode() * 60_000
    form = import_form(sales_rep, upload("customers.csv", data, "text/csv"))
    assert not form.is_valid()
    assert "files up to 1 MB can be imported" in english_errors(form, "file")


@pytest.mark.parametrize(
    ("name", "data", "fragment"),
    [
        ("customers.csv", EXE, "looks like a EXE file"),
        ("customers.csv", PNG, "looks like a PNG file"),
        ("customers.csv", HTML, "web page"),
        ("customers.csv", b"\xef\xbb\xbf  \n" + SVG, "web page"),
        ("customers.xlsx", b"PK\x03\x04" + bytes(100), "damaged or not a real workbook"),
    ],
)
def test_it_refuses_a_disguised_import(sales_rep, name, data, fragment):
    form = import_form(sales_rep, upload(name, data, "text/csv"))
    assert not form.is_valid()
    assert fragment in english_errors(form, "file")


@pytest.mark.parametrize(
    ("name", "data"), [("customers.csv", CSV_UTF8), ("客户.csv", CSV_GB18030), ("customers.xlsx", _xlsx())]
)
def test_it_accepts_a_real_import(sales_rep, name, data):
    form = import_form(sales_rep, upload(name, data, "text/csv"))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["file"].read() == data  # left at the start for the engine


def test_it_shows_the_refusal_of_a_disguised_import_on_the_page(client_for, sales_rep):
    response = client_for(sales_rep).post(
        reverse("customers:import"),
        {"file": upload("customers.csv", HTML, "text/csv"), "on_duplicate": "skip"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    assert "invalid-feedback" in response.content.decode()
    assert not ImportJob.objects.exists()


# --- The desk's tickets and comments (complaints.forms) -------------------------------------------


def files(*uploads) -> MultiValueDict:
    return MultiValueDict({"files": list(uploads)})


def ticket_form(customer, category, *uploads) -> TicketForm:
    data = {
        "kind": Ticket.Kind.COMPLAINT,
        "category": category.pk,
        "severity": Ticket.Severity.MEDIUM,
        "channel": Ticket.Channel.PHONE,
        "subject": "屏幕有划痕",
        "description": "收到的显示器屏幕有划痕。",
    }
    return TicketForm(data, files(*uploads), customer=customer)


@override_settings(ATTACHMENT_MAX_MB=1)
def test_it_refuses_an_oversized_ticket_file(customer, category):
    form = ticket_form(customer, category, upload("照片.pdf", oversized(1)))
    assert not form.is_valid()
    assert "files up to 1 MB" in english_errors(form, "files")


@pytest.mark.parametrize("data", [EXE, HTML, SVG])
def test_it_refuses_a_disguised_ticket_file(customer, category, data):
    form = ticket_form(customer, category, upload("照片.pdf", PDF), upload("发票.pdf", data))
    assert not form.is_valid()
    errors = english_errors(form, "files")
    assert "发票.pdf" in errors and "Only PDF, JPG, PNG" in errors


def test_it_accepts_real_ticket_files(customer, category):
    form = ticket_form(customer, category, upload("照片.png", PNG, "image/png"), upload("发票.pdf", PDF))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["files"] == [("照片.png", PNG), ("发票.pdf", PDF)]


@override_settings(ATTACHMENT_MAX_MB=1)
def test_it_checks_comment_files_too():
    too_big = CommentForm({"body": "见附件"}, files(upload("a.pdf", oversized(1))))
    assert not too_big.is_valid() and "files up to 1 MB" in english_errors(too_big, "files")
    disguised = CommentForm({"body": "见附件"}, files(upload("a.pdf", EXE)))
    assert not disguised.is_valid() and "Only PDF, JPG, PNG" in english_errors(disguised, "files")
    good = CommentForm({"body": "见附件"}, files(upload("a.pdf", PDF)))
    assert good.is_valid(), good.errors


# --- The portal's tickets and replies (complaints.forms_portal) ------------------------------------


def portal_ticket_form(customer, category, *uploads) -> PortalTicketForm:
    data = {"kind": Ticket.Kind.COMPLAINT, "category": category.pk, "subject": "物流太慢", "description": "一周未到"}
    return PortalTicketForm(data, files(*uploads), customer=customer)


@override_settings(ATTACHMENT_MAX_MB=1)
def test_it_refuses_an_oversized_portal_file(portal_customer_record, category):
    form = portal_ticket_form(portal_customer_record, category, upload("照片.pdf", oversized(1)))
    assert not form.is_valid()
    assert "files up to 1 MB" in english_errors(form, "files")


@pytest.mark.parametrize(("name", "data"), [("照片.pdf", EXE), ("照片.pdf", HTML), ("照片.png", SVG)])
def test_it_refuses_a_disguised_portal_file(portal_customer_record, category, name, data):
    form = portal_ticket_form(portal_customer_record, category, upload(name, data))
    assert not form.is_valid()
    assert "Only PDF, JPG, PNG" in english_errors(form, "files")
    reply = ReplyForm({"body": "补充"}, files(upload(name, data)))
    assert not reply.is_valid() and "Only PDF, JPG, PNG" in english_errors(reply, "files")


def test_it_accepts_a_real_portal_file(portal_customer_record, category):
    form = portal_ticket_form(portal_customer_record, category, upload("照片.png", PNG, "image/png"))
    assert form.is_valid(), form.errors
    reply = ReplyForm({"body": "补充"}, files(upload("照片.png", PNG, "image/png")))
    assert reply.is_valid(), reply.errors


def test_the_portal_refuses_a_disguised_file_without_filing_the_ticket(
    client_for, portal_customer, portal_customer_record, category
):
    response = client_for(portal_customer).post(
        reverse("portal:ticket_create"),
        {
            "kind": Ticket.Kind.COMPLAINT,
            "category": category.pk,
            "subject": "物流太慢",
            "description": "一周未到",
            "files": [upload("照片.pdf", HTML)],
        },
    )
    assert response.status_code in (400, 422)
    assert "invalid-feedback" in response.content.decode()
    assert not Ticket.objects.exists()


# --- The content checks never crash ---------------------------------------------------------------


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_the_content_check_refuses_random_bytes_with_a_message_only(data):
    from django.core.exceptions import ValidationError

    try:
        detect_type(data)
    except ValidationError as error:
        assert error.messages
    looks_like_markup(data)


@pytest.mark.parametrize(
    ("head", "markup"),
    [
        (b"<!doctype html>", True),
        (b"\xef\xbb\xbf\r\n  <HTML>", True),
        (b"<svg xmlns='x'>", True),
        (b"<?xml version='1.0'?>", True),
        ("客户名称,手机\n".encode(), False),
        (b"name,note\nA,<b>bold</b>\n", False),
    ],
)
def test_it_tells_markup_from_data(head, markup):
    assert looks_like_markup(head) is markup
