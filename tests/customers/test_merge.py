"""Duplicates already in the archive (the finder), and merging two customers (service and pages)."""

from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation
from guardian.shortcuts import assign_perm

from customers import merging
from customers.merging import MergeError, customer_merge, duplicate_groups_page
from customers.models import (
    Contact,
    Contract,
    Customer,
    CustomerGroupObjectPermission,
    CustomerUserObjectPermission,
    Transaction,
)
from tests.customers.factories import (
    ContactFactory,
    ContractFactory,
    CustomerFactory,
    TagFactory,
    TransactionFactory,
)
from tests.factories import DepartmentFactory, UserFactory

DUPLICATES = reverse("customers:duplicates")
ID_A = "11010519491231002X"
ID_B = "440524188001010014"


def merge_url(a, b):
    return reverse("customers:merge", args=[a.pk, b.pk])


def english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def permission(codename):
    return Permission.objects.get(content_type__app_label="customers", codename=codename)


def groups_of(user, page=1):
    return duplicate_groups_page(user=user, page=page).groups


def member_sets(user):
    return [{c.pk for c in g.members} for g in groups_of(user)]


def reasons(group):
    return {r.kind for r in group.reasons}


@pytest.fixture
def scoped_merger(db):
    """A sales rep who was given the merge permission: sees only what the rep owns."""
    user = UserFactory(username="t_scoped_merger", role="sales")
    user.user_permissions.add(permission("merge_customers"))
    return user


# --- The finder -----------------------------------------------------------------------------------


def test_it_groups_a_phone_of_one_with_the_mobile_of_another(manager):
    a = CustomerFactory(phone="+861088887777", mobile="")
    b = CustomerFactory(mobile="+861088887777")
    CustomerFactory()  # no duplicate
    [group] = groups_of(manager)
    assert {c.pk for c in group.members} == {a.pk, b.pk}
    assert reasons(group) == {"phone"}


def test_it_groups_same_mobiles_email_and_id_number(manager):
    a = CustomerFactory(mobile="+8613900000001", email="x@example.com", id_number=ID_A)
    b = CustomerFactory(mobile="+8613900000001", email="x@example.com", id_number=ID_A)
    c = CustomerFactory(email="y@example.com", id_number=ID_B)
    d = CustomerFactory(id_number=ID_B)
    e = CustomerFactory(email="y@example.com")
    found = {frozenset(c.pk for c in g.members): reasons(g) for g in groups_of(manager)}
    # a and b share three keys: one group with three reasons, not three groups.
    assert found[frozenset({a.pk, b.pk})] == {"phone", "email", "id_number"}
    assert found[frozenset({c.pk, d.pk})] == {"id_number"}
    assert found[frozenset({c.pk, e.pk})] == {"email"}
    assert len(found) == 3


def test_it_groups_the_same_name_at_the_same_company(manager):
    a = CustomerFactory(name="王伟", company="华为")
    b = CustomerFactory(name="王伟", company="华为")
    CustomerFactory(name="王伟", company="腾讯")
    CustomerFactory(name="王伟", company="")
    CustomerFactory(name="王伟", company="")
    [group] = groups_of(manager)
    assert {c.pk for c in group.members} == {a.pk, b.pk}
    assert reasons(group) == {"name"}
    assert group.reasons[0].shown == "王伟 · 华为"


def test_it_does_not_group_empty_values(manager):
    for _ in range(3):
        CustomerFactory(phone="", mobile="", email="", id_number="", company="")
    assert groups_of(manager) == []


def test_it_ignores_customers_in_the_recycle_bin(manager):
    CustomerFactory(mobile="+8613900000002")
    CustomerFactory(mobile="+8613900000002", deleted_at=timezone.now())
    assert groups_of(manager) == []


def test_it_counts_a_customer_whose_phone_equals_its_mobile_once(manager):
    CustomerFactory(phone="+8613900000003", mobile="+8613900000003")
    assert groups_of(manager) == []


def test_it_only_groups_customers_in_the_users_scope(scoped_merger, other_sales_rep):
    mine = CustomerFactory(owner=scoped_merger, mobile="+8613900000004")
    CustomerFactory(owner=other_sales_rep, mobile="+8613900000004")
    assert groups_of(scoped_merger) == []
    also_mine = CustomerFactory(owner=scoped_merger, mobile="+8613900000004")
    assert member_sets(scoped_merger) == [{mine.pk, also_mine.pk}]


