"""Fuzzing the main forms through their real views: no input gives a 500, and markup typed into
any field comes back as text.

Each form is posted with hypothesis-generated bodies by the user who may use it; the test client
re-raises any exception a view lets through, so a crash fails with its traceback. Whenever the
answer is a page (the form with its errors) or a redirect to the saved record, that page must not
contain one of the script markers verbatim (``strategies.MARKERS``). Every example runs in a
transaction that is rolled back, so examples do not see each other's records.
"""

from __future__ import annotations

import datetime
import os
from contextlib import contextmanager

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from complaints.models import Ticket, TicketCategory
from customers.models import Customer, CustomerLevel, ImportJob, Province
from followups.models import FollowUp
from tests.customers.factories import ContactFactory, CustomerFactory
from tests.fuzz import strategies as fz

pytestmark = pytest.mark.django_db

# FUZZ_EXAMPLES=500 for a longer hunt; the default keeps the module near half a minute.
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "35")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    # No example database in the checkout: a failure prints its example (and a blob to replay it).
    database=None,
    print_blob=True,
)


@contextmanager
def rolled_back():
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def assert_shown_as_text(response) -> None:
    assert response.status_code < 500, response.status_code
    body = response.content.decode("utf-8", "replace")
    for marker in fz.MARKERS:
        assert marker not in body, f"{marker!r} rendered unescaped in {response.request['PATH_INFO']}"


def post_and_follow(client, url: str, data, **extra):
    """POST, check the answer, and when it redirects to the record, check that page too."""
    response = client.post(url, data, **extra)
    assert_shown_as_text(response)
    if response.status_code == 302 and not response["Location"].startswith("/accounts/login"):
        page = client.get(response["Location"])
        assert_shown_as_text(page)
        return response, page
    return response, None


PHONES = st.sampled_from(["13812345678", "+86 138 1234 5678", "010-12345678", "＋８６１３９１２３４５６７８", "12345"])
EMAILS = st.sampled_from(["a@example.com", "Zhang.Wei@EXAMPLE.COM", "no-at-sign", "a@b", "<a@b.c>"])
ID_NUMBERS = st.sampled_from(["11010519491231002X", "110105194912310021", "123", "11010519491231002x"])
MANAGEMENT = st.sampled_from(["0", "1", "2", "50", "51", "-1", "abc", "", "9223372036854775808"])


def blank_or(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), strategy)


def customer_form(*, province, level, status, other_contact=None) -> st.SearchStrategy[dict]:
    valid = {
        "kind": st.sampled_from([Customer.INDIVIDUAL, Customer.ENTERPRISE]),
        "name": fz.readable(),
        "status": st.just(status),
        "company": blank_or(fz.readable()),
        "city": blank_or(fz.readable()),
        "address": blank_or(fz.readable()),
        "notes": blank_or(fz.readable()),
        "contacts-TOTAL_FORMS": st.just("0"),
        "contacts-INITIAL_FORMS": st.just("0"),
    }
    fuzz = {
        "kind": fz.text(),
        "name": fz.text(),
        "status": fz.choice(*Customer.Status.values),
        "company": fz.text(),
        "gender": fz.choice("M", "F", ""),
        "birth_date": fz.dates(),
        "phone": st.one_of(PHONES, fz.text()),
        "mobile": st.one_of(PHONES, fz.text()),
        "fax": st.one_of(PHONES, fz.text()),
        "email": st.one_of(EMAILS, fz.text()),
        "id_number": st.one_of(ID_NUMBERS, fz.text()),
        "bank_account": fz.numbers(),
        "province": fz.ids(province),
        "city": fz.text(),
        "address": fz.text(),
        "level": fz.ids(level),
        "source": fz.ids(),
        "customer_type": fz.ids(),
        "industry": fz.ids(),
        "owner": fz.ids(),
        "tags": fz.ids(),
        "notes": fz.text(),
        "is_employee": fz.choice("on"),
        "enterprise_type": fz.ids(),
        "enterprise_nature": fz.ids(),
        "scale": fz.choice(*Customer.Scale.values),
        "save_anyway": fz.choice("on"),
        "contacts-TOTAL_FORMS": MANAGEMENT,
        "contacts-INITIAL_FORMS": MANAGEMENT,
        "contacts-0-id": fz.ids(*([other_contact] if other_contact else [])),
        "contacts-0-name": st.one_of(fz.readable(), fz.text()),
        "contacts-0-title": fz.text(),
        "contacts-0-phone": st.one_of(PHONES, fz.text()),
        "contacts-0-email": st.one_of(EMAILS, fz.text()),
        "contacts-0-is_primary": fz.choice("on"),
        "contacts-0-DELETE": fz.choice("on"),
        "add_contact": fz.choice("1"),  # the "add a row" button, which works without script
    }
    return fz.mutated(valid, fuzz, most=4)


