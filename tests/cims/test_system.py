"""The system page (运行环境): administrators only, every fact shown, every unhealthy thing warned about."""

from __future__ import annotations

import time
from datetime import timedelta

import django
import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone, translation

from cims import system
from cims.celery import app
from cims.models import Backup, Heartbeat, JobRun, RestoreRun

URL = "/system/"


def _page(client) -> str:
    response = client.get(URL)
    assert response.status_code == 200
    return response.content.decode()


def _warnings(client) -> set[str]:
    import re

    return set(re.findall(r'data-warning="([^"]+)"', _page(client)))


@pytest.fixture
def admin_client(client_for, administrator):
    return client_for(administrator)


@pytest.fixture
def healthy():
    """Everything the page checks made healthy: a fresh heartbeat, a recent backup and drill."""
    now = timezone.now()
    Heartbeat.objects.create(name="celery", last_seen=now, hostname="worker-1", beats=10)
    backup = Backup.objects.create(
        file_name="cims-20260101-0230.dump.enc",
        status=Backup.Status.COMPLETE,
        kind=Backup.Kind.SCHEDULED,
        started_at=now - timedelta(hours=2),
        finished_at=now - timedelta(hours=2) + timedelta(minutes=3),
        size=12_345_678,
    )
    RestoreRun.objects.create(
        backup=backup,
        backup_name=backup.file_name,
        kind=RestoreRun.Kind.DRILL,
        status=RestoreRun.Status.PASSED,
        started_at=now - timedelta(days=1),
        finished_at=now - timedelta(days=1) + timedelta(seconds=95),
        duration_seconds=95.2,
    )
    return backup


def test_it_shows_the_facts_to_an_administrator(admin_client, healthy):
    JobRun.objects.create(
        name="cims.tasks.heartbeat",
        last_started_at=timezone.now(),
        last_finished_at=timezone.now(),
        last_status=JobRun.Status.SUCCESS,
        last_duration=0.25,
        runs=42,
    )
    html = _page(admin_client)
    assert f'data-fact="cims-version">{settings.CIMS_VERSION}' in html
    assert f'data-fact="django-version">{django.get_version()}<' in html
    assert (
        'data-fact="database-version">' + ("PostgreSQL" if system.database_vendor() == "postgresql" else "SQLite")
        in html
    )
    assert 'data-fact="time-zone">Asia/Shanghai<' in html
    assert healthy.file_name in html and "95.2" in html  # last backup, drill RTO
    # Every beat entry has its row; the one that ran shows its run, the others "never".
    for spec in app.conf.beat_schedule.values():
        assert f'data-job="{spec["task"]}"' in html
    assert 'data-result="success"' in html and "42" in html
    assert 'data-result="never"' in html
    assert 'data-testid="largest-tables"' in html
    assert 'data-queue="celery"' in html


def test_it_lists_the_largest_tables_with_their_sizes(db, healthy):
    facts = system.database_size()
    assert facts["size"] > 0
    names = [table["name"] for table in facts["tables"]]
    assert 0 < len(names) <= system.LARGEST_TABLES
    assert any(table["size"] or table["rows"] for table in facts["tables"])


@pytest.mark.parametrize(
    "role", ["manager", "sales_rep", "other_sales_rep", "service_agent", "analyst", "portal_customer", "roleless_user"]
)
def test_it_refuses_every_other_role(request, client_for, role):
    user = request.getfixturevalue(role)
    assert client_for(user).get(URL).status_code == 403


def test_it_sends_an_anonymous_visitor_to_log_in(db, client):
    response = client.get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_refuses_a_post(admin_client):
    assert admin_client.post(URL).status_code == 405


def test_it_warns_of_a_stale_heartbeat(admin_client, healthy):
    assert "no-worker" not in _warnings(admin_client)
    Heartbeat.objects.filter(name="celery").update(last_seen=timezone.now() - timedelta(minutes=10))
    assert "no-worker" in _warnings(admin_client)


def test_it_warns_when_no_heartbeat_was_ever_recorded(admin_client):
    assert "no-worker" in _warnings(admin_client)


def test_it_warns_of_a_scheduled_job_whose_last_run_failed(admin_client, healthy):
    run = JobRun.objects.create(
        name="reports.tasks.refresh_facts",
        last_status=JobRun.Status.FAILURE,
        last_finished_at=timezone.now(),
        last_error="OperationalError: could not connect",
        runs=3,
        failures=1,
    )
    warnings = _warnings(admin_client)
    assert "job-failed" in warnings and "audit-chain" not in warnings
    assert "OperationalError: could not connect" in _page(admin_client)
    run.last_status = JobRun.Status.SUCCESS
    run.save(update_fields=["last_status"])
    assert "job-failed" not in _warnings(admin_client)


def test_it_warns_when_the_audit_chain_verification_failed(admin_client, healthy):
    JobRun.objects.create(
        name=system.AUDIT_VERIFY_TASK, last_status=JobRun.Status.FAILURE, last_finished_at=timezone.now()
    )
    assert "audit-chain" in _warnings(admin_client)


def test_it_does_not_warn_of_a_failed_task_that_is_not_scheduled(admin_client, healthy):
    JobRun.objects.create(name="customers.tasks.run_import", last_status=JobRun.Status.FAILURE, failures=1, runs=1)
    html = _page(admin_client)
    assert "job-failed" not in html and 'data-job="customers.tasks.run_import"' in html