def test_it_shows_shared_values_as_the_user_sees_them(manager, client_for):
    CustomerFactory(mobile="+8613912345678", id_number=ID_A)
    CustomerFactory(mobile="+8613912345678", id_number=ID_A)
    response = client_for(manager).get(DUPLICATES)
    html = response.content.decode()
    assert response.status_code == 200
    assert "139 1234 5678" in html or "13912345678" in html  # managers see phones clear
    assert ID_A not in html  # ID card numbers are masked for everyone
    assert html.count('data-testid="merge-link"') == 1


def test_it_pages_groups_within_the_query_budget(manager, client_for, django_assert_max_num_queries, monkeypatch):
    monkeypatch.setattr(merging, "GROUPS_PER_PAGE", 25)
    for n in range(30):
        CustomerFactory(mobile=f"+86139100{n:05d}", name=f"甲{n}", company="公司")
        CustomerFactory(mobile=f"+86139100{n:05d}", name=f"甲{n}", company="公司")
        CustomerFactory(email=f"dup{n}@example.com")
        CustomerFactory(email=f"dup{n}@example.com")
    client = client_for(manager)
    client.get(reverse("customers:list"))  # warm the session
    with django_assert_max_num_queries(12):
        first = client.get(DUPLICATES)
    page = first.context["page"]
    assert page.count == 60 and page.num_pages == 3 and len(page.groups) == 25
    assert all(len(g.members) == 2 for g in page.groups)
    with django_assert_max_num_queries(12):
        last = client.get(DUPLICATES + "?page=3")
    assert len(last.context["page"].groups) == 10
    seen = [frozenset(c.pk for c in g.members) for p in (1, 2, 3) for g in groups_of(manager, p)]
    assert len(set(seen)) == 60


def test_it_uses_as_many_queries_for_many_members_as_for_few(manager, client_for):
    client = client_for(manager)
    CustomerFactory(mobile="+8613911111111")
    CustomerFactory(mobile="+8613911111111")
    client.get(DUPLICATES)
    with CaptureQueriesContext(connection) as few:
        client.get(DUPLICATES)
    for _ in range(30):
        CustomerFactory(mobile="+8613911111111")
    with CaptureQueriesContext(connection) as many:
        response = client.get(DUPLICATES)
    assert len(many) == len(few)
    [group] = response.context["page"].groups
    assert group.size == 32 and len(group.members) == merging.MEMBERS_PER_GROUP and group.more == 12
    assert len(group.pairs) == merging.MEMBERS_PER_GROUP - 1  # each with the oldest, not every pair


def test_it_survives_a_bad_page_number(manager, client_for):
    CustomerFactory(mobile="+8613911111112")
    CustomerFactory(mobile="+8613911111112")
    client = client_for(manager)
    for page in ("abc", "-1", "0", "99999999999", "5"):
        response = client.get(DUPLICATES, {"page": page})
        assert response.status_code == 200
        assert len(response.context["page"].groups) == 1


# --- The duplicates page: who may see it ----------------------------------------------------------


def test_it_sends_anonymous_users_to_log_in(client, db):
    for target in (DUPLICATES, reverse("customers:merge", args=[1, 2])):
        response = client.get(target)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("role", ["sales", "service", "analyst", "customer"])
def test_it_refuses_roles_without_the_merge_permission(cast, client_for, role):
    a, b = CustomerFactory(owner=cast["sales"]), CustomerFactory(owner=cast["sales"])
    client = client_for(cast[role])
    assert client.get(DUPLICATES).status_code == 403
    assert client.get(merge_url(a, b)).status_code == 403
    assert client.post(merge_url(a, b), {"survivor": a.pk}).status_code == 403
    assert Customer.objects.count() == 2


@pytest.mark.parametrize("role", ["admin", "manager"])
def test_it_shows_the_pages_to_managers_and_administrators(cast, client_for, role):
    a, b = CustomerFactory(mobile="+8613911111113"), CustomerFactory(mobile="+8613911111113")
    client = client_for(cast[role])
    assert client.get(DUPLICATES).status_code == 200
    assert client.get(merge_url(a, b)).status_code == 200


def test_it_refuses_other_methods(manager, client_for):
    a, b = CustomerFactory(), CustomerFactory()
    client = client_for(manager)
    assert client.post(DUPLICATES).status_code == 405
    assert client.put(merge_url(a, b)).status_code == 405
    assert client.delete(merge_url(a, b)).status_code == 405


# --- The merge service ----------------------------------------------------------------------------


