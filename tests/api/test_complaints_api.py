"""The API of tickets (complaints.api): filing, the desk's actions and who reaches which ticket."""

from __future__ import annotations

import datetime

import pytest
from django.test import override_settings
from django.urls import reverse

from accounts.models import ApiToken
from cims.models import PersonalDataAccess
from complaints.models import Ticket, TicketEvent
from customers.models import Customer
from tests.api.conftest import ApiClient
from tests.complaints.test_services import agent, category, file_ticket, walk
from tests.customers.factories import ContactFactory, CustomerFactory

pytestmark = pytest.mark.django_db

T = Ticket.Status


def url(pk: int | None = None, action: str = "") -> str:
    if action:
        return reverse(f"api:complaint-{action}", args=[pk])
    if pk is None:
        return reverse("api:complaint-list")
    return reverse("api:complaint-detail", args=[pk])


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(owner=sales_rep, name="海淀科技")


@pytest.fixture
def other_customer(other_sales_rep):
    return CustomerFactory(owner=other_sales_rep, name="朝阳贸易")


@pytest.fixture
def quality(service_agent):
    return category("产品质量", service_agent)


@pytest.fixture
def ticket(customer, sales_rep, quality):
    return file_ticket(customer, sales_rep, category=quality)


@pytest.fixture
def other_ticket(other_customer, other_sales_rep, quality):
    return file_ticket(other_customer, other_sales_rep, category=quality)


@pytest.fixture
def rep_api(api_for, sales_rep):
    return api_for(sales_rep)[0]


@pytest.fixture
def desk_api(api_for, service_agent):
    return api_for(service_agent)[0]


def fields_of(response) -> dict:
    return response.json()["error"].get("fields", {})


def code_of(response) -> str:
    return response.json()["error"]["code"]


def filing(customer, quality, **extra) -> dict:
    return {
        "customer": customer.pk,
        "category": quality.pk,
        "severity": "high",
        "subject": "洗衣机漏水",
        "description": "安装后第二天开始漏水。",
        **extra,
    }


# --- Who may reach what --------------------------------------------------------------------------


def test_it_answers_anonymous_requests_with_401(ticket):
    assert ApiClient(None).get(url()).status_code == 401
    assert ApiClient(None).post(url(ticket.pk, "transition"), {"to": "in_progress"}).status_code == 401


@pytest.mark.parametrize("path", ["list", "categories"])
def test_it_refuses_the_analyst(api_for, analyst, path):
    target = url() if path == "list" else reverse("api:ticket-category-list")
    response = api_for(analyst)[0].get(target)
    assert response.status_code == 403 and code_of(response) == "permission_denied"


def test_it_hides_another_reps_customers_tickets(rep_api, ticket, other_ticket):
    assert [row["id"] for row in rep_api.get(url()).json()["results"]] == [ticket.pk]
    assert rep_api.get(url(other_ticket.pk)).status_code == 404
    response = rep_api.post(url(other_ticket.pk, "comments"), {"body": "你好"})
    assert response.status_code == 404
    response = rep_api.post(url(other_ticket.pk, "transition"), {"to": "in_progress"})
    assert response.status_code == 404
    assert not other_ticket.events.filter(kind=TicketEvent.Kind.REPLY).exists()


def test_it_refuses_to_file_for_a_customer_out_of_reach(rep_api, other_customer, quality):
    response = rep_api.post(url(), filing(other_customer, quality))
    assert response.status_code == 404
    assert not Ticket.objects.exists()


def test_it_refuses_writes_with_a_read_only_token(api_for, service_agent, ticket):
    api, _token = api_for(service_agent, scope=ApiToken.Scope.READ)
    response = api.post(url(ticket.pk, "transition"), {"to": "in_progress"})
    assert response.status_code == 403 and code_of(response) == "read_only_token"


def test_it_offers_no_plain_update_of_a_ticket(desk_api, ticket):
    response = desk_api.patch(url(ticket.pk), {"status": "closed"})
    assert response.status_code == 405
    ticket.refresh_from_db()
    assert ticket.status == T.ASSIGNED


