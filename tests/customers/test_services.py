"""Services of the customer archive: each one's rule and its failure."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, IntegrityError
from django.http import Http404
from django.test import RequestFactory
from guardian.shortcuts import assign_perm

from cims.models import PersonalDataAccess
from customers import services
from customers.access import can_edit
from customers.models import Contact, Customer, CustomerUserObjectPermission
from customers.services import (
    TransferError,
    customer_restore,
    customer_reveal_field,
    customer_save,
    customer_share,
    customer_soft_delete,
    customer_transfer,
    customer_unshare,
    exact_search,
    find_duplicates,
)
from tests.customers.factories import ContactFactory, CustomerFactory, TagFactory

pytestmark = pytest.mark.django_db

ID_NUMBER = "110105194912190021"


# --- customer_save -----------------------------------------------------------------------------


def test_it_saves_a_customer_with_contacts_and_stamps_the_user(sales_rep):
    customer = Customer(name="华为技术", kind=Customer.ENTERPRISE)
    contacts = [
        Contact(name="张经理", phone="+8613812345678", is_primary=True),
        Contact(name="李助理", phone="+8613912345678"),
    ]
    customer_save(customer=customer, contacts=contacts, by=sales_rep)
    customer.refresh_from_db()
    assert customer.owner == sales_rep and customer.created_by == sales_rep
    assert [c.name for c in customer.contacts.all()] == ["张经理", "李助理"]
    assert customer.history.get().history_user == sales_rep
    assert {h.history_user for h in Contact.history.all()} == {sales_rep}


def test_it_keeps_the_owner_given_and_the_creator_on_update(sales_rep, manager):
    customer = customer_save(customer=Customer(name="客户", owner=sales_rep), by=manager)
    customer.name = "客户二"
    customer_save(customer=customer, by=sales_rep)
    customer.refresh_from_db()
    assert customer.owner == sales_rep and customer.created_by == manager


def test_it_saves_nothing_when_a_contact_fails(sales_rep):
    customer = Customer(name="两个主联系人", mobile="+8613812345678")
    contacts = [Contact(name="甲", is_primary=True), Contact(name="乙", is_primary=True)]
    with pytest.raises(IntegrityError):
        customer_save(customer=customer, contacts=contacts, by=sales_rep)
    assert not Customer.all_objects.exists()
    assert not Contact.objects.exists()
    assert not Customer.history.exists() and not Contact.history.exists()


def test_it_rolls_back_an_update_when_a_contact_fails(sales_rep):
    customer = CustomerFactory(name="原名", owner=sales_rep)
    customer.name = "新名"
    with pytest.raises(IntegrityError):
        customer_save(
            customer=customer,
            contacts=[Contact(name="甲", is_primary=True), Contact(name="乙", is_primary=True)],
            by=sales_rep,
        )
    customer.refresh_from_db()
    assert customer.name == "原名"


def test_it_moves_the_primary_flag_to_the_new_primary_contact(sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    old = ContactFactory(customer=customer, is_primary=True)
    customer_save(customer=customer, contacts=[Contact(name="新主联系人", is_primary=True)], by=sales_rep)
    old.refresh_from_db()
    assert not old.is_primary
    assert customer.contacts.get(is_primary=True).name == "新主联系人"
    demoted = old.history.latest()
    assert (demoted.is_primary, demoted.history_user) == (False, sales_rep)


def test_it_swaps_the_primary_contact_within_one_save(sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    first = ContactFactory(customer=customer, is_primary=True)
    second = ContactFactory(customer=customer)
    first.is_primary, second.is_primary = False, True
    customer_save(customer=customer, contacts=[second, first], by=sales_rep)  # the new primary listed first
    assert customer.contacts.get(is_primary=True) == second
    assert [h.is_primary for h in first.history.order_by("history_date", "history_id")] == [True, False]


def test_it_removes_only_the_customers_own_contacts(sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    own = ContactFactory(customer=customer)
    foreign = ContactFactory()
    own_pk = own.pk
    customer_save(customer=customer, removed_contacts=[own, foreign], by=sales_rep)
    assert not Contact.objects.filter(pk=own_pk).exists()
    assert Contact.objects.filter(pk=foreign.pk).exists()
    assert Contact.history.filter(id=own_pk, history_type="-").get().history_user == sales_rep


# --- duplicates and exact search -----------------------------------------------------------------


def test_it_finds_duplicates_by_phone_email_id_number_and_name_at_company():
    by_mobile = CustomerFactory(mobile="+8613812345678", email="")
    by_phone_column = CustomerFactory(mobile="", phone="+8613812345678", email="")
    by_email = CustomerFactory(mobile="", email="zhang.wei@example.com")
    by_id = CustomerFactory(mobile="", email="", id_number=ID_NUMBER)
    by_name = CustomerFactory(mobile="", email="", name="王伟", company="华为")
    CustomerFactory(mobile="", email="", name="王伟", company="中兴")
    CustomerFactory(mobile="", email="", name="王伟")
    assert set(find_duplicates(mobile="+8613812345678")) == {by_mobile, by_phone_column}
    assert set(find_duplicates(phone="+8613812345678")) == {by_mobile, by_phone_column}
    assert set(find_duplicates(email="zhang.wei@example.com")) == {by_email}
    assert set(find_duplicates(id_number=ID_NUMBER)) == {by_id}
    assert set(find_duplicates(name="王伟", company="华为")) == {by_name}
    assert set(find_duplicates(name="王伟")) == set()  # a common name alone is no duplicate
    assert set(find_duplicates()) == set()


def test_it_leaves_the_customer_itself_out_of_its_duplicates():
    customer = CustomerFactory(mobile="+8613812345678")
    other = CustomerFactory(mobile="+8613812345678")
    assert set(find_duplicates(mobile="+8613812345678", exclude_pk=customer.pk)) == {other}


def test_it_searches_exactly_through_the_blind_indexes(django_assert_max_num_queries):
    by_mobile = CustomerFactory(mobile="+8613812345678", email="")
    by_phone = CustomerFactory(mobile="", phone="+8613812345678", email="")
    by_email = CustomerFactory(mobile="", email="a@b.com")
    by_id = CustomerFactory(mobile="", email="", id_number=ID_NUMBER)
    CustomerFactory(mobile="", email="")  # blank everywhere: must never match
    queryset = Customer.objects.all()
    with django_assert_max_num_queries(1):
        assert set(exact_search(queryset, "138 1234 5678")) == {by_mobile, by_phone}
    assert set(exact_search(queryset, "+86 138-1234-5678")) == {by_mobile, by_phone}
    assert set(exact_search(queryset, "A@B.com")) == {by_email}
    assert set(exact_search(queryset, " ａ＠ｂ．ｃｏｍ ")) == {by_email}  # full-width folded
    assert set(exact_search(queryset, ID_NUMBER)) == {by_id}
    assert exact_search(queryset, "王伟") is None
    assert exact_search(queryset, "") is None
    assert exact_search(queryset, "   ") is None


def test_it_searches_within_the_given_queryset(sales_rep, other_sales_rep):
    CustomerFactory(owner=other_sales_rep, mobile="+8613812345678")
    assert list(exact_search(Customer.objects.visible_to(sales_rep), "13812345678")) == []


# --- transfer ------------------------------------------------------------------------------------


def _bulk_customers(owner, count: int) -> list[int]:
    Customer.objects.bulk_create(
        [Customer(code=f"T{n:07d}", name=f"批量客户{n}", owner=owner, mobile=f"+86138{n:08d}") for n in range(count)],
        batch_size=2000,
    )
    return list(Customer.objects.filter(owner=owner).values_list("pk", flat=True))


def test_it_transfers_ten_thousand_customers_set_based(
    sales_rep, other_sales_rep, manager, django_assert_max_num_queries
):
    ids = _bulk_customers(sales_rep, 10_000)
    kept_share = CustomerFactory(owner=manager)
    for pk in ids[:3]:
        assign_perm("customers.change_customer", sales_rep, Customer(pk=pk))
        assign_perm("customers.view_customer", manager, Customer(pk=pk))
    assign_perm("customers.view_customer", sales_rep, kept_share)
    to = type(other_sales_rep).objects.get(pk=other_sales_rep.pk)
    with django_assert_max_num_queries(30):
        moved = customer_transfer(customer_ids=ids, to=to, by=manager, reason="离职交接")
    assert moved == 10_000
    assert Customer.objects.filter(owner=other_sales_rep).count() == 10_000
    assert not Customer.objects.filter(owner=sales_rep).exists()
    # The old owner's grants on these customers went with them; others' grants stay.
    assert not CustomerUserObjectPermission.objects.filter(user=sales_rep, content_object_id__in=ids).exists()
    assert CustomerUserObjectPermission.objects.filter(user=manager, content_object_id__in=ids).count() == 3
    assert CustomerUserObjectPermission.objects.filter(user=sales_rep, content_object=kept_share).exists()
    # One history row per customer, with who and why, ciphertext copied as is.
    history = Customer.history.filter(id__in=ids)
    assert history.count() == 10_000
    assert set(history.values_list("history_change_reason", "history_user", "history_type").distinct()) == {
        ("离职交接", manager.pk, "~")
    }
    record = Customer.history.filter(id=ids[5]).get()
    assert record.owner_id == other_sales_rep.pk
    assert record.mobile == Customer.objects.get(pk=ids[5]).mobile
    assert record.history_date == Customer.objects.get(pk=ids[5]).updated_at


def test_it_keeps_the_tags_in_the_history_of_a_transfer(sales_rep, other_sales_rep, manager):
    customer = customer_save(customer=Customer(name="有标签的客户"), by=sales_rep)
    customer.tags.add(TagFactory(name="VIP"), TagFactory(name="华东"))
    customer_transfer(customer_ids=[customer.pk], to=other_sales_rep, by=manager)
    latest, previous = customer.history.all()[:2]
    assert latest.history_change_reason == "transfer"
    assert {row.tag.name for row in latest.tags.all()} == {"VIP", "华东"}
    assert [change.field for change in latest.diff_against(previous).changes] == ["owner"]


def test_it_skips_customers_the_target_already_owns(other_sales_rep, manager):
    customer = CustomerFactory(owner=other_sales_rep)
    assert customer_transfer(customer_ids=[customer.pk, customer.pk], to=other_sales_rep, by=manager) == 0
    assert customer_transfer(customer_ids=[], to=other_sales_rep, by=manager) == 0
    assert not Customer.history.filter(history_change_reason="transfer").exists()


@pytest.mark.parametrize("target", ["analyst", "service_agent", "portal_customer", "inactive_rep"])
def test_it_refuses_a_target_who_may_not_edit_customers(target, request, sales_rep, manager):
    if target == "inactive_rep":
        to = request.getfixturevalue("other_sales_rep")
        to.is_active = False
        to.save()
    else:
        to = request.getfixturevalue(target)
    customer = CustomerFactory(owner=sales_rep)
    with pytest.raises(TransferError):
        customer_transfer(customer_ids=[customer.pk], to=to, by=manager)
    customer.refresh_from_db()
    assert customer.owner == sales_rep


def test_it_rolls_back_a_transfer_that_fails_halfway(sales_rep, other_sales_rep, manager, monkeypatch):
    customers = [CustomerFactory(owner=sales_rep) for _ in range(3)]
    assign_perm("customers.change_customer", sales_rep, customers[0])
    history_rows = Customer.history.count()
    # The history insert is the last step: make it fail after the owners and grants have changed.
    monkeypatch.setattr(services, "_history_columns", lambda: ["no_such_column"])
    with pytest.raises(DatabaseError):
        customer_transfer(customer_ids=[c.pk for c in customers], to=other_sales_rep, by=manager)
    assert set(Customer.objects.values_list("owner", flat=True)) == {sales_rep.pk}
    assert CustomerUserObjectPermission.objects.filter(user=sales_rep, content_object=customers[0]).exists()
    assert Customer.history.count() == history_rows


# --- sharing -------------------------------------------------------------------------------------


def test_it_shares_read_only_then_editable_then_unshares(sales_rep, other_sales_rep):
    customer = CustomerFactory(owner=other_sales_rep)
    customer_share(customer=customer, user=sales_rep, by=other_sales_rep)
    assert customer in Customer.objects.visible_to(sales_rep)
    assert not can_edit(sales_rep, customer)
    customer_share(customer=customer, user=sales_rep, can_edit_too=True, by=other_sales_rep)
    assert can_edit(sales_rep, Customer.objects.get(pk=customer.pk))
    customer_share(customer=customer, user=sales_rep, by=other_sales_rep)  # back to read-only
    assert not can_edit(sales_rep, Customer.objects.get(pk=customer.pk))
    customer_unshare(customer=customer, user=sales_rep, by=other_sales_rep)
    assert customer not in Customer.objects.visible_to(sales_rep)
    assert not CustomerUserObjectPermission.objects.exists()


def test_it_shares_with_a_group(sales_rep, other_sales_rep):
    team = Group.objects.create(name="销售二部")
    sales_rep.groups.add(team)
    customer = CustomerFactory(owner=other_sales_rep)
    customer_share(customer=customer, group=team, can_edit_too=True, by=other_sales_rep)
    assert customer in Customer.objects.editable_by(sales_rep)
    customer_unshare(customer=customer, group=team, by=other_sales_rep)
    assert customer not in Customer.objects.visible_to(sales_rep)


def test_it_refuses_to_share_with_nobody(sales_rep):
    with pytest.raises(ValueError):
        customer_share(customer=CustomerFactory(owner=sales_rep), by=sales_rep)


# --- reveal --------------------------------------------------------------------------------------


def test_it_reveals_a_field_and_logs_it_without_the_value(sales_rep):
    customer = CustomerFactory(owner=sales_rep, name="王伟", id_number=ID_NUMBER, mobile="+8613812345678")
    request = RequestFactory().get("/", REMOTE_ADDR="203.0.113.7")
    value = customer_reveal_field(user=sales_rep, customer_pk=customer.pk, field="id_number", request=request)
    assert value == ID_NUMBER
    entry = PersonalDataAccess.objects.get()
    assert (entry.user, entry.action, entry.field) == (sales_rep, PersonalDataAccess.Action.REVEAL, "id_number")
    assert (entry.object_type, entry.object_id, entry.object_label) == (
        "customers.customer",
        str(customer.pk),
        customer.code,
    )
    assert entry.ip_address == "203.0.113.7"
    stored = " ".join(str(getattr(entry, f.attname)) for f in PersonalDataAccess._meta.concrete_fields)
    for secret in (ID_NUMBER, "13812345678", "王伟", ID_NUMBER[-4:] + ID_NUMBER[:4]):
        assert secret not in stored


def test_it_refuses_to_reveal_without_the_permission(service_agent, sales_rep):
    customer = CustomerFactory(owner=sales_rep, id_number=ID_NUMBER)
    with pytest.raises(PermissionDenied):
        customer_reveal_field(user=service_agent, customer_pk=customer.pk, field="id_number")
    with pytest.raises(PermissionDenied):
        customer_reveal_field(user=sales_rep, customer_pk=customer.pk, field="name")  # not a masked field
    assert not PersonalDataAccess.objects.exists()


def test_it_answers_404_when_revealing_outside_the_scope(sales_rep, other_sales_rep):
    customer = CustomerFactory(owner=other_sales_rep, id_number=ID_NUMBER)
    with pytest.raises(Http404):
        customer_reveal_field(user=sales_rep, customer_pk=customer.pk, field="id_number")
    assert not PersonalDataAccess.objects.exists()


# --- recycle bin ---------------------------------------------------------------------------------


def test_it_soft_deletes_and_restores_with_history(sales_rep, manager):
    customer = customer_save(customer=Customer(name="要删除的客户"), by=sales_rep)
    customer_soft_delete(customer=customer, by=sales_rep)
    assert not Customer.objects.filter(pk=customer.pk).exists()
    deleted = Customer.all_objects.get(pk=customer.pk)
    assert deleted.is_deleted and deleted.deleted_by == sales_rep
    customer_restore(customer=deleted, by=manager)
    restored = Customer.objects.get(pk=customer.pk)
    assert restored.deleted_at is None and restored.deleted_by is None
    rows = list(customer.history.order_by("history_date", "history_id"))
    assert [(r.history_type, r.history_change_reason, r.history_user) for r in rows] == [
        ("+", None, sales_rep),
        ("~", "deleted", sales_rep),
        ("~", "restored", manager),
    ]
    assert rows[1].deleted_at is not None and rows[2].deleted_at is None


def test_it_refuses_a_transfer_by_a_user_without_the_transfer_permission(sales_rep, other_sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    with pytest.raises(TransferError):
        customer_transfer(customer_ids=[customer.pk], to=other_sales_rep, by=sales_rep)
    customer.refresh_from_db()
    assert customer.owner == sales_rep


def test_it_refuses_a_transfer_of_customers_outside_the_actors_reach(sales_rep, other_sales_rep):
    # A rep given the transfer permission still moves only customers they may see.
    sales_rep.user_permissions.add(Permission.objects.get(codename="transfer_customer"))
    sales_rep = type(sales_rep).objects.get(pk=sales_rep.pk)  # fresh permission cache
    mine = CustomerFactory(owner=sales_rep)
    theirs = CustomerFactory(owner=other_sales_rep)
    with pytest.raises(TransferError):
        customer_transfer(customer_ids=[mine.pk, theirs.pk], to=sales_rep, by=sales_rep)
    theirs.refresh_from_db()
    mine.refresh_from_db()
    assert theirs.owner == other_sales_rep and mine.owner == sales_rep
