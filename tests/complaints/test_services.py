"""The complaints services: filing, the status flow table, replies and notes, ratings, files and
rating links. Assignment, SLA and 售后中 have their own files; the helpers here are shared by them."""

from __future__ import annotations

import datetime

import pytest
from django.core import mail, signing
from django.test import override_settings
from django.utils import timezone, translation

from accounts import roles
from cims.crypto import DecryptionError
from complaints import services
from complaints.models import Ticket, TicketAttachment, TicketAttachmentContent, TicketCategory, TicketEvent
from complaints.services import TicketError
from tests.customers.factories import ContactFactory, CustomerFactory
from tests.customers.test_attachments import PDF_BYTES, PNG_BYTES
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

T = Ticket.Status


def category(name: str = "产品质量", *agents) -> TicketCategory:
    found, _ = TicketCategory.objects.get_or_create(name=name, defaults={"sort_order": 10})
    found.agents.add(*agents)
    return found


def file_ticket(customer, by, **overrides) -> Ticket:
    values = {
        "kind": Ticket.Kind.COMPLAINT,
        "category": overrides.pop("category", None) or category(),
        "severity": Ticket.Severity.MEDIUM,
        "channel": Ticket.Channel.PHONE,
        "subject": "洗衣机漏水",
        "description": "安装后第二天开始漏水。",
    }
    values.update(overrides)
    return services.ticket_file(customer=customer, by=by, **values)


def agent(username: str, **kwargs):
    return UserFactory(username=username, role=roles.SERVICE, **kwargs)


def walk(ticket: Ticket, *steps: str, by, comment: str = "ok") -> Ticket:
    for step in steps:
        ticket = services.ticket_transition(ticket=ticket, to=step, by=by, comment=comment)
    return ticket


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(owner=sales_rep)


# --- Filing --------------------------------------------------------------------------------------


def test_it_files_a_numbered_ticket_due_by_its_severity(sales_rep, customer):
    with override_settings(SLA_HOURS={"critical": 4, "high": 24, "medium": 72, "low": 120}):
        ticket = file_ticket(customer, sales_rep, severity=Ticket.Severity.HIGH, kind=Ticket.Kind.INQUIRY)
    year = timezone.localdate().year
    assert ticket.number.startswith(f"T{year}-") and len(ticket.number) == 12
    assert ticket.sla_due_at - ticket.created_at == datetime.timedelta(hours=24)
    assert ticket.created_by == sales_rep
    event = ticket.events.get()
    assert (event.kind, event.actor, event.by_customer, event.internal) == (
        TicketEvent.Kind.CREATED,
        sales_rep,
        False,
        False,
    )


def test_numbers_follow_each_other(sales_rep, customer):
    first = file_ticket(customer, sales_rep, kind=Ticket.Kind.INQUIRY)
    second = file_ticket(customer, sales_rep, kind=Ticket.Kind.INQUIRY)
    assert int(second.number[-6:]) == int(first.number[-6:]) + 1


def test_a_ticket_filed_by_the_customer_names_no_staff_actor(portal_customer, portal_customer_record):
    ticket = file_ticket(portal_customer_record, portal_customer, by_customer=True, channel=Ticket.Channel.PORTAL)
    event = ticket.events.get(kind=TicketEvent.Kind.CREATED)
    assert event.actor is None and event.by_customer
    assert ticket.created_by == portal_customer


def test_it_refuses_a_contact_of_another_customer_and_writes_nothing(sales_rep, customer):
    stranger = ContactFactory()
    with translation.override("en"), pytest.raises(TicketError, match="another customer"):
        file_ticket(customer, sales_rep, contact=stranger)
    assert not Ticket.objects.exists() and not TicketEvent.objects.exists()


