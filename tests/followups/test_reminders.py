"""Reminders really arrive, exactly once: the beat job's run twice, or by two workers at once."""

import datetime

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from followups import reminders
from followups.models import Notification, Task
from followups.tasks import send_reminders
from tests.concurrency import run_at_once
from tests.customers.factories import CustomerFactory
from tests.factories import UserFactory
from tests.followups.factories import TaskFactory


@pytest.mark.django_db
def test_it_reminds_once_and_emails_once_even_if_run_twice(sales_rep):
    task = TaskFactory(customer=CustomerFactory(owner=sales_rep), title="Call Mr Li", due_at=timezone.now())
    first = reminders.send_due_reminders()
    second = reminders.send_due_reminders()
    assert [n.key for n in first] == [f"task:{task.pk}:due"] and second == []
    notification = Notification.objects.get(user=sales_rep)
    assert "Call Mr Li" in notification.title and notification.emailed_at is not None
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [sales_rep.email]


@pytest.mark.django_db
def test_it_reminds_a_little_before_the_due_time_but_not_long_before(sales_rep):
    now = timezone.now()
    soon = TaskFactory(customer=None, assignee=sales_rep, due_at=now + datetime.timedelta(minutes=10))
    TaskFactory(customer=None, assignee=sales_rep, due_at=now + datetime.timedelta(hours=2))
    created = reminders.send_due_reminders(now=now)
    assert [n.key for n in created] == [f"task:{soon.pk}:due"]


@pytest.mark.django_db
def test_it_skips_done_tasks(sales_rep):
    TaskFactory(customer=None, assignee=sales_rep, due_at=timezone.now(), done=True)
    assert reminders.send_due_reminders() == []


@pytest.mark.django_db
def test_it_notifies_but_does_not_email_a_user_without_address():
    user = UserFactory(email="")
    TaskFactory(customer=None, assignee=user, due_at=timezone.now())
    assert len(reminders.send_due_reminders()) == 1
    assert mail.outbox == []
    assert Notification.objects.get(user=user).emailed_at is None


@pytest.mark.django_db
def test_it_reminds_again_after_the_due_time_is_moved(sales_rep):
    task = TaskFactory(customer=None, assignee=sales_rep, due_at=timezone.now())
    reminders.send_due_reminders()
    reminders.task_update(task=task, by=sales_rep, due_at=timezone.now() + datetime.timedelta(minutes=5))
    assert len(reminders.send_due_reminders()) == 1
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_the_celery_task_runs_the_job(sales_rep):
    TaskFactory(customer=None, assignee=sales_rep, due_at=timezone.now())
    assert send_reminders.apply().get() == 1
    assert send_reminders.apply().get() == 0


@pytest.mark.django_db
def test_the_beat_schedules_the_job():
    from cims.celery import app

    assert any(entry["task"] == "followups.tasks.send_reminders" for entry in app.conf.beat_schedule.values())


@pytest.mark.django_db
def test_notify_creates_a_key_once(sales_rep):
    assert reminders.notify(user=sales_rep, key="k", title="One") is not None
    assert reminders.notify(user=sales_rep, key="k", title="Two") is None
    assert Notification.objects.filter(user=sales_rep).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_still_remind_once():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    users = [UserFactory() for _ in range(3)]
    for user in users:
        for _ in range(10):
            Task.objects.create(title="Due", assignee=user, due_at=timezone.now())
    results, errors = run_at_once(lambda: len(reminders.send_due_reminders()), threads=2)
    assert errors == []
    assert sum(results) == 30
    assert Notification.objects.count() == 30
    assert len(mail.outbox) == 30
    assert len({tuple(message.to) + (message.subject,) for message in mail.outbox}) <= 30


# --- E-mail of every notification ------------------------------------------------------------------


@pytest.mark.django_db
def test_every_kind_of_notification_is_emailed_once_with_an_absolute_link(sales_rep, settings):
    settings.SITE_URL = "https://cims.example.com/"
    reminders.notify(user=sales_rep, key="low-stock:1:1", title="库存预警", body="A4 纸", url="/customers/products/1/")
    assert reminders.email_pending_notifications() == 1
    assert reminders.email_pending_notifications() == 0
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "库存预警"
    assert mail.outbox[0].body == "A4 纸\n\nhttps://cims.example.com/customers/products/1/"
    assert Notification.objects.get().emailed_at is not None


@pytest.mark.django_db
def test_a_failed_email_is_tried_again_on_the_next_run(sales_rep, monkeypatch):
    reminders.notify(user=sales_rep, key="k", title="Renewal")
    calls = []

    def broken(*args, **kwargs):
        calls.append(args)
        raise OSError("mail server down")

    monkeypatch.setattr(reminders, "send_mail", broken)
    assert reminders.email_pending_notifications() == 0
    assert Notification.objects.get().emailed_at is None and len(calls) == 1
    monkeypatch.undo()
    assert reminders.email_pending_notifications() == 1
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_it_gives_up_on_old_notifications_and_skips_inactive_users(sales_rep):
    old = reminders.notify(user=sales_rep, key="old", title="Old")
    Notification.objects.filter(pk=old.pk).update(created_at=timezone.now() - reminders.EMAIL_RETRY_WINDOW * 2)
    gone = UserFactory(is_active=False)
    reminders.notify(user=gone, key="x", title="To a former employee")
    assert reminders.email_pending_notifications() == 0
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_two_email_runs_at_once_send_each_notification_once():
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    users = [UserFactory() for _ in range(4)]
    for user in users:
        for n in range(10):
            reminders.notify(user=user, key=f"k{n}", title=f"Notice {n}")
    results, errors = run_at_once(reminders.email_pending_notifications, threads=2)
    assert errors == [] and sum(results) == 40
    assert len(mail.outbox) == 40
    assert len({tuple(message.to) + (message.subject,) for message in mail.outbox}) == 40


def test_it_alerts_every_active_administrator_group_member_or_superuser(administrator, sales_rep, mailoutbox, settings):
    from followups.reminders import notify_administrators
    from tests.factories import UserFactory

    settings.ADMINS = [("ops", "ops@example.com")]
    root = UserFactory(username="root_alert", is_superuser=True)
    UserFactory(username="gone_admin", role="admin", is_active=False)
    notify_administrators(key="test-alert", title="Backup failed", body="disk full", url="/system/")
    alerted = set(Notification.objects.filter(key="test-alert").values_list("user__username", flat=True))
    assert alerted == {administrator.username, root.username}
    assert [m.subject for m in mailoutbox] == [settings.EMAIL_SUBJECT_PREFIX + "Backup failed"]
