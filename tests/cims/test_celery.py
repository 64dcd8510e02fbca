"""Background jobs really run: through the quick start's file-system broker and through Redis."""

from __future__ import annotations

import os
import time

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker

from cims.celery import app as project_app
from cims.models import Heartbeat
from cims.tasks import heartbeat


def _app(broker_url: str, transport_options: dict) -> Celery:
    app = Celery("cims-test", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(broker_url=broker_url, broker_transport_options=transport_options, task_always_eager=False)
    app.loader.import_default_modules()
    app.autodiscover_tasks(["cims"], force=True)
    return app


def _wait_for_heartbeat(name: str, timeout: float = 20.0) -> Heartbeat:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        beat = Heartbeat.objects.filter(name=name).first()
        if beat:
            return beat
        time.sleep(0.2)
    raise AssertionError(f"no heartbeat {name!r} within {timeout}s")


def test_it_defines_the_beat_schedule_in_code():
    schedule = project_app.conf.beat_schedule
    assert schedule["heartbeat"]["task"] == "cims.tasks.heartbeat"
    assert "cims.tasks.heartbeat" in project_app.tasks


def test_it_records_a_heartbeat(db):
    heartbeat()
    heartbeat()
    beat = Heartbeat.objects.get(name="celery")
    assert beat.beats == 2 and beat.is_fresh


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_runs_a_task_through_the_file_system_broker(tmp_path):
    folder = tmp_path / "queue"
    folder.mkdir()
    (tmp_path / "processed").mkdir()
    app = _app(
        "filesystem://",
        {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "processed_folder": str(tmp_path / "processed"),
        },
    )
    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10):
        app.send_task("cims.tasks.heartbeat", kwargs={"name": "filesystem-test"})
        beat = _wait_for_heartbeat("filesystem-test")
    assert beat.beats == 1


@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs a real Redis broker: set REDIS_URL")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_runs_a_task_through_redis():
    app = _app(os.environ["REDIS_URL"], {"visibility_timeout": 3600})
    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10):
        app.send_task("cims.tasks.heartbeat", kwargs={"name": "redis-test"})
        beat = _wait_for_heartbeat("redis-test")
    assert beat.beats == 1
