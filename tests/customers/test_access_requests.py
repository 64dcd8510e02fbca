"""Access requests (数据访问权限审批): asking for a customer outside one's scope or for unmasked
exports, a manager's decision, the time-limited grant and its end, the log and the notifications."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone, translation
from guardian.shortcuts import assign_perm

from cims.models import PersonalDataAccess
from customers import access_requests as services
from customers.models import AccessRequest, Customer, CustomerUserObjectPermission
from customers.tasks import expire_access_grants
from followups.models import Notification
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

LIST = reverse("customers:access_requests")
NEW = reverse("customers:access_request_new")
EXPORT = reverse("customers:export")
REASON = "Covering for a colleague on leave this week"
ID_NUMBER = "11010519491231002X"
Kind, Status = AccessRequest.Kind, AccessRequest.Status
Action = PersonalDataAccess.Action


def detail_url(item) -> str:
    return reverse("customers:access_request_detail", args=[item.pk])


def decide_url(item) -> str:
    return reverse("customers:access_request_decide", args=[item.pk])


def revoke_url(item) -> str:
    return reverse("customers:access_request_revoke", args=[item.pk])


def english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def theirs(other_sales_rep):
    """A customer of another rep: outside the sales rep's scope."""
    return CustomerFactory(owner=other_sales_rep, name="李娜", id_number=ID_NUMBER)


def file_customer(user, customer, *, with_edit=False, days=3) -> AccessRequest:
    return services.access_request_file(
        by=user, kind=Kind.CUSTOMER, customer=customer, with_edit=with_edit, days=days, reason=REASON
    )


def file_export(user, days=3) -> AccessRequest:
    return services.access_request_file(by=user, kind=Kind.EXPORT, days=days, reason=REASON)


def expire_now(item: AccessRequest) -> None:
    AccessRequest.objects.filter(pk=item.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))


def sees(user, customer) -> bool:
    return Customer.objects.visible_to(user).filter(pk=customer.pk).exists()


def logged(action, **filters) -> list[PersonalDataAccess]:
    return list(PersonalDataAccess.objects.filter(action=action, **filters))


# --- Filing ------------------------------------------------------------------------------------------------


def test_it_files_a_request_by_customer_code_and_tells_the_managers(sales_rep, manager, theirs, client_for):
    response = client_for(sales_rep).post(
        NEW, {"kind": "customer", "code": theirs.code.lower(), "days": "5", "reason": REASON}
    )
    item = AccessRequest.objects.get()
    assert response.status_code == 302 and response.url == detail_url(item)
    assert (item.requester, item.customer, item.kind, item.status, item.days) == (
        sales_rep,
        theirs,
        Kind.CUSTOMER,
        Status.PENDING,
        5,
    )
    assert not sees(sales_rep, theirs)  # nothing granted before a decision
    row = PersonalDataAccess.objects.get(action=Action.REQUEST)
    assert (row.user, row.object_type, row.object_id, row.object_label) == (
        sales_rep,
        "customers.customer",
        str(theirs.pk),
        theirs.code,
    )
    assert "李娜" not in row.detail and REASON not in row.detail
    note = Notification.objects.get(user=manager)
    assert note.url == detail_url(item) and "李娜" not in note.title + note.body
    assert not Notification.objects.filter(user=sales_rep).exists()


def test_it_refuses_a_code_that_no_customer_has(sales_rep, client_for):
    with translation.override("en"):
        response = english(client_for(sales_rep)).post(
            NEW, {"kind": "customer", "code": "C1999-999999", "days": "3", "reason": REASON}
        )
    assert response.status_code == 400
    assert b"No customer has this code." in response.content
    assert not AccessRequest.objects.exists()


def test_it_refuses_a_customer_already_in_scope(sales_rep, client_for):
    mine = CustomerFactory(owner=sales_rep)
    response = english(client_for(sales_rep)).post(
        NEW, {"kind": "customer", "code": mine.code, "days": "3", "reason": REASON}
    )
    assert response.status_code == 400
    assert b"You can already see this customer." in response.content
    assert not AccessRequest.objects.exists()
    assert not PersonalDataAccess.objects.filter(action=Action.REQUEST).exists()


def test_it_refuses_a_second_pending_request_for_the_same_customer(sales_rep, theirs, client_for):
    file_customer(sales_rep, theirs)
    response = english(client_for(sales_rep)).post(
        NEW, {"kind": "customer", "code": theirs.code, "days": "3", "reason": REASON}
    )
    assert response.status_code == 400
    assert b"waiting for a decision" in response.content
    assert AccessRequest.objects.count() == 1


