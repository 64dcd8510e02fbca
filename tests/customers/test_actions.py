"""Actions on existing customers: bulk actions, transfer, share, delete to the recycle bin, restore."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.urls import reverse
from guardian.shortcuts import assign_perm

from customers import services
from customers.forms_list import MAX_BULK
from customers.models import Customer, CustomerGroupObjectPermission, CustomerUserObjectPermission
from tests.customers.factories import CustomerFactory, TagFactory
from tests.factories import UserFactory

BULK = reverse("customers:bulk")
RECYCLE_BIN = reverse("customers:recycle_bin")


def english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def url(name, customer):
    return reverse(f"customers:{name}", args=[customer.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def permission(codename):
    return Permission.objects.get(content_type__app_label="customers", codename=codename)


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(owner=sales_rep, mobile="+8613812345678")


# --- Who may do what (every action view) -----------------------------------------------------------

ACTION_VIEWS = ["transfer", "share", "delete"]


@pytest.mark.parametrize("name", ACTION_VIEWS + ["restore"])
def test_it_redirects_anonymous_users_to_login(client, customer, name):
    response = client.post(url(name, customer))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    for target in (BULK, RECYCLE_BIN):
        response = client.post(target) if target == BULK else client.get(target)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("role", ["analyst", "customer"])
def test_it_refuses_analysts_and_portal_customers(cast, client_for, customer, role):
    client = client_for(cast[role])
    for name in ACTION_VIEWS:
        assert client.get(url(name, customer)).status_code == 403
        assert client.post(url(name, customer)).status_code == 403
    assert client.post(url("restore", customer)).status_code == 403
    assert client.get(RECYCLE_BIN).status_code == 403
    assert client.post(BULK, {"action": "tag", "ids": [customer.pk], "tag": TagFactory().pk}).status_code == 403
    customer.refresh_from_db()
    assert customer.deleted_at is None and not customer.tags.exists()


def test_it_refuses_service_staff_every_change(service_agent, client_for, customer):
    client = client_for(service_agent)
    for name in ACTION_VIEWS:
        assert client.get(url(name, customer)).status_code == 403
        assert client.post(url(name, customer), {"user": service_agent.pk, "access": "edit"}).status_code == 403
    assert client.get(RECYCLE_BIN).status_code == 403
    customer.refresh_from_db()
    assert customer.deleted_at is None
    assert not CustomerUserObjectPermission.objects.exists()


def test_it_answers_404_to_another_sales_rep(other_sales_rep, client_for, customer):
    other_sales_rep.user_permissions.add(permission("delete_customer"), permission("transfer_customer"))
    client = client_for(other_sales_rep)
    for name in ACTION_VIEWS:
        assert client.get(url(name, customer)).status_code == 404
        assert client.post(url(name, customer)).status_code == 404
    customer.refresh_from_db()
    assert customer.deleted_at is None and customer.owner != other_sales_rep


@pytest.mark.parametrize("name", ACTION_VIEWS)
def test_it_answers_405_to_wrong_methods(manager, client_for, customer, name):
    client = client_for(manager)
    assert client.put(url(name, customer)).status_code == 405
    assert client.delete(url(name, customer)).status_code == 405


def test_it_answers_405_to_a_get_of_post_only_actions(manager, client_for, customer):
    client = client_for(manager)
    assert client.get(BULK).status_code == 405
    assert client.get(url("restore", customer)).status_code == 405
    assert client.post(RECYCLE_BIN).status_code == 405


def test_it_answers_404_to_garbage_ids(manager, client_for):
    client = client_for(manager)
    for name in ACTION_VIEWS + ["restore"]:
        assert client.post(f"/customers/99999999999999999999/{name}/").status_code == 404


# --- Transfer -----------------------------------------------------------------------------------


def test_it_refuses_transfer_to_a_sales_rep(sales_rep, client_for, customer):
    client = client_for(sales_rep)
    assert client.get(url("transfer", customer)).status_code == 403
    assert client.post(url("transfer", customer), {"owner": sales_rep.pk}).status_code == 403


def test_it_offers_only_users_who_may_edit_customers_as_new_owners(
    manager, sales_rep, other_sales_rep, service_agent, analyst, client_for, customer
):
    form = client_for(manager).get(url("transfer", customer)).context["form"]
    choices = set(form.fields["owner"].queryset)
    assert other_sales_rep in choices and manager in choices
    assert sales_rep not in choices  # the current owner
    assert service_agent not in choices and analyst not in choices


def test_it_lets_a_manager_transfer_a_customer_with_a_reason(manager, sales_rep, other_sales_rep, client_for, customer):
    assign_perm("customers.change_customer", sales_rep, customer)  # a grant that went with the old owner
    response = client_for(manager).post(url("transfer", customer), {"owner": other_sales_rep.pk, "reason": "离职交接"})
    assert response.status_code == 302 and response["Location"] == url("detail", customer)
    customer.refresh_from_db()
    assert customer.owner == other_sales_rep
    latest = customer.history.latest()
    assert latest.history_user == manager and latest.history_change_reason == "离职交接"
    assert not CustomerUserObjectPermission.objects.filter(user=sales_rep, content_object=customer).exists()


@pytest.mark.parametrize("data", [{"owner": "abc"}, {"owner": ""}, {"owner": "999999"}, {"reason": "x" * 101}])
def test_it_rejects_a_bad_transfer_form(manager, sales_rep, other_sales_rep, client_for, customer, data):
    data = {"owner": other_sales_rep.pk, **data}
    response = client_for(manager).post(url("transfer", customer), data)
    assert response.status_code == 200 and response.context["form"].errors
    customer.refresh_from_db()
    assert customer.owner == sales_rep


def test_it_refuses_to_make_service_staff_an_owner(manager, service_agent, sales_rep, client_for, customer):
    response = client_for(manager).post(url("transfer", customer), {"owner": service_agent.pk})
    assert response.status_code == 200 and "owner" in response.context["form"].errors
    customer.refresh_from_db()
    assert customer.owner == sales_rep


# --- Share --------------------------------------------------------------------------------------


def test_it_shares_a_customer_read_only_with_a_colleague(sales_rep, other_sales_rep, client_for, customer):
    client = client_for(sales_rep)
    assert client.get(url("share", customer)).status_code == 200
    response = client.post(url("share", customer), {"user": other_sales_rep.pk, "access": "read"})
    assert response.status_code == 302
    assert Customer.objects.visible_to(other_sales_rep).filter(pk=customer.pk).exists()
    assert not Customer.objects.editable_by(other_sales_rep).filter(pk=customer.pk).exists()
    colleague = client_for(other_sales_rep)
    assert colleague.get(url("detail", customer)).status_code == 200
    assert colleague.get(url("share", customer)).status_code == 403  # read-only: may not share further
    assert colleague.post(url("delete", customer)).status_code == 403


def test_it_shares_a_customer_editable_and_lists_it_with_a_remove_button(
    sales_rep, other_sales_rep, client_for, customer
):
    client = english(client_for(sales_rep))
    client.post(url("share", customer), {"user": other_sales_rep.pk, "access": "edit"})
    assert Customer.objects.editable_by(other_sales_rep).filter(pk=customer.pk).exists()
    response = client.get(url("share", customer))
    shares = response.context["user_shares"]
    assert [(s["target"], s["editable"]) for s in shares] == [(other_sales_rep, True)]
    assert 'name="remove"' in response.content.decode()


def test_it_shares_a_customer_with_a_department_group(sales_rep, other_sales_rep, client_for, customer):
    group = Group.objects.create(name="dept:9:销售二部")
    other_sales_rep.groups.add(group)
    response = client_for(sales_rep).post(url("share", customer), {"group": group.pk, "access": "read"})
    assert response.status_code == 302
    assert CustomerGroupObjectPermission.objects.filter(group=group, content_object=customer).exists()
    assert Customer.objects.visible_to(other_sales_rep).filter(pk=customer.pk).exists()
    page = client_for(sales_rep).get(url("share", customer))
    assert [s["label"] for s in page.context["group_shares"]] == ["销售二部"]


def test_it_removes_a_share(sales_rep, other_sales_rep, client_for, customer):
    services.customer_share(customer=customer, user=other_sales_rep, can_edit_too=True, by=sales_rep)
    response = client_for(sales_rep).post(url("share", customer), {"remove": "1", "user": other_sales_rep.pk})
    assert response.status_code == 302
    assert not Customer.objects.visible_to(other_sales_rep).filter(pk=customer.pk).exists()


def test_it_does_not_offer_role_groups_for_sharing(sales_rep, client_for, customer):
    form = client_for(sales_rep).get(url("share", customer)).context["form"]
    assert not {g.name for g in form.fields["group"].queryset} & {"admin", "manager", "sales", "service", "customer"}


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"user": "abc", "access": "read"},
        {"user": "999999", "access": "read"},
        {"access": "admin"},
        {"access": "read"},
        {"remove": "1", "user": "abc"},
        {"remove": "1"},
    ],
)
def test_it_rejects_a_bad_share_form(sales_rep, client_for, customer, data):
    response = client_for(sales_rep).post(url("share", customer), data)
    assert response.status_code in (200, 302)
    assert not CustomerUserObjectPermission.objects.exists()


def test_it_rejects_sharing_with_a_user_and_a_group_at_once(sales_rep, other_sales_rep, client_for, customer):
    group = Group.objects.create(name="dept:3:销售三部")
    data = {"user": other_sales_rep.pk, "group": group.pk, "access": "read"}
    response = client_for(sales_rep).post(url("share", customer), data)
    assert response.status_code == 200 and response.context["form"].non_field_errors()
    assert not CustomerUserObjectPermission.objects.exists() and not CustomerGroupObjectPermission.objects.exists()


# --- Delete, recycle bin, restore -----------------------------------------------------------------


def test_it_refuses_delete_to_a_sales_rep_even_on_their_own_customer(sales_rep, client_for, customer):
    client = client_for(sales_rep)
    assert client.get(url("delete", customer)).status_code == 403
    assert client.post(url("delete", customer)).status_code == 403
    customer.refresh_from_db()
    assert customer.deleted_at is None


def test_it_refuses_delete_on_a_read_only_customer(sales_rep, other_sales_rep, client_for, customer):
    other_sales_rep.user_permissions.add(permission("delete_customer"))
    services.customer_share(customer=customer, user=other_sales_rep, by=sales_rep)
    assert client_for(other_sales_rep).post(url("delete", customer)).status_code == 403
    customer.refresh_from_db()
    assert customer.deleted_at is None


def test_it_moves_a_customer_to_the_recycle_bin_and_restores_it(manager, client_for, customer):
    client = client_for(manager)
    assert client.get(url("delete", customer)).status_code == 200
    response = client.post(url("delete", customer))
    assert response.status_code == 302 and response["Location"] == reverse("customers:list")
    customer = Customer.all_objects.get(pk=customer.pk)
    assert customer.deleted_at is not None and customer.deleted_by == manager
    assert customer.history.latest().history_change_reason == "deleted"
    assert client.get(url("detail", customer)).status_code == 404
    bin_page = client.get(RECYCLE_BIN)
    assert [c.pk for c in bin_page.context["page"].object_list] == [customer.pk]
    assert client.post(url("restore", customer)).status_code == 302
    customer.refresh_from_db()
    assert customer.deleted_at is None
    assert client.get(url("detail", customer)).status_code == 200
    assert list(client.get(RECYCLE_BIN).context["page"].object_list) == []


def test_it_refuses_to_restore_a_customer_merged_into_another(manager, client_for, customer):
    from customers.merging import customer_merge

    survivor = CustomerFactory(name=customer.name, mobile=customer.mobile, owner=customer.owner)
    customer_merge(survivor=survivor, merged=customer, choices={}, by=manager)
    client = client_for(manager)
    response = client.post(url("restore", customer))
    assert response.status_code == 302
    customer = Customer.all_objects.get(pk=customer.pk)
    assert customer.deleted_at is not None and customer.merged_into == survivor
    notice = [str(m) for m in get_messages(response.wsgi_request)]
    assert any(survivor.code in text for text in notice)


def test_it_answers_404_to_restoring_a_customer_not_in_the_bin(manager, client_for, customer):
    assert client_for(manager).post(url("restore", customer)).status_code == 404


@pytest.mark.parametrize("role", ["sales", "service"])
def test_it_refuses_the_recycle_bin_to_sales_and_service(cast, client_for, customer, role):
    services.customer_soft_delete(customer=customer, by=cast["manager"])
    client = client_for(cast[role])
    assert client.get(RECYCLE_BIN).status_code == 403
    assert client.post(url("restore", customer)).status_code == 403
    assert Customer.all_objects.get(pk=customer.pk).deleted_at is not None


def test_it_pages_and_searches_the_recycle_bin(manager, client_for, django_assert_max_num_queries, monkeypatch):
    from customers import views

    monkeypatch.setattr(views, "PER_PAGE", 2)
    customers = [CustomerFactory(name=f"回收{n}") for n in range(5)]
    for customer in customers:
        services.customer_soft_delete(customer=customer, by=manager)
    client = client_for(manager)
    with django_assert_max_num_queries(12):
        first = client.get(RECYCLE_BIN)
    seen = [c.pk for c in first.context["page"].object_list]
    response = first
    while response.context["next_query"]:
        response = client.get(f"{RECYCLE_BIN}?{response.context['next_query']}")
        seen += [c.pk for c in response.context["page"].object_list]
    assert seen == [c.pk for c in reversed(customers)]
    found = client.get(RECYCLE_BIN, {"q": "回收3"}).context["page"].object_list
    assert [c.pk for c in found] == [customers[3].pk]
    assert client.get(RECYCLE_BIN, {"q": "x" * 500, "after": "bad"}).status_code == 200


# --- Bulk actions -------------------------------------------------------------------------------


def test_it_adds_a_tag_to_the_selected_customers(sales_rep, client_for):
    tag = TagFactory(name="重点跟进")
    mine = [CustomerFactory(owner=sales_rep) for _ in range(3)]
    mine[0].tags.add(tag)  # already tagged: left alone
    response = client_for(sales_rep).post(BULK, {"action": "tag", "tag": tag.pk, "ids": [c.pk for c in mine]})
    assert response.status_code == 302 and response["Location"] == reverse("customers:list")
    assert all(tag in c.tags.all() for c in mine)
    assert mine[1].history.latest().history_user == sales_rep


def test_it_refuses_a_bulk_tag_including_a_customer_out_of_scope_and_changes_nothing(
    sales_rep, other_sales_rep, client_for
):
    tag = TagFactory()
    mine, theirs = CustomerFactory(owner=sales_rep), CustomerFactory(owner=other_sales_rep)
    response = english(client_for(sales_rep)).post(BULK, {"action": "tag", "tag": tag.pk, "ids": [mine.pk, theirs.pk]})
    assert response.status_code == 302
    assert any("nothing was changed" in m for m in messages_of(response))
    assert not mine.tags.exists() and not theirs.tags.exists()


def test_it_refuses_a_bulk_tag_on_a_read_only_shared_customer(sales_rep, other_sales_rep, client_for):
    tag = TagFactory()
    shared = CustomerFactory(owner=other_sales_rep)
    services.customer_share(customer=shared, user=sales_rep, by=other_sales_rep)
    client_for(sales_rep).post(BULK, {"action": "tag", "tag": tag.pk, "ids": [shared.pk]})
    assert not shared.tags.exists()


def test_it_refuses_a_bulk_tag_to_service_staff(service_agent, client_for, customer):
    client_for(service_agent).post(BULK, {"action": "tag", "tag": TagFactory().pk, "ids": [customer.pk]})
    assert not customer.tags.exists()


def test_it_transfers_several_customers_at_once(manager, sales_rep, other_sales_rep, client_for):
    third_rep = UserFactory(username="t_sales3", role="sales")
    customers = [
        CustomerFactory(owner=sales_rep),
        CustomerFactory(owner=sales_rep),
        CustomerFactory(owner=other_sales_rep),
    ]
    for c in customers:
        assign_perm("customers.change_customer", c.owner, c)
    response = client_for(manager).post(
        BULK, {"action": "transfer", "owner": third_rep.pk, "reason": "区域调整", "ids": [c.pk for c in customers]}
    )
    assert response.status_code == 302
    assert set(Customer.objects.filter(pk__in=[c.pk for c in customers]).values_list("owner", flat=True)) == {
        third_rep.pk
    }
    rows = Customer.history.filter(id__in=[c.pk for c in customers], history_change_reason="区域调整")
    assert rows.count() == 3 and {r.history_user for r in rows} == {manager}
    assert not CustomerUserObjectPermission.objects.filter(user__in=[sales_rep, other_sales_rep]).exists()


def test_it_refuses_a_bulk_transfer_to_a_sales_rep(sales_rep, other_sales_rep, client_for, customer):
    response = client_for(sales_rep).post(
        BULK, {"action": "transfer", "owner": other_sales_rep.pk, "ids": [customer.pk]}
    )
    assert response.status_code == 403
    customer.refresh_from_db()
    assert customer.owner == sales_rep


def test_it_moves_several_customers_to_the_recycle_bin(manager, sales_rep, client_for):
    customers = [CustomerFactory(owner=sales_rep) for _ in range(3)]
    client_for(manager).post(BULK, {"action": "delete", "ids": [c.pk for c in customers[:2]]})
    assert list(Customer.objects.filter(owner=sales_rep)) == [customers[2]]
    assert Customer.all_objects.filter(deleted_at__isnull=False).count() == 2


def test_it_refuses_a_bulk_delete_to_a_sales_rep(sales_rep, client_for, customer):
    assert client_for(sales_rep).post(BULK, {"action": "delete", "ids": [customer.pk]}).status_code == 403
    customer.refresh_from_db()
    assert customer.deleted_at is None


@pytest.mark.parametrize(
    "data",
    [
        {"action": "tag", "ids": ["abc"]},
        {"action": "tag", "ids": ["-1"]},
        {"action": "tag", "ids": ["1" * 40]},
        {"action": "tag"},
        {"action": "explode", "ids": ["1"]},
        {"action": "transfer", "ids": ["1"], "owner": "abc"},
        {"action": "transfer", "ids": ["1"]},
        {"action": "tag", "ids": ["1"], "tag": "999999"},
        {"action": "tag", "ids": [str(n) for n in range(1, MAX_BULK + 2)], "tag": "1"},
        {"action": "transfer", "ids": ["1"], "owner": "1", "reason": "x" * 101},
    ],
)
def test_it_turns_bad_bulk_input_into_a_message(manager, client_for, customer, data):
    response = client_for(manager).post(BULK, data)
    assert response.status_code == 302 and response["Location"].startswith("/customers/")
    assert messages_of(response)
    customer.refresh_from_db()
    assert customer.deleted_at is None and not customer.tags.exists()


def test_it_returns_to_the_filtered_list_but_never_elsewhere(sales_rep, client_for, customer):
    tag = TagFactory()
    client = client_for(sales_rep)
    data = {"action": "tag", "tag": tag.pk, "ids": [customer.pk]}
    response = client.post(BULK, {**data, "return_query": "status=won&q=王"})
    assert response["Location"].startswith("/customers/?") and "status=won" in response["Location"]
    response = client.post(BULK, {**data, "return_query": "next=https://evil.example/&//evil.example"})
    assert response["Location"] == "/customers/"
