"""Backup jobs (cims.backups): the nightly backup with pruning, on-demand backups and restores, the drill."""

from __future__ import annotations

import logging
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)


@shared_task(name="cims.tasks_backup.backup_scheduled", ignore_result=True)
def backup_scheduled() -> str:
    """Beat's nightly backup (BACKUP_SCHEDULE), then retention. A failure raises (and has alerted)."""
    from cims import backups
    from cims.models import Backup

    backup = backups.create_backup(kind=Backup.Kind.SCHEDULED)
    pruned = backups.prune_backups()
    logger.info("backup %s written (%s bytes); %d pruned", backup.file_name, backup.size, len(pruned))
    return backup.file_name


@shared_task(name="cims.tasks_backup.backup_now", ignore_result=True)
def backup_now(backup_id: int) -> str | None:
    """An administrator's "back up now": fills in the RUNNING row the page created."""
    from cims import backups
    from cims.models import Backup

    backup = Backup.objects.filter(pk=backup_id, status=Backup.Status.RUNNING).first()
    if backup is None:
        return None
    backups.run_backup(backup)
    return backup.file_name


@shared_task(name="cims.tasks_backup.restore_backup", ignore_result=True)
def restore_backup(backup_id: int, user_id: int | None = None, run_id: int | None = None) -> str:
    """An administrator's confirmed restore of a backup into the configured database."""
    from accounts.models import User
    from cims import backups
    from cims.models import Backup, RestoreRun

    backup = Backup.objects.filter(pk=backup_id).first()
    if backup is None:  # gone since the page queued it: the run must not stay "running"
        RestoreRun.objects.filter(pk=run_id, status=RestoreRun.Status.RUNNING).update(
            status=RestoreRun.Status.FAILED, finished_at=timezone.now(), error="The backup no longer exists."
        )
        return RestoreRun.Status.FAILED
    user = User.objects.filter(pk=user_id).first() if user_id else None
    run = backups.record_restore(
        path=Path(settings.BACKUP_DIR) / backup.file_name, kind="restore", user=user, run_id=run_id
    )
    return run.status


@shared_task(name="cims.tasks_backup.restore_drill", ignore_result=True)
def restore_drill() -> str:
    """The weekly drill: the latest backup restored into a scratch database and checked (RTO measured)."""
    from cims import backups

    run = backups.run_drill()
    logger.info("restore drill %s in %.1f s", run.status, run.duration_seconds or 0)
    return run.status
