"""The portal's ticket pages: a customer files, follows, answers, reopens and rates their own
tickets, and never reaches another customer's (portal:tickets …, portal:rate_link)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from complaints.models import Ticket, TicketCategory, TicketEvent
from complaints.services import (
    rating_token,
    ticket_attachment_add,
    ticket_comment,
    ticket_file,
    ticket_transition,
)
from customers.models import Customer
from tests.customers.factories import ContactFactory
from tests.customers.test_attachments import PDF_BYTES, PNG_BYTES

pytestmark = pytest.mark.django_db

S = Ticket.Status


@pytest.fixture
def category(db):
    category, _ = TicketCategory.objects.get_or_create(name="产品质量")
    return category


def _file(customer, user, *, subject="屏幕有划痕", kind=Ticket.Kind.COMPLAINT, category=None, files=()):
    category = category or TicketCategory.objects.get_or_create(name="产品质量")[0]
    return ticket_file(
        customer=customer,
        by=user,
        kind=kind,
        category=category,
        severity=Ticket.Severity.MEDIUM,
        channel=Ticket.Channel.PORTAL,
        subject=subject,
        description="收到的显示器屏幕有划痕。",
        by_customer=True,
        files=files,
    )


@pytest.fixture
def my_ticket(portal_customer_record, portal_customer, category):
    return _file(portal_customer_record, portal_customer, files=[("照片.png", PNG_BYTES)])


@pytest.fixture
def their_ticket(other_portal_customer_record, other_portal_customer, category):
    return _file(
        other_portal_customer_record, other_portal_customer, subject="别人的投诉", files=[("发票.pdf", PDF_BYTES)]
    )


@pytest.fixture
def me(portal_customer, portal_customer_record, client_for):
    return client_for(portal_customer)


def _resolve(ticket, agent, comment="已更换新屏幕。"):
    ticket = ticket_transition(ticket=ticket, to=S.IN_PROGRESS, by=agent)
    return ticket_transition(ticket=ticket, to=S.RESOLVED, by=agent, comment=comment)


# --- Who may open the pages --------------------------------------------------------------------


def _pages(ticket) -> list[str]:
    n = ticket.number
    return [
        "/portal/tickets/",
        "/portal/tickets/new/",
        f"/portal/tickets/{n}/",
    ]


def test_it_sends_anonymous_users_to_log_in(my_ticket):
    for path in _pages(my_ticket):
        response = Client().get(path)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], path


@pytest.mark.parametrize("role", ["administrator", "manager", "sales_rep", "service_agent", "analyst"])
def test_it_refuses_staff(request, my_ticket, client_for, role):
    client = client_for(request.getfixturevalue(role))
    for path in _pages(my_ticket):
        assert client.get(path).status_code == 403, path
    attachment = my_ticket.attachments.get()
    assert client.get(f"/portal/tickets/{my_ticket.number}/files/{attachment.pk}/").status_code == 403
    assert client.post(f"/portal/tickets/{my_ticket.number}/reply/", {"body": "x"}).status_code == 403


def test_it_answers_404_to_a_portal_user_without_a_customer(portal_customer, client_for):
    assert client_for(portal_customer).get("/portal/tickets/").status_code == 404


def test_it_refuses_other_methods(me, my_ticket):
    n = my_ticket.number
    assert me.post("/portal/tickets/").status_code == 405
    assert me.delete(f"/portal/tickets/{n}/").status_code == 405
    for action in ("reply", "reopen", "rate"):
        assert me.get(f"/portal/tickets/{n}/{action}/").status_code == 405, action


# --- Another customer's tickets (IDOR probes) --------------------------------------------------


def test_it_answers_404_for_another_customers_ticket_number(me, their_ticket, service_agent):
    n = their_ticket.number
    assert me.get(f"/portal/tickets/{n}/").status_code == 404
    assert me.post(f"/portal/tickets/{n}/reply/", {"body": "看看"}).status_code == 404
    assert me.post(f"/portal/tickets/{n}/reopen/", {"comment": "没解决"}).status_code == 404
    _resolve(their_ticket, service_agent)
    assert me.post(f"/portal/tickets/{n}/rate/", {"rating": "1"}).status_code == 404
    their_ticket.refresh_from_db()
    assert their_ticket.rating is None and their_ticket.status == S.RESOLVED
    assert not their_ticket.events.filter(kind=TicketEvent.Kind.REPLY).exists()


def test_it_answers_404_for_another_customers_file(me, my_ticket, their_ticket):
    theirs = their_ticket.attachments.get()
    # Their file under their number, and under my own ticket's number.
    assert me.get(f"/portal/tickets/{their_ticket.number}/files/{theirs.pk}/").status_code == 404
    assert me.get(f"/portal/tickets/{my_ticket.number}/files/{theirs.pk}/").status_code == 404


def test_it_lists_only_my_tickets(me, my_ticket, their_ticket):
    page = me.get("/portal/tickets/").content.decode()
    assert my_ticket.number in page and "屏幕有划痕" in page
    assert their_ticket.number not in page and "别人的投诉" not in page


def test_it_answers_404_for_an_unknown_number(me):
    assert me.get("/portal/tickets/T2026-999999/").status_code == 404


# --- The list -------------------------------------------------------------------------------------


def test_it_lists_newest_first_with_status_badges_within_a_query_budget(
    me, portal_customer_record, portal_customer, category, django_assert_max_num_queries
):
    for i in range(25):
        _file(portal_customer_record, portal_customer, subject=f"问题 {i:02d}")
    with django_assert_max_num_queries(10):
        response = me.get("/portal/tickets/")
    page = response.content.decode()
    assert response.status_code == 200
    assert page.index("问题 24") < page.index("问题 23")
    assert "问题 04" not in page  # page 2
    assert 'data-status="new"' in page
    assert "问题 04" in me.get("/portal/tickets/?page=2").content.decode()
    assert me.get("/portal/tickets/?page=abc").status_code == 200


def test_it_shows_an_empty_list(me):
    response = me.get("/portal/tickets/")
    assert 'data-testid="ticket-empty"' in response.content.decode()


# --- Filing -----------------------------------------------------------------------------------------


def _post_new(client, chosen, **extra):
    data = {
        "kind": Ticket.Kind.COMPLAINT,
        "category": chosen.pk,
        "subject": "快递把箱子压坏了",
        "description": "外箱破损，里面的杯子碎了两个。",
        **extra,
    }
    return client.post("/portal/tickets/new/", data, HTTP_ACCEPT_LANGUAGE="en")


def test_it_files_a_complaint_with_files(me, portal_customer_record, portal_customer, category):
    photo = SimpleUploadedFile("破损.png", PNG_BYTES, content_type="image/png")
    receipt = SimpleUploadedFile("receipt.pdf", PDF_BYTES, content_type="application/pdf")
    response = _post_new(me, category, files=[photo, receipt])
    ticket = Ticket.objects.get(customer=portal_customer_record)
    assert response.status_code == 302 and response["Location"] == f"/portal/tickets/{ticket.number}/"
    assert ticket.channel == Ticket.Channel.PORTAL and ticket.severity == Ticket.Severity.MEDIUM
    assert ticket.created_by == portal_customer
    created = ticket.events.get(kind=TicketEvent.Kind.CREATED)
    assert created.by_customer and created.actor is None
    assert sorted(ticket.attachments.values_list("filename", flat=True)) == ["receipt.pdf", "破损.png"]
    portal_customer_record.refresh_from_db()
    assert portal_customer_record.status == Customer.Status.AFTER_SALES


def test_it_ignores_forged_fields(me, portal_customer_record, other_portal_customer_record, service_agent, category):
    response = _post_new(
        me,
        category,
        customer=other_portal_customer_record.pk,
        customer_id=other_portal_customer_record.pk,
        severity=Ticket.Severity.CRITICAL,
        channel=Ticket.Channel.ONSITE,
        status=S.CLOSED,
        assignee=service_agent.pk,
        rating="5",
    )
    assert response.status_code == 302
    ticket = Ticket.objects.get()
    assert ticket.customer == portal_customer_record
    assert ticket.severity == Ticket.Severity.MEDIUM and ticket.channel == Ticket.Channel.PORTAL
    assert ticket.status == S.NEW and ticket.assignee is None and ticket.rating is None
    assert not other_portal_customer_record.tickets.exists()


def test_it_refuses_another_customers_contact(me, portal_customer_record, other_portal_customer_record, category):
    mine = ContactFactory(customer=portal_customer_record, name="小王")
    theirs = ContactFactory(customer=other_portal_customer_record, name="外人")
    page = me.get("/portal/tickets/new/").content.decode()
    assert "小王" in page and "外人" not in page
    response = _post_new(me, category, contact=theirs.pk)
    assert response.status_code == 422
    assert response.context["form"].errors["contact"]
    assert not Ticket.objects.exists()
    assert _post_new(me, category, contact=mine.pk).status_code == 302
    assert Ticket.objects.get().contact == mine


def test_it_offers_only_active_categories(me, category):
    retired = TicketCategory.objects.create(name="旧类别", is_active=False)
    page = me.get("/portal/tickets/new/").content.decode()
    assert "产品质量" in page and "旧类别" not in page
    response = _post_new(me, category, category=retired.pk)
    assert response.status_code == 422 and response.context["form"].errors["category"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"subject": ""}, "subject"),
        ({"subject": "   "}, "subject"),
        ({"description": ""}, "description"),
        ({"subject": "x" * 201}, "subject"),
        ({"kind": "lawsuit"}, "kind"),
        ({"category": "abc"}, "category"),
    ],
)
def test_it_refuses_bad_input_with_a_message(me, category, extra, field):
    response = _post_new(me, category, **extra)
    assert response.status_code == 422
    assert response.context["form"].errors[field]
    assert not Ticket.objects.exists()


def test_it_refuses_a_file_that_is_not_what_it_claims(me, category):
    fake = SimpleUploadedFile("photo.png", b"MZ\x90\x00 this is a program", content_type="image/png")
    response = _post_new(me, category, files=[fake])
    assert response.status_code == 422
    assert "photo.png" in str(response.context["form"].errors["files"])
    assert not Ticket.objects.exists()


def test_it_refuses_too_many_files(me, category):
    files = [SimpleUploadedFile(f"p{i}.png", PNG_BYTES, content_type="image/png") for i in range(6)]
    response = _post_new(me, category, files=files)
    assert response.status_code == 422 and response.context["form"].errors["files"]
    assert not Ticket.objects.exists()


# --- The ticket page -------------------------------------------------------------------------------


def test_it_shows_replies_but_never_internal_notes_or_files(me, my_ticket, service_agent):
    ticket_comment(ticket=my_ticket, body="我们已安排换货。", by=service_agent)
    ticket_comment(
        ticket=my_ticket,
        body="内部：这个客户上次也投诉过",
        by=service_agent,
        internal=True,
        files=[("内部.pdf", PDF_BYTES)],
    )
    internal_file = my_ticket.attachments.get(internal=True)
    page = me.get(f"/portal/tickets/{my_ticket.number}/").content.decode()
    assert "我们已安排换货。" in page
    assert "内部：这个客户上次也投诉过" not in page and "内部.pdf" not in page
    assert "照片.png" in page  # the customer's own file
    assert service_agent.name not in page  # staff appear as the service desk
    assert me.get(f"/portal/tickets/{my_ticket.number}/files/{internal_file.pk}/").status_code == 404


def test_it_shows_a_long_timeline_within_a_query_budget(me, my_ticket, service_agent, django_assert_max_num_queries):
    for i in range(15):
        ticket_comment(ticket=my_ticket, body=f"回复 {i}", by=service_agent, files=[(f"f{i}.pdf", PDF_BYTES)])
        ticket_comment(ticket=my_ticket, body=f"追问 {i}", by=None, by_customer=True)
    with django_assert_max_num_queries(11):
        response = me.get(f"/portal/tickets/{my_ticket.number}/")
    page = response.content.decode()
    assert "回复 14" in page and "追问 14" in page and "f14.pdf" in page


def test_it_downloads_my_file_with_safe_headers(me, my_ticket):
    attachment = my_ticket.attachments.get()
    response = me.get(f"/portal/tickets/{my_ticket.number}/files/{attachment.pk}/")
    assert response.status_code == 200
    assert response.content == PNG_BYTES
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "%E7%85%A7%E7%89%87.png" in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    assert "sandbox" in response["Content-Security-Policy"]


# --- Replying ---------------------------------------------------------------------------------------


def test_it_sends_a_reply_with_a_file(me, my_ticket):
    photo = SimpleUploadedFile("细节.png", PNG_BYTES, content_type="image/png")
    response = me.post(f"/portal/tickets/{my_ticket.number}/reply/", {"body": "补充一张照片", "files": [photo]})
    assert response.status_code == 302
    reply = my_ticket.events.get(kind=TicketEvent.Kind.REPLY)
    assert reply.by_customer and not reply.internal and reply.body == "补充一张照片"
    assert my_ticket.attachments.filter(event=reply).count() == 1


def test_it_refuses_an_empty_reply(me, my_ticket):
    response = me.post(f"/portal/tickets/{my_ticket.number}/reply/", {"body": ""}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 422
    assert response.context["reply_form"].errors["body"]
    assert not my_ticket.events.filter(kind=TicketEvent.Kind.REPLY).exists()


def test_it_cannot_write_an_internal_note(me, my_ticket):
    me.post(f"/portal/tickets/{my_ticket.number}/reply/", {"body": "我是内部备注", "internal": "on"})
    event = my_ticket.events.get(kind__in=[TicketEvent.Kind.REPLY, TicketEvent.Kind.NOTE], body="我是内部备注")
    assert event.kind == TicketEvent.Kind.REPLY and not event.internal


def test_it_refuses_a_reply_on_a_closed_ticket(me, my_ticket, service_agent):
    ticket = _resolve(my_ticket, service_agent)
    ticket_transition(ticket=ticket, to=S.CLOSED, by=service_agent)
    response = me.post(f"/portal/tickets/{my_ticket.number}/reply/", {"body": "还有问题"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 422
    assert "closed" in str(response.context["reply_form"].non_field_errors())
    assert not my_ticket.events.filter(kind=TicketEvent.Kind.REPLY).exists()


# --- Reopening ------------------------------------------------------------------------------------


def test_it_reopens_a_resolved_ticket_with_a_comment(me, my_ticket, service_agent, portal_customer_record):
    _resolve(my_ticket, service_agent)
    portal_customer_record.refresh_from_db()
    assert portal_customer_record.status == Customer.Status.PROSPECT
    page = me.get(f"/portal/tickets/{my_ticket.number}/").content.decode()
    assert 'data-testid="reopen-form"' in page
    response = me.post(f"/portal/tickets/{my_ticket.number}/reopen/", {"comment": "新屏幕也有划痕"})
    assert response.status_code == 302
    my_ticket.refresh_from_db()
    assert my_ticket.status == S.IN_PROGRESS
    event = my_ticket.events.filter(kind=TicketEvent.Kind.STATUS).latest("id")
    assert event.by_customer and event.body == "新屏幕也有划痕"
    portal_customer_record.refresh_from_db()
    assert portal_customer_record.status == Customer.Status.AFTER_SALES


def test_it_requires_a_comment_to_reopen(me, my_ticket, service_agent):
    _resolve(my_ticket, service_agent)
    response = me.post(f"/portal/tickets/{my_ticket.number}/reopen/", {"comment": " "}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 422 and response.context["reopen_form"].errors["comment"]
    my_ticket.refresh_from_db()
    assert my_ticket.status == S.RESOLVED


@pytest.mark.parametrize("state", ["open", "closed"])
def test_it_reopens_only_resolved_tickets(me, my_ticket, service_agent, state):
    if state == "closed":
        ticket_transition(ticket=_resolve(my_ticket, service_agent), to=S.CLOSED, by=service_agent)
    before = Ticket.objects.get(pk=my_ticket.pk).status
    page = me.get(f"/portal/tickets/{my_ticket.number}/").content.decode()
    assert 'data-testid="reopen-form"' not in page
    response = me.post(f"/portal/tickets/{my_ticket.number}/reopen/", {"comment": "再看看"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 422
    assert response.context["reopen_form"].non_field_errors()
    assert Ticket.objects.get(pk=my_ticket.pk).status == before


# --- Rating ----------------------------------------------------------------------------------------


def test_it_rates_a_resolved_ticket_once(me, my_ticket, service_agent):
    _resolve(my_ticket, service_agent)
    url = f"/portal/tickets/{my_ticket.number}/rate/"
    assert me.post(url, {"rating": "4", "comment": "换货很快"}).status_code == 302
    my_ticket.refresh_from_db()
    assert my_ticket.rating == 4 and my_ticket.rating_comment == "换货很快"
    page = me.get(f"/portal/tickets/{my_ticket.number}/").content.decode()
    assert 'data-testid="rate-form"' not in page and 'data-testid="ticket-rating"' in page
    second = me.post(url, {"rating": "1"}, HTTP_ACCEPT_LANGUAGE="en")
    assert second.status_code == 422 and "already" in str(second.context["rate_form"].non_field_errors())
    my_ticket.refresh_from_db()
    assert my_ticket.rating == 4


def test_it_refuses_to_rate_an_open_ticket(me, my_ticket):
    response = me.post(f"/portal/tickets/{my_ticket.number}/rate/", {"rating": "5"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 422 and response.context["rate_form"].non_field_errors()
    my_ticket.refresh_from_db()
    assert my_ticket.rating is None


@pytest.mark.parametrize("rating", ["0", "6", "abc", "", "4.5"])
def test_it_refuses_a_bad_rating(me, my_ticket, service_agent, rating):
    _resolve(my_ticket, service_agent)
    response = me.post(f"/portal/tickets/{my_ticket.number}/rate/", {"rating": rating})
    assert response.status_code == 422 and response.context["rate_form"].errors["rating"]
    my_ticket.refresh_from_db()
    assert my_ticket.rating is None


# --- The rating link -------------------------------------------------------------------------------


def test_the_rating_link_rates_once_without_logging_in(my_ticket, service_agent):
    _resolve(my_ticket, service_agent)
    url = f"/portal/rate/{rating_token(my_ticket)}/"
    page = Client().get(url)
    assert page.status_code == 200
    assert my_ticket.number in page.content.decode() and my_ticket.subject in page.content.decode()
    done = Client().post(url, {"rating": "5", "comment": "满意"})
    assert 'data-testid="rate-thanks"' in done.content.decode()
    my_ticket.refresh_from_db()
    assert my_ticket.rating == 5
    event = my_ticket.events.get(kind=TicketEvent.Kind.RATED)
    assert event.by_customer and event.actor is None
    again = Client().post(url, {"rating": "1"})
    assert 'data-testid="rate-done"' in again.content.decode()
    my_ticket.refresh_from_db()
    assert my_ticket.rating == 5


def test_the_rating_link_shows_nothing_else_of_the_customer(my_ticket, service_agent, portal_customer_record):
    _resolve(my_ticket, service_agent)
    page = Client().get(f"/portal/rate/{rating_token(my_ticket)}/").content.decode()
    assert portal_customer_record.name not in page and portal_customer_record.mobile not in page
    assert "收到的显示器屏幕有划痕" not in page  # the description stays in the portal


@pytest.mark.parametrize("token", ["sample", "abc:def:ghi", "x" * 300])
def test_a_bad_rating_link_gets_a_friendly_page(db, token):
    response = Client().get(f"/portal/rate/{token}/")
    assert response.status_code == 200 and 'data-testid="rate-invalid"' in response.content.decode()
    assert Client().post(f"/portal/rate/{token}/", {"rating": "5"}).status_code == 200


def test_a_rating_link_of_a_reopened_ticket_waits(me, my_ticket, service_agent):
    _resolve(my_ticket, service_agent)
    token = rating_token(my_ticket)
    me.post(f"/portal/tickets/{my_ticket.number}/reopen/", {"comment": "没修好"})
    response = Client().post(f"/portal/rate/{token}/", {"rating": "5"})
    assert 'data-testid="rate-reopened"' in response.content.decode()
    my_ticket.refresh_from_db()
    assert my_ticket.rating is None


def test_a_rating_link_of_an_erased_customer_is_dead(my_ticket, service_agent, portal_customer_record):
    _resolve(my_ticket, service_agent)
    Customer.all_objects.filter(pk=portal_customer_record.pk).update(erased_at=timezone.now())
    response = Client().get(f"/portal/rate/{rating_token(my_ticket)}/")
    assert 'data-testid="rate-invalid"' in response.content.decode()


def test_the_rating_link_refuses_a_bad_rating(my_ticket, service_agent):
    _resolve(my_ticket, service_agent)
    response = Client().post(f"/portal/rate/{rating_token(my_ticket)}/", {"rating": "9"})
    assert response.status_code == 422
    my_ticket.refresh_from_db()
    assert my_ticket.rating is None


def test_the_rating_link_refuses_other_methods(my_ticket):
    assert Client().delete(f"/portal/rate/{rating_token(my_ticket)}/").status_code == 405


def test_files_added_by_staff_to_a_reply_are_downloadable(me, my_ticket, service_agent):
    event = ticket_comment(ticket=my_ticket, body="请看说明书", by=service_agent)
    attachment = ticket_attachment_add(
        ticket=my_ticket, filename="说明.pdf", data=PDF_BYTES, by=service_agent, event=event
    )
    assert me.get(f"/portal/tickets/{my_ticket.number}/files/{attachment.pk}/").content == PDF_BYTES