@pytest.fixture
def pair(sales_rep, other_sales_rep):
    older = CustomerFactory(
        name="王伟",
        company="华为",
        mobile="+8613900001111",
        email="",
        notes="老客户",
        owner=sales_rep,
        custom_data={"region": "华南", "size": "大"},
    )
    newer = CustomerFactory(
        name="王伟 ",
        company="华为技术",
        mobile="+8613900001111",
        email="wangwei@example.com",
        id_number=ID_A,
        notes="展会名单",
        owner=other_sales_rep,
        custom_data={"region": "华北", "vip": "是"},
    )
    return older, newer


def test_it_merges_fields_as_chosen(manager, pair):
    survivor, merged = pair
    choices = {
        "company": "merged",
        "email": "merged",
        "notes": "both",
        "custom:region": "merged",
        "custom:vip": "merged",
    }
    result = customer_merge(survivor=survivor, merged=merged, choices=choices, by=manager)
    result.refresh_from_db()
    assert result.pk == survivor.pk
    assert result.name == "王伟"  # not chosen: the survivor's
    assert result.company == "华为技术"
    assert result.email == "wangwei@example.com"
    assert result.id_number == ""  # not chosen: the survivor's (empty)
    assert result.notes == "老客户\n\n展会名单"
    assert result.custom_data == {"region": "华北", "size": "大", "vip": "是"}
    # The blind index follows the value (save() recomputes it): exact search finds the survivor.
    from cims.crypto import blind_index

    assert Customer.objects.filter(email_bidx=blind_index("email", "wangwei@example.com")).get() == result


def test_it_moves_everything_that_belongs_to_the_merged_record(manager, pair, sales_rep, other_sales_rep):
    from django.contrib.auth.models import Group

    survivor, merged = pair
    contacts = [ContactFactory(customer=merged), ContactFactory(customer=merged)]
    transaction = TransactionFactory(customer=merged)
    contract = ContractFactory(customer=merged)
    kept_contact = ContactFactory(customer=survivor)
    t1, t2, t3 = TagFactory(), TagFactory(), TagFactory()
    survivor.tags.add(t1, t2)
    merged.tags.add(t2, t3)
    colleague = UserFactory(username="t_colleague", role="sales")
    group = Group.objects.create(name="华南销售部")
    assign_perm("customers.view_customer", colleague, merged)
    assign_perm("customers.change_customer", colleague, merged)
    assign_perm("customers.view_customer", colleague, survivor)  # already there: must not clash
    assign_perm("customers.view_customer", group, merged)
    assign_perm("customers.view_customer", group, survivor)

    customer_merge(survivor=survivor, merged=merged, choices={}, by=manager)

    assert set(survivor.contacts.values_list("pk", flat=True)) == {c.pk for c in contacts} | {kept_contact.pk}
    assert Transaction.objects.get(pk=transaction.pk).customer_id == survivor.pk
    assert Contract.objects.get(pk=contract.pk).customer_id == survivor.pk
    assert set(survivor.tags.all()) == {t1, t2, t3}
    assert set(merged.tags.all()) == {t2, t3}  # the merged record keeps its own for the record
    grants = set(
        CustomerUserObjectPermission.objects.filter(user=colleague).values_list(
            "content_object_id", "permission__codename"
        )
    )
    assert grants == {(survivor.pk, "view_customer"), (survivor.pk, "change_customer")}
    assert list(CustomerGroupObjectPermission.objects.values_list("content_object_id", flat=True)) == [survivor.pk]
    assert Customer.objects.visible_to(colleague).filter(pk=survivor.pk).exists()


def test_it_sends_the_merged_record_to_the_recycle_bin_with_a_trace(manager, pair):
    survivor, merged = pair
    customer_merge(survivor=survivor, merged=merged, choices={}, by=manager)
    merged = Customer.all_objects.get(pk=merged.pk)
    assert merged.deleted_at is not None and merged.deleted_by == manager
    assert merged.merged_into_id == survivor.pk
    assert list(survivor.merged_from(manager="all_objects").all()) == [merged]
    assert not Customer.objects.filter(pk=merged.pk).exists()
    assert Customer.objects.filter(pk=survivor.pk).exists()


