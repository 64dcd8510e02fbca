"""The portal's "My data" page: consents and the marketing switch, the customer's copy of their
data (JSON and XLSX), correction and erasure requests, and the list of their requests."""

from __future__ import annotations

import io
import json

import openpyxl
import pytest
from django.urls import reverse
from django.utils import translation

from cims.models import PersonalDataAccess
from complaints.models import Ticket, TicketCategory, TicketEvent
from customers import privacy
from customers.models import Consent, DataRequest
from followups.models import Notification
from tests.customers.factories import ContactFactory, ContractFactory, TransactionFactory
from tests.followups.factories import FollowUpFactory

pytestmark = pytest.mark.django_db

PAGE = reverse("portal:privacy")
WITHDRAW = reverse("portal:consent_withdraw")
REQUEST = reverse("portal:privacy_request")


def _export(fmt: str) -> str:
    return reverse("portal:privacy_export", args=[fmt])


@pytest.fixture
def me(portal_customer, portal_customer_record):
    return portal_customer_record


@pytest.fixture
def portal(client_for, portal_customer, me):
    return client_for(portal_customer)


def _ticket(customer, subject="物流太慢", **kwargs):
    category = TicketCategory.objects.order_by("pk").first() or TicketCategory.objects.create(name="其他")
    return Ticket.objects.create(customer=customer, category=category, subject=subject, description="详情", **kwargs)


