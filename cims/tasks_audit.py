"""Audit jobs (cims.audit): seal the access log every minute, verify it and apply retention nightly."""

from __future__ import annotations

import logging

from celery import shared_task
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from cims import audit

log = logging.getLogger("cims.security")


@shared_task(name="cims.tasks_audit.seal", ignore_result=True)
def seal() -> int:
    return audit.seal()


@shared_task(name="cims.tasks_audit.verify", ignore_result=True)
def verify() -> str:
    """Seal, then walk the chain; on a break alert every active administrator and raise (JobRun: failed)."""
    audit.seal()
    result = audit.verify()
    if result.ok:
        log.info("audit chain %s", result.summary())
        return result.summary()
    log.error("audit chain broken: %s", "; ".join(str(problem) for problem in result.problems[:10]))
    alert_administrators(result)
    raise audit.AuditChainBroken.of(result)


def alert_administrators(result: audit.VerifyResult) -> None:
    from followups.reminders import notify_administrators

    details = "\n".join(str(problem) for problem in result.problems[:20])
    notify_administrators(
        key=f"audit-broken:{timezone.localdate():%Y-%m-%d}",
        title=_("The access log's tamper-evident chain is broken"),
        body=f"{result.summary()}\n\n{details}",
        url=reverse("audit:access_log"),
    )


@shared_task(name="cims.tasks_audit.apply_retention", ignore_result=True)
def apply_retention() -> str:
    audit.seal()
    result = audit.apply_retention()
    history = sum(result.history_removed.values())
    return f"access log: {result.removed_rows} rows removed; change history: {history} records removed"