def test_it_warns_when_there_is_no_backup(admin_client):
    assert "no-backup" in _warnings(admin_client)


def test_it_warns_when_the_newest_backup_is_older_than_26_hours(admin_client, healthy):
    assert "no-backup" not in _warnings(admin_client)
    Backup.objects.filter(pk=healthy.pk).update(
        started_at=timezone.now() - timedelta(hours=30), finished_at=timezone.now() - timedelta(hours=29)
    )
    assert "no-backup" in _warnings(admin_client)


def test_it_warns_when_the_last_backup_failed(admin_client, healthy):
    Backup.objects.create(file_name="cims-failed.dump.enc", status=Backup.Status.FAILED, error="disk full")
    warnings = _warnings(admin_client)
    assert "backup-failed" in warnings and "no-backup" not in warnings


def test_it_warns_of_a_failed_drill(admin_client, healthy):
    assert not {"drill-failed", "no-drill"} & _warnings(admin_client)
    RestoreRun.objects.create(
        backup_name=healthy.file_name, kind=RestoreRun.Kind.DRILL, status=RestoreRun.Status.FAILED
    )
    assert "drill-failed" in _warnings(admin_client)


def test_it_warns_when_no_drill_passed_in_eight_days(admin_client, healthy):
    nine_days_ago = timezone.now() - timedelta(days=9)
    RestoreRun.objects.update(started_at=nine_days_ago, finished_at=nine_days_ago + timedelta(minutes=2))
    assert "no-drill" in _warnings(admin_client)


def test_it_warns_of_quick_start_keys_only_while_debug_is_off(admin_client, healthy):
    with override_settings(SECRETS_FROM_LOCAL_FILE=["SECRET_KEY"], DEBUG=False):
        assert "quick-start-secrets" in _warnings(admin_client)
    with override_settings(SECRETS_FROM_LOCAL_FILE=[], DEBUG=False):
        assert "quick-start-secrets" not in _warnings(admin_client)


def test_it_warns_that_debug_is_on(admin_client, healthy):
    with override_settings(DEBUG=True, SECRETS_FROM_LOCAL_FILE=["SECRET_KEY"]):
        warnings = _warnings(admin_client)
    assert "debug" in warnings and "quick-start-secrets" not in warnings and "not-postgresql" not in warnings


def test_it_is_all_clear_when_everything_is_healthy(admin_client, healthy):
    big_disk = [{"label": "x", "path": "/", "exists": True, "total": 10**13, "free": 10**12, "ratio": 0.1}]
    facts = system.status_facts()
    facts["disks"] = big_disk
    facts["database_vendor"] = "postgresql"
    with override_settings(SECRETS_FROM_LOCAL_FILE=[]):
        assert system.health_warnings(facts) == []


def test_it_warns_of_little_disk_space():
    facts = {
        "environment": {"debug": False},
        "database_vendor": "postgresql",
        "heartbeat": {"seen": True, "fresh": True, "last_seen": timezone.now()},
        "broker": {"queues": []},
        "jobs": None,
        "backups": None,
        "disks": [
            {
                "label": "Backups",
                "path": "/backups",
                "exists": True,
                "total": 10 * 1024**4,
                "free": 1024**3,
                "ratio": 0.5,
            },
            {
                "label": "Media",
                "path": "/media",
                "exists": True,
                "total": 100 * 1024**3,
                "free": 5 * 1024**3,
                "ratio": 0.05,
            },
            {
                "label": "Fine",
                "path": "/fine",
                "exists": True,
                "total": 100 * 1024**3,
                "free": 50 * 1024**3,
                "ratio": 0.5,
            },
        ],
    }
    with override_settings(SECRETS_FROM_LOCAL_FILE=[]), translation.override("en"):
        warnings = system.health_warnings(facts)
    assert [w["code"] for w in warnings] == ["disk-low", "disk-low"]
    assert warnings[0]["message"].startswith("Little disk space left for Backups (/backups): 1.0")


def test_it_writes_the_warnings_in_the_users_language(db, healthy, settings, tmp_path):
    Heartbeat.objects.all().delete()
    # An empty queue: messages another process left in var/celery would add "n tasks waiting".
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path)}
    with translation.override("en"):
        messages = [w["message"] for w in system.status_facts()["warnings"]]
    assert "No background worker: no heartbeat has ever been recorded. Start the Celery worker and beat." in messages


def test_it_survives_a_missing_backup_folder(admin_client, healthy, tmp_path):
    with override_settings(BACKUP_DIR=tmp_path / "no" / "such" / "folder"):
        html = _page(admin_client)
    assert f'data-disk="{tmp_path / "no" / "such" / "folder"}"' in html


@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
def test_it_renders_quickly_and_warns_when_the_broker_is_down(admin_client, healthy):
    started = time.monotonic()
    warnings = _warnings(admin_client)
    assert time.monotonic() - started < 5
    assert "broker" in warnings


def test_it_keeps_to_its_query_budget(admin_client, healthy, django_assert_max_num_queries):
    for index in range(5):
        JobRun.objects.create(name=f"tests.task_{index}", last_status=JobRun.Status.SUCCESS, runs=1)
    with django_assert_max_num_queries(22):
        assert admin_client.get(URL).status_code == 200
