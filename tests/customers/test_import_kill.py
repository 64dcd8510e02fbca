"""A real ``kill -9`` in the middle of an import's confirm step (PostgreSQL: a second process must
reach the test database): whole batches or nothing, and a resume that creates no duplicates."""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from customers.importing import engine
from customers.models import Customer, ImportJob
from tests.customers import import_files as f

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="needs PostgreSQL: the killed worker is a second process on the same database",
)

# Confirms the job in a child process that SIGKILLs itself while writing its second batch, after
# the batch's customers were inserted and before its transaction commits.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cims.settings")
    django.setup()
    from accounts.models import User
    from customers.importing import engine
    from customers.models import ImportJob

    calls = {"n": 0}
    original = engine.record_history_bulk

    def history_then_die(ids, **kwargs):
        calls["n"] += bool(ids)  # the history of a batch's new customers (none are updated here)
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(ids, **kwargs)

    engine.record_history_bulk = history_then_die
    job = ImportJob.objects.get(pk=int(sys.argv[1]))
    engine.job_commit(job, by=User.objects.get(pk=job.created_by_id))
    """
)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_killed_mid_batch_leaves_whole_batches_and_the_resume_finishes_without_duplicates(
    monkeypatch, shipped_reference_data
):
    from accounts import roles
    from tests.factories import UserFactory

    rep = UserFactory(username="t_kill_rep", role=roles.SALES)
    monkeypatch.setattr(engine, "BATCH_ROWS", 4)  # the plan is cut into batches of 4 rows
    job = engine.job_create(upload=f.upload(f.csv_bytes(f.numbered_rows(10))), file_name="kill.csv", by=rep)
    engine.job_check(job)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.CHECKED and job.to_create == 10

    database = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
    }
    connection.close()  # the child must not wait on a lock of ours
    child = subprocess.run(  # noqa: S603 - our interpreter and our code
        [sys.executable, "-c", CHILD, str(job.pk)], cwd=settings.BASE_DIR, env=env, capture_output=True, timeout=120
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]

    job.refresh_from_db()
    assert job.status == ImportJob.Status.IMPORTING  # nobody got to mark it failed
    assert (job.rows_done, job.created) == (4, 4)  # the first batch, whole; nothing of the second
    assert Customer.objects.count() == 4
    assert Customer.history.count() == 4

    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - datetime.timedelta(minutes=5))
    job.refresh_from_db()
    assert engine.job_is_stalled(job)
    engine.job_resume(job, by=rep)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE and job.created == 10
    assert Customer.objects.count() == 10
    assert Customer.objects.values("mobile_bidx").distinct().count() == 10  # no customer twice
    assert Customer.history.count() == 10