def test_it_accepts_a_contact_of_the_customer(sales_rep, customer):
    own = ContactFactory(customer=customer)
    assert file_ticket(customer, sales_rep, contact=own).contact == own


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("subject", "   ", "Fill in the subject"),
        ("description", "", "Fill in the description"),
        ("subject", "长" * 201, "at most 200"),
        ("severity", "urgent", "severity"),
        ("kind", "praise", "kind"),
        ("channel", "fax", "came in"),
    ],
)
def test_it_refuses_bad_values_with_a_message(sales_rep, customer, field, value, message):
    with translation.override("en"), pytest.raises(TicketError, match=message):
        file_ticket(customer, sales_rep, **{field: value})
    assert not Ticket.objects.exists()


def test_it_refuses_an_unsafe_file_and_writes_nothing(sales_rep, customer):
    with translation.override("en"), pytest.raises(TicketError, match="Only PDF"):
        file_ticket(customer, sales_rep, files=[("ok.pdf", PDF_BYTES), ("evil.html", b"<script>alert(1)</script>")])
    assert not Ticket.objects.exists() and not TicketAttachment.objects.exists()


def test_it_refuses_an_erased_customer(sales_rep, customer):
    customer.erased_at = timezone.now()
    with pytest.raises(TicketError):
        file_ticket(customer, sales_rep)


# --- Files ---------------------------------------------------------------------------------------


def test_files_are_stored_encrypted_and_bound_to_their_row(sales_rep, customer):
    ticket = file_ticket(customer, sales_rep, files=[("照片.png", PNG_BYTES), ("发票.pdf", PDF_BYTES)])
    photo, invoice = ticket.attachments.order_by("id")
    assert (photo.filename, photo.content_type, photo.size) == ("照片.png", "image/png", len(PNG_BYTES))
    assert services.ticket_attachment_bytes(invoice) == PDF_BYTES
    sealed = bytes(TicketAttachmentContent.objects.get(attachment=invoice).data)
    assert PDF_BYTES not in sealed
    # The bytes of one file copied onto another do not decrypt.
    TicketAttachmentContent.objects.filter(attachment=photo).update(data=sealed)
    with pytest.raises(DecryptionError):
        services.ticket_attachment_bytes(photo)


def test_key_rotation_reencrypts_ticket_files(sales_rep, customer, settings):
    ticket = file_ticket(customer, sales_rep, files=[("a.pdf", PDF_BYTES)])
    old_ring = dict(settings.FIELD_ENCRYPTION_KEYS)
    new_ring = {"k-new": b"\x01" * 32, **old_ring}
    with override_settings(FIELD_ENCRYPTION_KEYS=new_ring):
        assert services.ticket_attachment_contents_rotate(dry_run=True) == 1
        assert services.ticket_attachment_contents_rotate() == 1
        assert services.ticket_attachment_contents_rotate(dry_run=True) == 0
        assert bytes(TicketAttachmentContent.objects.get().data).startswith(b"k-new:")
        assert services.ticket_attachment_bytes(ticket.attachments.get()) == PDF_BYTES


# --- The flow table ------------------------------------------------------------------------------

ALLOWED = [
    (T.NEW, T.ASSIGNED),
    (T.NEW, T.IN_PROGRESS),
    (T.ASSIGNED, T.IN_PROGRESS),
    (T.IN_PROGRESS, T.RESOLVED),
    (T.RESOLVED, T.CLOSED),
    (T.RESOLVED, T.IN_PROGRESS),
]
# The way to reach each status from 新建 (with an assignee).
PATH = {
    T.NEW: [],
    T.ASSIGNED: [T.ASSIGNED],
    T.IN_PROGRESS: [T.IN_PROGRESS],
    T.RESOLVED: [T.IN_PROGRESS, T.RESOLVED],
    T.CLOSED: [T.IN_PROGRESS, T.RESOLVED, T.CLOSED],
}


def ticket_in(status: str, customer, by) -> Ticket:
    ticket = file_ticket(customer, by, kind=Ticket.Kind.INQUIRY)  # no agent: stays 新建
    Ticket.objects.filter(pk=ticket.pk).update(assignee=by)
    ticket.refresh_from_db()
    return walk(ticket, *PATH[status], by=by)