def test_only_a_service_lead_may_assign(desk_api, api_for, manager, ticket):
    colleague = agent("t_service2")
    response = desk_api.post(url(ticket.pk, "assign"), {"to": colleague.pk})
    assert response.status_code == 403  # complaints.assign_ticket is a lead's
    response = api_for(manager)[0].post(url(ticket.pk, "assign"), {"to": colleague.pk, "comment": "请跟进"})
    assert response.status_code == 200, response.json()
    ticket.refresh_from_db()
    assert ticket.assignee == colleague
    response = api_for(manager)[0].post(url(ticket.pk, "assign"), {"to": manager.pk + 1000})
    assert response.status_code == 400 and "to" in fields_of(response)


# --- Filing --------------------------------------------------------------------------------------


def test_it_files_a_ticket_assigned_and_due_as_the_desk_does(rep_api, customer, quality, service_agent, sales_rep):
    contact = ContactFactory(customer=customer)
    with override_settings(SLA_HOURS={"critical": 4, "high": 24, "medium": 72, "low": 120}):
        response = rep_api.post(url(), filing(customer, quality, contact=contact.pk))
    assert response.status_code == 201, response.json()
    ticket = Ticket.objects.get()
    assert (ticket.status, ticket.assignee, ticket.created_by, ticket.contact) == (
        T.ASSIGNED,
        service_agent,
        sales_rep,
        contact,
    )
    assert ticket.sla_due_at - ticket.created_at == datetime.timedelta(hours=24)
    data = response.json()
    assert data["number"] == ticket.number and data["assignee_name"] == service_agent.display_name
    assert [event["kind"] for event in data["events"]] == ["created", "assigned"]
    customer.refresh_from_db()
    assert customer.status == Customer.Status.AFTER_SALES  # a complaint: 售后中


@pytest.mark.parametrize(
    "change,field",
    [
        ({"subject": ""}, "subject"),
        ({"severity": "apocalyptic"}, "severity"),
        ({"channel": "portal"}, "channel"),
        ({"category": 999999}, "category"),
    ],
)
def test_it_validates_a_filing_with_the_desk_form(rep_api, customer, quality, change, field):
    response = rep_api.post(url(), filing(customer, quality, **change))
    assert response.status_code == 400 and field in fields_of(response)
    assert not Ticket.objects.exists()


def test_it_refuses_a_contact_of_another_customer(rep_api, customer, quality, sales_rep):
    stranger = ContactFactory(customer=CustomerFactory(owner=sales_rep))
    response = rep_api.post(url(), filing(customer, quality, contact=stranger.pk))
    assert response.status_code == 400 and "contact" in fields_of(response)


@pytest.mark.parametrize("field", ["status", "assignee", "number", "sla_due_at", "created_by", "rating"])
def test_it_refuses_server_set_ticket_fields(rep_api, customer, quality, service_agent, field):
    response = rep_api.post(url(), filing(customer, quality, **{field: service_agent.pk}))
    assert response.status_code == 400 and code_of(response) == "field_not_allowed"
    assert list(fields_of(response)) == [field]
    assert not Ticket.objects.exists()


def test_it_files_a_ticket_once_for_a_repeated_idempotency_key(rep_api, customer, quality):
    first = rep_api.post(url(), filing(customer, quality), HTTP_IDEMPOTENCY_KEY="call-1")
    second = rep_api.post(url(), filing(customer, quality), HTTP_IDEMPOTENCY_KEY="call-1")
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["number"] == second.json()["number"] and Ticket.objects.count() == 1


# --- The flow and comments -----------------------------------------------------------------------


def test_it_moves_a_ticket_along_the_flow(desk_api, ticket, service_agent):
    response = desk_api.post(url(ticket.pk, "transition"), {"to": "in_progress", "comment": "开始处理"})
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "in_progress"
    assert response.json()["steps"] == [{"to": "resolved", "label": "Resolve"}]
    event = TicketEvent.objects.filter(kind=TicketEvent.Kind.STATUS).get()
    assert (event.from_status, event.to_status, event.actor, event.body) == (
        "assigned",
        "in_progress",
        service_agent,
        "开始处理",
    )


def test_it_refuses_an_illegal_transition_with_a_code(desk_api, ticket):
    response = desk_api.post(url(ticket.pk, "transition"), {"to": "closed"})
    assert response.status_code == 409 and code_of(response) == "transition_refused"
    response = desk_api.post(url(ticket.pk, "transition"), {"to": "sideways"})
    assert response.status_code == 400 and "to" in fields_of(response)
    ticket.refresh_from_db()
    assert ticket.status == T.ASSIGNED


