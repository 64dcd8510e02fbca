"""Every Celery task run leaves its mark in JobRun (cims.jobs), eagerly as in a worker."""

from __future__ import annotations

import pytest
from celery import shared_task

from cims.jobs import ERROR_MAX_CHARS
from cims.models import Heartbeat, JobRun
from cims.tasks import heartbeat


class DrillExploded(RuntimeError):
    pass


@shared_task(name="tests.cims.failing_job")
def failing_job(message: str = "the drill database is gone") -> None:
    raise DrillExploded(message)


@shared_task(name="tests.cims.flaky_job")
def flaky_job(fail: bool) -> str:
    if fail:
        raise ValueError("flaked")
    return "ok"


def test_it_records_a_successful_eager_run(db):
    heartbeat.apply()
    run = JobRun.objects.get(name="cims.tasks.heartbeat")
    assert run.last_status == JobRun.Status.SUCCESS
    assert run.runs == 1 and run.failures == 0
    assert run.last_started_at is not None and run.last_finished_at >= run.last_started_at
    assert run.last_duration is not None and run.last_duration >= 0
    assert run.last_error == ""
    assert Heartbeat.objects.filter(name="celery").exists()


def test_it_records_a_failed_eager_run_with_the_exception_class_and_message(db):
    result = failing_job.apply()
    assert result.failed()
    run = JobRun.objects.get(name="tests.cims.failing_job")
    assert run.last_status == JobRun.Status.FAILURE
    assert run.runs == 1 and run.failures == 1
    assert run.last_error == "DrillExploded: the drill database is gone"


def test_it_truncates_a_long_error_message(db):
    failing_job.apply(kwargs={"message": "x" * 5000})
    error = JobRun.objects.get(name="tests.cims.failing_job").last_error
    assert error.startswith("DrillExploded: xxx")
    assert len(error) <= len("DrillExploded: ") + ERROR_MAX_CHARS


def test_it_counts_runs_and_failures_and_clears_the_error_after_a_success(db):
    flaky_job.apply(args=[True])
    flaky_job.apply(args=[False])
    flaky_job.apply(args=[True])
    run = JobRun.objects.get(name="tests.cims.flaky_job")
    assert (run.runs, run.failures, run.last_status) == (3, 2, JobRun.Status.FAILURE)
    assert run.last_error == "ValueError: flaked"
    flaky_job.apply(args=[False])
    run.refresh_from_db()
    assert (run.runs, run.failures, run.last_status, run.last_error) == (4, 2, JobRun.Status.SUCCESS, "")


@pytest.fixture
def always_eager(settings):
    # Through Django's settings, as the other eager tests do: setting app.conf directly would pin the
    # value in Celery's own overrides, and later tests' settings.CELERY_TASK_ALWAYS_EAGER would be ignored.
    settings.CELERY_TASK_ALWAYS_EAGER = True


def test_it_records_runs_sent_with_delay_when_tasks_run_eagerly(db, always_eager):
    heartbeat.delay()
    failing_job.delay()
    assert JobRun.objects.get(name="cims.tasks.heartbeat").last_status == JobRun.Status.SUCCESS
    assert JobRun.objects.get(name="tests.cims.failing_job").last_status == JobRun.Status.FAILURE


def test_it_does_not_record_a_plain_function_call(db):
    # Calling the task function directly is not a task run: no signal, no row.
    heartbeat()
    assert not JobRun.objects.filter(name="cims.tasks.heartbeat").exists()


def test_it_lets_the_task_run_when_recording_fails(db, caplog):
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    Heartbeat.objects.create(name="dup", last_seen=timezone.now())
    with transaction.atomic():
        try:
            with transaction.atomic(savepoint=False):
                Heartbeat.objects.create(name="dup", last_seen=timezone.now())
        except IntegrityError:
            pass
        # The transaction is now broken: every write of the recorder fails…
        with caplog.at_level("WARNING", logger="cims.jobs"):
            result = flaky_job.apply(args=[False])
    # …and the task still ran and returned its value.
    assert result.successful() and result.get() == "ok"
    assert "could not record the start of task tests.cims.flaky_job" in caplog.text
    assert not JobRun.objects.filter(name="tests.cims.flaky_job").exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_records_a_run_in_a_real_worker(tmp_path):
    import time

    from celery.contrib.testing.worker import start_worker

    from tests.cims.test_celery import _app

    folder = tmp_path / "queue"
    folder.mkdir()
    (tmp_path / "processed").mkdir()
    worker_app = _app(
        "filesystem://",
        {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "processed_folder": str(tmp_path / "processed"),
        },
    )
    with start_worker(worker_app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10):
        worker_app.send_task("cims.tasks.heartbeat", kwargs={"name": "jobs-test"})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            run = JobRun.objects.filter(name="cims.tasks.heartbeat", last_status=JobRun.Status.SUCCESS).first()
            if run:
                break
            time.sleep(0.2)
    assert run is not None and run.runs == 1 and run.last_duration is not None
    assert Heartbeat.objects.filter(name="jobs-test").exists()
