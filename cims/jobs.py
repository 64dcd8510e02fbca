"""Record the last run of every Celery task in JobRun, for the system page.

Connected once, in ``CimsConfig.ready()``, to Celery's ``task_prerun``, ``task_failure`` and
``task_postrun`` signals; they fire in a worker and when a task runs eagerly (``apply()``,
CELERY_TASK_ALWAYS_EAGER). Each run costs two single-row UPDATEs (start, end) and, the first
time a task name is seen, one insert. Recording must never break the task: every failure here
is logged and swallowed, and each write runs in its own savepoint so that, in an eager run
inside a request's transaction, a failed write does not poison the request.
"""

from __future__ import annotations

import logging
import time

from celery import signals
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from cims.models import JobRun

logger = logging.getLogger("cims.jobs")

# What the error column keeps: the exception's class and the start of its message, never a traceback
# (locals and arguments there could hold personal data).
ERROR_MAX_CHARS = 500

# task id → (monotonic start, error text): a worker process runs one task at a time per thread, and
# entries are removed at postrun, so this stays as small as the number of tasks in flight.
_in_flight: dict[str, tuple[float, str]] = {}


def error_text(exc: BaseException) -> str:
    message = str(exc)
    if len(message) > ERROR_MAX_CHARS:
        message = message[: ERROR_MAX_CHARS - 1] + "…"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _task_name(sender, task) -> str | None:
    name = getattr(task or sender, "name", None)
    return name[:200] if name else None


def _record_start(name: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        updated = JobRun.objects.filter(name=name).update(last_started_at=now, last_status=JobRun.Status.RUNNING)
        if not updated:
            JobRun.objects.get_or_create(
                name=name, defaults={"last_started_at": now, "last_status": JobRun.Status.RUNNING}
            )


def _record_end(name: str, *, succeeded: bool, error: str, duration: float | None) -> None:
    now = timezone.now()
    fields = {
        "last_finished_at": now,
        "last_status": JobRun.Status.SUCCESS if succeeded else JobRun.Status.FAILURE,
        "last_error": "" if succeeded else error,
        "last_duration": duration,
        "runs": F("runs") + 1,
    }
    if not succeeded:
        fields["failures"] = F("failures") + 1
    with transaction.atomic():
        if not JobRun.objects.filter(name=name).update(**fields):
            # The start was not recorded (its write failed, or signals were connected mid-run).
            JobRun.objects.get_or_create(
                name=name,
                defaults={**fields, "runs": 1, "failures": 0 if succeeded else 1, "last_started_at": now},
            )


def task_started(sender=None, task_id=None, task=None, **kwargs) -> None:
    try:
        name = _task_name(sender, task)
        if not name:
            return
        if task_id:
            _in_flight[task_id] = (time.monotonic(), "")
        _record_start(name)
    except Exception:  # noqa: BLE001 - recording is best effort; the task itself must run
        logger.warning("could not record the start of task %s", getattr(sender, "name", "?"), exc_info=True)


def task_failed(sender=None, task_id=None, exception=None, **kwargs) -> None:
    try:
        if task_id and exception is not None:
            started, _ = _in_flight.get(task_id, (time.monotonic(), ""))
            _in_flight[task_id] = (started, error_text(exception))
    except Exception:  # noqa: BLE001
        logger.warning("could not record the failure of task %s", getattr(sender, "name", "?"), exc_info=True)


def task_finished(sender=None, task_id=None, task=None, state=None, **kwargs) -> None:
    try:
        name = _task_name(sender, task)
        started, error = _in_flight.pop(task_id, (None, "")) if task_id else (None, "")
        if not name:
            return
        duration = round(time.monotonic() - started, 3) if started is not None else None
        succeeded = state == "SUCCESS"
        if not succeeded and not error:
            # A retry or a revoked run raises no task_failure: say what state it ended in.
            error = str(state or "unknown")
        _record_end(name, succeeded=succeeded, error=error, duration=duration)
    except Exception:  # noqa: BLE001
        logger.warning("could not record the end of task %s", getattr(sender, "name", "?"), exc_info=True)


def connect() -> None:
    """Connect the recorders (idempotent: the dispatch uids make a second call a no-op)."""
    signals.task_prerun.connect(task_started, dispatch_uid="cims.jobs.prerun", weak=False)
    signals.task_failure.connect(task_failed, dispatch_uid="cims.jobs.failure", weak=False)
    signals.task_postrun.connect(task_finished, dispatch_uid="cims.jobs.postrun", weak=False)
