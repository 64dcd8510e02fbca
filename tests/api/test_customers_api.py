"""The customers API (/api/v1/customers/, contacts/, lookups): the UI's rules through another door."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import ApiToken
from cims.models import PersonalDataAccess
from customers.models import Contact, Customer, CustomerLevel, CustomField, StatusChange, Tag
from customers.services import customer_share
from tests.api.conftest import ApiClient
from tests.customers.factories import ContactFactory, CustomerFactory, TagFactory

LIST = reverse("api:customer-list")
CONTACTS = reverse("api:contact-list")


def detail(customer) -> str:
    return reverse("api:customer-detail", args=[customer.pk])


def contact_detail(contact) -> str:
    return reverse("api:contact-detail", args=[contact.pk])


def error(response) -> dict:
    return response.json()["error"]


def field_codes(response) -> dict[str, list[str]]:
    return {name: [item["code"] for item in items] for name, items in error(response).get("fields", {}).items()}


def new_customer(**extra) -> dict:
    return {"name": "周杰", "kind": "individual", "status": "prospect", "mobile": "139 1000 2000", **extra}


@pytest.fixture
def rep_customer(sales_rep):
    return CustomerFactory(owner=sales_rep, name="李四", mobile="+8613812345678", id_number="110101199003078515")


@pytest.fixture
def others_customer(other_sales_rep):
    return CustomerFactory(owner=other_sales_rep, name="王五")


# --- Who may call --------------------------------------------------------------------------------


def test_it_refuses_anonymous_with_json_401(db):
    response = ApiClient(None).get(LIST)
    assert response.status_code == 401
    assert error(response)["code"] == "not_authenticated"


@pytest.mark.parametrize(("who", "code"), [("analyst", "permission_denied"), ("portal_customer", "not_staff")])
def test_it_refuses_roles_without_view_customer(request, api_for, rep_customer, who, code):
    api, _token = api_for(request.getfixturevalue(who))
    for response in (api.get(LIST), api.get(detail(rep_customer)), api.post(LIST, new_customer())):
        assert response.status_code == 403
        assert error(response)["code"] == code


def test_it_hides_another_reps_customer(api_for, sales_rep, rep_customer, others_customer):
    api, _token = api_for(sales_rep)
    ids = [row["id"] for row in api.get(LIST).json()["results"]]
    assert ids == [rep_customer.pk]
    assert api.get(detail(others_customer)).status_code == 404
    response = api.patch(detail(others_customer), {"notes": "mine now"})
    assert response.status_code == 404
    assert error(response)["code"] == "not_found"
    others_customer.refresh_from_db()
    assert others_customer.notes == ""


def test_it_refuses_writes_with_a_read_only_token(api_for, sales_rep, rep_customer):
    api, _token = api_for(sales_rep, scope=ApiToken.Scope.READ)
    assert api.get(detail(rep_customer)).status_code == 200
    for response in (api.post(LIST, new_customer()), api.patch(detail(rep_customer), {"notes": "x"})):
        assert response.status_code == 403
        assert error(response)["code"] == "read_only_token"
    assert Customer.objects.count() == 1


def test_it_refuses_to_change_a_customer_shared_read_only(api_for, sales_rep, other_sales_rep, others_customer):
    customer_share(customer=others_customer, user=sales_rep, by=other_sales_rep)
    api, _token = api_for(sales_rep)
    assert api.get(detail(others_customer)).status_code == 200
    response = api.patch(detail(others_customer), {"notes": "x"})
    assert response.status_code == 403
    assert error(response)["code"] == "read_only_record"


def test_it_has_no_delete(api_for, manager, rep_customer):
    api, _token = api_for(manager)
    response = api.delete(detail(rep_customer))
    assert response.status_code == 405
    assert Customer.objects.filter(pk=rep_customer.pk).exists()


# --- Personal data ----------------------------------------------------------------------------


def test_it_masks_personal_fields_for_a_service_agent(api_for, service_agent, rep_customer):
    api, _token = api_for(service_agent)
    body = api.get(detail(rep_customer)).json()
    assert body["mobile"] == "138****5678"
    assert body["email"].startswith(rep_customer.email[0]) and "***@" in body["email"]
    assert {"mobile", "email", "id_number"} <= set(body["masked_fields"])
    listed = api.get(LIST).json()["results"][0]
    assert listed["mobile"] == "138****5678"


def test_it_shows_a_rep_their_customers_phone_but_never_the_id_number(api_for, sales_rep, rep_customer):
    api, _token = api_for(sales_rep)
    body = api.get(detail(rep_customer)).json()
    assert body["mobile"] == "+8613812345678"
    assert body["id_number"] == "1101**********8515"
    assert body["masked_fields"] == ["id_number"]


# --- Creating ---------------------------------------------------------------------------------


def test_it_creates_a_customer_normalised_like_the_ui(api_for, sales_rep):
    level = CustomerLevel.objects.filter(is_active=True).first()
    tag = TagFactory()
    api, token = api_for(sales_rep)
    payload = new_customer(email=" Zhou@Example.COM ", level=level.pk, tags=[tag.pk], id_number="11010119850101101x")
    response = api.post(LIST, payload)
    assert response.status_code == 201, response.json()
    body = response.json()
    customer = Customer.objects.get(pk=body["id"])
    assert customer.mobile == "+8613910002000"
    assert customer.email == "zhou@example.com"
    assert customer.owner == sales_rep
    assert customer.id_number == "11010119850101101X"
    assert customer.birth_date.isoformat() == "1985-01-01"  # from the ID card number, as in the UI
    assert list(customer.tags.all()) == [tag]
    assert body["code"] == customer.code and body["level"] == level.pk and body["tags"] == [tag.pk]
    assert body["owner"] == sales_rep.pk
    record = customer.history.first()
    assert record.history_user == sales_rep
    assert record.history_change_reason == f"API: {token.name}"


def test_it_refuses_an_owner_from_a_sales_rep(api_for, sales_rep, other_sales_rep):
    api, _token = api_for(sales_rep)
    response = api.post(LIST, new_customer(owner=other_sales_rep.pk))
    assert response.status_code == 400
    assert error(response)["code"] == "field_not_allowed"
    assert field_codes(response) == {"owner": ["field_not_allowed"]}
    assert not Customer.objects.exists()


def test_it_refuses_unknown_and_read_only_fields(api_for, sales_rep):
    api, _token = api_for(sales_rep)
    response = api.post(LIST, new_customer(is_vip=True, code="C2020-000001"))
    assert response.status_code == 400
    assert field_codes(response) == {"code": ["field_not_allowed"], "is_vip": ["field_not_allowed"]}


def test_it_lets_a_manager_choose_the_owner(api_for, manager, sales_rep):
    api, _token = api_for(manager)
    response = api.post(LIST, new_customer(owner=sales_rep.pk))
    assert response.status_code == 201, response.json()
    assert Customer.objects.get().owner == sales_rep


def test_it_names_a_bad_phone_in_english(api_for, sales_rep):
    api, _token = api_for(sales_rep)
    response = api.post(LIST, new_customer(mobile="12345"))
    assert response.status_code == 400
    assert error(response)["code"] == "validation_error"
    mobile = error(response)["fields"]["mobile"][0]
    assert mobile["code"] == "invalid_phone"
    assert "is not a phone number" in mobile["message"] or "not a valid phone number" in mobile["message"]


def test_it_names_a_bad_phone_in_chinese(api_for, sales_rep):
    api, _token = api_for(sales_rep, language="zh-hans")
    response = api.post(LIST, new_customer(mobile="12345"))
    assert response.status_code == 400
    mobile = error(response)["fields"]["mobile"][0]
    assert mobile["code"] == "invalid_phone"
    assert "电话号码" in mobile["message"]


def test_it_refuses_wrong_json_types(api_for, sales_rep):
    api, _token = api_for(sales_rep)
    response = api.post(LIST, new_customer(name=["a"], tags="1", is_employee="yes", level="gold"))
    assert response.status_code == 400
    assert field_codes(response) == {
        "is_employee": ["invalid_type"],
        "level": ["invalid_type"],
        "name": ["invalid_type"],
        "tags": ["invalid_type"],
    }
    assert api.post(LIST, ["not", "an", "object"]).status_code == 400


def test_it_refuses_a_lookup_no_longer_in_use(api_for, sales_rep):
    level = CustomerLevel.objects.create(name="停用级别", is_active=False)
    api, _token = api_for(sales_rep)
    response = api.post(LIST, new_customer(level=level.pk))
    assert response.status_code == 400
    assert field_codes(response) == {"level": ["invalid_choice"]}


def test_it_refuses_a_future_birth_date(api_for, sales_rep):
    api, _token = api_for(sales_rep)
    response = api.post(LIST, new_customer(birth_date="2999-01-01"))
    assert field_codes(response) == {"birth_date": ["future"]}


def test_it_validates_custom_fields_like_the_form(api_for, sales_rep):
    CustomField.objects.create(label="会员号", key="member_no", field_type=CustomField.NUMBER, required=True)
    api, _token = api_for(sales_rep)
    missing = api.post(LIST, new_customer())
    assert field_codes(missing) == {"custom_data.member_no": ["required"]}
    unknown = api.post(LIST, new_customer(custom_data={"member_no": 7, "shoe_size": 42}))
    assert field_codes(unknown) == {"custom_data.shoe_size": ["field_not_allowed"]}
    bad = api.post(LIST, new_customer(custom_data={"member_no": "seven"}))
    assert field_codes(bad) == {"custom_data.member_no": ["invalid"]}
    good = api.post(LIST, new_customer(custom_data={"member_no": 7}))
    assert good.status_code == 201, good.json()
    assert good.json()["custom_data"] == {"member_no": "7"}


def test_it_answers_409_for_a_possible_duplicate(api_for, sales_rep, rep_customer, others_customer):
    api, _token = api_for(sales_rep)
    response = api.post(LIST, new_customer(mobile="138 1234 5678"))
    assert response.status_code == 409
    body = error(response)
    assert body["code"] == "possible_duplicate"
    assert [match["id"] for match in body["duplicates"]] == [rep_customer.pk]
    assert body["hidden_duplicates"] == 0
    # A customer outside the rep's reach is only counted, never named.
    hidden = api.post(LIST, new_customer(mobile=others_customer.mobile))
    assert error(hidden)["duplicates"] == [] and error(hidden)["hidden_duplicates"] == 1
    assert Customer.objects.count() == 2
    saved = api.post(LIST, new_customer(mobile="138 1234 5678", save_anyway=True))
    assert saved.status_code == 201
    assert Customer.objects.count() == 3


# --- Updating ---------------------------------------------------------------------------------


def test_it_patches_one_field_and_keeps_the_others(api_for, sales_rep, rep_customer):
    level = CustomerLevel.objects.filter(is_active=True).first()
    tag = TagFactory()
    rep_customer.level = level
    rep_customer.save()
    rep_customer.tags.add(tag)
    api, token = api_for(sales_rep)
    response = api.patch(detail(rep_customer), {"notes": "回访过"})
    assert response.status_code == 200, response.json()
    rep_customer.refresh_from_db()
    assert rep_customer.notes == "回访过"
    assert rep_customer.level == level and list(rep_customer.tags.all()) == [tag]
    assert rep_customer.id_number == "110101199003078515"
    assert rep_customer.mobile == "+8613812345678"
    record = rep_customer.history.first()
    assert record.history_change_reason == f"API: {token.name}"
    assert record.history_user == sales_rep


def test_it_keeps_a_masked_value_sent_back_by_a_put(api_for, sales_rep, rep_customer):
    api, _token = api_for(sales_rep)
    body = api.get(detail(rep_customer)).json()
    writable = {
        k: v for k, v in body.items() if k not in ("id", "code", "created_at", "updated_at", "masked_fields", "owner")
    }
    writable["notes"] = "PUT back"
    response = api.put(detail(rep_customer), writable)
    assert response.status_code == 200, response.json()
    rep_customer.refresh_from_db()
    assert rep_customer.id_number == "110101199003078515"
    assert rep_customer.notes == "PUT back"
    # null removes the stored value, as the UI's "remove" box does.
    assert api.patch(detail(rep_customer), {"id_number": None}).status_code == 200
    rep_customer.refresh_from_db()
    assert rep_customer.id_number == ""


def test_it_changes_the_status_through_the_lifecycle(api_for, sales_rep, rep_customer):
    api, _token = api_for(sales_rep)
    response = api.patch(detail(rep_customer), {"status": "intent"})
    assert response.status_code == 200, response.json()
    change = StatusChange.objects.get(customer=rep_customer)
    assert (change.from_status, change.to_status, change.changed_by) == ("prospect", "intent", sales_rep)
    # Losing a customer needs a reason: not offered by the edit, as in the UI.
    lost = api.patch(detail(rep_customer), {"status": "lost"})
    assert field_codes(lost) == {"status": ["invalid_choice"]}


def test_it_transfers_the_owner_for_a_manager(api_for, manager, sales_rep, other_sales_rep, rep_customer):
    api, token = api_for(manager)
    response = api.patch(detail(rep_customer), {"owner": other_sales_rep.pk})
    assert response.status_code == 200, response.json()
    assert response.json()["owner"] == other_sales_rep.pk
    rep_customer.refresh_from_db()
    assert rep_customer.owner == other_sales_rep
    # The transfer's history row is written in SQL (record_history_bulk): it names the token too.
    transfer = rep_customer.history.first()
    assert transfer.history_change_reason == f"edit · API: {token.name}"
    assert transfer.history_user_id == manager.pk


def test_it_refuses_a_patch_of_the_owner_by_a_sales_rep(api_for, sales_rep, other_sales_rep, rep_customer):
    api, _token = api_for(sales_rep)
    response = api.patch(detail(rep_customer), {"owner": other_sales_rep.pk})
    assert field_codes(response) == {"owner": ["field_not_allowed"]}
    rep_customer.refresh_from_db()
    assert rep_customer.owner == sales_rep


# --- The list -----------------------------------------------------------------------------------


def test_it_filters_like_the_ui_list(api_for, manager, sales_rep, other_sales_rep):
    gold, silver = CustomerLevel.objects.filter(is_active=True)[:2]
    mine = CustomerFactory(owner=sales_rep, name="张三", level=gold, mobile="+8613700000001")
    theirs = CustomerFactory(owner=other_sales_rep, name="张小四", level=silver)
    api, _token = api_for(manager)

    def ids(**params):
        response = api.get(LIST, params)
        assert response.status_code == 200, response.json()
        return {row["id"] for row in response.json()["results"]}

    assert ids(q="张") == {mine.pk, theirs.pk}
    assert ids(q="137 0000 0001") == {mine.pk}
    assert ids(level=gold.pk) == {mine.pk}
    assert ids(owner=other_sales_rep.pk) == {theirs.pk}
    assert [row["id"] for row in api.get(LIST, {"sort": "id"}).json()["results"]] == [mine.pk, theirs.pk]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"level": "gold"}, "level"), ({"sort": "drop table"}, "sort"), ({"created_from": "2020-13-40"}, "created_from")],
)
def test_it_refuses_a_bad_filter_by_name(api_for, manager, params, field):
    api, _token = api_for(manager)
    response = api.get(LIST, params)
    assert response.status_code == 400
    assert field in error(response)["fields"]


def test_it_refuses_the_owner_filter_to_a_sales_rep(api_for, sales_rep, other_sales_rep):
    api, _token = api_for(sales_rep)
    response = api.get(LIST, {"owner": other_sales_rep.pk})
    assert response.status_code == 400
    assert field_codes(response) == {"owner": ["field_not_allowed"]}


def test_it_walks_pages_without_gaps_or_repeats(api_for, sales_rep):
    customers = [CustomerFactory(owner=sales_rep) for _ in range(7)]
    api, _token = api_for(sales_rep)
    seen, url, pages = [], LIST + "?page_size=3&sort=name", 0
    while url:
        body = api.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url, pages = body["next"], pages + 1
    assert pages == 3
    assert seen == [c.pk for c in sorted(customers, key=lambda c: (c.name, c.pk))]


def test_it_logs_a_list_read_naming_the_token(api_for, sales_rep):
    customers = [CustomerFactory(owner=sales_rep) for _ in range(3)]
    api, token = api_for(sales_rep)
    assert api.get(LIST).status_code == 200
    # One row per customer read, each saying how many were read together and through which token.
    rows = PersonalDataAccess.objects.filter(object_type="customers.customer")
    assert {row.object_id for row in rows} == {str(c.pk) for c in customers}
    assert {(row.user, row.rows, row.detail, row.action) for row in rows} == {
        (sales_rep, 3, f"API {token.name}", PersonalDataAccess.Action.VIEW)
    }
    assert {row.object_label for row in rows} == {c.code for c in customers}


def test_it_counts_api_searches_against_the_users_search_limit(api_for, sales_rep, settings):
    settings.RATE_LIMIT_SEARCH_PER_MINUTE = 2
    api, _token = api_for(sales_rep)
    other, _other_token = api_for(sales_rep)  # a second token of the same user shares the limit
    assert api.get(LIST, {"q": "王"}).status_code == 200
    assert other.get(LIST, {"q": "李"}).status_code == 200
    refused = api.get(LIST, {"q": "张"})
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert int(refused["Retry-After"]) > 0
    assert api.get(LIST).status_code == 200  # a list without a search is not a search


def test_it_marks_api_answers_not_to_be_stored(api_for, sales_rep):
    api, _token = api_for(sales_rep)
    response = api.get(LIST)
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


def test_it_ignores_a_page_size_that_is_not_plain_digits(api_for, sales_rep):
    api, _token = api_for(sales_rep)
    for odd in ("²", "9" * 5000, "-3", "0"):
        assert api.get(LIST, {"page_size": odd}).status_code == 200, odd


def test_it_lists_fifty_customers_in_a_bounded_number_of_queries(api_for, sales_rep, django_assert_max_num_queries):
    tags = [TagFactory(), TagFactory()]
    for _ in range(50):
        CustomerFactory(owner=sales_rep).tags.set(tags)
    api, _token = api_for(sales_rep)
    # Token, permissions, scope, page, tags, access log: the same however many rows.
    with django_assert_max_num_queries(10):
        response = api.get(LIST, {"page_size": 50})
    rows = response.json()["results"]
    assert len(rows) == 50
    assert all(sorted(row["tags"]) == sorted(t.pk for t in tags) for row in rows)


# --- Idempotency ----------------------------------------------------------------------------------


def test_it_creates_once_for_a_repeated_idempotency_key(api_for, sales_rep):
    api, _token = api_for(sales_rep)
    first = api.post(LIST, new_customer(), HTTP_IDEMPOTENCY_KEY="order-1")
    second = api.post(LIST, new_customer(), HTTP_IDEMPOTENCY_KEY="order-1")
    assert first.status_code == second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert first.json()["id"] == second.json()["id"]
    assert Customer.objects.count() == 1
    reused = api.post(LIST, new_customer(name="别人"), HTTP_IDEMPOTENCY_KEY="order-1")
    assert reused.status_code == 422
    assert error(reused)["code"] == "idempotency_key_reused"


def test_it_creates_twice_without_a_key_unless_a_duplicate(api_for, sales_rep):
    api, _token = api_for(sales_rep)
    assert api.post(LIST, new_customer()).status_code == 201
    again = api.post(LIST, new_customer())
    assert again.status_code == 409  # the same mobile: the duplicate question, not a silent second row
    assert api.post(LIST, new_customer(mobile="139 1000 2001")).status_code == 201
    assert Customer.objects.count() == 2


def test_it_lets_a_retry_succeed_after_a_refused_create(api_for, sales_rep, rep_customer):
    api, _token = api_for(sales_rep)
    refused = api.post(LIST, new_customer(mobile=rep_customer.mobile), HTTP_IDEMPOTENCY_KEY="k-2")
    assert refused.status_code == 409
    retried = api.post(LIST, new_customer(mobile=rep_customer.mobile), HTTP_IDEMPOTENCY_KEY="k-2")
    assert retried.status_code == 409  # the refusal was not remembered as a success


# --- Contacts ---------------------------------------------------------------------------------


def test_it_lists_only_contacts_of_visible_customers(api_for, sales_rep, rep_customer, others_customer):
    mine = ContactFactory(customer=rep_customer, name="小李", phone="+8613900000001")
    ContactFactory(customer=others_customer)
    api, _token = api_for(sales_rep)
    assert [row["id"] for row in api.get(CONTACTS).json()["results"]] == [mine.pk]
    assert [row["id"] for row in api.get(CONTACTS, {"q": "139 0000 0001"}).json()["results"]] == [mine.pk]
    assert api.get(CONTACTS, {"customer": others_customer.pk}).json()["results"] == []
    assert api.get(CONTACTS, {"customer": "x"}).status_code == 400
    other = Contact.objects.exclude(pk=mine.pk).get()
    assert api.get(contact_detail(other)).status_code == 404


def test_it_masks_contacts_for_a_service_agent(api_for, service_agent, rep_customer):
    contact = ContactFactory(customer=rep_customer, phone="+8613900000001")
    api, _token = api_for(service_agent)
    body = api.get(contact_detail(contact)).json()
    assert body["phone"] == "139****0001"
    assert body["masked_fields"] == ["phone"]
    assert api.post(CONTACTS, {"customer": rep_customer.pk, "name": "x"}).status_code == 403


def test_it_creates_contacts_with_one_primary(api_for, sales_rep, rep_customer):
    first = ContactFactory(customer=rep_customer, is_primary=True)
    api, _token = api_for(sales_rep)
    response = api.post(
        CONTACTS, {"customer": rep_customer.pk, "name": "新联系人", "phone": "139 0000 0009", "is_primary": True}
    )
    assert response.status_code == 201, response.json()
    created = Contact.objects.get(pk=response.json()["id"])
    assert created.phone == "+8613900000009" and created.is_primary
    first.refresh_from_db()
    assert not first.is_primary
    bad = api.post(CONTACTS, {"customer": rep_customer.pk, "name": "坏号码", "phone": "12"})
    assert field_codes(bad) == {"phone": ["invalid_phone"]}
    patched = api.patch(contact_detail(created), {"title": "经理"})
    assert patched.status_code == 200 and patched.json()["phone"] == "+8613900000009"
    moved = api.patch(contact_detail(created), {"customer": rep_customer.pk})
    assert field_codes(moved) == {"customer": ["field_not_allowed"]}


def test_it_saves_a_contact_without_touching_its_customer(api_for, sales_rep, rep_customer):
    api, _token = api_for(sales_rep)
    versions = rep_customer.history.count()
    # Another user renames the customer meanwhile: the contact's save must not write the old copy back.
    Customer.objects.filter(pk=rep_customer.pk).update(name="改过的名字")
    response = api.post(CONTACTS, {"customer": rep_customer.pk, "name": "新联系人", "phone": "139 0000 0008"})
    assert response.status_code == 201, response.json()
    rep_customer.refresh_from_db()
    assert rep_customer.name == "改过的名字"
    assert rep_customer.history.count() == versions


def test_it_refuses_contacts_on_customers_out_of_reach(api_for, sales_rep, other_sales_rep, others_customer):
    api, _token = api_for(sales_rep)
    assert api.post(CONTACTS, {"customer": others_customer.pk, "name": "x"}).status_code == 404
    assert api.post(CONTACTS, {"customer": 2**70, "name": "x"}).status_code == 404
    assert field_codes(api.post(CONTACTS, {"name": "x"})) == {"customer": ["required"]}
    customer_share(customer=others_customer, user=sales_rep, by=other_sales_rep)
    shared = api.post(CONTACTS, {"customer": others_customer.pk, "name": "x"})
    assert shared.status_code == 403
    contact = ContactFactory(customer=others_customer)
    assert api.patch(contact_detail(contact), {"title": "x"}).status_code == 403
    assert not Contact.objects.filter(name="x").exists()


# --- Lookups ----------------------------------------------------------------------------------


def test_it_lists_lookups_to_staff_who_may_see_them(api_for, sales_rep, analyst):
    api, _token = api_for(sales_rep)
    response = api.get(reverse("api:level-list"))
    assert response.status_code == 200
    assert {row["name"] for row in response.json()["results"]} == set(
        CustomerLevel.objects.values_list("name", flat=True)
    )
    assert len(api.get(reverse("api:province-list"), {"page_size": 100}).json()["results"]) == 34
    outsider, _token = api_for(analyst)
    assert outsider.get(reverse("api:level-list")).status_code == 403


def test_it_writes_lookups_through_the_settings_form(api_for, sales_rep, administrator):
    rep, _token = api_for(sales_rep)
    assert rep.post(reverse("api:level-list"), {"name": "钻石"}).status_code == 403
    api, _token = api_for(administrator)
    created = api.post(reverse("api:level-list"), {"name": "钻石ＶＩＰ", "sort_order": 9})
    assert created.status_code == 201, created.json()
    level = CustomerLevel.objects.get(pk=created.json()["id"])
    assert level.name == "钻石VIP"  # full-width folded, as the settings page does
    again = api.post(reverse("api:level-list"), {"name": "钻石VIP"})
    assert field_codes(again) == {"name": ["unique"]}
    off = api.patch(reverse("api:level-detail", args=[level.pk]), {"is_active": False})
    assert off.status_code == 200 and off.json()["name"] == "钻石VIP"
    assert api.post(reverse("api:province-list"), {"name": "x"}).status_code == 405


def test_it_lets_a_manager_add_tags(api_for, manager):
    api, _token = api_for(manager)
    response = api.post(reverse("api:tag-list"), {"name": "重要", "color": "#AABBCC"})
    assert response.status_code == 201, response.json()
    assert Tag.objects.get(name="重要").color == "#aabbcc"
    assert field_codes(api.post(reverse("api:tag-list"), {"name": "坏", "color": "red"})) == {"color": ["invalid"]}


def test_it_logs_a_search_by_phone_like_the_ui(api_for, sales_rep):
    from cims.models import PersonalDataAccess

    customer = CustomerFactory(owner=sales_rep, mobile="+8613912345678")
    api, token = api_for(sales_rep)
    response = api.get("/api/v1/customers/", {"q": "13912345678"})
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [customer.pk]
    searches = PersonalDataAccess.objects.filter(action=PersonalDataAccess.Action.SEARCH)
    assert list(searches.values_list("object_id", flat=True)) == [str(customer.pk)]


def test_it_logs_a_contact_search_by_phone_like_the_phone_book(api_for, sales_rep, rep_customer):
    contact = ContactFactory(customer=rep_customer, phone="+8613900000077")
    api, _token = api_for(sales_rep)
    assert [row["id"] for row in api.get(CONTACTS, {"q": "139 0000 0077"}).json()["results"]] == [contact.pk]
    assert api.get(CONTACTS, {"q": "139 0000 0078"}).json()["results"] == []
    searches = PersonalDataAccess.objects.filter(
        action=PersonalDataAccess.Action.SEARCH, object_type="customers.contact"
    )
    assert sorted(searches.values_list("object_id", flat=True)) == ["", str(contact.pk)]