def test_the_table_is_the_one_the_brief_gives():
    assert {(a, b) for a, targets in services.FLOW.items() for b in targets} == set(ALLOWED)
    assert services.FLOW[T.CLOSED] == frozenset()


@pytest.mark.parametrize(("start", "target"), ALLOWED)
def test_it_allows_each_step_of_the_flow_with_an_event(service_agent, customer, start, target):
    ticket = ticket_in(start, customer, service_agent)
    moved = services.ticket_transition(ticket=ticket, to=target, by=service_agent, comment="说明")
    assert Ticket.objects.get(pk=ticket.pk).status == target == moved.status
    event = moved.events.filter(kind=TicketEvent.Kind.STATUS).latest("id")
    assert (event.from_status, event.to_status, event.actor, event.body) == (start, target, service_agent, "说明")


@pytest.mark.parametrize(
    ("start", "target"),
    [(a, b) for a in T.values for b in T.values if a != b and (a, b) not in ALLOWED],
)
def test_it_refuses_every_other_step(service_agent, customer, start, target):
    ticket = ticket_in(start, customer, service_agent)
    events = ticket.events.count()
    with translation.override("en"), pytest.raises(TicketError, match="cannot"):
        services.ticket_transition(ticket=ticket, to=target, by=service_agent, comment="x")
    assert Ticket.objects.get(pk=ticket.pk).status == start and ticket.events.count() == events


def test_it_refuses_an_unknown_status_and_the_same_one(service_agent, customer):
    ticket = ticket_in(T.IN_PROGRESS, customer, service_agent)
    with translation.override("en"):
        with pytest.raises(TicketError, match="not a ticket status"):
            services.ticket_transition(ticket=ticket, to="archived", by=service_agent)
        with pytest.raises(TicketError, match="already"):
            services.ticket_transition(ticket=ticket, to=T.IN_PROGRESS, by=service_agent)


def test_reopening_needs_a_comment_and_clears_the_resolution(service_agent, customer):
    ticket = ticket_in(T.RESOLVED, customer, service_agent)
    assert ticket.resolved_at is not None
    with translation.override("en"), pytest.raises(TicketError, match="why"):
        services.ticket_transition(ticket=ticket, to=T.IN_PROGRESS, by=service_agent, comment=" ")
    reopened = services.ticket_transition(ticket=ticket, to=T.IN_PROGRESS, by=service_agent, comment="仍然漏水")
    assert reopened.status == T.IN_PROGRESS and reopened.resolved_at is None


def test_closing_stamps_the_time_and_is_final(service_agent, customer):
    ticket = ticket_in(T.CLOSED, customer, service_agent)
    assert ticket.closed_at is not None
    with translation.override("en"), pytest.raises(TicketError, match="closed"):
        services.ticket_transition(ticket=ticket, to=T.IN_PROGRESS, by=service_agent, comment="再来")


def test_the_customer_may_only_reopen_or_close_a_resolved_ticket(service_agent, portal_customer, customer):
    ticket = ticket_in(T.IN_PROGRESS, customer, service_agent)
    with pytest.raises(TicketError):
        services.ticket_transition(ticket=ticket, to=T.RESOLVED, by=portal_customer, by_customer=True)
    ticket = walk(ticket, T.RESOLVED, by=service_agent)
    reopened = services.ticket_transition(
        ticket=ticket, to=T.IN_PROGRESS, by=portal_customer, by_customer=True, comment="没修好"
    )
    event = reopened.events.latest("id")
    assert reopened.status == T.IN_PROGRESS and event.by_customer and event.actor is None


def test_starting_an_unassigned_ticket_takes_it(service_agent, customer):
    ticket = file_ticket(customer, service_agent, kind=Ticket.Kind.INQUIRY)
    assert ticket.status == T.NEW and ticket.assignee is None
    started = services.ticket_transition(ticket=ticket, to=T.IN_PROGRESS, by=service_agent)
    assert started.assignee == service_agent


