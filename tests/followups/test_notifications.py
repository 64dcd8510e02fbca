"""The bell, the notification list, mark as read: a user's own notifications only."""

import pytest
from django.urls import reverse

from followups.models import Notification

pytestmark = pytest.mark.django_db


def _notification(user, key="k1", url="/followups/tasks/#task-1", **kwargs):
    return Notification.objects.create(user=user, key=key, title=f"Reminder {key}", url=url, **kwargs)


def test_it_sends_anonymous_users_to_login(client):
    for name in ("followups:notifications", "followups:bell"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "login" in response["Location"]


def test_it_refuses_portal_customers(client_for, portal_customer):
    assert client_for(portal_customer).get(reverse("followups:bell")).status_code == 403


def test_the_bell_counts_unread(client_for, sales_rep, other_sales_rep):
    _notification(sales_rep, "a")
    _notification(sales_rep, "b")
    _notification(sales_rep, "c").__class__.objects.filter(key="c").update(read_at="2026-01-01T00:00Z")
    _notification(other_sales_rep, "a")
    response = client_for(sales_rep).get(reverse("followups:bell"), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert 'data-testid="bell-count">2<' in html


def test_the_bell_shows_no_badge_when_all_read(client_for, sales_rep):
    assert "bell-count" not in client_for(sales_rep).get(reverse("followups:bell")).content.decode()


def test_the_layout_loads_the_bell_every_minute(client_for, sales_rep):
    html = client_for(sales_rep).get(reverse("reports:dashboard")).content.decode()
    assert f'hx-get="{reverse("followups:bell")}"' in html and 'hx-trigger="load, every 60s"' in html


def test_it_lists_own_notifications(client_for, sales_rep, other_sales_rep, django_assert_max_num_queries):
    for n in range(5):
        _notification(sales_rep, f"mine{n}")
    _notification(other_sales_rep, "theirs")
    client = client_for(sales_rep)
    with django_assert_max_num_queries(10):
        response = client.get(reverse("followups:notifications"))
    html = response.content.decode()
    assert html.count('data-testid="notification"') == 5 and "Reminder theirs" not in html


def test_it_marks_one_read_and_follows_its_link(client_for, sales_rep):
    notification = _notification(sales_rep)
    response = client_for(sales_rep).post(reverse("followups:notification_read", args=[notification.pk]))
    assert response.status_code == 302 and response["Location"] == "/followups/tasks/#task-1"
    notification.refresh_from_db()
    assert notification.read_at is not None


def test_it_does_not_follow_a_foreign_link(client_for, sales_rep):
    notification = _notification(sales_rep, url="https://evil.example.com/")
    response = client_for(sales_rep).post(reverse("followups:notification_read", args=[notification.pk]))
    assert response["Location"] == reverse("followups:notifications")


def test_it_hides_other_users_notifications(client_for, sales_rep, manager):
    notification = _notification(sales_rep)
    response = client_for(manager).post(reverse("followups:notification_read", args=[notification.pk]))
    assert response.status_code == 404
    notification.refresh_from_db()
    assert notification.read_at is None


def test_it_refuses_get_on_read(client_for, sales_rep):
    notification = _notification(sales_rep)
    assert client_for(sales_rep).get(reverse("followups:notification_read", args=[notification.pk])).status_code == 405
    assert client_for(sales_rep).get(reverse("followups:notifications_read_all")).status_code == 405


def test_it_marks_all_read_only_for_the_user(client_for, sales_rep, other_sales_rep):
    _notification(sales_rep, "a")
    _notification(sales_rep, "b")
    theirs = _notification(other_sales_rep, "a")
    response = client_for(sales_rep).post(reverse("followups:notifications_read_all"))
    assert response.status_code == 302
    assert not Notification.objects.filter(user=sales_rep, read_at__isnull=True).exists()
    theirs.refresh_from_db()
    assert theirs.read_at is None