def test_it_records_the_merge_in_both_histories(manager, pair):
    survivor, merged = pair
    contact = ContactFactory(customer=merged)
    tag = TagFactory()
    merged.tags.add(tag)
    customer_merge(survivor=survivor, merged=merged, choices={"company": "merged"}, by=manager)
    reason = f"merged {merged.code} into {survivor.code}"
    latest = survivor.history.latest()
    assert latest.history_change_reason == reason and latest.history_user == manager
    assert latest.company == "华为技术"
    assert [t.tag_id for t in latest.tags.all()] == [tag.pk]  # the history row holds the united tags
    merged_history = Customer.history.filter(id=merged.pk).latest()
    assert merged_history.history_change_reason == f"merged into {survivor.code}"
    assert merged_history.merged_into_id == survivor.pk
    assert Customer.history.filter(id=merged.pk).count() >= 2  # its earlier history stays
    moved = Contact.history.filter(id=contact.pk).latest()
    assert moved.customer_id == survivor.pk and moved.history_change_reason == reason


def test_it_keeps_one_primary_contact(manager, pair):
    survivor, merged = pair
    mine = ContactFactory(customer=survivor, is_primary=True)
    theirs = ContactFactory(customer=merged, is_primary=True)
    customer_merge(survivor=survivor, merged=merged, choices={}, by=manager)
    assert list(survivor.contacts.filter(is_primary=True)) == [mine]
    theirs.refresh_from_db()
    assert theirs.customer_id == survivor.pk and not theirs.is_primary


def test_it_keeps_the_merged_primary_contact_when_the_survivor_has_none(manager, pair):
    survivor, merged = pair
    ContactFactory(customer=survivor, is_primary=False)
    theirs = ContactFactory(customer=merged, is_primary=True)
    customer_merge(survivor=survivor, merged=merged, choices={}, by=manager)
    assert list(survivor.contacts.filter(is_primary=True)) == [theirs]


def test_it_refuses_to_merge_a_record_with_itself(manager, pair):
    survivor, _ = pair
    with translation.override("en"), pytest.raises(MergeError, match="itself"):
        customer_merge(survivor=survivor, merged=survivor, choices={}, by=manager)


def test_it_refuses_a_record_already_merged_or_deleted(manager, pair):
    survivor, merged = pair
    third = CustomerFactory()
    customer_merge(survivor=survivor, merged=merged, choices={}, by=manager)
    with translation.override("en"), pytest.raises(MergeError, match="already been merged"):
        customer_merge(survivor=third, merged=merged, choices={}, by=manager)
    with pytest.raises(MergeError):
        customer_merge(survivor=merged, merged=third, choices={}, by=manager)
    assert Customer.objects.filter(pk=third.pk).exists()


def test_it_refuses_users_without_the_merge_permission(sales_rep, pair):
    survivor, merged = pair
    merged.owner = sales_rep
    merged.save()
    with translation.override("en"), pytest.raises(MergeError, match="permission"):
        customer_merge(survivor=survivor, merged=merged, choices={}, by=sales_rep)
    assert Customer.objects.filter(pk=merged.pk).exists()


def test_it_refuses_a_record_outside_the_users_scope(scoped_merger, other_sales_rep):
    mine = CustomerFactory(owner=scoped_merger)
    theirs = CustomerFactory(owner=other_sales_rep)
    with translation.override("en"), pytest.raises(MergeError, match="outside your reach"):
        customer_merge(survivor=mine, merged=theirs, choices={}, by=scoped_merger)
    assert Customer.objects.filter(pk=theirs.pk).exists()


def test_it_refuses_unknown_fields_and_values(manager, pair):
    survivor, merged = pair
    for choices in ({"code": "merged"}, {"name": "both"}, {"name": "yes"}, {"deleted_at": "merged"}):
        with pytest.raises(MergeError):
            customer_merge(survivor=survivor, merged=merged, choices=choices, by=manager)
    assert Customer.objects.filter(pk=merged.pk).exists()


def test_it_lets_only_transferrers_take_the_other_owner(scoped_merger):
    a, b = CustomerFactory(owner=scoped_merger), CustomerFactory(owner=scoped_merger)
    b.owner = None
    b.save()
    assign_perm("customers.change_customer", scoped_merger, b)
    with pytest.raises(MergeError):
        customer_merge(survivor=a, merged=b, choices={"owner": "merged"}, by=scoped_merger)


def test_it_leaves_both_records_as_they_were_when_it_fails_half_way(manager, pair):
    survivor, merged = pair
    contact = ContactFactory(customer=merged)
    transaction = TransactionFactory(customer=merged)
    history_before = Customer.history.count()
    with mock.patch.object(merging, "_unite_tags", side_effect=RuntimeError("disk full")):
        with pytest.raises(RuntimeError):
            customer_merge(survivor=survivor, merged=merged, choices={"company": "merged"}, by=manager)
    contact.refresh_from_db()
    transaction.refresh_from_db()
    assert contact.customer_id == merged.pk and transaction.customer_id == merged.pk
    survivor.refresh_from_db()
    assert survivor.company == "华为"
    merged = Customer.objects.get(pk=merged.pk)
    assert merged.merged_into_id is None and merged.deleted_at is None
    assert Customer.history.count() == history_before