@override_settings(ACCESS_GRANT_MAX_DAYS=10)
@pytest.mark.parametrize("days", ["0", "11", "-1", "abc", "", "3.5"])
def test_it_refuses_bad_days(sales_rep, theirs, client_for, days):
    response = english(client_for(sales_rep)).post(
        NEW, {"kind": "customer", "code": theirs.code, "days": days, "reason": REASON}
    )
    assert response.status_code == 400
    assert b"days" in response.content
    assert not AccessRequest.objects.exists()


@pytest.mark.parametrize("reason", ["", "   ", "short"])
def test_it_refuses_a_missing_or_too_short_reason(sales_rep, theirs, client_for, reason):
    response = english(client_for(sales_rep)).post(
        NEW, {"kind": "customer", "code": theirs.code, "days": "3", "reason": reason}
    )
    assert response.status_code == 400
    assert b"Explain why you need this access" in response.content
    assert not AccessRequest.objects.exists()


def test_it_refuses_a_bad_kind_and_a_missing_code(sales_rep, client_for):
    client = english(client_for(sales_rep))
    response = client.post(NEW, {"kind": "everything", "days": "3", "reason": REASON})
    assert response.status_code == 400 and b"Choose what you ask for." in response.content
    response = client.post(NEW, {"kind": "customer", "code": "", "days": "3", "reason": REASON})
    assert response.status_code == 400 and b"Enter the code of the customer." in response.content
    assert not AccessRequest.objects.exists()


def test_it_enforces_one_pending_request_in_the_database(sales_rep, theirs):
    from django.db import IntegrityError, transaction

    file_export(sales_rep)
    with pytest.raises(IntegrityError), transaction.atomic():
        AccessRequest.objects.create(requester=sales_rep, kind=Kind.EXPORT, reason=REASON, days=1)


def test_it_shows_the_form_and_prefills_the_export_kind(sales_rep, client_for):
    response = client_for(sales_rep).get(NEW, {"kind": "export"})
    assert response.status_code == 200
    assert response.context["form"].initial == {"kind": "export"}
    assert b'data-testid="access-request-form"' in response.content


def test_it_refuses_an_analyst_the_form_and_the_list(analyst, client_for):
    client = client_for(analyst)
    assert client.get(NEW).status_code == 403
    assert client.post(NEW, {"kind": "export", "days": "3", "reason": REASON}).status_code == 403
    assert client.get(LIST).status_code == 403
    assert not AccessRequest.objects.exists()


def test_it_sends_anonymous_users_to_log_in(client, theirs, sales_rep):
    item = file_customer(sales_rep, theirs)
    for url in (LIST, NEW, detail_url(item)):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.url
    assert client.post(decide_url(item), {"action": "approve"}).status_code == 302
    assert AccessRequest.objects.get().status == Status.PENDING


def test_it_refuses_a_roleless_user(roleless_user, client_for):
    assert client_for(roleless_user).get(LIST).status_code == 403


def test_it_answers_wrong_methods_with_405(sales_rep, manager, theirs, client_for):
    item = file_customer(sales_rep, theirs)
    assert client_for(manager).get(decide_url(item)).status_code == 405
    assert client_for(sales_rep).get(revoke_url(item)).status_code == 405
    assert client_for(sales_rep).put(LIST).status_code == 405


# --- Deciding and the grant ---------------------------------------------------------------------------------


