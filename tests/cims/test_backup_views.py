"""The backup page: who may see it, "back up now", and the guarded restore."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from cims.models import Backup, RestoreRun
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

LIST = reverse("system:backups")
CREATE = reverse("system:backup_create")


@pytest.fixture(autouse=True)
def backup_settings(settings, tmp_path):
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BACKUP_DRILL_DATABASE_URL = None
    return settings


@pytest.fixture
def complete_backup(settings):
    directory = Path(settings.BACKUP_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cims-20260301-023000-abcdef.cimsbak").write_bytes(b"sealed")
    return Backup.objects.create(
        file_name="cims-20260301-023000-abcdef.cimsbak",
        status=Backup.Status.COMPLETE,
        size=6,
        sha256="0" * 64,
        manifest={"tables": {"customers_customer": 12, "accounts_user": 3}, "total_rows": 15, "vendor": "sqlite"},
    )


def detail_url(backup) -> str:
    return reverse("system:backup_detail", args=[backup.pk])


def restore_url(backup) -> str:
    return reverse("system:backup_restore", args=[backup.pk])


def test_it_shows_backups_and_the_last_drill_to_administrators(
    client_for, administrator, complete_backup, django_assert_max_num_queries
):
    RestoreRun.objects.create(
        backup=complete_backup,
        backup_name=complete_backup.file_name,
        kind=RestoreRun.Kind.DRILL,
        status=RestoreRun.Status.PASSED,
        duration_seconds=12.5,
    )
    client = client_for(administrator)
    with django_assert_max_num_queries(15):
        response = client.get(LIST)
    assert response.status_code == 200
    body = response.content.decode()
    assert complete_backup.file_name in body
    assert 'data-testid="drill-status"' in body and "12.5" in body
    assert 'data-testid="backup-now"' in body and 'data-testid="backup-restore-link"' in body


@pytest.mark.parametrize("role", ["manager", "sales_rep", "service_agent", "analyst", "portal_customer"])
def test_it_refuses_the_page_to_other_roles(request, client_for, role, complete_backup):
    client = client_for(request.getfixturevalue(role))
    assert client.get(LIST).status_code == 403
    assert client.get(detail_url(complete_backup)).status_code == 403
    assert client.post(CREATE).status_code == 403
    assert (
        client.post(
            restore_url(complete_backup), {"confirm": complete_backup.file_name, "password": PASSWORD}
        ).status_code
        == 403
    )
    assert Backup.objects.count() == 1 and not RestoreRun.objects.exists()


def test_it_sends_anonymous_visitors_to_log_in(client, complete_backup):
    for url in (LIST, detail_url(complete_backup)):
        response = client.get(url)
        assert response.status_code == 302 and reverse("accounts:login") in response["Location"]
    response = client.post(CREATE)
    assert response.status_code == 302 and Backup.objects.count() == 1


def test_it_needs_post_for_the_buttons(client_for, administrator, complete_backup):
    client = client_for(administrator)
    assert client.get(CREATE).status_code == 405
    assert client.get(restore_url(complete_backup)).status_code == 405
    assert client.post(LIST).status_code == 405
    assert Backup.objects.count() == 1


def test_it_needs_the_permission_to_back_up_now(client_for, manager):
    from django.contrib.auth.models import Permission

    # A manager allowed to look at the backups, not to make one.
    manager.user_permissions.add(Permission.objects.get(codename="view_backup"))
    client = client_for(manager)
    assert client.get(LIST).status_code == 200
    assert client.post(CREATE).status_code == 403
    assert not Backup.objects.exists()


def test_it_backs_up_now_as_a_task_and_shows_it_running(
    client_for, administrator, django_capture_on_commit_callbacks, monkeypatch
):
    from cims import tasks_backup

    queued = []
    monkeypatch.setattr(tasks_backup.backup_now, "delay", lambda *args: queued.append(args))
    client = client_for(administrator)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(CREATE)
    assert response.status_code == 302 and response["Location"] == LIST
    backup = Backup.objects.get()
    assert (backup.status, backup.kind, backup.created_by) == (Backup.Status.RUNNING, Backup.Kind.MANUAL, administrator)
    assert queued == [(backup.pk,)]
    assert 'data-testid="backup-running"' in client.get(LIST).content.decode()
    # A second click while it runs starts nothing.
    with django_capture_on_commit_callbacks(execute=True):
        client.post(CREATE)
    assert Backup.objects.count() == 1 and len(queued) == 1


def test_it_shows_the_manifest_on_the_detail_page(client_for, administrator, complete_backup):
    response = client_for(administrator).get(detail_url(complete_backup))
    assert response.status_code == 200
    body = response.content.decode()
    assert "customers_customer" in body and 'data-testid="total-rows">15<' in body
    assert 'data-testid="restore-form"' in body


def test_it_answers_404_for_an_unknown_backup(client_for, administrator):
    client = client_for(administrator)
    assert client.get(reverse("system:backup_detail", args=[999999])).status_code == 404
    assert client.post(reverse("system:backup_restore", args=[999999])).status_code == 404


@pytest.mark.parametrize(
    "data",
    [
        {"confirm": "wrong-name.cimsbak", "password": PASSWORD},
        {"confirm": "cims-20260301-023000-abcdef.cimsbak", "password": "not-my-password"},
        {"confirm": "", "password": ""},
        {},
    ],
)
def test_it_refuses_a_restore_without_the_right_confirmation(
    client_for, administrator, complete_backup, data, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(administrator).post(restore_url(complete_backup), data)
    assert response.status_code == 400
    assert 'class="invalid-feedback"' in response.content.decode()
    assert not RestoreRun.objects.exists() and callbacks == []


def test_it_refuses_to_restore_a_backup_that_is_not_complete(client_for, administrator, complete_backup):
    complete_backup.status = Backup.Status.PRUNED
    complete_backup.save()
    response = client_for(administrator).post(
        restore_url(complete_backup), {"confirm": complete_backup.file_name, "password": PASSWORD}
    )
    assert response.status_code == 400
    assert not RestoreRun.objects.exists()


def test_it_queues_a_confirmed_restore(
    client_for, administrator, complete_backup, django_capture_on_commit_callbacks, monkeypatch
):
    from cims import tasks_backup

    queued = []
    monkeypatch.setattr(tasks_backup.restore_backup, "delay", lambda *args: queued.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(administrator).post(
            restore_url(complete_backup), {"confirm": complete_backup.file_name, "password": PASSWORD}
        )
    assert response.status_code == 302 and response["Location"] == detail_url(complete_backup)
    run = RestoreRun.objects.get()
    assert (run.kind, run.status, run.created_by) == (RestoreRun.Kind.RESTORE, RestoreRun.Status.RUNNING, administrator)
    assert queued == [(complete_backup.pk, administrator.pk, run.pk)]


def test_it_refuses_a_second_restore_while_one_runs(client_for, administrator, complete_backup):
    RestoreRun.objects.create(backup=complete_backup, backup_name=complete_backup.file_name, kind="restore")
    response = client_for(administrator).post(
        restore_url(complete_backup), {"confirm": complete_backup.file_name, "password": PASSWORD}
    )
    assert response.status_code == 409
    assert RestoreRun.objects.count() == 1


def test_it_refuses_the_restore_to_who_may_only_look(client_for, manager, complete_backup):
    from django.contrib.auth.models import Permission

    manager.user_permissions.add(Permission.objects.get(codename="view_backup"))
    client = client_for(manager)
    assert 'data-testid="restore-form"' not in client.get(detail_url(complete_backup)).content.decode()
    response = client.post(restore_url(complete_backup), {"confirm": complete_backup.file_name, "password": PASSWORD})
    assert response.status_code == 403
    assert not RestoreRun.objects.exists()


def test_it_counts_wrong_restore_passwords_as_failed_logins(client_for, administrator, complete_backup, settings):
    # The password check goes through django-axes: guessing from a session ends in a lockout.
    settings.AXES_FAILURE_LIMIT = 2
    client = client_for(administrator)
    for _ in range(2):
        client.post(restore_url(complete_backup), {"confirm": complete_backup.file_name, "password": "guess"})
    response = client.post(restore_url(complete_backup), {"confirm": complete_backup.file_name, "password": PASSWORD})
    assert response.status_code != 302
    assert not RestoreRun.objects.exists()


def test_it_tells_when_the_backup_folder_cannot_be_used(client_for, administrator, settings, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings.BACKUP_DIR = blocker / "backups"
    response = client_for(administrator).post(CREATE)
    assert response.status_code == 302
    assert not Backup.objects.exists()
