"""Who sees and edits which customer: Customer.objects.visible_to / editable_by and get_customer_for."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone
from guardian.shortcuts import assign_perm, get_objects_for_user

from accounts import roles
from customers.access import can_edit, get_customer_for
from customers.models import Customer, CustomerGroupObjectPermission, CustomerUserObjectPermission
from tests.customers.factories import CustomerFactory
from tests.factories import DepartmentFactory, EmployeeFactory, UserFactory

pytestmark = pytest.mark.django_db


def _visible(user) -> set:
    return set(Customer.objects.visible_to(user))


def _editable(user) -> set:
    return set(Customer.objects.editable_by(user))


def test_it_shows_a_sales_rep_their_own_customers_only(sales_rep, other_sales_rep):
    mine = CustomerFactory(owner=sales_rep)
    theirs = CustomerFactory(owner=other_sales_rep)
    CustomerFactory(owner=None)
    assert _visible(sales_rep) == {mine}
    assert _editable(sales_rep) == {mine}
    assert _visible(other_sales_rep) == {theirs}


def test_it_shows_a_customer_shared_read_only_with_the_user(sales_rep, other_sales_rep):
    shared = CustomerFactory(owner=other_sales_rep)
    assign_perm("customers.view_customer", sales_rep, shared)
    assert _visible(sales_rep) == {shared}
    assert _editable(sales_rep) == set()
    assert not can_edit(sales_rep, shared)


def test_it_lets_a_user_edit_a_customer_shared_editable(sales_rep, other_sales_rep):
    shared = CustomerFactory(owner=other_sales_rep)
    assign_perm("customers.view_customer", sales_rep, shared)
    assign_perm("customers.change_customer", sales_rep, shared)
    assert _visible(sales_rep) == {shared}
    assert _editable(sales_rep) == {shared}
    assert can_edit(sales_rep, shared)


def test_it_shows_a_customer_shared_with_a_group_of_the_user(sales_rep, other_sales_rep):
    team = Group.objects.create(name="销售一部")
    sales_rep.groups.add(team)
    shared = CustomerFactory(owner=other_sales_rep)
    not_shared = CustomerFactory(owner=other_sales_rep)
    assign_perm("customers.view_customer", team, shared)
    assert _visible(sales_rep) == {shared}
    assert not_shared not in _visible(sales_rep)
    assert _editable(sales_rep) == set()
    assign_perm("customers.change_customer", team, shared)
    assert _editable(sales_rep) == {shared}


@pytest.fixture
def tree(sales_rep, other_sales_rep):
    """销售中心 (headed by `head`) > 销售一部 (sales_rep) > 一组 (deep_rep); 客服中心 (other_sales_rep)."""
    head = UserFactory(username="t_head", name="部长", role=roles.SALES)
    deep_rep = UserFactory(username="t_sales3", name="赵销售", role=roles.SALES)
    center = DepartmentFactory(name="销售中心", head=head)
    one = DepartmentFactory(name="销售一部", parent=center)
    group = DepartmentFactory(name="一组", parent=one)
    elsewhere = DepartmentFactory(name="客服中心")
    rep_employee = EmployeeFactory(user=sales_rep, department=one)
    EmployeeFactory(user=deep_rep, department=group)
    EmployeeFactory(user=other_sales_rep, department=elsewhere)
    EmployeeFactory(user=None, department=one)  # an employee without a login owns nothing
    return {"head": head, "deep_rep": deep_rep, "rep_employee": rep_employee, "elsewhere": elsewhere}


def test_it_shows_a_department_head_the_customers_of_their_department_and_below(tree, sales_rep, other_sales_rep):
    own = CustomerFactory(owner=tree["head"])
    reps = CustomerFactory(owner=sales_rep)
    deep = CustomerFactory(owner=tree["deep_rep"])
    outside = CustomerFactory(owner=other_sales_rep)
    assert _visible(tree["head"]) == {own, reps, deep}
    assert outside not in _visible(tree["head"])
    # The rep below does not see upwards or sideways.
    assert _visible(sales_rep) == {reps}


def test_it_follows_a_rep_who_moves_to_another_department(tree, sales_rep):
    head = tree["head"]
    reps = CustomerFactory(owner=sales_rep)
    assert reps in _visible(head)
    permission_rows = CustomerUserObjectPermission.objects.count() + CustomerGroupObjectPermission.objects.count()
    tree["rep_employee"].department = tree["elsewhere"]
    tree["rep_employee"].save()
    assert reps not in _visible(head)
    assert reps in _visible(sales_rep)
    after = CustomerUserObjectPermission.objects.count() + CustomerGroupObjectPermission.objects.count()
    assert after == permission_rows == 0  # a query on columns, no permission rows to rewrite


def test_it_does_not_widen_a_sales_reps_scope_by_a_model_wide_permission(sales_rep, other_sales_rep):
    mine = CustomerFactory(owner=sales_rep)
    others = {CustomerFactory(owner=other_sales_rep), CustomerFactory(owner=None)}
    # The sales group holds customers.view_customer model-wide ...
    assert sales_rep.has_perm("customers.view_customer")
    # ... which django-guardian's shortcut turns into "every customer":
    assert set(get_objects_for_user(sales_rep, "customers.view_customer")) == {mine, *others}
    # Our rule does not.
    assert _visible(sales_rep) == {mine}
    assert _editable(sales_rep) == {mine}


def test_it_does_not_widen_the_scope_by_a_model_wide_permission_held_directly(other_sales_rep):
    rep = UserFactory(username="t_direct", role=roles.SALES)
    rep.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="customers", codename__in=["view_customer", "change_customer"]
        )
    )
    rep = type(rep).objects.get(pk=rep.pk)  # fresh permission cache
    CustomerFactory(owner=other_sales_rep)
    assert _visible(rep) == set()
    assert _editable(rep) == set()


def test_it_shows_every_customer_to_managers_administrators_and_service(
    manager, administrator, service_agent, sales_rep, other_sales_rep
):
    everyone = {CustomerFactory(owner=sales_rep), CustomerFactory(owner=other_sales_rep), CustomerFactory(owner=None)}
    assert _visible(manager) == everyone
    assert _visible(administrator) == everyone
    assert _visible(service_agent) == everyone
    assert _editable(manager) == everyone
    assert _editable(administrator) == everyone
    assert _editable(service_agent) == set()  # service reads, never edits the profile


def test_it_shows_nothing_to_analysts_portal_customers_and_roleless_users(
    analyst, portal_customer, roleless_user, sales_rep
):
    customer = CustomerFactory(owner=sales_rep)
    for user in (analyst, portal_customer, roleless_user):
        assert _visible(user) == set()
        assert _editable(user) == set()
        with pytest.raises(Http404):
            get_customer_for(user, customer.pk)


def test_it_shows_nothing_to_a_shared_user_without_the_model_permission(analyst, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    assign_perm("customers.view_customer", analyst, customer)
    assert _visible(analyst) == set()


def test_it_shows_nothing_to_an_inactive_user(sales_rep, manager):
    CustomerFactory(owner=sales_rep)
    CustomerFactory(owner=manager)
    for user in (sales_rep, manager):
        user.is_active = False
        user.save()
        user = type(user).objects.get(pk=user.pk)
        assert _visible(user) == set()
        assert _editable(user) == set()


def test_it_shows_nothing_to_an_anonymous_user(sales_rep):
    from django.contrib.auth.models import AnonymousUser

    CustomerFactory(owner=sales_rep)
    assert _visible(AnonymousUser()) == set()
    assert _visible(None) == set()


def test_it_leaves_soft_deleted_customers_out(sales_rep, manager, service_agent):
    alive = CustomerFactory(owner=sales_rep)
    deleted = CustomerFactory(owner=sales_rep, deleted_at=timezone.now())
    for user in (sales_rep, manager, service_agent):
        assert _visible(user) == {alive}
        with pytest.raises(Http404):
            get_customer_for(user, deleted.pk)
    # The recycle bin reaches them through the unfiltered manager, still within the same rule.
    assert set(Customer.all_objects.visible_to(manager)) == {alive, deleted}
    assert set(Customer.all_objects.visible_to(sales_rep)) == {alive, deleted}


def test_it_gives_404_outside_the_scope_and_403_for_editing_a_read_only_share(sales_rep, other_sales_rep):
    mine = CustomerFactory(owner=sales_rep)
    theirs = CustomerFactory(owner=other_sales_rep)
    read_only = CustomerFactory(owner=other_sales_rep)
    assign_perm("customers.view_customer", sales_rep, read_only)
    assert get_customer_for(sales_rep, mine.pk, edit=True) == mine
    with pytest.raises(Http404):
        get_customer_for(sales_rep, theirs.pk)
    with pytest.raises(Http404):
        get_customer_for(sales_rep, 999_999_999)
    assert get_customer_for(sales_rep, read_only.pk) == read_only
    with pytest.raises(PermissionDenied):
        get_customer_for(sales_rep, read_only.pk, edit=True)


def test_it_gives_service_staff_read_only_access(service_agent, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    assert get_customer_for(service_agent, customer.pk) == customer
    with pytest.raises(PermissionDenied):
        get_customer_for(service_agent, customer.pk, edit=True)


def test_it_lists_visible_customers_with_a_constant_query_count(
    sales_rep, other_sales_rep, django_assert_max_num_queries
):
    for _ in range(5):
        CustomerFactory(owner=sales_rep)
        assign_perm("customers.view_customer", sales_rep, CustomerFactory(owner=other_sales_rep))
    rep = type(sales_rep).objects.get(pk=sales_rep.pk)
    rep.get_all_permissions()  # the permission cache, loaded once per request
    with django_assert_max_num_queries(2):  # the headed departments, then the customers
        assert len(list(Customer.objects.visible_to(rep))) == 10


def _parts(user):
    from customers.access import scope_split

    parts = scope_split(user)
    if parts is None:
        return None
    return [set(Customer.objects.filter(part).values_list("pk", flat=True)) for part in parts if part is not None]


def test_scope_split_parts_are_disjoint_and_together_the_visible_customers(tree, sales_rep, other_sales_rep):
    """The parts aggregates use (customers.access.scope_split) agree with visible_to: owned, then
    the headed departments', shared with the user or a group, not owned; deleted and others' left out."""
    head = tree["head"]
    team = Group.objects.create(name="重点客户组")
    head.groups.add(team)
    owned = CustomerFactory(owner=head)
    below = CustomerFactory(owner=sales_rep)
    shared = CustomerFactory(owner=other_sales_rep)
    group_shared = CustomerFactory(owner=other_sales_rep)
    both = CustomerFactory(owner=head)  # owned and shared as well: in the owned part only
    unowned_shared = CustomerFactory(owner=None)
    deleted = CustomerFactory(owner=head, deleted_at=timezone.now())
    CustomerFactory(owner=other_sales_rep)
    for customer in (shared, both, unowned_shared):
        assign_perm("customers.view_customer", head, customer)
    assign_perm("customers.view_customer", team, group_shared)
    mine, others = _parts(head)
    assert mine == {owned.pk, both.pk}
    assert others == {below.pk, shared.pk, group_shared.pk, unowned_shared.pk}
    assert mine | others == {c.pk for c in _visible(head)}
    assert deleted.pk not in mine | others
    assert _parts(sales_rep) == [{below.pk}, set()]


def test_scope_split_is_none_for_everyone_and_empty_for_no_one(manager, analyst, sales_rep):
    CustomerFactory(owner=sales_rep)
    assert _parts(manager) is None
    assert _parts(analyst) == [set()]
