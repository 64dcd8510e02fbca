"""Background jobs of the reports: the summary tables' refresh (reports.facts), the nightly
customer profiles (reports.profiles), scheduled report e-mails (reports.subscriptions)."""

from __future__ import annotations

import logging

from celery import shared_task

from reports.facts import facts_refresh

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def refresh_facts() -> dict[str, float]:
    timings = facts_refresh()
    logger.info("report summaries refreshed: %s", timings)
    return timings


@shared_task(ignore_result=True)
def refresh_profiles() -> dict:
    from reports.profiles import profiles_refresh

    result = profiles_refresh()
    logger.info("customer profiles refreshed: %s", result)
    return result


@shared_task(ignore_result=True)
def create_profile_tasks(rule_id: int, user_id: int) -> int:
    """A manager's one click on a large tag: the owners' tasks created in the background."""
    from accounts.models import User
    from reports.models import ProfileRule
    from reports.profiles import profile_tasks_job

    rule = ProfileRule.objects.filter(pk=rule_id).first()
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if rule is None or user is None:
        return 0
    return profile_tasks_job(rule=rule, by=user)


@shared_task(ignore_result=True)
def send_subscriptions() -> int:
    from reports.subscriptions import subscriptions_send_due

    return subscriptions_send_due()
