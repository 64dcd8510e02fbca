"""Background jobs of the lottery module."""

from __future__ import annotations

from celery import shared_task

from lottery.models import LotteryEvent


@shared_task(autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def notify_winners(event_id: int) -> int:
    """Tell the winners' sales reps after the announcement; safe to run twice (one notice per win)."""
    from lottery.services import winners_notify

    event = LotteryEvent.objects.filter(pk=event_id).first()
    return winners_notify(event=event) if event else 0