def test_it_refuses_a_clash_it_cannot_resolve(manager, pair, monkeypatch):
    """A unique row per customer that both records hold (here: a pretend one-to-one) stops the merge."""
    survivor, merged = pair
    ContactFactory(customer=survivor)
    ContactFactory(customer=merged)
    relations = list(merging._relations())
    contact_fk = Contact._meta.get_field("customer")
    monkeypatch.setattr(merging, "_relations", lambda: [(Contact, contact_fk, [((), None, None)])] + relations[1:])
    with translation.override("en"), pytest.raises(MergeError, match="cannot belong to one customer twice"):
        customer_merge(survivor=survivor, merged=merged, choices={}, by=manager)
    assert merged.contacts.count() == 1


def test_it_moves_rows_of_every_model_that_points_at_a_customer():
    found = {model._meta.label for model, _fk, _sets in merging._relations()}
    assert {
        "customers.Contact",
        "customers.Transaction",
        "customers.Contract",
        "customers.CustomerUserObjectPermission",
        "customers.CustomerGroupObjectPermission",
    } <= found
    assert "customers.Customer" not in found  # merged_into is not followed
    assert not any(label.startswith("customers.Historical") for label in found)


# --- The merge page -------------------------------------------------------------------------------


def test_it_shows_only_the_differing_fields_masked_as_the_user_sees_them(manager, client_for, pair):
    older, newer = pair
    response = client_for(manager).get(merge_url(newer, older))
    assert response.status_code == 200
    fields = [item["row"].name for item in response.context["rows"]]
    assert "name" not in fields or older.name != newer.name
    assert {"company", "email", "id_number", "notes", "owner", "custom:region"} <= set(fields)
    assert "mobile" not in fields and "status" not in fields
    html = response.content.decode()
    assert ID_A not in html  # ID card numbers stay masked, and radios carry ids, not values
    assert "wangwei@example.com" in html  # managers see e-mails clear
    form = response.context["form"]
    assert form["survivor"].value() == str(older.pk)  # the older record stays by default
    # Defaults: the only value there is, else the older record's.
    assert form["pick_email"].value() == str(newer.pk)
    assert form["pick_company"].value() == str(older.pk)


def test_it_merges_from_the_page(manager, client_for, pair):
    older, newer = pair
    client = english(client_for(manager))
    data = {
        "survivor": older.pk,
        "pick_name": older.pk,
        "pick_company": newer.pk,
        "pick_email": newer.pk,
        "pick_id_number": newer.pk,
        "pick_notes": "both",
        "pick_owner": older.pk,
        "pick_custom_region": older.pk,
        "pick_custom_size": older.pk,
        "pick_custom_vip": newer.pk,
    }
    response = client.post(merge_url(newer, older), data)
    assert response.status_code == 302 and response["Location"] == reverse("customers:detail", args=[older.pk])
    assert any("was merged into" in m for m in messages_of(response))
    older.refresh_from_db()
    assert older.company == "华为技术" and older.id_number == ID_A and older.notes == "老客户\n\n展会名单"
    assert older.custom_data == {"region": "华南", "size": "大", "vip": "是"}
    assert Customer.all_objects.get(pk=newer.pk).merged_into_id == older.pk


def test_it_lets_the_newer_record_survive(manager, client_for, pair):
    older, newer = pair
    form = client_for(manager).get(merge_url(older, newer)).context["form"]
    data = {name: form[name].value() for name in form.fields}
    data["survivor"] = newer.pk
    response = client_for(manager).post(merge_url(older, newer), data)
    assert response.status_code == 302
    newer.refresh_from_db()
    # Values picked by record: the defaults took the older company and the newer e-mail.
    assert newer.company == "华为" and newer.email == "wangwei@example.com"
    assert Customer.all_objects.get(pk=older.pk).merged_into_id == newer.pk


