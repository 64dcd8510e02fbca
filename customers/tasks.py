"""Background work of the customer archive: the import's check and commit for large files.

Both tasks are idempotent: they look at the job's state first and do nothing when there is nothing
to do (already checked, already imported, cancelled), and a commit resumes after the last batch
committed. Unexpected errors leave the job FAILED with a message for the user; the log names the
job, never a personal value.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.contrib.auth import get_user_model
from django.utils import translation
from django.utils.translation import gettext as _

logger = logging.getLogger("cims.imports")


def _job(job_id: int):
    from customers.models import ImportJob

    return ImportJob.objects.select_related("created_by", "owner").filter(pk=job_id).first()


def _failed(job, message: str) -> None:
    from customers.models import ImportJob

    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.FAILED, message=message)


@shared_task(name="customers.tasks.import_check", ignore_result=True)
def import_check(job_id: int) -> None:
    from django.conf import settings

    from customers.importing import engine
    from customers.models import ImportJob

    job = _job(job_id)
    if job is None or job.status not in (ImportJob.Status.UPLOADED, ImportJob.Status.CHECKING):
        return
    with translation.override(settings.LANGUAGE_CODE):
        try:
            engine.job_check(job)
        except Exception:
            logger.exception("import #%s: the check task failed", job_id)
            _failed(job, _("The file could not be checked because of an unexpected error; please try again."))


@shared_task(name="customers.tasks.import_commit", ignore_result=True)
def import_commit(job_id: int, user_id: int) -> None:
    from django.conf import settings

    from customers.importing import engine
    from customers.models import ImportJob

    job = _job(job_id)
    if job is None or job.confirmed_at is None or job.status != ImportJob.Status.IMPORTING:
        return  # not confirmed, already done, or failed (a failed import resumes only when asked)
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    with translation.override(settings.LANGUAGE_CODE):
        if user is None:
            _failed(job, _("The user who confirmed this import no longer exists."))
            return
        try:
            engine.job_commit(job, by=user)
        except engine.ImportRefused as refused:
            _failed(job, refused.message)
        except Exception:
            logger.exception("import #%s: the import task failed", job_id)
            _failed(job, _("The import stopped because of an unexpected error; resume it to import the rest."))


@shared_task(name="customers.tasks.expire_access_grants", ignore_result=True)
def expire_access_grants() -> int:
    """End the approved access grants past their end (customers.access_requests); every 5 minutes."""
    from customers.access_requests import expire_due_grants

    ended = expire_due_grants()
    if ended:
        logging.getLogger("cims.access_requests").info("%d access grant(s) expired", ended)
    return ended
