"""Celery tasks of the follow-ups app (scheduled in cims/celery.py)."""

from celery import shared_task

from followups.reminders import send_due_reminders


@shared_task(name="followups.tasks.send_reminders", ignore_result=True)
def send_reminders() -> int:
    """Turn tasks that fall due into notifications and e-mails, each exactly once."""
    return len(send_due_reminders())


@shared_task(name="followups.tasks.return_idle_customers", ignore_result=True)
def return_idle_customers() -> int:
    """Nightly: customers nobody followed up for POOL_IDLE_DAYS days go back to the pool."""
    from customers.pool import return_idle_customers as run

    return run()


@shared_task(name="followups.tasks.warn_idle_customers", ignore_result=True)
def warn_idle_customers() -> int:
    """Nightly: owners hear POOL_WARNING_DAYS ahead that a customer will return to the pool."""
    from customers.pool import warn_idle_customers as run

    return run()


@shared_task(name="followups.tasks.contract_renewals", ignore_result=True)
def contract_renewals() -> dict:
    """Daily: expire ended contracts; remind owners of contracts ending soon (with a renewal task)."""
    from followups.renewals import run_contract_renewals

    return run_contract_renewals()
