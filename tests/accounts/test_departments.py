import pytest
from django.urls import reverse

from accounts.models import Department
from tests.factories import DepartmentFactory, EmployeeFactory

CREATE = reverse("accounts:department_create")


def test_it_creates_a_sub_department(administrator, client_for):
    parent = DepartmentFactory(name="销售中心")
    response = client_for(administrator).post(CREATE, {"name": "销售一部", "parent": parent.pk, "sort_order": 1})
    assert response.status_code == 302
    assert Department.objects.get(name="销售一部").parent == parent


def test_it_refuses_a_duplicate_name_at_the_same_level(administrator, client_for):
    parent = DepartmentFactory(name="销售中心")
    DepartmentFactory(name="销售一部", parent=parent)
    response = client_for(administrator).post(CREATE, {"name": "销售一部", "parent": parent.pk, "sort_order": 0})
    assert response.status_code == 200
    assert "同一层级" in response.content.decode()
    assert Department.objects.filter(name="销售一部").count() == 1


def test_it_refuses_a_duplicate_root_name(administrator, client_for):
    DepartmentFactory(name="客服中心")
    response = client_for(administrator).post(CREATE, {"name": "客服中心", "sort_order": 0})
    assert response.status_code == 200
    assert Department.objects.filter(name="客服中心").count() == 1


def test_it_refuses_to_put_a_department_under_its_own_child(administrator, client_for):
    parent = DepartmentFactory(name="销售中心")
    child = DepartmentFactory(name="销售一部", parent=parent)
    response = client_for(administrator).post(
        reverse("accounts:department_edit", args=[parent.pk]), {"name": "销售中心", "parent": child.pk, "sort_order": 0}
    )
    assert response.status_code == 200
    parent.refresh_from_db()
    assert parent.parent is None


def test_it_walks_the_tree(db):
    root = DepartmentFactory(name="销售中心")
    a = DepartmentFactory(name="一部", parent=root)
    a1 = DepartmentFactory(name="一组", parent=a)
    other = DepartmentFactory(name="客服")
    assert Department.objects.subtree_ids([root.pk]) == {root.pk, a.pk, a1.pk}
    assert other.pk not in Department.objects.subtree_ids([root.pk])
    assert a1.path_names() == ["销售中心", "一部", "一组"]


def test_it_refuses_to_delete_a_department_with_employees(administrator, client_for):
    department = DepartmentFactory()
    EmployeeFactory(department=department)
    response = client_for(administrator).post(reverse("accounts:department_delete", args=[department.pk]))
    assert response.status_code == 302
    assert Department.objects.filter(pk=department.pk).exists()


def test_it_shows_the_tree_to_a_manager_read_only(manager, client_for):
    DepartmentFactory(name="销售中心")
    client = client_for(manager)
    page = client.get(reverse("accounts:department_list"))
    assert page.status_code == 200 and "销售中心" in page.content.decode()
    assert client.post(CREATE, {"name": "新部门", "sort_order": 0}).status_code == 403


@pytest.mark.parametrize("role", ["sales", "service", "analyst"])
def test_it_refuses_the_tree_to_other_roles(cast, client_for, role):
    assert client_for(cast[role]).get(reverse("accounts:department_list")).status_code == 403


def test_it_keeps_a_member_group_per_department(administrator, sales_rep, client_for):
    from accounts.services import department_save, employee_save

    client_for(administrator).post(CREATE, {"name": "销售三部", "sort_order": 0})
    third = Department.objects.get(name="销售三部")
    assert third.group is not None and "销售三部" in third.group.name
    fourth = department_save(department=Department(name="销售四部"))

    employee = employee_save(employee=EmployeeFactory.build(department=third, user=sales_rep))
    assert sales_rep.groups.filter(pk=third.group_id).exists()

    employee.department = fourth
    employee_save(employee=employee)
    assert not sales_rep.groups.filter(pk=third.group_id).exists()
    assert sales_rep.groups.filter(pk=fourth.group_id).exists()
    assert sales_rep.groups.filter(name="sales").exists()  # the role group is untouched

    employee.is_active = False
    employee_save(employee=employee)
    assert not sales_rep.groups.filter(department__isnull=False).exists()


def test_it_renames_the_member_group_with_the_department(administrator, client_for):
    from accounts.services import department_save

    department = department_save(department=Department(name="旧名"))
    client_for(administrator).post(
        reverse("accounts:department_edit", args=[department.pk]), {"name": "新名", "sort_order": 0}
    )
    department.refresh_from_db()
    assert department.group.name.endswith("新名")
