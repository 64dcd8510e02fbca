"""The complaint desk (staff views): who may reach what, the queue's tabs, filters, search and
query budget, filing, a ticket's page and its actions, file downloads, the 360 page's Tickets tab."""

from __future__ import annotations

import datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from cims.models import PersonalDataAccess
from complaints import services
from complaints.models import Ticket, TicketAttachment, TicketEvent
from tests.complaints.test_services import agent, category, file_ticket, walk
from tests.customers.factories import ContactFactory, CustomerFactory
from tests.customers.test_attachments import PDF_BYTES, PNG_BYTES

pytestmark = pytest.mark.django_db

T = Ticket.Status
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(owner=sales_rep, name="海淀科技")


@pytest.fixture
def other_customer(other_sales_rep):
    return CustomerFactory(owner=other_sales_rep, name="朝阳贸易")


@pytest.fixture
def ticket(customer, sales_rep, service_agent):
    return file_ticket(
        customer, sales_rep, category=category("产品质量", service_agent), files=[("照片.png", PNG_BYTES)]
    )


@pytest.fixture
def other_ticket(other_customer, other_sales_rep, service_agent):
    return file_ticket(other_customer, other_sales_rep, category=category("产品质量", service_agent))


def urls(ticket: Ticket) -> dict[str, tuple[str, str]]:
    attachment = ticket.attachments.first()
    return {
        "list": ("get", reverse("complaints:list")),
        "create": ("get", reverse("complaints:create")),
        "customer_tickets": ("get", reverse("complaints:customer_tickets", args=[ticket.customer_id])),
        "detail": ("get", reverse("complaints:detail", args=[ticket.number])),
        "transition": ("post", reverse("complaints:transition", args=[ticket.number])),
        "assign": ("post", reverse("complaints:assign", args=[ticket.number])),
        "comment": ("post", reverse("complaints:comment", args=[ticket.number])),
        "attachment": (
            "get",
            reverse("complaints:attachment", args=[ticket.number, attachment.pk if attachment else 1]),
        ),
    }


NAMES = ["list", "create", "customer_tickets", "detail", "transition", "assign", "comment", "attachment"]


# --- Who may reach what --------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_anonymous_users_are_sent_to_log_in(client, ticket, name):
    method, url = urls(ticket)[name]
    response = getattr(client, method)(url)
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("who", ["analyst", "portal_customer", "roleless_user"])
def test_roles_without_the_desk_are_refused(request, client_for, ticket, name, who):
    method, url = urls(ticket)[name]
    response = getattr(client_for(request.getfixturevalue(who)), method)(url)
    assert response.status_code == 403
    assert Ticket.objects.get(pk=ticket.pk).status == T.ASSIGNED


@pytest.mark.parametrize("name", ["detail", "transition", "comment", "attachment", "customer_tickets"])
def test_another_reps_customers_tickets_are_not_found(client_for, sales_rep, other_ticket, name):
    services.ticket_attachment_add(ticket=other_ticket, filename="a.pdf", data=PDF_BYTES, by=None)
    method, url = urls(other_ticket)[name]
    response = getattr(client_for(sales_rep), method)(url, {"to": T.IN_PROGRESS, "body": "x", "comment": "x"})
    assert response.status_code == 404
    assert Ticket.objects.get(pk=other_ticket.pk).status == T.ASSIGNED
    assert not other_ticket.events.filter(kind=TicketEvent.Kind.REPLY).exists()


def test_a_rep_cannot_reassign(client_for, sales_rep, ticket, other_sales_rep):
    response = client_for(sales_rep).post(urls(ticket)["assign"][1], {"to": other_sales_rep.pk})
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("transition", "get"),
        ("assign", "get"),
        ("comment", "get"),
        ("detail", "post"),
        ("list", "post"),
        ("attachment", "post"),
    ],
)
def test_wrong_methods_are_refused(client_for, manager, ticket, name, method):
    _method, url = urls(ticket)[name]
    assert getattr(client_for(manager), method)(url).status_code == 405


# --- The queue -----------------------------------------------------------------------------------


def numbers(response) -> list[str]:
    return [ticket.number for ticket in response.context["page"].object_list]