@pytest.mark.parametrize(
    "bad",
    [
        {"survivor": "abc"},
        {"survivor": "999999"},
        {"pick_company": "999999"},
        {"pick_company": ""},
        {"pick_notes": "everything"},
        {"survivor": ""},
    ],
)
def test_it_answers_bad_input_with_form_errors(manager, client_for, pair, bad):
    older, newer = pair
    client = english(client_for(manager))
    form = client.get(merge_url(older, newer)).context["form"]
    data = {name: form[name].value() for name in form.fields}
    data.update(bad)
    response = client.post(merge_url(older, newer), data)
    assert response.status_code == 200
    assert response.context["form"].errors
    assert Customer.objects.filter(pk=newer.pk).exists() and Customer.objects.filter(pk=older.pk).exists()


def test_it_shows_the_services_refusal_on_the_page(manager, client_for, pair):
    older, newer = pair
    client = english(client_for(manager))
    form = client.get(merge_url(older, newer)).context["form"]
    data = {name: form[name].value() for name in form.fields}
    with mock.patch("customers.merging.customer_merge", side_effect=MergeError("Nope, not now.")):
        response = client.post(merge_url(older, newer), data)
    assert response.status_code == 200
    assert "Nope, not now." in response.content.decode()


def test_it_answers_404_for_a_customer_outside_the_scope(scoped_merger, other_sales_rep, client_for):
    mine = CustomerFactory(owner=scoped_merger)
    theirs = CustomerFactory(owner=other_sales_rep)
    client = client_for(scoped_merger)
    assert client.get(merge_url(mine, theirs)).status_code == 404
    assert client.post(merge_url(theirs, mine), {"survivor": mine.pk}).status_code == 404
    assert Customer.objects.filter(pk=theirs.pk).exists()


def test_it_answers_404_for_a_merged_or_deleted_customer(manager, client_for, pair):
    older, newer = pair
    customer_merge(survivor=older, merged=newer, choices={}, by=manager)
    client = client_for(manager)
    assert client.get(merge_url(older, newer)).status_code == 404
    assert client.get(reverse("customers:merge", args=[older.pk, 999999])).status_code == 404


def test_it_refuses_to_merge_a_customer_with_itself_on_the_page(manager, client_for, pair):
    older, _ = pair
    client = english(client_for(manager))
    response = client.post(merge_url(older, older), {"survivor": older.pk})
    assert response.status_code == 302 and response["Location"] == DUPLICATES
    assert any("itself" in m for m in messages_of(response))
    assert Customer.objects.filter(pk=older.pk).exists()


def test_it_offers_the_owner_only_to_transferrers(scoped_merger, client_for):
    department = DepartmentFactory(head=scoped_merger)
    colleague = UserFactory(username="t_colleague2", role="sales")
    from accounts.models import Employee

    Employee.objects.create(name="同事", department=department, user=colleague, position="销售")
    a, b = CustomerFactory(owner=scoped_merger), CustomerFactory(owner=colleague)
    scoped_merger.user_permissions.add(permission("change_all_customers"))
    response = client_for(scoped_merger).get(merge_url(a, b))
    assert response.status_code == 200
    [owner_row] = [item for item in response.context["rows"] if item["row"].name == "owner"]
    assert owner_row["field"] is None


def test_it_shows_on_the_survivor_what_was_merged_into_it(manager, client_for, pair):
    older, newer = pair
    client = client_for(manager)
    assert 'data-testid="merged-from"' not in client.get(reverse("customers:detail", args=[older.pk])).content.decode()
    customer_merge(survivor=older, merged=newer, choices={}, by=manager)
    html = client.get(reverse("customers:detail", args=[older.pk])).content.decode()
    assert 'data-testid="merged-from"' in html and newer.code in html
    assert client.get(reverse("customers:detail", args=[newer.pk])).status_code == 404


def test_it_answers_403_for_a_customer_the_user_may_only_read(scoped_merger, other_sales_rep, client_for):
    mine = CustomerFactory(owner=scoped_merger)
    shared = CustomerFactory(owner=other_sales_rep)
    assign_perm("customers.view_customer", scoped_merger, shared)
    client = client_for(scoped_merger)
    assert client.get(merge_url(mine, shared)).status_code == 403
    with pytest.raises(MergeError):
        customer_merge(survivor=mine, merged=shared, choices={}, by=scoped_merger)
    assert Customer.objects.filter(pk=shared.pk).exists()


def test_it_finds_nothing_for_a_user_who_sees_no_customer(roleless_user):
    CustomerFactory(mobile="+8613911111114")
    CustomerFactory(mobile="+8613911111114")
    page = duplicate_groups_page(user=roleless_user)
    assert page.groups == [] and page.count == 0
