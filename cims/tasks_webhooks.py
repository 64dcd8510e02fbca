"""Webhook deliveries (cims.webhooks): one attempt per task run, the next one scheduled with backoff."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

logger = logging.getLogger(__name__)

SWEEP_BATCH = 500


@shared_task(name="cims.tasks_webhooks.deliver", ignore_result=True)
def deliver(delivery_id: int) -> None:
    """Attempt a delivery if it is due; a failure schedules the next attempt.

    Run eagerly (CELERY_TASK_ALWAYS_EAGER: tests, a quick start without a worker) the next attempt
    is not queued at once, which would retry in a tight loop inside the request that emitted the
    event: the row keeps its next_attempt_at and the sweeper sends it when it falls due."""
    from cims import webhooks

    countdown = webhooks.attempt(delivery_id)
    if countdown is not None and not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        webhooks.enqueue(delivery_id, countdown=countdown)


@shared_task(name="cims.tasks_webhooks.sweep", ignore_result=True)
def sweep() -> int:
    """Queue again the open deliveries whose task was lost; returns how many."""
    from cims import webhooks

    ids = list(webhooks.overdue().order_by("next_attempt_at").values_list("pk", flat=True)[:SWEEP_BATCH])
    for delivery_id in ids:
        webhooks.enqueue(delivery_id)
    if ids:
        logger.info("%d overdue webhook deliveries queued again", len(ids))
    purge_settled()
    return len(ids)


def purge_settled(now=None) -> int:
    """Forget settled deliveries older than WEBHOOK_RETENTION_DAYS (their payloads hold personal data)."""
    import datetime

    from django.utils import timezone

    from cims.models import WebhookDelivery
    from cims.webhooks import OPEN_STATUSES

    cutoff = (now or timezone.now()) - datetime.timedelta(days=settings.WEBHOOK_RETENTION_DAYS)
    deleted, _counts = WebhookDelivery.objects.filter(created_at__lt=cutoff).exclude(status__in=OPEN_STATUSES).delete()
    return deleted
