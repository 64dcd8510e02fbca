"""The administrator's system pages in Chromium: 运行环境 and the backup page's "back up now"."""

import re
from pathlib import Path

import pytest

from cims.models import Backup
from tests.browser.test_audit_flow import settle
from tests.browser.test_customers_flow import log_in
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def backup_settings(settings, tmp_path):
    # Nothing lands in var/: the backup goes to a temporary folder, and the task runs in the live
    # server's thread as soon as the request's transaction commits.
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BACKUP_DRILL_DATABASE_URL = None
    settings.CELERY_TASK_ALWAYS_EAGER = True
    return settings


def test_an_administrator_checks_the_system_and_backs_up_now(page, administrator, sales_rep, backup_settings):
    CustomerFactory.create_batch(3, owner=sales_rep)
    uncaught: list[str] = []
    page.on("pageerror", lambda error: uncaught.append(str(error)))
    settle(page)
    log_in(page, administrator)

    settle(page)
    page.goto("/")
    settle(page)
    page.locator("#cims-sidebar a[href='/system/']").click()
    page.wait_for_url(re.compile(r".*/system/$"))
    for section in ("system-versions", "system-environment", "system-workers", "system-database"):
        page.get_by_test_id(section).wait_for()
    assert page.get_by_test_id("scheduled-jobs").locator("tbody tr").count() >= 1
    page.screenshot(path="test-results/system-status.png", full_page=True)

    settle(page)
    page.locator("#cims-sidebar a[href='/system/backups/']").click()
    page.wait_for_url(re.compile(r".*/system/backups/$"))
    assert page.get_by_test_id("backup-row").count() == 0
    settle(page)
    page.get_by_test_id("backup-now").click()
    page.wait_for_url(re.compile(r".*/system/backups/$"))

    backup = Backup.objects.get()
    assert backup.created_by == administrator and backup.kind == Backup.Kind.MANUAL
    # The eager task ran before the redirect was answered: the list already shows it complete.
    assert backup.status == Backup.Status.COMPLETE, backup.error
    assert (Path(backup_settings.BACKUP_DIR) / backup.file_name).is_file()
    assert backup.manifest["tables"]["customers_customer"] == 3
    row = page.get_by_test_id("backup-row")
    assert row.count() == 1
    assert backup.file_name in row.inner_text()
    assert row.locator(".badge.text-bg-success").count() == 1
    assert page.get_by_test_id("backup-running").count() == 0
    assert row.get_by_test_id("backup-restore-link").count() == 1

    # The detail page lists what the file holds.
    settle(page)
    row.locator(f"a[href='/system/backups/{backup.pk}/']").click()
    page.wait_for_url(re.compile(rf".*/system/backups/{backup.pk}/$"))
    assert page.get_by_test_id("file-present").count() == 1
    assert page.get_by_test_id("backup-error").count() == 0
    assert "customers_customer" in page.get_by_test_id("manifest-tables").inner_text()
    page.screenshot(path="test-results/backups.png", full_page=True)
    # Console errors include every Content-Security-Policy violation.
    assert not page.console_errors, page.console_errors
    assert not uncaught, uncaught
