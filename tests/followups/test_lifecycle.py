"""Lifecycle status changes: the flow's table enforced by customer_change_status, the status page,
and the customer edit form that may no longer change the status freely."""

import threading

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import translation

from customers.models import Customer, StatusChange
from customers.services import StatusChangeError, customer_change_status
from tests.customers.factories import CustomerFactory

S = Customer.Status
pytestmark = pytest.mark.django_db


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(owner=sales_rep, status=S.PROSPECT)


def status_url(customer):
    return reverse("followups:status", args=[customer.pk])


# --- The service ---------------------------------------------------------------------------------


def test_it_changes_the_status_with_an_event_and_history(sales_rep, customer):
    change = customer_change_status(customer=customer, to=S.INTENT, by=sales_rep, reason="有预算")
    customer.refresh_from_db()
    assert customer.status == S.INTENT
    assert (change.from_status, change.to_status, change.reason, change.changed_by) == (
        S.PROSPECT,
        S.INTENT,
        "有预算",
        sales_rep,
    )
    latest = customer.history.latest()
    assert latest.status == S.INTENT and latest.history_user == sales_rep and latest.history_change_reason == "有预算"


def test_it_refuses_a_forbidden_transition_with_a_message_and_writes_nothing(sales_rep):
    customer = CustomerFactory(owner=sales_rep, status=S.LOST)
    before = customer.history.count()
    with translation.override("en"), pytest.raises(StatusChangeError, match="cannot go from"):
        customer_change_status(customer=customer, to=S.WON, by=sales_rep)
    customer.refresh_from_db()
    assert customer.status == S.LOST and not StatusChange.objects.exists() and customer.history.count() == before


def test_the_message_is_translated(sales_rep):
    customer = CustomerFactory(owner=sales_rep, status=S.LOST)
    with translation.override("zh-hans"), pytest.raises(StatusChangeError) as chinese:
        customer_change_status(customer=customer, to=S.WON, by=sales_rep)
    with translation.override("zh-hans"):
        label = str(S.WON.label)
    # Made in the user's language (the status labels at least; the sentence once the catalogue has it).
    assert label != "Won" and f"“{label}”" in str(chinese.value)


def test_lost_needs_a_reason(sales_rep, customer):
    with pytest.raises(StatusChangeError):
        customer_change_status(customer=customer, to=S.LOST, by=sales_rep, reason="  ")
    assert not StatusChange.objects.exists()
    customer_change_status(customer=customer, to=S.LOST, by=sales_rep, reason="选了竞争对手")
    assert Customer.objects.get(pk=customer.pk).status == S.LOST


def test_after_sales_is_for_the_complaints_module_only(sales_rep):
    customer = CustomerFactory(owner=sales_rep, status=S.WON)
    with pytest.raises(StatusChangeError):
        customer_change_status(customer=customer, to=S.AFTER_SALES, by=sales_rep)
    customer_change_status(customer=customer, to=S.AFTER_SALES, by=None, reason="投诉 #1", system=True)
    assert Customer.objects.get(pk=customer.pk).status == S.AFTER_SALES


def test_it_refuses_the_same_status_and_unknown_ones(sales_rep, customer):
    for target in (S.PROSPECT, "vip"):
        with pytest.raises(StatusChangeError):
            customer_change_status(customer=customer, to=target, by=sales_rep)


def test_it_checks_against_the_stored_status_not_a_stale_object(sales_rep, customer):
    stale = Customer.objects.get(pk=customer.pk)
    customer_change_status(customer=customer, to=S.LOST, by=sales_rep, reason="r")
    with pytest.raises(StatusChangeError):
        customer_change_status(customer=stale, to=S.WON, by=sales_rep)  # lost → won is not allowed


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_changes_are_serialised(sales_rep):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    customer = CustomerFactory(owner=sales_rep, status=S.PROSPECT)
    results, barrier = [], threading.Barrier(2)

    def change(target):
        from django.db import connections

        barrier.wait()
        try:
            customer_change_status(customer=Customer.objects.get(pk=customer.pk), to=target, by=sales_rep, reason="r")
            results.append(("ok", target))
        except StatusChangeError:
            results.append(("refused", target))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=change, args=(t,)) for t in (S.WON, S.INTENT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    changes = list(StatusChange.objects.filter(customer=customer).order_by("id"))
    # Both apply in turn from the status the other left, or the second is refused: never both from 潜在客户.
    assert [c.from_status for c in changes].count(S.PROSPECT) == 1
    final = Customer.objects.get(pk=customer.pk).status
    assert final == changes[-1].to_status


# --- The status page -----------------------------------------------------------------------------


def test_the_page_offers_only_allowed_targets(sales_rep, client_for, customer):
    response = client_for(sales_rep).get(status_url(customer))
    choices = [value for value, _ in response.context["form"].fields["to"].choices]
    assert choices == [S.INTENT, S.WON, S.LOST]


def test_the_page_changes_the_status(sales_rep, client_for, customer):
    response = client_for(sales_rep).post(status_url(customer), {"to": S.INTENT, "reason": ""})
    assert response.status_code == 302
    assert Customer.objects.get(pk=customer.pk).status == S.INTENT


def test_the_page_asks_for_a_reason_to_lose(sales_rep, client_for, customer):
    client = client_for(sales_rep)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    response = client.post(status_url(customer), {"to": S.LOST, "reason": ""})
    assert response.status_code == 422 and "Say why the customer is lost." in response.content.decode()
    response = client.post(status_url(customer), {"to": S.AFTER_SALES, "reason": ""})
    assert response.status_code == 422
    assert Customer.objects.get(pk=customer.pk).status == S.PROSPECT and not StatusChange.objects.exists()


def test_the_page_refuses_outsiders(other_sales_rep, service_agent, analyst, client_for, client, customer):
    assert client.get(status_url(customer)).status_code == 302
    assert client_for(other_sales_rep).get(status_url(customer)).status_code == 404
    assert client_for(service_agent).get(status_url(customer)).status_code == 403
    assert client_for(analyst).post(status_url(customer), {"to": S.INTENT}).status_code == 403
    assert Customer.objects.get(pk=customer.pk).status == S.PROSPECT


def test_the_page_refuses_the_wrong_method(sales_rep, client_for, customer):
    assert client_for(sales_rep).delete(status_url(customer)).status_code == 405


# --- The customer edit form ----------------------------------------------------------------------


def test_the_edit_form_offers_only_allowed_targets(sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep, status=S.LOST)
    response = client_for(sales_rep).get(reverse("customers:edit", args=[customer.pk]))
    choices = [value for value, _ in response.context["form"].fields["status"].choices]
    assert choices == [S.PROSPECT, S.INTENT, S.LOST]


def test_the_edit_form_routes_a_change_through_the_service(sales_rep, client_for, customer):
    from customers.forms import CustomerForm

    form = CustomerForm(instance=customer, user=sales_rep, custom_fields=[])
    data = {name: value for name, value in form.initial.items() if value is not None and name in form.fields}
    data.update({"kind": customer.kind, "name": customer.name, "status": S.INTENT, "tags": []})
    data.update({"contacts-TOTAL_FORMS": "0", "contacts-INITIAL_FORMS": "0", "save_anyway": "on"})
    response = client_for(sales_rep).post(reverse("customers:edit", args=[customer.pk]), data)
    assert response.status_code == 302, response.context["form"].errors
    change = StatusChange.objects.get(customer=customer)
    assert (change.from_status, change.to_status, change.changed_by) == (S.PROSPECT, S.INTENT, sales_rep)
    assert Customer.objects.get(pk=customer.pk).status == S.INTENT