@pytest.fixture
def world(sales_rep, other_sales_rep, shipped_reference_data):
    """A customer of the sales rep with a contact, and another rep's customer with one."""
    mine = CustomerFactory(name="我的客户", owner=sales_rep)
    ContactFactory(customer=mine, name="我的联系人")
    theirs = CustomerFactory(name="别人的客户", owner=other_sales_rep)
    their_contact = ContactFactory(customer=theirs, name="别人的联系人")
    return {
        "mine": mine,
        "theirs": theirs,
        "their_contact": their_contact.pk,
        "province": Province.objects.values_list("pk", flat=True).first(),
        "customer_form": {
            "province": Province.objects.values_list("pk", flat=True).first(),
            "level": CustomerLevel.objects.values_list("pk", flat=True).first(),
            "status": mine.status,
            "other_contact": their_contact.pk,
        },
    }


# --- The customer form --------------------------------------------------------------------------


def test_it_survives_anything_posted_to_the_new_customer_form(client_for, sales_rep, world):
    client = client_for(sales_rep)
    url = reverse("customers:create")

    @FUZZ
    @given(data=customer_form(**world["customer_form"]))
    def run(data):
        with rolled_back():
            post_and_follow(client, url, data)

    run()


def test_it_survives_anything_posted_to_the_customer_edit_form(client_for, manager, world):
    # A manager: the form then has the owner field, and every status of the lifecycle.
    client = client_for(manager)
    url = reverse("customers:edit", args=[world["mine"].pk])

    @FUZZ
    @given(data=customer_form(**world["customer_form"]))
    def run(data):
        with rolled_back():
            post_and_follow(client, url, data)

    run()


def test_it_shows_a_saved_script_payload_as_text_on_the_customer_pages(client_for, sales_rep, world):
    # The fuzzing above saves whatever validates; this pins the one case that must be covered.
    client = client_for(sales_rep)
    data = {
        "kind": Customer.INDIVIDUAL,
        "name": fz.MARKERS[0],
        "notes": fz.HTML_PAYLOADS[1],
        "contacts-TOTAL_FORMS": "0",
    }
    data |= {"contacts-INITIAL_FORMS": "0", "address": fz.MARKERS[1], "status": Customer.Status.PROSPECT}
    response, page = post_and_follow(client, reverse("customers:create"), data)
    assert response.status_code == 302 and page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.content.decode()
    assert_shown_as_text(client.get(reverse("customers:list")))


def test_it_refuses_a_tag_id_past_the_integer_range_with_a_message(client_for, sales_rep, world):
    # Found by the fuzzing above: ``pk__in`` with 2**63 raised OverflowError on SQLite (a 500).
    data = {"kind": Customer.INDIVIDUAL, "name": "张伟", "status": Customer.Status.PROSPECT}
    data |= {"contacts-TOTAL_FORMS": "0", "contacts-INITIAL_FORMS": "0", "tags": "9223372036854775808"}
    response = client_for(sales_rep).post(reverse("customers:create"), data)
    assert response.status_code == 200
    assert "tags" in response.context["form"].errors
    assert not Customer.objects.filter(name="张伟").exists()


# --- The follow-up form -------------------------------------------------------------------------


