"""The API of follow-ups and opportunities (followups.api): the UI's rules through another door."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm

from accounts.models import ApiToken
from cims.models import PersonalDataAccess
from customers.models import Contract, Customer
from followups.models import FollowUp, Opportunity, Task
from tests.api.conftest import ApiClient
from tests.customers.factories import ContactFactory, CustomerFactory
from tests.followups.factories import FollowUpFactory, OpportunityFactory

pytestmark = pytest.mark.django_db


def url(basename: str, pk: int | None = None, action: str = "") -> str:
    if action:
        return reverse(f"api:{basename}-{action}", args=[pk])
    if pk is None:
        return reverse(f"api:{basename}-list")
    return reverse(f"api:{basename}-detail", args=[pk])


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(owner=sales_rep, name="海淀科技")


@pytest.fixture
def other_customer(other_sales_rep):
    return CustomerFactory(owner=other_sales_rep, name="朝阳贸易")


@pytest.fixture
def rep_api(api_for, sales_rep):
    return api_for(sales_rep)[0]


def fields_of(response) -> dict:
    return response.json()["error"].get("fields", {})


def code_of(response) -> str:
    return response.json()["error"]["code"]


# --- Who may reach what --------------------------------------------------------------------------


@pytest.mark.parametrize("basename", ["followup", "opportunity"])
def test_it_answers_anonymous_requests_with_401(basename):
    response = ApiClient(None).get(url(basename))
    assert response.status_code == 401


@pytest.mark.parametrize("basename", ["followup", "opportunity"])
def test_it_refuses_the_analyst(api_for, analyst, basename):
    response = api_for(analyst)[0].get(url(basename))
    assert response.status_code == 403 and code_of(response) == "permission_denied"


def test_it_refuses_opportunities_and_follow_up_writes_to_service_staff(api_for, service_agent, customer):
    api, _token = api_for(service_agent)
    assert api.get(url("opportunity")).status_code == 403
    assert api.get(url("followup")).status_code == 200
    response = api.post(url("followup"), {"customer": customer.pk, "content": "来电"})
    assert response.status_code == 403 and code_of(response) == "permission_denied"


@pytest.mark.parametrize("basename", ["followup", "opportunity"])
def test_it_refuses_writes_with_a_read_only_token(api_for, sales_rep, customer, basename):
    api, _token = api_for(sales_rep, scope=ApiToken.Scope.READ)
    response = api.post(url(basename), {"customer": customer.pk, "content": "x", "title": "x"})
    assert response.status_code == 403 and code_of(response) == "read_only_token"


def test_it_hides_another_reps_customers_follow_ups_and_opportunities(rep_api, customer, other_customer, sales_rep):
    mine = FollowUpFactory(customer=customer)
    theirs = FollowUpFactory(customer=other_customer)
    their_opportunity = OpportunityFactory(customer=other_customer)
    assert [row["id"] for row in rep_api.get(url("followup")).json()["results"]] == [mine.pk]
    assert rep_api.get(url("followup", theirs.pk)).status_code == 404
    assert rep_api.patch(url("followup", theirs.pk), {"content": "改"}).status_code == 404
    assert rep_api.get(url("opportunity")).json()["results"] == []
    assert rep_api.get(url("opportunity", their_opportunity.pk)).status_code == 404
    assert rep_api.patch(url("opportunity", their_opportunity.pk), {"title": "改"}).status_code == 404
    response = rep_api.post(url("opportunity", their_opportunity.pk, "lose"), {"reason": "价格"})
    assert response.status_code == 404
    response = rep_api.post(url("followup"), {"customer": other_customer.pk, "content": "来电"})
    assert response.status_code == 404
    assert FollowUp.objects.count() == 2


# --- Follow-ups ----------------------------------------------------------------------------------


def test_it_records_a_follow_up_with_its_next_contact_task(rep_api, customer, sales_rep):
    contact = ContactFactory(customer=customer)
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    body = {
        "customer": customer.pk,
        "kind": "visit",
        "contact": contact.pk,
        "content": "上门演示",
        "next_contact_date": tomorrow.isoformat(),
    }
    response = rep_api.post(url("followup"), body)
    assert response.status_code == 201, response.json()
    followup = FollowUp.objects.get()
    assert (followup.kind, followup.contact, followup.created_by) == ("visit", contact, sales_rep)
    assert Task.objects.get(followup=followup).assignee == sales_rep
    data = response.json()
    assert data["contact_detail"]["name"] == contact.name and data["customer"] == customer.pk


@pytest.mark.parametrize(
    "change,field",
    [
        ({"happened_at": "2099-01-01T10:00:00+08:00"}, "happened_at"),
        ({"satisfaction": 4}, "satisfaction"),
        ({"content": "  "}, "content"),
        ({"next_contact_date": "2000-01-01"}, "next_contact_date"),
        ({"kind": "telepathy"}, "kind"),
    ],
)
def test_it_validates_a_follow_up_as_the_ui_does(rep_api, customer, change, field):
    response = rep_api.post(url("followup"), {"customer": customer.pk, "content": "来电", **change})
    assert response.status_code == 400
    assert field in fields_of(response)
    assert not FollowUp.objects.exists()


def test_it_refuses_a_contact_of_another_customer(rep_api, customer, sales_rep):
    stranger = ContactFactory(customer=CustomerFactory(owner=sales_rep))
    response = rep_api.post(url("followup"), {"customer": customer.pk, "content": "来电", "contact": stranger.pk})
    assert response.status_code == 400 and "contact" in fields_of(response)


@pytest.mark.parametrize("field", ["created_by", "created_at", "contact_detail", "customer_code"])
def test_it_refuses_server_set_follow_up_fields(rep_api, customer, sales_rep, field):
    response = rep_api.post(url("followup"), {"customer": customer.pk, "content": "来电", field: sales_rep.pk})
    assert response.status_code == 400 and code_of(response) == "field_not_allowed"
    assert list(fields_of(response)) == [field]


def test_it_changes_a_follow_up_of_its_author_only(api_for, rep_api, customer, sales_rep, other_sales_rep, manager):
    followup = FollowUpFactory(customer=customer, created_by=sales_rep)
    response = rep_api.patch(url("followup", followup.pk), {"result": "约下周", "kind": "wechat"})
    assert response.status_code == 200, response.json()
    followup.refresh_from_db()
    assert (followup.result, followup.kind) == ("约下周", "wechat")
    # A colleague the customer is shared with for editing is still not the author.
    assign_perm("customers.view_customer", other_sales_rep, customer)
    assign_perm("customers.change_customer", other_sales_rep, customer)
    colleague, _token = api_for(other_sales_rep)
    response = colleague.patch(url("followup", followup.pk), {"result": "改"})
    assert response.status_code == 403 and code_of(response) == "read_only_record"
    response = api_for(manager)[0].patch(url("followup", followup.pk), {"result": "经理补充"})
    assert response.status_code == 200
    response = rep_api.patch(url("followup", followup.pk), {"customer": CustomerFactory(owner=sales_rep).pk})
    assert response.status_code == 400 and code_of(response) == "field_not_allowed"


def test_it_lists_a_reps_own_follow_ups_or_every_one_of_a_customer(api_for, customer, sales_rep, other_sales_rep):
    assign_perm("customers.view_customer", other_sales_rep, customer)
    mine = FollowUpFactory(customer=customer, created_by=sales_rep)
    theirs = FollowUpFactory(customer=customer, created_by=other_sales_rep)
    api, _token = api_for(other_sales_rep)
    assert [row["id"] for row in api.get(url("followup")).json()["results"]] == [theirs.pk]
    rows = api.get(url("followup"), {"customer": customer.pk}).json()["results"]
    assert {row["id"] for row in rows} == {mine.pk, theirs.pk}


def test_it_filters_follow_ups_and_refuses_a_bad_filter(rep_api, customer):
    call = FollowUpFactory(customer=customer, kind="phone")
    FollowUpFactory(customer=customer, kind="visit")
    assert [row["id"] for row in rep_api.get(url("followup"), {"kind": "phone"}).json()["results"]] == [call.pk]
    response = rep_api.get(url("followup"), {"date_from": "2026-02-01", "date_to": "2026-01-01"})
    assert response.status_code == 400 and "date_to" in fields_of(response)


def test_it_masks_a_contacts_phone_for_service_staff_and_logs_the_view(api_for, service_agent, customer):
    contact = ContactFactory(customer=customer, phone="+8613912345678")
    followup = FollowUpFactory(customer=customer, contact=contact)
    api, _token = api_for(service_agent)
    data = api.get(url("followup", followup.pk)).json()
    assert "12345678" not in data["contact_detail"]["phone"]
    assert "phone" in data["contact_detail"]["masked_fields"]
    log = PersonalDataAccess.objects.get(object_type="followups.followup")
    assert (log.user, log.object_id) == (service_agent, str(followup.pk))


def test_it_shows_a_rep_the_contacts_phone_in_full(rep_api, customer):
    contact = ContactFactory(customer=customer, phone="+8613912345678")
    followup = FollowUpFactory(customer=customer, contact=contact)
    data = rep_api.get(url("followup", followup.pk)).json()
    assert data["contact_detail"]["phone"] == "+8613912345678"
    assert data["contact_detail"]["masked_fields"] == []


def test_it_records_a_follow_up_once_for_a_repeated_idempotency_key(rep_api, customer):
    body = {"customer": customer.pk, "content": "来电"}
    first = rep_api.post(url("followup"), body, HTTP_IDEMPOTENCY_KEY="call-7")
    second = rep_api.post(url("followup"), body, HTTP_IDEMPOTENCY_KEY="call-7")
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] == second.json()["id"] and FollowUp.objects.count() == 1


def test_it_lists_follow_ups_within_a_query_budget(rep_api, customer, django_assert_max_num_queries):
    contacts = [ContactFactory(customer=customer) for _ in range(3)]
    for index in range(35):
        FollowUpFactory(customer=customer, contact=contacts[index % 3] if index % 2 else None)
    with django_assert_max_num_queries(9):
        response = rep_api.get(url("followup"), {"page_size": 50})
    assert len(response.json()["results"]) == 35


# --- Opportunities -------------------------------------------------------------------------------


def test_it_opens_an_opportunity_owned_by_the_rep(rep_api, customer, sales_rep):
    body = {"customer": customer.pk, "title": "年度采购", "amount": "80000.00", "stage": "needs"}
    response = rep_api.post(url("opportunity"), body)
    assert response.status_code == 201, response.json()
    opportunity = Opportunity.objects.get()
    assert (opportunity.owner, opportunity.stage, opportunity.probability) == (sales_rep, "needs", 30)
    assert response.json()["weighted_amount"] == "24000.00"


@pytest.mark.parametrize(
    "change,field",
    [
        ({"title": " "}, "title"),
        ({"probability": 150}, "probability"),
        ({"amount": "-1"}, "amount"),
        ({"stage": "won"}, "stage"),
    ],
)
def test_it_validates_an_opportunity_as_the_ui_does(rep_api, customer, change, field):
    body = {"customer": customer.pk, "title": "年度采购", "amount": "100.00", **change}
    response = rep_api.post(url("opportunity"), body)
    assert response.status_code == 400
    assert field in fields_of(response)
    assert not Opportunity.objects.exists()


def test_a_rep_cannot_set_the_owner_but_a_manager_can(api_for, rep_api, customer, sales_rep, other_sales_rep, manager):
    body = {"customer": customer.pk, "title": "年度采购", "amount": "100.00", "owner": other_sales_rep.pk}
    response = rep_api.post(url("opportunity"), body)
    assert response.status_code == 400 and code_of(response) == "field_not_allowed"
    response = api_for(manager)[0].post(url("opportunity"), {**body, "owner": sales_rep.pk})
    assert response.status_code == 201, response.json()
    assert Opportunity.objects.get().owner == sales_rep


@pytest.mark.parametrize("field", ["lost_reason", "closed_at", "created_by", "weighted_amount", "lines"])
def test_it_refuses_server_set_opportunity_fields(rep_api, customer, field):
    response = rep_api.post(url("opportunity"), {"customer": customer.pk, "title": "x", "amount": "1", field: "x"})
    assert response.status_code == 400 and code_of(response) == "field_not_allowed"
    assert list(fields_of(response)) == [field]


def test_it_changes_an_opportunity_and_moves_its_stage(rep_api, customer):
    opportunity = OpportunityFactory(customer=customer)
    response = rep_api.patch(url("opportunity", opportunity.pk), {"title": "改名", "stage": "proposal"})
    assert response.status_code == 200, response.json()
    opportunity.refresh_from_db()
    assert (opportunity.title, opportunity.stage, opportunity.probability) == ("改名", "proposal", 50)
    response = rep_api.patch(url("opportunity", opportunity.pk), {"stage": "negotiation", "probability": 90})
    opportunity.refresh_from_db()
    assert (opportunity.stage, opportunity.probability) == ("negotiation", 90)


def test_it_refuses_to_move_an_opportunity_to_won_by_patch(rep_api, customer):
    opportunity = OpportunityFactory(customer=customer)
    response = rep_api.patch(url("opportunity", opportunity.pk), {"stage": "won"})
    assert response.status_code == 400 and "stage" in fields_of(response)
    opportunity.refresh_from_db()
    assert opportunity.stage == "initial"


def test_it_loses_an_opportunity_with_a_reason_only(rep_api, customer):
    opportunity = OpportunityFactory(customer=customer)
    response = rep_api.post(url("opportunity", opportunity.pk, "lose"), {"reason": " "})
    assert response.status_code == 400 and "reason" in fields_of(response)
    response = rep_api.post(url("opportunity", opportunity.pk, "lose"), {"reason": "价格太高"})
    assert response.status_code == 200, response.json()
    assert response.json()["stage"] == "lost" and response.json()["lost_reason"] == "价格太高"
    again = rep_api.post(url("opportunity", opportunity.pk, "lose"), {"reason": "价格太高"})
    assert again.status_code == 409 and code_of(again) == "opportunity_closed"
    response = rep_api.patch(url("opportunity", opportunity.pk), {"title": "改"})
    assert response.status_code == 409 and code_of(response) == "opportunity_closed"


def test_it_wins_an_opportunity_with_its_contract(rep_api, customer):
    opportunity = OpportunityFactory(customer=customer, amount=Decimal("5000.00"))
    body = {"create_contract": True, "contract": {"title": "采购合同", "status": "active"}}
    response = rep_api.post(url("opportunity", opportunity.pk, "win"), body)
    assert response.status_code == 200, response.json()
    data = response.json()
    contract = Contract.objects.get()
    assert (data["contract"], data["transaction"], data["customer_status"]) == (contract.pk, None, "won")
    assert (contract.title, contract.amount) == ("采购合同", Decimal("5000.00"))
    assert data["opportunity"]["stage"] == "won"
    customer.refresh_from_db()
    assert customer.status == Customer.Status.WON


def test_a_bad_contract_leaves_the_opportunity_open(rep_api, customer):
    opportunity = OpportunityFactory(customer=customer)
    body = {"create_contract": True, "contract": {"start_date": "2026-02-01", "end_date": "2026-01-01"}}
    response = rep_api.post(url("opportunity", opportunity.pk, "win"), body)
    assert response.status_code == 400 and "contract" in fields_of(response)
    response = rep_api.post(url("opportunity", opportunity.pk, "win"), {"contract": {"owner": 1}})
    assert response.status_code == 400 and code_of(response) == "field_not_allowed"
    opportunity.refresh_from_db()
    assert opportunity.stage == "initial" and not Contract.objects.exists()


def test_service_staff_cannot_lose_an_opportunity(api_for, service_agent, customer):
    opportunity = OpportunityFactory(customer=customer)
    response = api_for(service_agent)[0].post(url("opportunity", opportunity.pk, "lose"), {"reason": "x"})
    assert response.status_code == 403


def test_it_filters_opportunities_and_refuses_a_bad_filter(rep_api, customer):
    proposal = OpportunityFactory(customer=customer, stage="proposal")
    OpportunityFactory(customer=customer)
    rows = rep_api.get(url("opportunity"), {"stage": "proposal"}).json()["results"]
    assert [row["id"] for row in rows] == [proposal.pk]
    response = rep_api.get(url("opportunity"), {"stage": "sideways"})
    assert response.status_code == 400 and "stage" in fields_of(response)


def test_it_opens_an_opportunity_once_for_a_repeated_idempotency_key(rep_api, customer):
    body = {"customer": customer.pk, "title": "年度采购", "amount": "100.00"}
    first = rep_api.post(url("opportunity"), body, HTTP_IDEMPOTENCY_KEY="deal-1")
    second = rep_api.post(url("opportunity"), body, HTTP_IDEMPOTENCY_KEY="deal-1")
    assert (first.status_code, second.status_code) == (201, 201)
    assert Opportunity.objects.count() == 1


def test_it_lists_opportunities_within_a_query_budget(rep_api, customer, django_assert_max_num_queries):
    for _ in range(35):
        OpportunityFactory(customer=customer)
    with django_assert_max_num_queries(9):
        response = rep_api.get(url("opportunity"), {"page_size": 50})
    assert len(response.json()["results"]) == 35


def test_it_refuses_a_filter_the_ui_does_not_offer_the_role(api_for, sales_rep, other_sales_rep):
    # A sales rep's list is their own: ?rep= is refused by name, not silently ignored.
    api, _token = api_for(sales_rep)
    for path in (reverse("api:followup-list"), reverse("api:opportunity-list")):
        response = api.get(path, {"rep": other_sales_rep.pk})
        assert response.status_code == 400, path
        assert response.json()["error"]["fields"]["rep"][0]["code"] == "field_not_allowed"
    typo = api.get(reverse("api:followup-list"), {"kindd": "call"})
    assert typo.json()["error"]["fields"]["kindd"][0]["code"] == "field_not_allowed"
    assert api.get(reverse("api:followup-list"), {"page_size": 5}).status_code == 200
