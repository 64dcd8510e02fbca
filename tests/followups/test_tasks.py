"""My tasks (待办): list, create by hand, edit, mark done; only the assignee or creator reaches one."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from followups.models import Task
from tests.customers.factories import CustomerFactory
from tests.followups.factories import TaskFactory

pytestmark = pytest.mark.django_db


def _due(days=1):
    return (timezone.localtime() + datetime.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


def test_it_sends_anonymous_users_to_login(client):
    response = client.get(reverse("followups:tasks"))
    assert response.status_code == 302 and "login" in response["Location"]


def test_it_refuses_roles_without_an_agenda(client_for, analyst, portal_customer):
    for user in (analyst, portal_customer):
        assert client_for(user).get(reverse("followups:tasks")).status_code == 403
        assert client_for(user).get(reverse("followups:task_create")).status_code == 403


def test_it_lists_open_tasks_first_with_overdue_highlighted(client_for, sales_rep, django_assert_max_num_queries):
    customer = CustomerFactory(owner=sales_rep)
    late = TaskFactory(customer=customer, title="Call back late", due_at=timezone.now() - datetime.timedelta(hours=2))
    TaskFactory(customer=customer, title="Call tomorrow")
    TaskFactory(customer=customer, title="Old done", done=True, done_at=timezone.now())
    TaskFactory(title="Someone else's")
    client = client_for(sales_rep)
    with translation.override("en"), django_assert_max_num_queries(12):
        response = client.get(reverse("followups:tasks"), HTTP_ACCEPT_LANGUAGE="en")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.index("Call back late") < html.index("Call tomorrow") < html.index("Old done")
    assert "Someone else&#x27;s" not in html and "Someone else's" not in html
    assert f'id="task-{late.pk}"' in html and "cims-overdue" in html


def test_it_creates_a_task_for_oneself(client_for, sales_rep, other_sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    # A rep cannot hand a task to someone else: the field is not there, a posted value is ignored.
    response = client_for(sales_rep).post(
        reverse("followups:task_create"),
        {"title": "Send quote", "customer_code": customer.code, "due_at": _due(), "assignee": other_sales_rep.pk},
    )
    assert response.status_code == 302
    task = Task.objects.get(title="Send quote")
    assert task.assignee == sales_rep and task.created_by == sales_rep and task.customer == customer


def test_it_lets_a_manager_assign_to_a_rep(client_for, manager, sales_rep):
    response = client_for(manager).post(
        reverse("followups:task_create"), {"title": "Visit", "due_at": _due(), "assignee": sales_rep.pk}
    )
    assert response.status_code == 302
    assert Task.objects.get(title="Visit").assignee == sales_rep


def test_it_refuses_a_customer_out_of_reach(client_for, sales_rep, other_sales_rep):
    foreign = CustomerFactory(owner=other_sales_rep)
    response = client_for(sales_rep).post(
        reverse("followups:task_create"),
        {"title": "Poach", "customer_code": foreign.code, "due_at": _due()},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    assert "No customer with this code is within your reach." in response.content.decode()
    assert not Task.objects.filter(title="Poach").exists()


def test_it_answers_bad_input_with_a_message(client_for, sales_rep):
    response = client_for(sales_rep).post(
        reverse("followups:task_create"), {"title": "", "due_at": "tomorrow-ish"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not Task.objects.exists()


def test_it_edits_a_task(client_for, sales_rep):
    task = TaskFactory(customer=CustomerFactory(owner=sales_rep))
    client = client_for(sales_rep)
    assert client.get(reverse("followups:task_edit", args=[task.pk])).status_code == 200
    response = client.post(
        reverse("followups:task_edit", args=[task.pk]), {"title": "Renamed", "customer_code": "", "due_at": _due(3)}
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.title == "Renamed" and task.customer is None


def test_it_hides_other_users_tasks_even_from_a_manager(client_for, sales_rep, other_sales_rep, manager):
    task = TaskFactory(customer=CustomerFactory(owner=other_sales_rep))
    for user in (sales_rep, manager):
        client = client_for(user)
        assert client.get(reverse("followups:task_edit", args=[task.pk])).status_code == 404
        assert client.post(reverse("followups:task_done", args=[task.pk])).status_code == 404
    task.refresh_from_db()
    assert not task.done


def test_it_lets_the_creator_edit_a_task_given_to_someone_else(client_for, manager, sales_rep):
    task = TaskFactory(customer=None, assignee=sales_rep, created_by=manager)
    assert client_for(manager).get(reverse("followups:task_edit", args=[task.pk])).status_code == 200


def test_it_marks_a_task_done_with_htmx(client_for, sales_rep):
    task = TaskFactory(customer=CustomerFactory(owner=sales_rep))
    response = client_for(sales_rep).post(reverse("followups:task_done", args=[task.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert f'id="task-{task.pk}"' in response.content.decode()
    task.refresh_from_db()
    assert task.done and task.done_at is not None


def test_it_refuses_get_on_done(client_for, sales_rep):
    task = TaskFactory(customer=CustomerFactory(owner=sales_rep))
    assert client_for(sales_rep).get(reverse("followups:task_done", args=[task.pk])).status_code == 405
    task.refresh_from_db()
    assert not task.done


def test_it_shows_overdue_tasks_on_the_dashboard(client_for, sales_rep):
    TaskFactory(
        customer=CustomerFactory(owner=sales_rep), title="Late call", due_at=timezone.now() - datetime.timedelta(days=1)
    )
    TaskFactory(customer=CustomerFactory(owner=sales_rep), title="Future call")
    response = client_for(sales_rep).get(reverse("reports:dashboard"), HTTP_ACCEPT_LANGUAGE="en")
    html = response.content.decode()
    assert 'data-testid="overdue-card"' in html and "Late call" in html and "Future call" not in html


def test_it_shows_no_overdue_card_without_overdue_tasks(client_for, sales_rep):
    TaskFactory(customer=CustomerFactory(owner=sales_rep))
    html = client_for(sales_rep).get(reverse("reports:dashboard")).content.decode()
    assert 'data-testid="overdue-card"' not in html


def test_the_dashboard_refuses_post(sales_rep, client_for):
    assert client_for(sales_rep).post(reverse("reports:dashboard")).status_code == 405
