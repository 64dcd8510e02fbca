"""Automatic assignment (fewest open tickets, round robin on ties, the queue when a category has no
agent) and assignment by hand (a service lead's permission)."""

from __future__ import annotations

from collections import Counter

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.utils import translation

from complaints import services
from complaints.models import Ticket, TicketEvent
from complaints.services import TicketError
from tests.complaints.test_services import agent, category, file_ticket, walk
from tests.concurrency import run_at_once
from tests.customers.factories import CustomerFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

T = Ticket.Status


@pytest.fixture
def agents():
    return [agent("t_agent_a"), agent("t_agent_b"), agent("t_agent_c")]


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(owner=sales_rep)


def test_it_spreads_open_tickets_evenly(agents, customer, sales_rep):
    kind = category("产品质量", *agents)
    tickets = [file_ticket(customer, sales_rep, category=kind) for _ in range(9)]
    assert Counter(t.assignee.username for t in tickets) == {"t_agent_a": 3, "t_agent_b": 3, "t_agent_c": 3}
    assert all(t.status == T.ASSIGNED for t in tickets)


def test_it_takes_turns_when_everyone_is_free(agents, customer, sales_rep):
    # Each ticket is resolved at once, so every agent always has 0 open: the tie-break decides.
    kind = category("产品质量", *agents)
    order = []
    for _ in range(9):
        ticket = file_ticket(customer, sales_rep, category=kind)
        order.append(ticket.assignee.username)
        walk(ticket, T.IN_PROGRESS, T.RESOLVED, by=ticket.assignee)
    assert order == ["t_agent_a", "t_agent_b", "t_agent_c"] * 3


def test_the_agent_with_fewest_open_tickets_wins(agents, customer, sales_rep):
    a, b, c = agents
    kind = category("产品质量", a, b, c)
    for _ in range(2):
        file_ticket(customer, sales_rep, category=category("物流配送", a))
    file_ticket(customer, sales_rep, category=category("账单费用", b))
    # Open: a 2, b 1, c 0.
    picked = [file_ticket(customer, sales_rep, category=kind).assignee for _ in range(4)]
    # c (0); then b and c tie at 1 and b's newest ticket is older; then c (1); then all tie at 2
    # and a's newest ticket is the oldest.
    assert picked == [c, b, c, a]


def test_it_writes_a_system_assigned_event_and_notifies(agents, customer, sales_rep):
    ticket = file_ticket(customer, sales_rep, category=category("产品质量", agents[0]))
    event = ticket.events.get(kind=TicketEvent.Kind.ASSIGNED)
    assert event.actor is None and not event.by_customer and event.internal
    assert (event.from_status, event.to_status) == (T.NEW, T.ASSIGNED)
    assert agents[0].notifications.filter(key__startswith=f"ticket:{ticket.pk}:assigned").count() == 1


def test_a_category_without_agents_leaves_the_ticket_in_the_queue(customer, sales_rep):
    ticket = file_ticket(customer, sales_rep, category=category("其他"))
    assert ticket.status == T.NEW and ticket.assignee is None
    assert not ticket.events.filter(kind=TicketEvent.Kind.ASSIGNED).exists()


def test_inactive_agents_and_agents_without_the_permission_are_skipped(customer, sales_rep, analyst):
    gone = agent("t_gone", is_active=False)
    kind = category("服务态度", gone, analyst)
    assert file_ticket(customer, sales_rep, category=kind).assignee is None
    worker = agent("t_worker")
    kind.agents.add(worker)
    assert file_ticket(customer, sales_rep, category=kind).assignee == worker


# --- By hand -------------------------------------------------------------------------------------


def test_a_manager_reassigns_with_an_event_and_a_notification(agents, manager, customer, sales_rep):
    ticket = file_ticket(customer, sales_rep, category=category("产品质量", agents[0]))
    moved = services.ticket_assign(ticket=ticket, to=agents[1], by=manager, comment="a 休假")
    assert moved.assignee == agents[1] and moved.status == T.ASSIGNED
    event = moved.events.filter(kind=TicketEvent.Kind.ASSIGNED).latest("id")
    assert event.actor == manager and "a 休假" in event.body and agents[1].display_name in event.body
    assert agents[1].notifications.filter(key__startswith=f"ticket:{ticket.pk}:assigned").exists()


def test_assigning_a_queued_ticket_marks_it_assigned(manager, service_agent, customer, sales_rep):
    ticket = file_ticket(customer, sales_rep, category=category("其他"))
    moved = services.ticket_assign(ticket=ticket, to=service_agent, by=manager)
    assert moved.status == T.ASSIGNED
    assert moved.events.filter(kind=TicketEvent.Kind.ASSIGNED, from_status=T.NEW, to_status=T.ASSIGNED).exists()


def test_only_a_lead_may_reassign(service_agent, agents, customer, sales_rep):
    ticket = file_ticket(customer, sales_rep, category=category("产品质量", agents[0]))
    with translation.override("en"), pytest.raises(TicketError, match="may not reassign"):
        services.ticket_assign(ticket=ticket, to=agents[1], by=service_agent)
    lead = agent("t_lead")
    lead.user_permissions.add(Permission.objects.get(codename="assign_ticket"))
    lead = type(lead).objects.get(pk=lead.pk)  # fresh permission cache
    assert services.ticket_assign(ticket=ticket, to=agents[1], by=lead).assignee == agents[1]


def test_it_assigns_only_to_active_service_staff(manager, analyst, customer, sales_rep, other_sales_rep):
    ticket = file_ticket(customer, sales_rep, category=category("其他"))
    gone = agent("t_gone", is_active=False)
    for target in (analyst, gone, None, other_sales_rep):  # a rep changes tickets, only their customers'
        with translation.override("en"), pytest.raises(TicketError, match="active service staff"):
            services.ticket_assign(ticket=ticket, to=target, by=manager)
    assert Ticket.objects.get(pk=ticket.pk).assignee is None


def test_a_closed_ticket_is_not_reassigned(manager, agents, customer, sales_rep):
    ticket = file_ticket(customer, sales_rep, category=category("产品质量", agents[0]))
    walk(ticket, T.IN_PROGRESS, T.RESOLVED, T.CLOSED, by=agents[0])
    with pytest.raises(TicketError):
        services.ticket_assign(ticket=ticket, to=agents[1], by=manager)


# --- Two at once ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises writers; the lock is PostgreSQL's")
def test_tickets_filed_at_once_do_not_pick_by_a_stale_count():
    from accounts import roles

    owner = UserFactory(username="t_race_owner", role=roles.SALES)
    workers = [agent(f"t_race_{n}") for n in range(3)]
    kind = category("产品质量", *workers)
    customers = [CustomerFactory(owner=owner) for _ in range(6)]
    queue = list(customers)

    def one():
        return file_ticket(queue.pop(), owner, category=kind, kind=Ticket.Kind.INQUIRY).assignee_id

    results, errors = run_at_once(one, 6)
    assert errors == []
    assert sorted(Counter(results).values()) == [2, 2, 2]


def test_a_sales_rep_in_a_category_is_never_picked_nor_offered(other_sales_rep, agents, customer, sales_rep):
    """A rep may change tickets, but only of their own customers: a ticket given to them would vanish."""
    kind = category("物流配送", other_sales_rep, agents[0])
    tickets = [file_ticket(customer, sales_rep, category=kind) for _ in range(3)]
    assert {t.assignee for t in tickets} == {agents[0]}
    assert other_sales_rep not in services.assignees()
