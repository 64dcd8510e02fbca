"""Celery jobs of the complaints module."""

from celery import shared_task


@shared_task
def check_sla() -> int:
    """Flag tickets about to breach their SLA (notify the assignee) and escalate breached ones."""
    from complaints.services import check_sla as run

    return run()