def test_reopening_needs_a_comment(desk_api, ticket, service_agent):
    walk(ticket, T.IN_PROGRESS, T.RESOLVED, by=service_agent)
    response = desk_api.post(url(ticket.pk, "transition"), {"to": "in_progress"})
    assert response.status_code == 400 and fields_of(response)["comment"][0]["code"] == "required"
    response = desk_api.post(url(ticket.pk, "transition"), {"to": "in_progress", "comment": "客户说还在漏"})
    assert response.status_code == 200


def test_it_adds_a_reply_and_an_internal_note(desk_api, ticket):
    response = desk_api.post(url(ticket.pk, "comments"), {"body": "已安排上门"})
    assert response.status_code == 201, response.json()
    assert (response.json()["kind"], response.json()["internal"]) == ("reply", False)
    response = desk_api.post(url(ticket.pk, "comments"), {"body": "备件缺货", "internal": True})
    assert response.json()["kind"] == "note"
    ticket.refresh_from_db()
    assert ticket.first_response_at is not None
    response = desk_api.post(url(ticket.pk, "comments"), {"body": " "})
    assert response.status_code == 400 and "body" in fields_of(response)


def test_a_closed_ticket_takes_no_reply(desk_api, ticket, service_agent):
    walk(ticket, T.IN_PROGRESS, T.RESOLVED, T.CLOSED, by=service_agent)
    response = desk_api.post(url(ticket.pk, "comments"), {"body": "还有问题吗"})
    assert response.status_code == 409 and code_of(response) == "comment_refused"


def test_it_shows_staff_the_whole_timeline_and_logs_the_view(desk_api, ticket, service_agent):
    data = desk_api.get(url(ticket.pk)).json()
    assert [(event["kind"], event["internal"]) for event in data["events"]] == [
        ("created", False),
        ("assigned", True),
    ]
    log = PersonalDataAccess.objects.get(object_type="complaints.ticket")
    assert (log.user, log.object_id) == (service_agent, str(ticket.pk))


# --- The list ------------------------------------------------------------------------------------


def test_it_lists_open_tickets_unless_asked_for_all(desk_api, ticket, other_ticket, service_agent):
    walk(other_ticket, T.IN_PROGRESS, T.RESOLVED, by=service_agent)
    assert [row["id"] for row in desk_api.get(url()).json()["results"]] == [ticket.pk]
    rows = desk_api.get(url(), {"status": "all"}).json()["results"]
    assert [row["id"] for row in rows] == [other_ticket.pk, ticket.pk]
    rows = desk_api.get(url(), {"status": "resolved"}).json()["results"]
    assert [row["id"] for row in rows] == [other_ticket.pk]


def test_it_filters_tickets_by_severity_assignee_and_number(desk_api, customer, sales_rep, quality, service_agent):
    high = file_ticket(customer, sales_rep, category=quality, severity=Ticket.Severity.HIGH)
    low = file_ticket(customer, sales_rep, category=category("其他"), severity=Ticket.Severity.LOW)
    assert [row["id"] for row in desk_api.get(url(), {"severity": "high"}).json()["results"]] == [high.pk]
    rows = desk_api.get(url(), {"assignee": service_agent.pk}).json()["results"]
    assert [row["id"] for row in rows] == [high.pk]
    assert [row["id"] for row in desk_api.get(url(), {"q": low.number}).json()["results"]] == [low.pk]


@pytest.mark.parametrize("params,field", [({"severity": "x"}, "severity"), ({"category": "abc"}, "category")])
def test_it_refuses_a_bad_filter_by_name(desk_api, params, field):
    response = desk_api.get(url(), params)
    assert response.status_code == 400 and field in fields_of(response)


def test_it_lists_tickets_within_a_query_budget(desk_api, customer, sales_rep, quality, django_assert_max_num_queries):
    contact = ContactFactory(customer=customer)
    for index in range(32):
        file_ticket(customer, sales_rep, category=quality, contact=contact if index % 2 else None)
    with django_assert_max_num_queries(8):
        response = desk_api.get(url(), {"page_size": 50})
    assert len(response.json()["results"]) == 32


def test_it_lists_the_ticket_categories(desk_api, quality):
    category("物流配送")
    names = [row["name"] for row in desk_api.get(reverse("api:ticket-category-list")).json()["results"]]
    assert {"产品质量", "物流配送"} <= set(names)