def test_it_grants_the_customer_on_approval_until_the_job_ends_it(sales_rep, manager, theirs, client_for):
    rep = client_for(sales_rep)
    item = file_customer(sales_rep, theirs, days=5)
    assert rep.get(reverse("customers:detail", args=[theirs.pk])).status_code == 404

    response = client_for(manager).post(decide_url(item), {"action": "approve", "days": "2", "note": "ok"})
    assert response.status_code == 302 and response.url == detail_url(item)
    item.refresh_from_db()
    assert item.status == Status.APPROVED and item.decided_by == manager and item.granted_days == 2
    assert item.granted_view and not item.granted_change
    assert abs(item.expires_at - (timezone.now() + datetime.timedelta(days=2))) < datetime.timedelta(minutes=1)
    assert sees(sales_rep, theirs)
    assert rep.get(reverse("customers:detail", args=[theirs.pk])).status_code == 200
    # The use of the grant is logged: the 360 page's VIEW row names the access request.
    opened = PersonalDataAccess.objects.get(action=Action.VIEW, user=sales_rep)
    assert opened.object_id == str(theirs.pk) and opened.detail == f"access request #{item.pk}"
    assert not Customer.objects.editable_by(sales_rep).filter(pk=theirs.pk).exists()
    page = rep.get(detail_url(item))
    assert page.status_code == 200
    assert b'data-testid="access-request-customer"' in page.content  # a link to the 360 page now
    assert b'data-testid="access-request-revoke"' in page.content  # the requester may end it early
    decision = PersonalDataAccess.objects.get(action=Action.DECISION)
    assert decision.user == manager and decision.object_label == theirs.code and "approved, 2 days" in decision.detail
    assert Notification.objects.filter(user=sales_rep, key=f"accessrequest:{item.pk}:decided").exists()

    assert expire_access_grants() == 0  # not due yet
    expire_now(item)
    assert expire_access_grants() == 1
    item.refresh_from_db()
    assert item.status == Status.EXPIRED and item.ended_at is not None
    assert not sees(sales_rep, theirs)
    assert rep.get(reverse("customers:detail", args=[theirs.pk])).status_code == 404
    expired = PersonalDataAccess.objects.get(action=Action.GRANT_EXPIRED)
    assert (expired.user, expired.object_id) == (sales_rep, str(theirs.pk))
    assert Notification.objects.filter(user=sales_rep, key=f"accessrequest:{item.pk}:ended").exists()
    # Idempotent: a second run finds nothing and logs nothing.
    assert expire_access_grants() == 0
    assert PersonalDataAccess.objects.filter(action=Action.GRANT_EXPIRED).count() == 1


def test_it_grants_editing_only_when_asked(sales_rep, manager, theirs):
    item = file_customer(sales_rep, theirs, with_edit=True)
    services.access_request_approve(request_row=item, by=manager, days=1)
    assert item.granted_view and item.granted_change
    assert Customer.objects.editable_by(sales_rep).filter(pk=theirs.pk).exists()
    expire_now(item)
    services.expire_due_grants()
    assert not sees(sales_rep, theirs)
    assert not CustomerUserObjectPermission.objects.filter(user=sales_rep).exists()


def test_it_keeps_a_share_that_existed_before_the_grant(sales_rep, manager, theirs):
    assign_perm("customers.view_customer", sales_rep, theirs)  # shared read-only before
    item = file_customer(sales_rep, theirs, with_edit=True)  # asks to edit as well
    services.access_request_approve(request_row=item, by=manager, days=1)
    assert not item.granted_view and item.granted_change
    expire_now(item)
    services.expire_due_grants()
    assert sees(sales_rep, theirs)  # the earlier share survives
    assert not Customer.objects.editable_by(sales_rep).filter(pk=theirs.pk).exists()


def test_it_keeps_a_share_made_while_the_grant_lasts(sales_rep, manager, theirs):
    from customers.services import customer_share

    item = file_customer(sales_rep, theirs)
    services.access_request_approve(request_row=item, by=manager, days=1)
    customer_share(customer=theirs, user=sales_rep, by=manager)  # the owner's manager shares it meanwhile
    expire_now(item)
    services.expire_due_grants()
    assert sees(sales_rep, theirs)  # the share outlives the grant


def test_it_hands_a_permission_to_an_overlapping_grant_instead_of_removing_it(sales_rep, manager, theirs):
    first = file_customer(sales_rep, theirs)
    services.access_request_approve(request_row=first, by=manager, days=1)
    second = file_customer(sales_rep, theirs, with_edit=True)
    services.access_request_approve(request_row=second, by=manager, days=5)
    assert not second.granted_view and second.granted_change
    expire_now(first)
    services.expire_due_grants()
    assert sees(sales_rep, theirs)  # the second grant still runs, and now owns the read permission
    second.refresh_from_db()
    assert second.granted_view
    expire_now(second)
    services.expire_due_grants()
    assert not sees(sales_rep, theirs)


def test_it_grants_nothing_on_refusal_and_needs_a_note(sales_rep, manager, theirs, client_for):
    item = file_customer(sales_rep, theirs)
    client = english(client_for(manager))
    response = client.post(decide_url(item), {"action": "refuse", "note": "  "})
    assert response.status_code == 400 and b"Say why the request is refused" in response.content
    assert AccessRequest.objects.get().status == Status.PENDING

    response = client.post(decide_url(item), {"action": "refuse", "note": "Ask the owner to share it."})
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.status == Status.REFUSED and item.decision_note == "Ask the owner to share it."
    assert not sees(sales_rep, theirs)
    assert not CustomerUserObjectPermission.objects.filter(user=sales_rep).exists()
    assert "refused" in PersonalDataAccess.objects.get(action=Action.DECISION).detail
    assert Notification.objects.filter(user=sales_rep, key=f"accessrequest:{item.pk}:decided").exists()


