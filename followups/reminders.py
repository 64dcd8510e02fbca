"""Writes of the personal agenda: tasks (待办), notes (记事本), notifications and the reminder job.

``send_due_reminders`` is run by Celery beat (followups.tasks.send_reminders). Each reminder is a
Notification with a key unique per user, so running the job twice, or two workers at once, makes
it exactly once; only the run that really created a notification e-mails it.
"""

from __future__ import annotations

import contextlib
import datetime
import logging

from django.conf import settings
from django.core.mail import mail_admins, send_mail
from django.db import IntegrityError, connection, transaction
from django.db.models import CharField, Exists, OuterRef, Q, Value
from django.db.models.functions import Cast, Concat
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from followups.models import Note, Notification, Task

logger = logging.getLogger(__name__)

# A reminder arrives a little before the task falls due, so there is time to act on it.
REMINDER_LEAD = datetime.timedelta(minutes=15)
# Fields of a task a user may change by hand.
TASK_FIELDS = ("title", "customer", "due_at", "assignee")


def task_reminder_key(task_id: int) -> str:
    return f"task:{task_id}:due"


# --- Tasks ---------------------------------------------------------------------------------------


@transaction.atomic
def task_create(*, title: str, due_at: datetime.datetime, assignee, by, customer=None, followup=None) -> Task:
    return Task.objects.create(
        title=title, due_at=due_at, assignee=assignee, customer=customer, followup=followup, created_by=by
    )


@transaction.atomic
def task_update(*, task: Task, by, **changes) -> Task:
    """Change the given fields of ``task``. A new due time or assignee deserves a fresh reminder:
    the old one (if any) is already sent, so its key is released by deleting it when unread."""
    unknown = set(changes) - set(TASK_FIELDS)
    if unknown:
        raise TypeError(f"task_update() got unexpected fields {sorted(unknown)}")
    changed = [name for name, value in changes.items() if getattr(task, name) != value]
    if not changed:
        return task
    reschedule = "due_at" in changed or "assignee" in changed
    old_assignee_id = task.assignee_id
    for name in changed:
        setattr(task, name, changes[name])
    task.save(update_fields=changed)
    if reschedule:
        Notification.objects.filter(
            user_id=old_assignee_id, key=task_reminder_key(task.pk), read_at__isnull=True
        ).delete()
    return task


@transaction.atomic
def task_complete(*, task: Task, by) -> Task:
    if not task.done:
        task.done = True
        task.done_at = timezone.now()
        task.save(update_fields=["done", "done_at"])
    return task


# --- Notes ---------------------------------------------------------------------------------------


@transaction.atomic
def note_create(*, author, date: datetime.date, text: str) -> Note:
    return Note.objects.create(author=author, date=date, text=text)


@transaction.atomic
def note_update(*, note: Note, date: datetime.date, text: str) -> Note:
    note.date = date
    note.text = text
    note.save(update_fields=["date", "text", "updated_at"])
    return note


@transaction.atomic
def note_delete(*, note: Note) -> None:
    note.delete()


# --- Notifications -------------------------------------------------------------------------------


def notify(*, user, key: str, title: str, body: str = "", url: str = "") -> Notification | None:
    """Create the notification ``key`` for ``user`` unless it exists; None when it already did.

    The unique (user, key) constraint decides: the INSERT runs in a savepoint, and a concurrent
    or earlier one makes it fail harmlessly (INSERT … ON CONFLICT DO NOTHING in effect)."""
    if Notification.objects.filter(user=user, key=key).exists():
        return None
    try:
        with transaction.atomic():
            return Notification.objects.create(user=user, key=key, title=title[:200], body=body, url=url[:300])
    except IntegrityError:
        return None


def administrators():
    """Every active administrator: the admin group's members and superusers."""
    from accounts import roles
    from accounts.models import User

    return User.objects.filter(is_active=True).filter(Q(groups__name=roles.ADMIN) | Q(is_superuser=True)).distinct()


