"""SLA flags with a frozen clock, and the job that warns assignees and escalates to managers —
exactly once, however often it runs."""

from __future__ import annotations

import datetime

import pytest
from django.test import override_settings
from django.utils import timezone

from accounts import roles
from complaints import services, tasks
from complaints.models import Ticket, TicketEvent
from followups.models import Notification
from tests.complaints.test_services import agent, category, file_ticket, walk
from tests.customers.factories import CustomerFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

T = Ticket.Status
HOUR = datetime.timedelta(hours=1)
SLA = {"critical": 4, "high": 24, "medium": 72, "low": 120}


@pytest.fixture(autouse=True)
def _sla_settings():
    with override_settings(SLA_HOURS=SLA, SLA_WARNING_HOURS=2):
        yield


@pytest.fixture
def worker():
    return agent("t_sla_agent")


@pytest.fixture
def ticket(worker, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    return file_ticket(customer, sales_rep, category=category("产品质量", worker), severity="critical")


def test_the_state_follows_the_clock(ticket):
    due = ticket.sla_due_at
    assert ticket.sla_due_at - ticket.created_at == 4 * HOUR
    assert services.sla_state(ticket, now=due - 3 * HOUR) == "ok"
    assert services.sla_state(ticket, now=due - 2 * HOUR) == "due_soon"
    assert services.sla_state(ticket, now=due - datetime.timedelta(minutes=1)) == "due_soon"
    assert services.sla_state(ticket, now=due) == "breached"
    assert services.sla_state(ticket, now=due + 5 * HOUR) == "breached"


def test_a_resolved_ticket_has_no_sla_state(ticket, worker):
    ticket = walk(ticket, T.IN_PROGRESS, T.RESOLVED, by=worker)
    assert services.sla_state(ticket, now=ticket.sla_due_at + HOUR) == ""


def test_it_warns_the_assignee_once_before_the_due_time(ticket, worker):
    now = ticket.sla_due_at - 90 * datetime.timedelta(minutes=1)
    assert services.check_sla(now=now) == 1
    assert services.check_sla(now=now + datetime.timedelta(minutes=5)) == 0
    warning = worker.notifications.get(key=services.sla_warning_key(ticket.pk))
    assert ticket.number in warning.title
    assert Ticket.objects.get(pk=ticket.pk).escalated_at is None


def test_nothing_happens_while_the_ticket_is_far_from_due(ticket):
    assert services.check_sla(now=ticket.sla_due_at - 3 * HOUR) == 0
    assert not Notification.objects.filter(key__contains="sla").exists()


def test_a_breach_escalates_once_to_managers_and_the_assignee(ticket, worker, manager):
    second_manager = UserFactory(username="t_manager2", role=roles.MANAGER)
    retired = UserFactory(username="t_manager3", role=roles.MANAGER, is_active=False)
    now = ticket.sla_due_at + datetime.timedelta(minutes=1)
    assert services.check_sla(now=now) == 1
    assert tasks.check_sla.run() == 0  # the Celery task, later: nothing left to do
    assert services.check_sla(now=now + HOUR) == 0
    stored = Ticket.objects.get(pk=ticket.pk)
    assert stored.escalated_at == now
    event = stored.events.get(kind=TicketEvent.Kind.ESCALATED)
    assert event.internal and event.actor is None
    key = services.sla_escalation_key(ticket.pk)
    assert set(Notification.objects.filter(key=key).values_list("user__username", flat=True)) == {
        manager.username,
        second_manager.username,
        worker.username,
    }
    assert not retired.notifications.exists()


def test_an_unassigned_breach_still_reaches_the_managers(manager, sales_rep):
    ticket = file_ticket(CustomerFactory(owner=sales_rep), sales_rep, category=category("其他"), severity="low")
    assert services.check_sla(now=ticket.sla_due_at + HOUR) == 1
    assert manager.notifications.filter(key=services.sla_escalation_key(ticket.pk)).exists()


def test_resolved_tickets_are_never_escalated(ticket, worker, manager):
    walk(ticket, T.IN_PROGRESS, T.RESOLVED, by=worker)
    assert services.check_sla(now=ticket.sla_due_at + HOUR) == 0
    assert Ticket.objects.get(pk=ticket.pk).escalated_at is None


def test_a_ticket_warned_then_breached_gets_both_once(ticket, worker):
    assert services.check_sla(now=ticket.sla_due_at - HOUR) == 1
    assert services.check_sla(now=ticket.sla_due_at + HOUR) == 1
    assert services.check_sla(now=ticket.sla_due_at + 2 * HOUR) == 0
    assert worker.notifications.count() == 3  # assigned, warned, escalated


def test_the_default_clock_is_now(worker, sales_rep):
    ticket = file_ticket(CustomerFactory(owner=sales_rep), sales_rep, category=category("产品质量", worker))
    Ticket.objects.filter(pk=ticket.pk).update(sla_due_at=timezone.now() - HOUR)
    assert services.check_sla() == 1