def test_it_refuses_a_bad_decision(sales_rep, manager, theirs, client_for):
    item = file_customer(sales_rep, theirs)
    client = english(client_for(manager))
    assert client.post(decide_url(item), {"action": "maybe"}).status_code == 400
    response = client.post(decide_url(item), {"action": "approve", "days": "999"})
    assert response.status_code == 400 and b"days" in response.content
    assert AccessRequest.objects.get().status == Status.PENDING
    assert not sees(sales_rep, theirs)


def test_it_approves_for_the_days_asked_when_the_manager_gives_none(sales_rep, manager, theirs, client_for):
    item = file_customer(sales_rep, theirs, days=4)
    client_for(manager).post(decide_url(item), {"action": "approve"})
    item.refresh_from_db()
    assert item.status == Status.APPROVED and item.granted_days == 4


def test_it_refuses_self_approval(manager):
    item = file_export(manager)
    with pytest.raises(services.AccessRequestError):
        services.access_request_approve(request_row=item, by=manager, days=1)
    assert AccessRequest.objects.get().status == Status.PENDING


def test_it_offers_no_decision_on_ones_own_request_and_refuses_a_posted_one(manager, client_for):
    item = file_export(manager)
    client = english(client_for(manager))
    page = client.get(detail_url(item))
    assert page.status_code == 200 and page.context["form"] is None
    response = client.post(decide_url(item), {"action": "approve", "days": "1"}, follow=True)
    assert b"You cannot decide your own request" in response.content
    assert AccessRequest.objects.get().status == Status.PENDING


def test_it_refuses_a_second_decision(sales_rep, manager, administrator, theirs, client_for):
    item = file_customer(sales_rep, theirs)
    services.access_request_refuse(request_row=item, by=manager, note="No.")
    response = english(client_for(administrator)).post(
        decide_url(item), {"action": "approve", "days": "3"}, follow=True
    )
    assert b"This request was decided already." in response.content
    item.refresh_from_db()
    assert item.status == Status.REFUSED and item.decided_by == manager
    assert not sees(sales_rep, theirs)
    assert PersonalDataAccess.objects.filter(action=Action.DECISION).count() == 1


def test_it_refuses_sales_the_decision(sales_rep, other_sales_rep, theirs, client_for):
    item = file_customer(sales_rep, theirs)
    assert client_for(sales_rep).post(decide_url(item), {"action": "approve", "days": "3"}).status_code == 403
    assert client_for(other_sales_rep).post(decide_url(item), {"action": "approve"}).status_code == 403
    assert AccessRequest.objects.get().status == Status.PENDING


def test_it_hides_my_request_from_another_rep(sales_rep, other_sales_rep, theirs, client_for):
    item = file_customer(sales_rep, theirs)
    other = client_for(other_sales_rep)
    assert other.get(detail_url(item)).status_code == 404
    assert other.post(revoke_url(item)).status_code == 404
    response = other.get(LIST, {"show": "all"})
    assert response.status_code == 200 and list(response.context["page"]) == []
    assert AccessRequest.objects.get().status == Status.PENDING


def test_it_lists_my_requests_and_the_deciders_queue(
    sales_rep, other_sales_rep, manager, theirs, client_for, django_assert_max_num_queries
):
    mine = file_customer(sales_rep, theirs)
    other = file_export(other_sales_rep)
    response = client_for(sales_rep).get(LIST)
    assert response.status_code == 200 and [i.pk for i in response.context["page"]] == [mine.pk]
    client = client_for(manager)
    with django_assert_max_num_queries(12):
        response = client.get(LIST)
    assert response.status_code == 200
    assert {i.pk for i in response.context["page"]} == {mine.pk, other.pk}
    assert response.context["pending"].value == 2
    services.access_request_refuse(request_row=other, by=manager, note="No.")
    assert [i.pk for i in client.get(LIST).context["page"]] == [mine.pk]
    assert {i.pk for i in client.get(LIST, {"show": "all"}).context["page"]} == {mine.pk, other.pk}
    assert [i.pk for i in client.get(LIST, {"show": "all", "status": "refused"}).context["page"]] == [other.pk]
    assert client.get(LIST, {"show": "nonsense", "status": "nonsense"}).status_code == 200