def test_my_tickets_are_those_assigned_to_me(client_for, service_agent, ticket, other_ticket, customer, sales_rep):
    someone = agent("t_someone_else")
    theirs = file_ticket(customer, sales_rep, category=category("物流配送", someone))
    response = client_for(service_agent).get(reverse("complaints:list"))
    assert response.status_code == 200 and response.context["tab"] == "mine"
    assert set(numbers(response)) == {ticket.number, other_ticket.number}
    team = client_for(service_agent).get(reverse("complaints:list"), {"tab": "team"})
    assert set(numbers(team)) == {ticket.number, other_ticket.number, theirs.number}


@pytest.mark.parametrize("who", ["manager", "sales_rep"])
def test_people_who_take_no_category_start_on_the_queue(request, client_for, ticket, who):
    response = client_for(request.getfixturevalue(who)).get(reverse("complaints:list"))
    assert response.context["tab"] == "team" and numbers(response) == [ticket.number]


def test_a_rep_sees_only_their_customers_tickets(client_for, sales_rep, ticket, other_ticket):
    response = client_for(sales_rep).get(reverse("complaints:list"), {"tab": "team"})
    assert numbers(response) == [ticket.number]
    assert other_ticket.number not in response.content.decode()
    # Searching for the other rep's ticket by its number finds nothing either.
    found = client_for(sales_rep).get(reverse("complaints:list"), {"tab": "team", "q": other_ticket.number})
    assert numbers(found) == []


def test_open_tickets_come_by_due_time_and_the_rest_newest_first(client_for, manager, customer, sales_rep):
    kind = category("其他")
    low = file_ticket(customer, sales_rep, category=kind, severity="low", kind=Ticket.Kind.INQUIRY)
    critical = file_ticket(customer, sales_rep, category=kind, severity="critical", kind=Ticket.Kind.INQUIRY)
    medium = file_ticket(customer, sales_rep, category=kind, severity="medium", kind=Ticket.Kind.INQUIRY)
    client = client_for(manager)
    assert numbers(client.get(reverse("complaints:list"), {"tab": "team"})) == [
        critical.number,
        medium.number,
        low.number,
    ]
    assert numbers(client.get(reverse("complaints:list"), {"tab": "team", "status": "all"})) == [
        medium.number,
        critical.number,
        low.number,
    ]


def test_the_filters_narrow_the_queue(client_for, manager, customer, sales_rep, service_agent):
    kind = category("产品质量", service_agent)
    complaint = file_ticket(customer, sales_rep, category=kind, severity="high")
    inquiry = file_ticket(customer, sales_rep, category=category("账单费用"), kind=Ticket.Kind.INQUIRY, channel="email")
    done = walk(file_ticket(customer, sales_rep, category=kind), T.IN_PROGRESS, T.RESOLVED, by=service_agent)
    client = client_for(manager)

    def listed(**params):
        return set(numbers(client.get(reverse("complaints:list"), {"tab": "team", **params})))

    assert listed() == {complaint.number, inquiry.number}
    assert listed(status="resolved") == {done.number}
    assert listed(status="all") == {complaint.number, inquiry.number, done.number}
    assert listed(status="new") == {inquiry.number}
    assert listed(category=kind.pk, status="all") == {complaint.number, done.number}
    assert listed(severity="high") == {complaint.number}
    assert listed(kind="inquiry") == {inquiry.number}
    assert listed(channel="email") == {inquiry.number}
    assert listed(customer=customer.pk, status="all") == {complaint.number, inquiry.number, done.number}


def test_the_sla_filters_and_badges(client_for, manager, customer, sales_rep):
    kind = category("其他")
    now = timezone.now()
    late = file_ticket(customer, sales_rep, category=kind, kind=Ticket.Kind.INQUIRY)
    soon = file_ticket(customer, sales_rep, category=kind, kind=Ticket.Kind.INQUIRY)
    fine = file_ticket(customer, sales_rep, category=kind, kind=Ticket.Kind.INQUIRY)
    Ticket.objects.filter(pk=late.pk).update(sla_due_at=now - datetime.timedelta(hours=1))
    Ticket.objects.filter(pk=soon.pk).update(sla_due_at=now + datetime.timedelta(minutes=30))
    client = client_for(manager)
    assert numbers(client.get(reverse("complaints:list"), {"tab": "team", "sla": "breached"})) == [late.number]
    assert numbers(client.get(reverse("complaints:list"), {"tab": "team", "sla": "due_soon"})) == [soon.number]
    response = client.get(reverse("complaints:list"), {"tab": "team"}, **EN)
    badges = {t.number: t.sla for t in response.context["page"].object_list}
    assert badges == {late.number: "breached", soon.number: "due_soon", fine.number: "ok"}
    assert 'data-sla="breached"' in response.content.decode() and "Overdue" in response.content.decode()


