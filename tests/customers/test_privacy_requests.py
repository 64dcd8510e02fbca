"""The managers' queue of personal-data requests: the list (filters, newest first, keyset pages,
query budget), a request's page, and the decisions (approve, refuse with a reason, mark done)."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from customers import privacy, privacy_views
from customers.models import Customer, DataRequest
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

LIST = reverse("customers:data_requests")


def _detail(data_request) -> str:
    return reverse("customers:data_request", args=[data_request.pk])


def _request(customer=None, kind="correction", status="pending", details="请更新地址", when=None):
    customer = customer or CustomerFactory()
    item = DataRequest.objects.create(customer=customer, kind=kind, status=status, details=details)
    if when is not None:
        DataRequest.objects.filter(pk=item.pk).update(requested_at=when)
        item.refresh_from_db()
    return item


def _grant(user, codename: str):
    user.user_permissions.add(Permission.objects.get(content_type__app_label="customers", codename=codename))
    return type(user).objects.get(pk=user.pk)  # a fresh instance: permissions are cached


def _rows(response) -> list[str]:
    return response.content.decode().split('data-testid="data-request-row"')[1:]


# --- Who may enter ---------------------------------------------------------------------------------


def test_it_sends_an_anonymous_user_to_log_in(client):
    item = _request()
    for url in (LIST, _detail(item)):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("role", ["sales_rep", "service_agent", "analyst", "portal_customer"])
def test_it_refuses_roles_without_the_permission(request, client_for, role):
    item = _request()
    client = client_for(request.getfixturevalue(role))
    assert client.get(LIST).status_code == 403
    assert client.get(_detail(item)).status_code == 403
    assert client.post(_detail(item), {"action": "refuse", "reason": "x"}).status_code == 403
    item.refresh_from_db()
    assert item.status == "pending"


def test_it_answers_404_for_a_request_of_a_customer_out_of_reach(client_for, sales_rep, other_sales_rep):
    reader = _grant(sales_rep, "view_datarequest")
    mine = _request(CustomerFactory(owner=sales_rep), details="我的客户")
    theirs = _request(CustomerFactory(owner=other_sales_rep), details="别人的客户")
    client = client_for(reader)
    assert client.get(_detail(theirs)).status_code == 404
    assert client.get(_detail(mine)).status_code == 200
    rows = _rows(client.get(LIST))
    assert len(rows) == 1


def test_it_answers_404_for_an_unknown_request(client_for, manager):
    assert client_for(manager).get(reverse("customers:data_request", args=[999999])).status_code == 404


def test_it_answers_405_to_wrong_methods(client_for, manager):
    item = _request()
    client = client_for(manager)
    assert client.post(LIST).status_code == 405
    assert client.put(_detail(item)).status_code == 405


def test_it_refuses_a_decision_to_a_reader_who_may_not_decide(client_for, service_agent):
    reader = _grant(service_agent, "view_datarequest")
    item = _request()
    client = client_for(reader)
    page = client.get(_detail(item))
    assert page.status_code == 200 and b'data-testid="decision-form"' not in page.content
    assert client.post(_detail(item), {"action": "refuse", "reason": "不行"}).status_code == 403
    item.refresh_from_db()
    assert item.status == "pending"


# --- The list ------------------------------------------------------------------------------------------


def test_it_lists_requests_newest_first_and_filters_by_kind_and_status(client_for, manager):
    now = timezone.now()
    old = _request(kind="correction", details="", when=now - datetime.timedelta(days=3))
    new = _request(kind="erasure", details="", when=now - datetime.timedelta(days=1))
    done = _request(kind="export", status="done", details="", when=now)
    client = client_for(manager)
    rows = _rows(client.get(LIST))
    assert [r.count(_detail(x)) > 0 for r, x in zip(rows, (done, new, old), strict=True)] == [True, True, True]
    assert len(_rows(client.get(LIST, {"kind": "erasure"}))) == 1
    assert len(_rows(client.get(LIST, {"status": "pending"}))) == 2
    filtered = _rows(client.get(LIST, {"status": "pending", "kind": "correction"}))
    assert len(filtered) == 1 and _detail(old) in filtered[0]


def test_it_answers_a_bad_filter_with_a_message(client_for, manager):
    _request()
    response = client_for(manager).get(LIST, {"kind": "everything"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert len(_rows(response)) == 1  # the bad filter is left out


def test_it_pages_by_cursor(client_for, manager, monkeypatch):
    monkeypatch.setattr(privacy_views, "PER_PAGE", 2)
    now = timezone.now()
    items = [_request(details="", when=now - datetime.timedelta(hours=n)) for n in range(5)]
    client = client_for(manager)
    first = client.get(LIST)
    assert len(_rows(first)) == 2
    next_link = first.content.decode().split('data-testid="page-next"')[0].rsplit('href="?', 1)[1].split('"')[0]
    second = client.get(f"{LIST}?{next_link.replace('&amp;', '&')}")
    rows = _rows(second)
    assert len(rows) == 2 and _detail(items[2]) in rows[0]


def test_it_lists_30_requests_within_the_query_budget(client_for, manager, django_assert_max_num_queries):
    customers = [CustomerFactory() for _ in range(3)]
    for n in range(35):
        _request(customers[n % 3], details="")
    client = client_for(manager)
    with django_assert_max_num_queries(10):
        response = client.get(LIST)
    assert len(_rows(response)) == 30


# --- Decisions -------------------------------------------------------------------------------------------


def test_it_approves_a_correction_then_marks_it_done_with_a_note(client_for, manager):
    item = _request(details="电话号码错了")
    client = client_for(manager)
    response = client.post(_detail(item), {"action": "approve"})
    assert response.status_code == 302 and response["Location"] == _detail(item)
    item.refresh_from_db()
    assert (item.status, item.decided_by) == ("approved", manager)

    response = client.post(_detail(item), {"action": "done", "reason": ""}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "Say what was corrected" in response.content.decode()
    client.post(_detail(item), {"action": "done", "reason": "已改为 139 开头的号码"})
    item.refresh_from_db()
    assert (item.status, item.decision_reason) == ("done", "已改为 139 开头的号码")
    assert item.completed_at is not None


def test_it_refuses_with_a_reason_only(client_for, manager):
    item = _request()
    client = client_for(manager)
    response = client.post(_detail(item), {"action": "refuse", "reason": "  "}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "Give the reason for the refusal" in response.content.decode()
    item.refresh_from_db()
    assert item.status == "pending"
    client.post(_detail(item), {"action": "refuse", "reason": "无法核实身份"})
    item.refresh_from_db()
    assert (item.status, item.decision_reason, item.decided_by) == ("refused", "无法核实身份", manager)


def test_it_answers_an_unknown_action_with_a_message(client_for, manager):
    item = _request()
    response = client_for(manager).post(_detail(item), {"action": "delete"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "Choose a decision." in response.content.decode()


def test_it_does_not_decide_twice(client_for, manager):
    item = _request()
    client = client_for(manager)
    client.post(_detail(item), {"action": "refuse", "reason": "不行"})
    response = client.post(_detail(item), {"action": "approve"}, follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert "decided already" in response.content.decode()
    item.refresh_from_db()
    assert item.status == "refused"


def test_it_needs_a_confirmation_to_approve_an_erasure(client_for, manager):
    customer = CustomerFactory(name="待删除的客户")
    item = _request(customer, kind="erasure", details="")
    response = client_for(manager).post(_detail(item), {"action": "approve"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "confirm the erasure" in response.content.decode()
    assert Customer.objects.get(pk=customer.pk).erased_at is None


def test_it_erases_the_customer_when_an_erasure_is_approved(client_for, manager):
    customer = CustomerFactory(name="待删除的客户", mobile="+8613812340000")
    item = _request(customer, kind="erasure", details="")
    response = client_for(manager).post(_detail(item), {"action": "approve", "confirm": "on"}, follow=True)
    assert response.status_code == 200
    customer = Customer.all_objects.get(pk=customer.pk)
    assert customer.erased_at is not None
    assert customer.name == privacy.PSEUDONYM.format(code=customer.code) and customer.mobile == ""
    item.refresh_from_db()
    assert (item.status, item.decided_by) == ("done", manager)
    assert item.completed_at is not None
    assert "待删除的客户" not in response.content.decode()


def test_it_rolls_the_approval_back_when_the_erasure_fails(manager, monkeypatch):
    item = _request(CustomerFactory(name="回滚的客户"), kind="erasure", details="")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(privacy, "_erase_history", boom)
    with pytest.raises(RuntimeError):
        privacy.data_request_approve(data_request=item, by=manager)
    item.refresh_from_db()
    assert item.status == "pending"
    assert Customer.objects.get(pk=item.customer_id).name == "回滚的客户"


def test_only_a_decider_may_call_the_decision_services(sales_rep):
    item = _request()
    with pytest.raises(privacy.PermissionDenied):
        privacy.data_request_refuse(data_request=item, by=sales_rep, reason="x")
    with pytest.raises(privacy.PermissionDenied):
        privacy.customer_erase(customer=item.customer, by=sales_rep)