def followup_form(*, contact_ids) -> st.SearchStrategy[dict]:
    yesterday = (timezone.localtime() - datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    valid = {
        "kind": st.sampled_from(FollowUp.Kind.values),
        "happened_at": st.just(yesterday),
        "content": fz.readable(),
        "result": blank_or(fz.readable()),
    }
    fuzz = {
        "kind": fz.text(),
        "happened_at": fz.dates(),
        "contact": fz.ids(*contact_ids),
        "opportunity": fz.ids(),
        "content": fz.text(),
        "result": fz.text(),
        "next_contact_date": fz.dates(),
        "satisfaction": fz.numbers(),
    }
    return fz.mutated(valid, fuzz)


def test_it_survives_anything_posted_to_the_follow_up_form(client_for, sales_rep, world):
    client = client_for(sales_rep)
    mine = world["mine"]
    own_contact = mine.contacts.values_list("pk", flat=True).first()
    targets = {"mine": mine.pk, "theirs": world["theirs"].pk, "missing": 999_999_999}

    @FUZZ
    @given(
        data=followup_form(contact_ids=[own_contact, world["their_contact"]]),
        target=st.sampled_from(sorted(targets)),
        htmx=st.booleans(),
    )
    def run(data, target, htmx):
        extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
        with rolled_back():
            response, _page = post_and_follow(
                client, reverse("followups:create", args=[targets[target]]), data, **extra
            )
            if target != "mine":
                # Another rep's customer and a customer that does not exist look the same.
                assert response.status_code == 404

    run()


# --- Tickets: the service desk's form and the portal's ----------------------------------------


def uploads() -> st.SearchStrategy[list]:
    content = st.one_of(
        st.binary(max_size=200),
        st.sampled_from([b"%PDF-1.4\n%\xe2\xe3", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, fz.MARKERS[0].encode()]),
    )
    upload = st.builds(lambda name, data: SimpleUploadedFile(name, data), fz.file_names(), content)
    return st.lists(upload, max_size=2)


def ticket_form(*, category, contact_ids) -> st.SearchStrategy[dict]:
    valid = {
        "kind": st.sampled_from(Ticket.Kind.values),
        "category": st.just(str(category)),
        "severity": st.sampled_from(Ticket.Severity.values),
        "channel": st.sampled_from([Ticket.Channel.PHONE, Ticket.Channel.EMAIL]),
        "subject": fz.readable(),
        "description": fz.readable(),
    }
    fuzz = {
        "kind": fz.text(),
        "category": fz.ids(category),
        "severity": fz.choice(*Ticket.Severity.values),
        "channel": fz.choice(*Ticket.Channel.values),
        "subject": fz.text(),
        "description": fz.text(),
        "contact": fz.ids(*contact_ids),
        "opportunity": fz.ids(),
        "files": uploads(),
    }
    return fz.mutated(valid, fuzz)


@pytest.fixture
def category(db):
    return TicketCategory.objects.get_or_create(name="产品质量")[0]


def test_it_survives_anything_posted_to_the_ticket_form(client_for, service_agent, world, category):
    client = client_for(service_agent)
    mine = world["mine"]
    own_contact = mine.contacts.values_list("pk", flat=True).first()

    @FUZZ
    @given(
        data=ticket_form(category=category.pk, contact_ids=[own_contact, world["their_contact"]]),
        customer=st.one_of(st.just(str(mine.pk)), fz.ids(world["theirs"].pk)),
    )
    def run(data, customer):
        url = reverse("complaints:create") + "?" + _query(customer=customer)
        with rolled_back():
            post_and_follow(client, url, data)

    run()


def test_it_survives_anything_posted_to_the_portal_complaint_form(
    client_for, portal_customer, portal_customer_record, service_agent, world, category
):
    client = client_for(portal_customer)
    desk = client_for(service_agent)
    own = ContactFactory(customer=portal_customer_record, name="本人联系人")

    @FUZZ
    @given(data=ticket_form(category=category.pk, contact_ids=[own.pk, world["their_contact"]]))
    def run(data):
        with rolled_back():
            response, _page = post_and_follow(client, reverse("portal:ticket_create"), data)
            if response.status_code == 302:
                # What a customer types is read by the service desk: the staff page escapes it too.
                ticket = Ticket.objects.filter(customer=portal_customer_record).latest("pk")
                page = desk.get(reverse("complaints:detail", args=[ticket.number]))
                assert page.status_code == 200
                assert_shown_as_text(page)

    run()


def _query(**params) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


# --- The import upload and its check ------------------------------------------------------------

HEADERS = [
    "客户名称",
    "个人/企业",
    "所在单位",
    "性别",
    "出生日期",
    "手机",
    "电话",
    "邮箱",
    "身份证号",
    "所在省份",
    "城市",
]
HEADERS += ["客户级别", "客户状态", "备注", "负责人"]


@st.composite
def import_files(draw) -> SimpleUploadedFile:
    """Mostly a CSV the engine reads (a name column first, readable names with payloads), with
    random extra columns, cells and encodings; sometimes bytes that are no spreadsheet at all."""
    import csv
    import io

    extra = draw(st.lists(st.one_of(st.sampled_from(HEADERS[1:]), fz.text()), max_size=6, unique=True))
    header = ["客户名称", *extra]
    rows = draw(
        st.lists(
            st.builds(
                lambda name, cells: [name, *cells], fz.readable(), st.lists(fz.csv_cell(), max_size=len(extra) + 1)
            ),
            max_size=4,
        )
    )
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    kind = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "gb18030", "gbk", "binary", "zip"]))
    if kind == "binary":
        data = draw(st.binary(max_size=400))
    elif kind == "zip":
        data = b"PK\x03\x04" + draw(st.binary(max_size=200))  # an XLSX's first bytes, then garbage
    else:
        data = out.getvalue().encode(kind, errors="replace")
    return SimpleUploadedFile(draw(fz.file_names()), data)