def test_marking_assigned_needs_an_assignee(service_agent, customer):
    ticket = file_ticket(customer, service_agent, kind=Ticket.Kind.INQUIRY)
    with translation.override("en"), pytest.raises(TicketError, match="Assign"):
        services.ticket_transition(ticket=ticket, to=T.ASSIGNED, by=service_agent)
    assert [step for step, _label in services.steps_for(ticket)] == [T.IN_PROGRESS]


def test_a_user_without_the_permission_cannot_move_a_ticket(analyst, service_agent, customer):
    ticket = ticket_in(T.IN_PROGRESS, customer, service_agent)
    with pytest.raises(TicketError):
        services.ticket_transition(ticket=ticket, to=T.RESOLVED, by=analyst)


def test_resolving_emails_the_customer_a_rating_link(
    service_agent, customer, settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://cims.example.com"
    ticket = ticket_in(T.IN_PROGRESS, customer, service_agent)
    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_transition(ticket=ticket, to=T.RESOLVED, by=service_agent, comment="已更换")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [customer.email] and ticket.number in message.subject
    link = next(line for line in message.body.splitlines() if line.startswith("https://cims.example.com/"))
    token = link.rstrip("/").rsplit("/", 1)[-1]
    assert services.ticket_for_rating_token(token) == ticket


def test_a_customer_without_an_address_gets_no_mail(service_agent, sales_rep, django_capture_on_commit_callbacks):
    customer = CustomerFactory(owner=sales_rep, email="")
    ticket = ticket_in(T.IN_PROGRESS, customer, service_agent)
    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_transition(ticket=ticket, to=T.RESOLVED, by=service_agent)
    assert mail.outbox == []


# --- Replies and notes ---------------------------------------------------------------------------


def test_the_first_staff_reply_sets_the_first_response(service_agent, customer, portal_customer):
    ticket = ticket_in(T.ASSIGNED, customer, service_agent)
    services.ticket_comment(ticket=ticket, body="内部：先查库存", by=service_agent, internal=True)
    services.ticket_comment(ticket=ticket, body="还没人理我", by=portal_customer, by_customer=True)
    assert Ticket.objects.get(pk=ticket.pk).first_response_at is None
    reply = services.ticket_comment(ticket=ticket, body="您好，我们已安排上门。", by=service_agent)
    first = Ticket.objects.get(pk=ticket.pk).first_response_at
    assert first == reply.created_at
    services.ticket_comment(ticket=ticket, body="明天到", by=service_agent)
    assert Ticket.objects.get(pk=ticket.pk).first_response_at == first


def test_the_customer_sees_replies_but_never_notes(service_agent, customer):
    ticket = ticket_in(T.ASSIGNED, customer, service_agent)
    services.ticket_comment(
        ticket=ticket, body="内部：客户很急", by=service_agent, internal=True, files=[("n.pdf", PDF_BYTES)]
    )
    services.ticket_comment(ticket=ticket, body="已收到", by=service_agent, files=[("r.png", PNG_BYTES)])
    bodies = [event.body for event in services.customer_events(ticket)]
    assert "已收到" in bodies and "内部：客户很急" not in bodies
    assert not any(e.kind == TicketEvent.Kind.ASSIGNED for e in services.customer_events(ticket))
    assert [a.filename for a in services.customer_attachments(ticket)] == ["r.png"]
    note_file = ticket.attachments.get(filename="n.pdf")
    assert note_file.internal and note_file.event.kind == TicketEvent.Kind.NOTE


def test_a_customer_cannot_write_a_note(portal_customer, service_agent, customer):
    ticket = ticket_in(T.ASSIGNED, customer, service_agent)
    with pytest.raises(TicketError):
        services.ticket_comment(ticket=ticket, body="x", by=portal_customer, by_customer=True, internal=True)
    assert not ticket.events.filter(kind=TicketEvent.Kind.NOTE).exists()


def test_an_empty_reply_is_refused_with_a_message(service_agent, customer):
    ticket = ticket_in(T.ASSIGNED, customer, service_agent)
    with translation.override("en"), pytest.raises(TicketError, match="Fill in the message"):
        services.ticket_comment(ticket=ticket, body="  \n ", by=service_agent)


def test_a_customer_reply_does_not_reopen_a_resolved_ticket(service_agent, portal_customer, customer):
    ticket = ticket_in(T.RESOLVED, customer, service_agent)
    services.ticket_comment(ticket=ticket, body="谢谢", by=portal_customer, by_customer=True)
    assert Ticket.objects.get(pk=ticket.pk).status == T.RESOLVED


def test_a_closed_ticket_takes_notes_but_no_replies(service_agent, customer):
    ticket = ticket_in(T.CLOSED, customer, service_agent)
    with translation.override("en"), pytest.raises(TicketError, match="closed"):
        services.ticket_comment(ticket=ticket, body="补充", by=service_agent)
    services.ticket_comment(ticket=ticket, body="归档说明", by=service_agent, internal=True)


def test_a_customer_reply_notifies_the_assignee(service_agent, portal_customer, customer):
    ticket = ticket_in(T.ASSIGNED, customer, service_agent)
    services.ticket_comment(ticket=ticket, body="请尽快", by=portal_customer, by_customer=True)
    assert service_agent.notifications.filter(body="请尽快").exists()


# --- Ratings -------------------------------------------------------------------------------------


def test_a_resolved_ticket_is_rated_once(service_agent, portal_customer, customer):
    ticket = ticket_in(T.RESOLVED, customer, service_agent)
    rated = services.ticket_rate(ticket=ticket, rating="4", comment="上门很快", by=portal_customer)
    assert (rated.rating, rated.rating_comment) == (4, "上门很快") and rated.rated_at
    event = rated.events.get(kind=TicketEvent.Kind.RATED)
    assert event.by_customer and not event.internal
    with translation.override("en"), pytest.raises(TicketError, match="already"):
        services.ticket_rate(ticket=ticket, rating=5, by=portal_customer)
    assert Ticket.objects.get(pk=ticket.pk).rating == 4


@pytest.mark.parametrize("rating", [0, 6, "6", "abc", "", None, 4.5, True])
def test_it_refuses_a_rating_outside_one_to_five(service_agent, customer, rating):
    ticket = ticket_in(T.RESOLVED, customer, service_agent)
    with translation.override("en"), pytest.raises(TicketError, match="1 to 5"):
        services.ticket_rate(ticket=ticket, rating=rating)
    assert Ticket.objects.get(pk=ticket.pk).rating is None


def test_an_open_ticket_cannot_be_rated(service_agent, customer):
    ticket = ticket_in(T.IN_PROGRESS, customer, service_agent)
    with translation.override("en"), pytest.raises(TicketError, match="resolved"):
        services.ticket_rate(ticket=ticket, rating=5)


def test_a_closed_ticket_can_be_rated(service_agent, customer):
    ticket = ticket_in(T.CLOSED, customer, service_agent)
    assert services.ticket_rate(ticket=ticket, rating=5).rating == 5


# --- Rating links --------------------------------------------------------------------------------


def test_a_rating_token_finds_its_ticket_and_nothing_else(service_agent, customer):
    ticket = ticket_in(T.RESOLVED, customer, service_agent)
    token = services.rating_token(ticket)
    assert services.ticket_for_rating_token(token) == ticket
    assert services.ticket_for_rating_token(token[:-2] + "xx") is None
    assert services.ticket_for_rating_token("") is None
    # Signed with another salt (another feature's token) it is refused.
    assert services.ticket_for_rating_token(signing.dumps({"t": ticket.pk, "n": ticket.number})) is None


def test_a_rating_token_expires_after_30_days(service_agent, customer, monkeypatch):
    ticket = ticket_in(T.RESOLVED, customer, service_agent)
    token = services.rating_token(ticket)
    later = timezone.now().timestamp() + 31 * 24 * 3600
    monkeypatch.setattr(signing.time, "time", lambda: later)
    assert services.ticket_for_rating_token(token) is None