# --- Who may enter ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", [PAGE, WITHDRAW, REQUEST, reverse("portal:privacy_export", args=["json"])], ids=lambda u: u
)
def test_it_sends_an_anonymous_user_to_log_in(client, url):
    response = client.get(url) if url == PAGE else client.post(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_refuses_staff(client_for, sales_rep, manager):
    assert client_for(sales_rep).get(PAGE).status_code == 403
    assert client_for(manager).post(_export("json")).status_code == 403


def test_it_answers_404_to_a_portal_user_without_a_customer(client_for, portal_customer):
    assert client_for(portal_customer).get(PAGE).status_code == 404


def test_it_answers_405_to_wrong_methods(portal):
    assert portal.post(PAGE).status_code == 405
    assert portal.get(_export("json")).status_code == 405
    assert portal.get(WITHDRAW).status_code == 405
    assert portal.get(REQUEST).status_code == 405
    assert not DataRequest.objects.exists() and not Consent.objects.exists()


def test_it_answers_404_to_an_unknown_format(portal):
    assert portal.post(_export("csv")).status_code == 404
    assert portal.post(_export("..%2f")).status_code == 404
    assert not DataRequest.objects.exists() and not PersonalDataAccess.objects.exists()


# --- The page -------------------------------------------------------------------------------------------


def test_it_shows_my_consents_and_my_requests_with_a_refusals_reason(portal, me, manager):
    privacy.consent_record(customer=me, purpose="service", granted=True, channel="paper", by=manager)
    correction = privacy.data_request_file(customer=me, kind="correction", by=None, details="地址改为上海")
    privacy.data_request_refuse(data_request=correction, by=manager, reason="请提供身份证明")
    response = portal.get(PAGE, HTTP_ACCEPT_LANGUAGE="en")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Granted" in html.split('data-purpose="service"')[1].split("</li>")[0]
    assert "Not recorded" in html.split('data-purpose="marketing"')[1].split("</li>")[0]
    assert "地址改为上海" in html and "请提供身份证明" in html and "Refused" in html


def test_it_shows_only_my_own_requests_and_consents(portal, me, other_portal_customer_record, manager):
    privacy.data_request_file(customer=other_portal_customer_record, kind="correction", by=None, details="别人的请求")
    privacy.consent_record(
        customer=other_portal_customer_record, purpose="marketing", granted=False, channel="paper", by=manager
    )
    html = portal.get(PAGE, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "别人的请求" not in html
    assert "Not recorded" in html.split('data-purpose="marketing"')[1].split("</li>")[0]


# --- Marketing consent --------------------------------------------------------------------------------------


def test_it_withdraws_marketing_consent_at_once_and_grants_it_again(portal, me, portal_customer):
    response = portal.post(WITHDRAW, {"decision": "0"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302 and response["Location"] == PAGE
    consent = Consent.objects.get()
    assert (consent.customer, consent.purpose, consent.granted, consent.channel) == (me, "marketing", False, "portal")
    assert consent.recorded_by == portal_customer
    assert not privacy.has_consent(me, "marketing")
    page = portal.get(PAGE, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-testid="marketing-grant"' in page and "no more marketing messages" in page

    portal.post(WITHDRAW, {"decision": "1"})
    assert privacy.has_consent(me, "marketing")
    assert Consent.objects.count() == 2  # entries are only added


def test_it_ignores_a_forged_purpose_or_customer(portal, me, other_portal_customer_record):
    portal.post(WITHDRAW, {"decision": "0", "purpose": "service", "customer": other_portal_customer_record.pk})
    consent = Consent.objects.get()
    assert consent.customer == me and consent.purpose == "marketing"


def test_it_answers_a_missing_decision_with_a_message(portal):
    response = portal.post(WITHDRAW, {"decision": "perhaps"}, follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Consent.objects.exists()


# --- The copy of my data -------------------------------------------------------------------------------------


def _full_record(me, sales_rep):
    me.id_number = "11010519491231002X"
    me.address = "上海市浦东新区世纪大道 100 号"
    me.owner = sales_rep
    me.save()
    ContactFactory(customer=me, name="刘女士的助理", phone="+8613900001111")
    FollowUpFactory(customer=me, content="电话回访：对新品感兴趣", created_by=sales_rep)
    ticket = _ticket(me, subject="快递破损")
    TicketEvent.objects.create(ticket=ticket, kind="reply", body="已为您补发", actor=sales_rep)
    TicketEvent.objects.create(ticket=ticket, kind="note", body="内部备注：客户难缠", internal=True, actor=sales_rep)
    TransactionFactory(customer=me, amount="1280.00", product="年度服务套餐")
    ContractFactory(customer=me, title="年度合作协议")
    privacy.consent_record(customer=me, purpose="marketing", granted=True, channel="paper", by=sales_rep)


def test_it_downloads_my_data_as_json_and_logs_it_twice(portal, me, sales_rep, portal_customer):
    _full_record(me, sales_rep)
    response = portal.post(_export("json"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert "attachment;" in response["Content-Disposition"] and me.code in response["Content-Disposition"]
    assert response["Cache-Control"] == "private, no-store"
    data = json.loads(response.content)
    assert data["profile"]["name"] == "刘女士"
    assert data["profile"]["id_number"] == "11010519491231002X"  # unmasked: it is theirs
    assert data["profile"]["address"] == "上海市浦东新区世纪大道 100 号"
    assert [c["name"] for c in data["contacts"]] == ["刘女士的助理"]
    assert data["follow_ups"][0]["content"] == "电话回访：对新品感兴趣"
    assert set(data["follow_ups"][0]) == {"date", "type", "content"}
    ticket = data["tickets"][0]
    assert ticket["subject"] == "快递破损"
    assert [e["comment"] for e in ticket["events"]] == ["已为您补发"]  # never the internal note
    assert "内部备注" not in response.content.decode()
    assert data["transactions"][0]["amount"] == "1280.00"
    assert data["contracts"][0]["title"] == "年度合作协议"
    assert data["consents"][0]["purpose"] == "marketing"
    assert data["lottery_entries"] == [] and data["lottery_wins"] == []  # never entered (tests/lottery/test_portal.py)
    assert data["requests"][0]["kind"] == "export"  # this very copy, recorded

    recorded = DataRequest.objects.get()
    assert (recorded.kind, recorded.status, recorded.requested_by) == ("export", "done", portal_customer)
    assert recorded.completed_at is not None
    logged = PersonalDataAccess.objects.get()
    assert (logged.user, logged.action, logged.object_id, logged.object_label, logged.masked) == (
        portal_customer,
        "export",
        str(me.pk),
        me.code,
        False,
    )
    assert "刘女士" not in logged.detail


def test_it_downloads_my_data_as_a_readable_workbook(portal, me, sales_rep):
    _full_record(me, sales_rep)
    TransactionFactory(customer=me, product='=HYPERLINK("http://evil")')
    with translation.override("en"):
        response = portal.post(_export("xlsx"), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('.xlsx"') or ".xlsx" in response["Content-Disposition"]
    workbook = openpyxl.load_workbook(io.BytesIO(response.content))
    assert {"Profile", "Contacts", "Follow-ups", "Service requests", "Replies", "Transactions", "Contracts",
            "Consents", "Requests", "Lottery entries", "Lottery wins"} <= set(workbook.sheetnames)  # fmt: skip
    profile = dict(workbook["Profile"].iter_rows(min_row=2, values_only=True))
    assert profile["Name"] == "刘女士" and profile["ID card number"] == "11010519491231002X"
    replies = [row[4] for row in workbook["Replies"].iter_rows(min_row=2, values_only=True)]
    assert replies == ["已为您补发"]
    products = [row[2] for row in workbook["Transactions"].iter_rows(min_row=2, values_only=True)]
    assert '\'=HYPERLINK("http://evil")' in products  # never a formula
    assert DataRequest.objects.filter(kind="export").count() == 1
    assert PersonalDataAccess.objects.count() == 1


def test_it_never_exports_another_customers_data(portal, me, other_portal_customer_record):
    FollowUpFactory(customer=other_portal_customer_record, content="别人的跟进")
    _ticket(other_portal_customer_record, subject="别人的工单")
    body = portal.post(_export("json"), {"customer": other_portal_customer_record.pk}).content.decode()
    assert "别人的" not in body and "张先生" not in body
    assert json.loads(body)["profile"]["code"] == me.code


# --- Requests -------------------------------------------------------------------------------------------------


def test_it_files_a_correction_request_and_tells_the_deciders(portal, me, manager, portal_customer):
    response = portal.post(REQUEST, {"kind": "correction", "details": "  手机号改为 13900002222 "})
    assert response.status_code == 302 and response["Location"] == PAGE
    request = DataRequest.objects.get()
    assert (request.customer, request.kind, request.status, request.details, request.requested_by) == (
        me,
        "correction",
        "pending",
        "手机号改为 13900002222",
        portal_customer,
    )
    notice = Notification.objects.get(user=manager)
    assert notice.url == reverse("customers:data_request", args=[request.pk])
    assert me.code in notice.body and "刘女士" not in notice.title + notice.body


def test_it_requires_the_details_of_a_correction(portal):
    response = portal.post(REQUEST, {"kind": "correction", "details": "   "}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "Say what should be corrected." in response.content.decode()
    assert not DataRequest.objects.exists()


def test_it_requires_the_erasure_confirmation(portal):
    response = portal.post(REQUEST, {"kind": "erasure"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "Tick the box" in response.content.decode()
    assert not DataRequest.objects.exists()


def test_it_refuses_an_unknown_kind_of_request(portal):
    response = portal.post(REQUEST, {"kind": "export", "details": "x"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "Choose a request." in response.content.decode()
    assert not DataRequest.objects.exists()


def test_it_keeps_one_pending_erasure_request_at_a_time(portal, me):
    portal.post(REQUEST, {"kind": "erasure", "confirm": "on"})
    response = portal.post(REQUEST, {"kind": "erasure", "confirm": "on"}, follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert "already waiting for a decision" in response.content.decode()
    assert DataRequest.objects.filter(kind="erasure").count() == 1
    assert 'data-testid="erasure-pending"' in portal.get(PAGE).content.decode()


def test_it_accepts_a_new_erasure_request_after_a_refusal(portal, me, manager):
    portal.post(REQUEST, {"kind": "erasure", "confirm": "on"})
    privacy.data_request_refuse(data_request=DataRequest.objects.get(), by=manager, reason="合同未结清")
    portal.post(REQUEST, {"kind": "erasure", "confirm": "on"})
    assert list(DataRequest.objects.order_by("pk").values_list("status", flat=True)) == ["refused", "pending"]


def test_an_erased_customer_can_no_longer_reach_the_portal(portal, me, manager):
    privacy.customer_erase(customer=me, by=manager)
    response = portal.get(PAGE)
    assert response.status_code in (302, 403, 404)
