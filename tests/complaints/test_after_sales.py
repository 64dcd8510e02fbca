"""售后中: an open complaint puts the customer there from any status; resolving the last one takes
them back to where they were and gives the owner a 回访 task; reopening brings them back."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from complaints.models import Ticket
from customers import lifecycle
from customers.models import Customer, StatusChange
from customers.services import StatusChangeError, customer_change_status
from followups.models import Task
from tests.complaints.test_services import agent, category, file_ticket, walk
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

C = Customer.Status
T = Ticket.Status


@pytest.fixture
def worker():
    return agent("t_aftersales_agent")


def complaint(customer, by, worker, **kwargs) -> Ticket:
    return file_ticket(customer, by, category=category("产品质量", worker), **kwargs)


def status_of(customer) -> str:
    return Customer.all_objects.get(pk=customer.pk).status


@pytest.mark.parametrize("start", [C.PROSPECT, C.INTENT, C.WON, C.LOST])
def test_the_round_trip_from_any_status(sales_rep, worker, start):
    customer = CustomerFactory(owner=sales_rep, status=start)
    ticket = complaint(customer, sales_rep, worker)
    assert status_of(customer) == C.AFTER_SALES
    into = StatusChange.objects.filter(customer=customer).latest("id")
    assert (into.from_status, into.to_status, into.changed_by) == (start, C.AFTER_SALES, None)
    assert ticket.number in into.reason

    walk(ticket, T.IN_PROGRESS, T.RESOLVED, by=worker)
    assert status_of(customer) == start
    back = StatusChange.objects.filter(customer=customer).latest("id")
    assert (back.from_status, back.to_status) == (C.AFTER_SALES, start)


def test_the_owner_gets_a_follow_up_task_for_tomorrow_at_ten(sales_rep, worker):
    customer = CustomerFactory(owner=sales_rep, status=C.WON)
    ticket = complaint(customer, sales_rep, worker)
    walk(ticket, T.IN_PROGRESS, T.RESOLVED, by=worker)
    task = Task.objects.get(assignee=sales_rep)
    assert task.customer == customer and ticket.number in task.title
    zone = ZoneInfo("Asia/Shanghai")
    due = task.due_at.astimezone(zone)
    assert due.date() == timezone.localdate(timezone.now(), zone) + datetime.timedelta(days=1)
    assert (due.hour, due.minute) == (10, 0)


def test_a_customer_without_an_owner_gets_no_task(sales_rep, worker):
    customer = CustomerFactory(owner=None, status=C.WON)
    walk(complaint(customer, sales_rep, worker), T.IN_PROGRESS, T.RESOLVED, by=worker)
    assert status_of(customer) == C.WON and not Task.objects.exists()


def test_the_customer_stays_while_another_complaint_is_open(sales_rep, worker):
    customer = CustomerFactory(owner=sales_rep, status=C.WON)
    first = complaint(customer, sales_rep, worker)
    second = complaint(customer, sales_rep, worker)
    assert StatusChange.objects.filter(customer=customer).count() == 1  # entered once
    walk(first, T.IN_PROGRESS, T.RESOLVED, by=worker)
    assert status_of(customer) == C.AFTER_SALES and not Task.objects.exists()
    walk(second, T.IN_PROGRESS, T.RESOLVED, by=worker)
    assert status_of(customer) == C.WON and Task.objects.count() == 1


def test_other_kinds_of_ticket_do_not_count(sales_rep, worker):
    customer = CustomerFactory(owner=sales_rep, status=C.WON)
    inquiry = complaint(customer, sales_rep, worker, kind=Ticket.Kind.INQUIRY)
    assert status_of(customer) == C.WON
    ticket = complaint(customer, sales_rep, worker)
    walk(ticket, T.IN_PROGRESS, T.RESOLVED, by=worker)
    assert status_of(customer) == C.WON  # the open inquiry does not keep them in 售后中
    walk(inquiry, T.IN_PROGRESS, T.RESOLVED, by=worker)
    assert StatusChange.objects.filter(customer=customer).count() == 2


def test_reopening_brings_the_customer_back_and_resolving_again_returns_them(sales_rep, worker, portal_customer):
    customer = CustomerFactory(owner=sales_rep, status=C.INTENT)
    ticket = walk(complaint(customer, sales_rep, worker), T.IN_PROGRESS, T.RESOLVED, by=worker)
    assert status_of(customer) == C.INTENT
    from complaints import services

    ticket = services.ticket_transition(
        ticket=ticket, to=T.IN_PROGRESS, by=portal_customer, by_customer=True, comment="又坏了"
    )
    assert status_of(customer) == C.AFTER_SALES
    walk(ticket, T.RESOLVED, by=worker)
    assert status_of(customer) == C.INTENT
    assert Task.objects.filter(assignee=sales_rep).count() == 2


def test_closing_a_resolved_complaint_changes_nothing_more(sales_rep, worker):
    customer = CustomerFactory(owner=sales_rep, status=C.WON)
    ticket = walk(complaint(customer, sales_rep, worker), T.IN_PROGRESS, T.RESOLVED, by=worker)
    changes = StatusChange.objects.count()
    walk(ticket, T.CLOSED, by=worker)
    assert status_of(customer) == C.WON and StatusChange.objects.count() == changes and Task.objects.count() == 1


def test_a_person_who_moved_the_customer_meanwhile_is_not_overruled(sales_rep, worker):
    customer = CustomerFactory(owner=sales_rep, status=C.WON)
    ticket = complaint(customer, sales_rep, worker)
    customer_change_status(customer=customer, to=C.LOST, by=sales_rep, reason="转投竞争对手")
    walk(ticket, T.IN_PROGRESS, T.RESOLVED, by=worker)
    assert status_of(customer) == C.LOST
    assert Task.objects.filter(assignee=sales_rep).exists()  # the rep still hears of it


# --- The flow table's part -----------------------------------------------------------------------


def test_people_still_cannot_choose_after_sales_or_leave_it_to_an_earlier_status():
    for status in C.values:
        assert C.AFTER_SALES not in dict(lifecycle.choices_for(status))
    assert {value for value, _label in lifecycle.choices_for(C.AFTER_SALES)} == {C.WON, C.LOST}


def test_a_person_may_still_mark_an_after_sales_customer_lost_with_a_reason(sales_rep):
    customer = CustomerFactory(owner=sales_rep, status=C.AFTER_SALES)
    with pytest.raises(StatusChangeError):
        customer_change_status(customer=customer, to=C.LOST, by=sales_rep)
    customer_change_status(customer=customer, to=C.LOST, by=sales_rep, reason="不再合作")
    assert status_of(customer) == C.LOST


def test_a_person_cannot_put_a_customer_into_after_sales(sales_rep):
    customer = CustomerFactory(owner=sales_rep, status=C.PROSPECT)
    with pytest.raises(StatusChangeError):
        customer_change_status(customer=customer, to=C.AFTER_SALES, by=sales_rep)
