"""Background jobs of the reports: the summary tables' refresh (reports.facts)."""

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
