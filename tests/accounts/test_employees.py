import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.models import Employee
from tests.concurrency import run_at_once
from tests.factories import DepartmentFactory, EmployeeFactory, UserFactory

LIST = reverse("accounts:employee_list")
CREATE = reverse("accounts:employee_create")


def valid_data(**overrides):
    data = {
        "name": "孙小美",
        "position": "销售代表",
        "phone": "138 0013 8000",
        "email": "Sun@Example.com",
        "hire_date": "2026-03-01",
        "is_active": "on",
    }
    data.update(overrides)
    return data


def test_it_redirects_anonymous_users_to_login(db):
    response = Client().get(LIST)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("role", ["sales", "service", "analyst"])
def test_it_refuses_roles_without_the_permission(cast, client_for, role):
    client = client_for(cast[role])
    assert client.get(LIST).status_code == 403
    assert client.post(CREATE, valid_data()).status_code == 403
    assert not Employee.objects.exists()


def test_it_lets_a_manager_read_but_not_write(manager, client_for):
    employee = EmployeeFactory()
    client = client_for(manager)
    assert client.get(LIST).status_code == 200
    assert client.post(CREATE, valid_data()).status_code == 403
    assert (
        client.post(reverse("accounts:employee_edit", args=[employee.pk]), valid_data(name="改名")).status_code == 403
    )
    assert client.post(reverse("accounts:employee_delete", args=[employee.pk])).status_code == 403
    employee.refresh_from_db()
    assert employee.name != "改名"


def test_it_creates_an_employee_with_a_generated_number(administrator, client_for):
    department = DepartmentFactory(name="销售一部")
    response = client_for(administrator).post(CREATE, valid_data(department=department.pk))
    assert response.status_code == 302
    employee = Employee.objects.get()
    assert employee.number.startswith("E") and len(employee.number) == 6
    assert employee.phone == "+8613800138000"  # normalised to E.164
    assert employee.email == "sun@example.com"
    assert employee.department == department


def test_it_numbers_employees_in_sequence(db):
    first, second = EmployeeFactory(), EmployeeFactory()
    assert int(second.number[1:]) == int(first.number[1:]) + 1


def test_it_rejects_a_bad_phone_with_a_chinese_message(administrator, client_for):
    response = client_for(administrator).post(CREATE, valid_data(phone="12345"))
    assert response.status_code == 200
    assert "不是有效的电话号码" in response.content.decode()
    assert not Employee.objects.exists()


@pytest.mark.parametrize(
    "field, value",
    [
        ("name", ""),
        ("name", "长" * 65),
        ("hire_date", "2026-13-45"),
        ("email", "not-an-email"),
        ("department", "999999"),
        ("department", "abc"),
    ],
)
def test_it_rejects_bad_input_without_saving(administrator, client_for, field, value):
    response = client_for(administrator).post(CREATE, valid_data(**{field: value}))
    assert response.status_code == 200
    assert "is-invalid" in response.content.decode()
    assert not Employee.objects.exists()


def test_it_answers_404_for_an_unknown_employee(administrator, client_for):
    assert client_for(administrator).get(reverse("accounts:employee_edit", args=[987654])).status_code == 404


def test_it_refuses_the_wrong_method(administrator, client_for):
    assert client_for(administrator).put(CREATE).status_code == 405


def test_it_deactivates_the_login_with_the_employee(administrator, sales_rep, client_for):
    employee = EmployeeFactory(user=sales_rep)
    sales_client = client_for(sales_rep)
    assert sales_client.get("/").status_code == 200
    response = client_for(administrator).post(
        reverse("accounts:employee_edit", args=[employee.pk]), valid_data(user=sales_rep.pk, is_active="")
    )
    assert response.status_code == 302
    sales_rep.refresh_from_db()
    assert not sales_rep.is_active
    assert sales_client.get("/").status_code == 302  # logged out at the next request
    assert sales_rep.history.first().is_active is False  # and the change is in the user's history


def test_it_does_not_offer_an_account_linked_to_another_employee(administrator, sales_rep, client_for):
    EmployeeFactory(user=sales_rep)
    response = client_for(administrator).post(CREATE, valid_data(user=sales_rep.pk))
    assert response.status_code == 200
    assert Employee.objects.count() == 1


def test_it_does_not_link_a_portal_customer_as_an_employee(administrator, portal_customer, client_for):
    response = client_for(administrator).post(CREATE, valid_data(user=portal_customer.pk))
    assert response.status_code == 200
    assert not Employee.objects.exists()


def test_it_searches_and_filters_the_list(administrator, client_for):
    parent = DepartmentFactory(name="销售中心")
    child = DepartmentFactory(name="销售一部", parent=parent)
    EmployeeFactory(name="张三", department=child)
    EmployeeFactory(name="李四", department=DepartmentFactory(name="客服中心"))
    client = client_for(administrator)
    page = client.get(LIST, {"q": "张"}).content.decode()
    assert "张三" in page and "李四" not in page
    page = client.get(LIST, {"department": parent.pk}).content.decode()
    assert "张三" in page and "李四" not in page  # the department filter includes sub-departments
    partial = client.get(LIST, {"q": "李"}, HTTP_HX_REQUEST="true").content.decode()
    assert "李四" in partial and "<html" not in partial


def test_it_keeps_the_list_query_count_bounded(administrator, client_for, django_assert_max_num_queries):
    for _ in range(30):
        EmployeeFactory(user=UserFactory())
    client = client_for(administrator)
    with django_assert_max_num_queries(12):
        assert client.get(LIST).status_code == 200


def test_it_deletes_an_employee(administrator, client_for):
    employee = EmployeeFactory()
    client = client_for(administrator)
    assert client.get(reverse("accounts:employee_delete", args=[employee.pk])).status_code == 200
    assert client.post(reverse("accounts:employee_delete", args=[employee.pk])).status_code == 302
    assert not Employee.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrency is proven on PostgreSQL (DATABASE_URL)")
@pytest.mark.django_db(transaction=True)
def test_it_keeps_numbers_unique_when_created_at_once():
    department = DepartmentFactory()
    results, errors = run_at_once(
        lambda: [Employee.objects.create(name="并发", department=department).number for _ in range(5)], threads=8
    )
    numbers = [number for batch in results for number in batch]
    assert not errors
    assert len(numbers) == 40
    assert len(set(numbers)) == 40