def test_it_shows_the_decider_the_request_with_the_decision_form(sales_rep, manager, theirs, client_for):
    item = file_customer(sales_rep, theirs)
    response = client_for(manager).get(detail_url(item))
    assert response.status_code == 200
    assert b'data-testid="access-decision-form"' in response.content
    assert REASON.encode() in response.content
    assert client_for(sales_rep).get(detail_url(item)).context["form"] is None


# --- Ending early ------------------------------------------------------------------------------------------


def test_it_lets_a_manager_revoke_a_grant(sales_rep, manager, theirs, client_for):
    item = file_customer(sales_rep, theirs)
    services.access_request_approve(request_row=item, by=manager, days=3)
    assert sees(sales_rep, theirs)
    assert client_for(manager).post(revoke_url(item)).status_code == 302
    item.refresh_from_db()
    assert item.status == Status.REVOKED and item.ended_by == manager
    assert not sees(sales_rep, theirs)
    assert "revoked" in PersonalDataAccess.objects.filter(action=Action.DECISION).first().detail
    assert Notification.objects.filter(user=sales_rep, key=f"accessrequest:{item.pk}:ended").exists()
    # The job leaves a revoked grant alone, even past its end.
    expire_now(item)
    assert expire_access_grants() == 0


def test_it_lets_the_requester_withdraw_but_not_a_colleague_revoke(
    sales_rep, service_agent, manager, theirs, client_for
):
    item = file_customer(sales_rep, theirs)
    assert client_for(sales_rep).post(revoke_url(item)).status_code == 302
    item.refresh_from_db()
    assert item.status == Status.CANCELLED
    # A closed request stays closed.
    response = english(client_for(sales_rep)).post(revoke_url(item), follow=True)
    assert b"This request is closed already." in response.content
    # Someone else's pending request: not a decider's to withdraw.
    export = file_export(service_agent)
    with pytest.raises(PermissionDenied):
        services.access_request_revoke(request_row=export, by=manager)
    assert AccessRequest.objects.get(pk=export.pk).status == Status.PENDING


# --- Unmasked exports ----------------------------------------------------------------------------------------


def _export_id_numbers(client) -> list[str]:
    import csv
    import io

    response = client.get(EXPORT, {"format": "csv"})
    assert response.status_code == 200
    content = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(content)))
    return [row["身份证号"] for row in rows]


def test_it_unmasks_exports_while_an_export_grant_lasts(sales_rep, manager, client_for):
    CustomerFactory(owner=sales_rep, id_number=ID_NUMBER)
    rep = client_for(sales_rep)
    assert _export_id_numbers(rep) == ["1101**********002X"]

    response = rep.post(NEW, {"kind": "export", "days": "1", "reason": REASON})
    item = AccessRequest.objects.get()
    assert response.status_code == 302 and item.kind == Kind.EXPORT and item.customer is None
    assert PersonalDataAccess.objects.get(action=Action.REQUEST).object_type == "customers.export"
    services.access_request_approve(request_row=item, by=manager, days=1)
    assert not sales_rep.user_permissions.exists()  # the grant is read, not added to the permissions

    assert _export_id_numbers(rep) == [ID_NUMBER]
    export_row = PersonalDataAccess.objects.filter(action=Action.EXPORT).first()
    assert export_row.masked is False and f"access request #{item.pk}" in export_row.detail

    # It stops at its end even before the job runs, and the job then closes it.
    expire_now(item)
    assert _export_id_numbers(rep) == ["1101**********002X"]
    assert PersonalDataAccess.objects.filter(action=Action.EXPORT).first().masked is True
    assert expire_access_grants() == 1
    assert PersonalDataAccess.objects.get(action=Action.GRANT_EXPIRED).object_type == "customers.export"
    assert AccessRequest.objects.get().status == Status.EXPIRED


def test_it_refuses_an_export_request_to_who_needs_none_or_cannot_export(administrator, analyst):
    with pytest.raises(services.AccessRequestError):
        file_export(administrator)  # unmasked already
    with pytest.raises(PermissionDenied):
        file_export(analyst)
    assert not AccessRequest.objects.exists()


def test_it_keeps_the_requests_when_the_customer_is_erased(sales_rep, manager, theirs):
    from customers.privacy import customer_erase

    item = file_customer(sales_rep, theirs)
    services.access_request_approve(request_row=item, by=manager, days=1)
    customer_erase(customer=theirs, by=manager)
    assert AccessRequest.objects.filter(pk=item.pk, customer=theirs).exists()