def notify_administrators(*, key: str, title: str, body: str = "", url: str = "") -> None:
    """Alert every active administrator in the app, and ``ADMINS`` by e-mail (``mail_admins``).

    Never raises: the alert (a failed backup, a broken audit chain) must not hide the failure it
    reports, and the database or the mail server may be what failed."""
    try:
        for user in administrators():
            notify(user=user, key=key, title=title, body=body, url=url)
    except Exception:  # noqa: BLE001 - see the docstring
        logger.exception("could not notify the administrators (%s)", key)
    with contextlib.suppress(Exception):
        mail_admins(str(title), body, fail_silently=True)


def notification_mark_read(*, notification: Notification) -> Notification:
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


def notifications_mark_all_read(*, user) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())


# A notification whose e-mail failed (mail server down) is tried again on each run for this long.
EMAIL_RETRY_WINDOW = datetime.timedelta(hours=6)
EMAIL_BATCH = 500


def _email_body(notification: Notification) -> str:
    body = notification.body
    if notification.url:
        base = settings.SITE_URL.rstrip("/")
        link = f"{base}{notification.url}" if base else notification.url
        body = f"{body}\n\n{link}" if body else link
    return body


def email_pending_notifications(now: datetime.datetime | None = None) -> int:
    """E-mail every notification not e-mailed yet whose user has an address; return how many went.

    Every kind of notification goes (task reminders, low stock, pool warnings, renewals). Each is
    sent once: the row is locked while it is sent and marked ``emailed_at`` in the same transaction,
    so an overlapping run skips it; a failed send leaves it unmarked and the next run (every minute)
    tries again, for EMAIL_RETRY_WINDOW.
    """
    now = now or timezone.now()
    pending = list(
        Notification.objects.filter(emailed_at__isnull=True, created_at__gte=now - EMAIL_RETRY_WINDOW)
        .exclude(user__email="")
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:EMAIL_BATCH]
    )
    sent = 0
    for pk in pending:
        with transaction.atomic():
            rows = Notification.objects.filter(pk=pk, emailed_at__isnull=True).select_related("user")
            if connection.features.has_select_for_update_skip_locked:
                rows = rows.select_for_update(skip_locked=True, of=("self",))
            notification = rows.first()
            if notification is None or not notification.user.email or not notification.user.is_active:
                continue
            try:
                send_mail(
                    notification.title,
                    _email_body(notification),
                    settings.DEFAULT_FROM_EMAIL,
                    [notification.user.email],
                    fail_silently=False,
                )
            except Exception as exc:  # noqa: BLE001 - a mail server hiccup must not stop the other reminders
                # No traceback: an SMTP refusal quotes the recipient's address.
                logger.error(
                    "e-mail of notification %s to user %s failed: %s",
                    notification.key,
                    notification.user_id,
                    type(exc).__name__,
                )
                continue
            notification.emailed_at = timezone.now()
            notification.save(update_fields=["emailed_at"])
            sent += 1
    return sent


def send_due_reminders(now: datetime.datetime | None = None) -> list[Notification]:
    """Remind assignees of open tasks due by ``now`` + REMINDER_LEAD; return the notifications
    this run created (and e-mailed, where the user has an address)."""
    now = now or timezone.now()
    already = Notification.objects.filter(
        user_id=OuterRef("assignee_id"),
        key=Concat(Value("task:"), Cast(OuterRef("pk"), CharField()), Value(":due"), output_field=CharField()),
    )
    due = (
        Task.objects.open()
        .filter(due_at__lte=now + REMINDER_LEAD)
        .exclude(Exists(already))
        .select_related("assignee", "customer")
        .order_by("due_at", "pk")
    )
    created: list[Notification] = []
    for task in due.iterator(chunk_size=500):
        due_local = timezone.localtime(task.due_at)
        body = _("Due %(when)s") % {"when": f"{due_local:%Y-%m-%d %H:%M}"}
        if task.customer_id:
            body += f" · {task.customer.code} {task.customer.name}"
        notification = notify(
            user=task.assignee,
            key=task_reminder_key(task.pk),
            title=_("Task due: %(title)s") % {"title": task.title},
            body=body,
            url=reverse("followups:tasks") + f"#task-{task.pk}",
        )
        if notification is not None:
            created.append(notification)
    email_pending_notifications()
    return created
