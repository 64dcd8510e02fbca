"""Celery tasks of the follow-ups app (scheduled in cims/celery.py)."""

from celery import shared_task

from followups.reminders import send_due_reminders


@shared_task(name="followups.tasks.send_reminders", ignore_result=True)
def send_reminders() -> int:
    """Turn tasks that fall due into notifications and e-mails, each exactly once."""
    return len(send_due_reminders())