def test_it_survives_anything_uploaded_to_the_import(client_for, sales_rep, world):
    client = client_for(sales_rep)
    url = reverse("customers:import")

    @FUZZ
    @given(
        upload=import_files(),
        on_duplicate=st.one_of(fz.choice(*ImportJob.OnDuplicate.values), st.none()),
        owner=fz.optional(fz.ids()),
        confirm=st.booleans(),
    )
    def run(upload, on_duplicate, owner, confirm):
        data = {"file": upload} | ({"on_duplicate": on_duplicate} if on_duplicate is not None else {})
        data |= {"owner": owner} if owner is not None else {}
        with rolled_back():
            # The upload, then the check's preview (small files are checked inline) …
            response, _page = post_and_follow(client, url, data)
            job = ImportJob.objects.order_by("-pk").first()
            if confirm and response.status_code == 302 and job.status == ImportJob.Status.CHECKED:
                # … and the import itself, with the archive's list showing what it created.
                post_and_follow(client, reverse("customers:import_confirm", args=[job.pk]), {})
                assert_shown_as_text(client.get(reverse("customers:list")))

    run()


# --- The portal profile -------------------------------------------------------------------------


def test_it_survives_anything_posted_to_the_portal_profile(
    client_for, portal_customer, portal_customer_record, manager, world
):
    client = client_for(portal_customer)
    staff = client_for(manager)
    url = reverse("portal:profile")
    valid = {"city": blank_or(fz.readable()), "address": blank_or(fz.readable()), "phone": blank_or(PHONES)}
    fuzz = {
        "phone": st.one_of(PHONES, fz.text()),
        "mobile": st.one_of(PHONES, fz.text()),
        "fax": st.one_of(PHONES, fz.text()),
        "email": st.one_of(EMAILS, fz.text()),
        "province": fz.ids(world["province"]),
        "city": fz.text(),
        "address": fz.text(),
        # Not fields of the form: they must never be read.
        "name": fz.readable(),
        "owner": fz.ids(),
    }

    @FUZZ
    @given(data=fz.mutated(valid, fuzz))
    def run(data):
        with rolled_back():
            post_and_follow(client, url, data)
            assert Customer.objects.get(pk=portal_customer_record.pk).name == "刘女士"
            # The corrections show on the customer's 360 page, to staff.
            page = staff.get(reverse("customers:detail", args=[portal_customer_record.pk]))
            assert page.status_code == 200
            assert_shown_as_text(page)

    run()