def test_search_by_number_customer_code_or_name(
    client_for, manager, customer, other_customer, sales_rep, other_sales_rep
):
    kind = category("其他")
    mine = file_ticket(customer, sales_rep, category=kind)
    theirs = file_ticket(other_customer, other_sales_rep, category=kind)
    client = client_for(manager)

    def found(q):
        return numbers(client.get(reverse("complaints:list"), {"tab": "team", "q": q}))

    assert found(mine.number) == [mine.number]
    assert found(mine.number.lower()) == [mine.number]
    assert found(other_customer.code) == [theirs.number]
    assert found("海淀") == [mine.number]
    assert found("T2020-999999") == []


def test_bad_filter_values_are_shown_as_errors_not_500(client_for, service_agent, ticket):
    response = client_for(service_agent).get(
        reverse("complaints:list"),
        {"tab": "nonsense", "status": "archived", "category": "abc", "customer": "-3", "sla": "x", "after": "junk"},
        **EN,
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert {"status", "category", "customer", "sla", "tab"} <= set(form.errors)
    # The bad values are ignored: the agent's own open tickets, first page.
    assert response.context["tab"] == "mine" and numbers(response) == [ticket.number]


def test_the_queue_pages_by_cursor(client_for, manager, customer, sales_rep, monkeypatch):
    from complaints import views

    monkeypatch.setattr(views, "PER_PAGE", 2)
    kind = category("其他")
    tickets = [file_ticket(customer, sales_rep, category=kind, kind=Ticket.Kind.INQUIRY) for _ in range(5)]
    client = client_for(manager)
    seen, pages, query = [], 0, "tab=team"
    while query and pages < 5:
        response = client.get(f"{reverse('complaints:list')}?{query}")
        seen += numbers(response)
        pages += 1
        query = response.context["next_query"]
    assert pages == 3 and seen == [t.number for t in tickets]
    # And back.
    assert response.context["previous_query"]
    back = client.get(f"{reverse('complaints:list')}?{response.context['previous_query']}")
    assert numbers(back) == [t.number for t in tickets[2:4]]


@pytest.mark.parametrize("who", ["manager", "sales_rep", "service_agent"])
def test_the_queue_has_a_query_budget(request, client_for, customer, sales_rep, who, django_assert_max_num_queries):
    user = request.getfixturevalue(who)
    kind = category("产品质量", user) if who == "service_agent" else category("其他")
    for n in range(12):
        file_ticket(customer, sales_rep, category=kind, severity=["low", "high"][n % 2])
    client = client_for(user)
    client.get(reverse("complaints:list"))  # warm the session
    # Session, user, permissions (2), departments headed, the page, the capped count, the
    # categories of the filter, the session's save (3): the same for 12 rows as for 30.
    with django_assert_max_num_queries(12):
        response = client.get(reverse("complaints:list"), {"tab": "team" if who != "service_agent" else "mine"})
    assert len(numbers(response)) == 12


# --- Filing --------------------------------------------------------------------------------------


def test_the_customer_is_found_by_code_among_those_one_may_see(client_for, sales_rep, customer, other_customer):
    client = client_for(sales_rep)
    assert client.get(reverse("complaints:create")).status_code == 200
    response = client.get(reverse("complaints:create"), {"code": customer.code.lower()})
    assert response.status_code == 302 and response["Location"].endswith(f"?customer={customer.pk}")
    hidden = client.get(reverse("complaints:create"), {"code": other_customer.code}, **EN)
    assert hidden.status_code == 200 and "No customer you may see" in hidden.content.decode()
    bad = client.get(reverse("complaints:create"), {"code": "nonsense"}, **EN)
    assert bad.status_code == 200 and "C2026-000123" in bad.content.decode()


def test_a_rep_cannot_file_for_another_reps_customer(client_for, sales_rep, other_customer):
    url = f"{reverse('complaints:create')}?customer={other_customer.pk}"
    assert client_for(sales_rep).get(url).status_code == 404
    assert client_for(sales_rep).post(url, {"subject": "x"}).status_code == 404
    assert not Ticket.objects.exists()


def test_staff_file_a_ticket_with_files(client_for, service_agent, customer):
    contact = ContactFactory(customer=customer)
    kind = category("产品质量", service_agent)
    url = f"{reverse('complaints:create')}?customer={customer.pk}"
    client = client_for(service_agent)
    form = client.get(url)
    assert form.status_code == 200 and customer.name in form.content.decode()
    response = client.post(
        url,
        {
            "kind": "complaint",
            "category": kind.pk,
            "severity": "high",
            "channel": "phone",
            "subject": "屏幕碎裂",
            "description": "收到时屏幕已碎。",
            "contact": contact.pk,
            "files": [SimpleUploadedFile("碎屏.png", PNG_BYTES), SimpleUploadedFile("单据.pdf", PDF_BYTES)],
        },
    )
    ticket = Ticket.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("complaints:detail", args=[ticket.number])
    assert (ticket.customer, ticket.contact, ticket.assignee, ticket.channel) == (
        customer,
        contact,
        service_agent,
        "phone",
    )
    assert sorted(ticket.attachments.values_list("filename", flat=True)) == ["单据.pdf", "碎屏.png"]


def test_bad_filing_input_is_explained(client_for, sales_rep, customer):
    stranger = ContactFactory()
    url = f"{reverse('complaints:create')}?customer={customer.pk}"
    response = client_for(sales_rep).post(
        url,
        {
            "kind": "complaint",
            "category": category().pk,
            "severity": "urgent",
            "channel": "portal",
            "subject": "",
            "description": "x",
            "contact": stranger.pk,
            "files": [SimpleUploadedFile("x.html", b"<html><script>alert(1)</script></html>")],
        },
        **EN,
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert {"severity", "channel", "subject", "contact", "files"} <= set(errors)
    assert "Only PDF" in str(errors["files"])
    assert not Ticket.objects.exists()


@pytest.mark.parametrize(
    ("raw", "status"),
    [("abc", 200), ("-1", 200), ("99999999999999999999", 200), ("²", 200), ("١٢", 200), ("0", 404), ("424242", 404)],
)
def test_an_odd_customer_parameter_is_not_a_500(client_for, sales_rep, raw, status):
    # Not a number: the customer lookup step again; a number that is no customer of theirs: 404.
    response = client_for(sales_rep).get(reverse("complaints:create"), {"customer": raw})
    assert response.status_code == status


# --- A ticket's page -----------------------------------------------------------------------------


def test_the_page_shows_the_whole_timeline_with_internal_notes_marked(client_for, service_agent, ticket):
    services.ticket_comment(ticket=ticket, body="客户很着急", by=service_agent, internal=True)
    services.ticket_comment(ticket=ticket, body="我们明天上门", by=service_agent)
    response = client_for(service_agent).get(reverse("complaints:detail", args=[ticket.number]), **EN)
    body = response.content.decode()
    assert response.status_code == 200
    assert "客户很着急" in body and "我们明天上门" in body and 'data-testid="internal-badge"' in body
    assert "照片.png" in body
    steps = [value for value, _label in response.context["steps"]]
    assert steps == [T.IN_PROGRESS]
    assert response.context["assign_form"] is None  # a plain agent may not reassign


def test_a_manager_sees_the_assign_form(client_for, manager, ticket):
    response = client_for(manager).get(reverse("complaints:detail", args=[ticket.number]))
    assert response.context["assign_form"] is not None and 'data-testid="assign-form"' in response.content.decode()


def test_an_unknown_number_is_not_found(client_for, manager):
    assert client_for(manager).get(reverse("complaints:detail", args=["T2026-999999"])).status_code == 404


def test_the_number_is_matched_in_any_case(client_for, manager, ticket):
    assert client_for(manager).get(reverse("complaints:detail", args=[ticket.number.lower()])).status_code == 200


def test_the_rating_is_shown(client_for, manager, ticket, service_agent):
    walk(ticket, T.IN_PROGRESS, T.RESOLVED, by=service_agent)
    services.ticket_rate(ticket=ticket, rating=2, comment="太慢了")
    body = client_for(manager).get(reverse("complaints:detail", args=[ticket.number])).content.decode()
    assert "2/5" in body and "太慢了" in body


# --- Actions -------------------------------------------------------------------------------------


def test_it_moves_a_ticket_along_the_flow(client_for, service_agent, ticket):
    client = client_for(service_agent)
    url = reverse("complaints:transition", args=[ticket.number])
    response = client.post(url, {"to": T.IN_PROGRESS, "comment": "已联系客户"})
    assert response.status_code == 302 and response["Location"] == reverse("complaints:detail", args=[ticket.number])
    assert Ticket.objects.get(pk=ticket.pk).status == T.IN_PROGRESS
    client.post(url, {"to": T.RESOLVED})
    assert Ticket.objects.get(pk=ticket.pk).status == T.RESOLVED


@pytest.mark.parametrize(
    "posted", [{"to": "archived"}, {"to": T.CLOSED}, {}, {"to": T.RESOLVED, "comment": "x" * 20_000}]
)
def test_a_forbidden_or_unknown_step_is_a_message(client_for, service_agent, ticket, posted):
    response = client_for(service_agent).post(
        reverse("complaints:transition", args=[ticket.number]), posted, follow=True, **EN
    )
    assert response.status_code == 200
    shown = list(response.context["messages"])
    assert shown and {m.level_tag for m in shown} == {"error"}
    assert Ticket.objects.get(pk=ticket.pk).status == T.ASSIGNED


def test_reopening_without_a_reason_is_a_message(client_for, service_agent, ticket):
    walk(ticket, T.IN_PROGRESS, T.RESOLVED, by=service_agent)
    response = client_for(service_agent).post(
        reverse("complaints:transition", args=[ticket.number]), {"to": T.IN_PROGRESS}, follow=True, **EN
    )
    assert "Say why" in " ".join(str(m) for m in response.context["messages"])
    assert Ticket.objects.get(pk=ticket.pk).status == T.RESOLVED


def test_a_manager_reassigns(client_for, manager, ticket):
    other = agent("t_second_agent")
    response = client_for(manager).post(
        reverse("complaints:assign", args=[ticket.number]), {"to": other.pk, "comment": "换人"}, follow=True, **EN
    )
    assert Ticket.objects.get(pk=ticket.pk).assignee == other
    assert "assigned to" in " ".join(str(m) for m in response.context["messages"])


def test_assigning_to_someone_who_is_not_service_staff_is_a_message(client_for, manager, ticket, analyst):
    response = client_for(manager).post(
        reverse("complaints:assign", args=[ticket.number]), {"to": analyst.pk}, follow=True, **EN
    )
    assert response.status_code == 200 and list(response.context["messages"])
    assert Ticket.objects.get(pk=ticket.pk).assignee != analyst


def test_it_sends_a_reply_and_an_internal_note_with_files(client_for, service_agent, ticket):
    client = client_for(service_agent)
    url = reverse("complaints:comment", args=[ticket.number])
    response = client.post(url, {"body": "已安排换货", "files": [SimpleUploadedFile("运单.pdf", PDF_BYTES)]})
    assert response.status_code == 302
    client.post(url, {"body": "仓库缺货", "internal": "on"})
    reply = ticket.events.get(kind=TicketEvent.Kind.REPLY)
    note = ticket.events.get(kind=TicketEvent.Kind.NOTE)
    assert reply.body == "已安排换货" and not reply.internal and note.internal
    assert TicketAttachment.objects.get(filename="运单.pdf").event == reply
    assert Ticket.objects.get(pk=ticket.pk).first_response_at == reply.created_at


def test_an_empty_reply_is_shown_again_with_a_message(client_for, service_agent, ticket):
    response = client_for(service_agent).post(
        reverse("complaints:comment", args=[ticket.number]), {"body": "   "}, **EN
    )
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    assert not ticket.events.filter(kind=TicketEvent.Kind.REPLY).exists()


def test_a_reply_on_a_closed_ticket_is_explained(client_for, service_agent, ticket):
    walk(ticket, T.IN_PROGRESS, T.RESOLVED, T.CLOSED, by=service_agent)
    response = client_for(service_agent).post(
        reverse("complaints:comment", args=[ticket.number]), {"body": "还有一事"}, **EN
    )
    assert response.status_code == 400 and "closed" in response.content.decode()


# --- Files ---------------------------------------------------------------------------------------


def test_a_file_is_downloaded_safely_and_logged(client_for, sales_rep, ticket):
    attachment = ticket.attachments.get()
    response = client_for(sales_rep).get(reverse("complaints:attachment", args=[ticket.number, attachment.pk]))
    assert response.status_code == 200 and response.content == PNG_BYTES
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "no-store" in response["Cache-Control"] and "sandbox" in response["Content-Security-Policy"]
    log = PersonalDataAccess.objects.get(object_type="complaints.ticketattachment")
    assert log.user == sales_rep and ticket.number in log.object_label and "照片" not in log.detail


def test_a_file_of_another_ticket_is_not_served_through_this_one(client_for, manager, ticket, other_ticket):
    foreign = services.ticket_attachment_add(ticket=other_ticket, filename="b.pdf", data=PDF_BYTES, by=None)
    url = reverse("complaints:attachment", args=[ticket.number, foreign.pk])
    assert client_for(manager).get(url).status_code == 404


# --- The 360 page's Tickets tab ------------------------------------------------------------------


def test_the_customer_tab_lists_the_newest_twenty_and_links_the_desk(
    client_for, sales_rep, customer, django_assert_max_num_queries
):
    kind = category("其他")
    tickets = [file_ticket(customer, sales_rep, category=kind, kind=Ticket.Kind.INQUIRY) for _ in range(21)]
    client = client_for(sales_rep)
    client.get(reverse("complaints:list"))
    with django_assert_max_num_queries(10):
        response = client.get(reverse("complaints:customer_tickets", args=[customer.pk]))
    shown = [t.number for t in response.context["tickets"]]
    assert shown == [t.number for t in reversed(tickets)][:20]
    assert response.context["more"]
    desk = client.get(response.context["desk_url"])
    assert len(numbers(desk)) == 21


def test_the_customer_tab_is_empty_for_a_customer_without_tickets(client_for, sales_rep, customer):
    response = client_for(sales_rep).get(reverse("complaints:customer_tickets", args=[customer.pk]))
    assert response.status_code == 200 and 'data-testid="customer-tickets-empty"' in response.content.decode()


def test_the_360_page_loads_the_tab(client_for, sales_rep, customer):
    body = client_for(sales_rep).get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert reverse("complaints:customer_tickets", args=[customer.pk]) in body


def test_a_reps_count_covers_owned_shared_and_recycled_customers_once(client_for, sales_rep, other_sales_rep, customer):
    """The rep's count is a UNION ALL of disjoint parts (TicketQuerySet.visible_parts): each ticket
    they may see counted once, none they may not."""
    from guardian.shortcuts import assign_perm

    shared = CustomerFactory(owner=other_sales_rep)
    assign_perm("customers.view_customer", sales_rep, shared)
    assign_perm("customers.view_customer", sales_rep, customer)  # owned and shared: still once
    binned = CustomerFactory(owner=sales_rep)
    hidden = CustomerFactory(owner=other_sales_rep)
    for owner_customer in (customer, customer, shared, binned, hidden):
        file_ticket(owner_customer, other_sales_rep)
    binned.deleted_at = timezone.now()
    binned.save(update_fields=["deleted_at"])
    response = client_for(sales_rep).get(reverse("complaints:list"), {"tab": "team"})
    visible = Ticket.objects.visible_to(sales_rep)
    assert visible.count() == 4
    assert response.context["count"].value == 4
    assert sorted(numbers(response)) == sorted(visible.values_list("number", flat=True))
