"""Encrypted backups and their restore (cims.backups): round trips, refusals and failure modes."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from cims import backups
from cims.models import Backup, RestoreRun
from followups.models import Notification
from tests.customers.factories import ContactFactory, CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def backup_settings(settings, tmp_path):
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BACKUP_DRILL_DATABASE_URL = None
    return settings


def scratch_url(tmp_path: Path, suffix: str = "scratch") -> str:
    """A scratch database named after the test database: never one outside the tests."""
    if connection.vendor == "postgresql":
        config = connection.settings_dict
        return (
            f"postgres://{config['USER']}@{config.get('HOST') or 'localhost'}:{config.get('PORT') or 5432}/"
            f"{config['NAME']}_{suffix}"
        )
    return f"sqlite:///{tmp_path / f'{suffix}.sqlite3'}"


@pytest.fixture
def scratch(tmp_path):
    url = scratch_url(tmp_path)
    yield url
    if connection.vendor == "postgresql":
        import dj_database_url

        backups.drop_scratch_postgresql(dj_database_url.parse(url))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _round_trip(scratch: str):
    customer = CustomerFactory(
        name="张三", mobile="+8613800000001", email="zhang@example.com", id_number="110101199003071234"
    )
    ContactFactory(customer=customer, phone="+8613900000002")
    backup = backups.create_backup()
    path = Path(backups.backup_dir()) / backup.file_name
    assert path.is_file()
    assert backup.status == Backup.Status.COMPLETE
    assert backup.sha256 == sha256(path) and backup.size == path.stat().st_size
    assert backup.manifest["tables"]["customers_customer"] == 1
    assert backup.manifest["vendor"] == connection.vendor
    assert "cims" in backup.manifest["migrations"]
    # The plaintext is nowhere in the file.
    assert b"zhang@example.com" not in path.read_bytes() and b"customers_customer" not in path.read_bytes()

    result = backups.restore(path, database_url=scratch, scratch=True)
    assert result.ok, result.mismatched
    assert result.counts_found["customers_customer"] == 1
    assert {k: result.counts_found[k] for k in result.counts_expected} == result.counts_expected
    assert result.decrypted_fields >= 4
    assert result.migrations_applied == []

    import dj_database_url

    from customers.models import Contact, Customer

    with backups.target_alias(dj_database_url.parse(scratch)) as alias:
        restored = Customer._base_manager.using(alias).get(pk=customer.pk)
        assert (restored.name, restored.mobile, restored.email, restored.id_number) == (
            "张三",
            "+8613800000001",
            "zhang@example.com",
            "110101199003071234",
        )
        assert Contact._base_manager.using(alias).get(customer_id=customer.pk).phone == "+8613900000002"


def test_it_round_trips_a_backup_on_sqlite(scratch):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite round trip")
    _round_trip(scratch)


def test_it_round_trips_a_backup_on_postgresql(scratch):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL round trip")
    _round_trip(scratch)


def test_it_restores_into_the_configured_database_on_postgresql(administrator):
    if connection.vendor != "postgresql":
        pytest.skip("the SQLite test database lives in memory; the scratch round trip covers SQLite")
    from customers.models import Customer

    kept = CustomerFactory(name="留下", mobile="+8613800000003")
    backup = backups.create_backup()
    kept.delete()
    CustomerFactory(name="之后")
    run = backups.record_restore(path=backups.backup_dir() / backup.file_name, kind=RestoreRun.Kind.RESTORE)
    assert run.status == RestoreRun.Status.PASSED
    assert list(Customer._base_manager.values_list("name", "mobile")) == [("留下", "+8613800000003")]
    # The backup's own row came back COMPLETE from its sidecar, and the run is recorded after the restore.
    assert Backup.objects.get(file_name=backup.file_name).status == Backup.Status.COMPLETE
    assert RestoreRun.objects.filter(pk=run.pk, backup__file_name=backup.file_name).exists()


def test_it_packs_media_files_and_restores_them_into_the_configured_database(settings, tmp_path):
    media = Path(settings.MEDIA_ROOT)
    (media / "scans").mkdir(parents=True)
    (media / "scans" / "licence.pdf").write_bytes(b"%PDF-1.4 scan")
    backup = backups.create_backup()
    assert backup.manifest["media"]["files"] == 1
    assert backup.manifest["media"]["items"][0]["path"] == "scans/licence.pdf"
    (media / "scans" / "licence.pdf").write_bytes(b"changed afterwards")
    # Media files are restored with the configured database (what was there is kept aside).
    unpacked_dir = tmp_path / "unpack"
    unpacked_dir.mkdir()
    unpacked = backups.unpack(backups.backup_dir() / backup.file_name, unpacked_dir)
    folder = media.stat().st_ino
    assert backups._restore_media(unpacked.media) == 1
    assert (media / "scans" / "licence.pdf").read_bytes() == b"%PDF-1.4 scan"
    assert media.stat().st_ino == folder  # the folder stays (a volume's mount point can't be renamed)
    assert list(tmp_path.glob("media.before-restore-*/scans/licence.pdf"))


def test_it_refuses_a_tampered_byte_before_touching_anything(scratch):
    backup = backups.create_backup()
    path = backups.backup_dir() / backup.file_name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(backups.BackupCorrupt, match="tampered"):
        backups.restore(path, database_url=scratch, scratch=True)
    # Without any recorded checksum (a copy on a new machine), authenticated decryption refuses it.
    Backup.objects.all().delete()
    backups.sidecar_path(path).unlink()
    with pytest.raises(backups.BackupCorrupt, match="failed authentication"):
        backups.restore(path, database_url=scratch, scratch=True)
    with pytest.raises(CommandError, match="tampered"):
        call_command("restore", str(path), "--database-url", scratch, "--scratch")
    if connection.vendor == "sqlite":
        assert not Path(scratch.removeprefix("sqlite:///")).exists()


def test_it_refuses_a_truncated_file(tmp_path):
    backup = backups.create_backup()
    path = backups.backup_dir() / backup.file_name
    Backup.objects.all().delete()
    backups.sidecar_path(path).unlink()
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(backups.BackupCorrupt):
        backups.unpack(path, tmp_path)


def test_it_refuses_a_wrong_key_with_a_clear_message(settings, scratch):
    backup = backups.create_backup()
    path = backups.backup_dir() / backup.file_name
    settings.BACKUP_ENCRYPTION_KEY = os.urandom(32)
    with pytest.raises(backups.BackupKeyMismatch, match="the backup key does not match"):
        backups.restore(path, database_url=scratch, scratch=True)
    with pytest.raises(CommandError, match="the backup key does not match"):
        call_command("restore", backup.file_name, "--database-url", scratch, "--scratch")
    run = RestoreRun.objects.get()
    assert run.status == RestoreRun.Status.FAILED and "backup key does not match" in run.error


def test_it_leaves_no_complete_looking_file_when_killed_half_way(monkeypatch):
    good = backups.create_backup()
    good_path = backups.backup_dir() / good.file_name
    good_sha = sha256(good_path)
    calls = {"n": 0}
    original = backups.EncryptingWriter._emit

    def crash_after_the_header(self, data):
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt("killed")
        original(self, data)

    monkeypatch.setattr(backups.EncryptingWriter, "_emit", crash_after_the_header)
    with pytest.raises(KeyboardInterrupt):
        backups.create_backup()
    failed = Backup.objects.exclude(pk=good.pk).get()
    assert failed.status == Backup.Status.FAILED
    names = sorted(p.name for p in backups.backup_dir().iterdir())
    assert names == sorted([good.file_name, good.file_name + ".json"])
    assert sha256(good_path) == good_sha


def test_it_cleans_up_what_a_killed_backup_left_next_time():
    import datetime

    from django.utils import timezone

    directory = backups.backup_dir()
    dead = Backup.objects.create(file_name="cims-dead.cimsbak", started_at=timezone.now() - datetime.timedelta(days=1))
    (directory / "cims-dead.cimsbak.partial").write_bytes(b"half")
    (directory / ".tmp-cims-dead.cimsbak").mkdir()
    (directory / ".tmp-cims-dead.cimsbak" / "db.sqlite3").write_bytes(b"plaintext")
    (directory / ".tmp-cims-dead.cimsbak" / "lock").write_bytes(b"")  # nobody holds it any more
    backup = backups.create_backup()
    assert sorted(p.name for p in directory.iterdir()) == sorted([backup.file_name, backup.file_name + ".json"])
    dead.refresh_from_db()
    assert dead.status == Backup.Status.FAILED


def test_it_fails_loudly_on_a_full_disk(monkeypatch, administrator, mailoutbox, settings):
    settings.ADMINS = [("Ops", "ops@example.com")]
    good = backups.create_backup()

    def disk_full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(backups.EncryptingWriter, "_emit", disk_full)
    from django.utils import translation

    from cims.tasks_backup import backup_scheduled

    with pytest.raises(OSError), translation.override("en"):  # the alert is written in the active language
        backup_scheduled()
    failed = Backup.objects.exclude(pk=good.pk).get()
    assert failed.status == Backup.Status.FAILED and "No space left" in failed.error
    assert Notification.objects.filter(user=administrator, key=f"backup-failed:{failed.pk}").exists()
    assert any("backup failed" in message.subject for message in mailoutbox)
    assert not list(backups.backup_dir().glob("*.partial"))
    # Nothing was pruned by the failed run: the good backup stays.
    assert (backups.backup_dir() / good.file_name).is_file()


def test_it_prunes_all_but_the_newest_of_each_day_week_and_month(settings):
    import datetime

    from django.utils import timezone

    settings.BACKUP_KEEP_DAILY, settings.BACKUP_KEEP_WEEKLY, settings.BACKUP_KEEP_MONTHLY = 2, 2, 2
    now = timezone.make_aware(datetime.datetime(2026, 3, 18, 12, 0))  # a Wednesday
    directory = backups.backup_dir()

    def make(name, when, status=Backup.Status.COMPLETE):
        (directory / name).write_bytes(b"x")
        return Backup.objects.create(file_name=name, status=status, started_at=timezone.make_aware(when))

    today_late = make("today-late", datetime.datetime(2026, 3, 18, 3, 0))
    today_early = make("today-early", datetime.datetime(2026, 3, 18, 1, 0))
    yesterday = make("yesterday", datetime.datetime(2026, 3, 17, 2, 0))
    two_days = make("two-days", datetime.datetime(2026, 3, 16, 2, 0))  # Monday of this week: older than today's
    last_week = make("last-week-sun", datetime.datetime(2026, 3, 15, 2, 0))
    last_week_early = make("last-week-fri", datetime.datetime(2026, 3, 13, 2, 0))
    february = make("february", datetime.datetime(2026, 2, 20, 2, 0))
    january = make("january", datetime.datetime(2026, 1, 20, 2, 0))
    failed = make("failed", datetime.datetime(2026, 1, 2, 2, 0), status=Backup.Status.FAILED)

    pruned = {backup.file_name for backup in backups.prune_backups(now=now)}
    assert pruned == {today_early.file_name, two_days.file_name, last_week_early.file_name, january.file_name}
    kept = {today_late, yesterday, last_week, february}
    for backup in kept:
        backup.refresh_from_db()
        assert backup.status == Backup.Status.COMPLETE and (directory / backup.file_name).exists()
    for name in pruned:
        assert Backup.objects.get(file_name=name).status == Backup.Status.PRUNED
        assert not (directory / name).exists()
    failed.refresh_from_db()
    assert failed.status == Backup.Status.FAILED


def test_it_never_prunes_the_only_good_backup(settings):
    import datetime

    from django.utils import timezone

    settings.BACKUP_KEEP_DAILY, settings.BACKUP_KEEP_WEEKLY, settings.BACKUP_KEEP_MONTHLY = 1, 0, 0
    old = Backup.objects.create(
        file_name="old", status=Backup.Status.COMPLETE, started_at=timezone.now() - datetime.timedelta(days=400)
    )
    assert backups.prune_backups() == []
    old.refresh_from_db()
    assert old.status == Backup.Status.COMPLETE


def test_it_passes_the_drill_and_drops_the_scratch_database(tmp_path):
    CustomerFactory(mobile="+8613800000009", id_number="110101199003071234")
    backups.create_backup()
    run = backups.run_drill()
    assert run.kind == RestoreRun.Kind.DRILL and run.status == RestoreRun.Status.PASSED
    assert run.duration_seconds > 0
    assert run.report["decrypted_fields"] >= 2
    config = backups.drill_database_config()
    if connection.vendor == "postgresql":
        assert config["NAME"] == f"{connection.settings_dict['NAME']}_drill"
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]])
            assert cursor.fetchone() is None
    else:
        assert not Path(config["NAME"]).exists()


def test_it_fails_the_drill_and_alerts_when_a_field_does_not_decrypt(settings, administrator):
    CustomerFactory(mobile="+8613800000009")
    backups.create_backup()
    # The field key ring lost the key the values were written under.
    settings.FIELD_ENCRYPTION_KEYS = {"lost": os.urandom(32)}
    with pytest.raises(Exception, match="key"):
        backups.run_drill()
    run = RestoreRun.objects.get()
    assert run.status == RestoreRun.Status.FAILED and run.kind == RestoreRun.Kind.DRILL
    assert Notification.objects.filter(user=administrator, key=f"restore-failed:{run.pk}").exists()


def test_it_fails_the_drill_and_alerts_without_any_backup(administrator):
    from cims.tasks_backup import restore_drill

    with pytest.raises(backups.BackupError):
        restore_drill()
    run = RestoreRun.objects.get()
    assert run.status == RestoreRun.Status.FAILED
    assert Notification.objects.filter(user=administrator, key=f"restore-failed:{run.pk}").exists()


def test_it_fills_in_the_row_the_backup_page_created(administrator):
    from cims.tasks_backup import backup_now

    backup = backups.start_backup(kind=Backup.Kind.MANUAL, user=administrator)
    assert backup_now(backup.pk) == backup.file_name
    backup.refresh_from_db()
    assert backup.status == Backup.Status.COMPLETE and backup.created_by == administrator
    assert (backups.backup_dir() / backup.file_name).is_file()
    assert backup_now(backup.pk) is None  # a second delivery of the message does nothing


def test_it_records_a_failed_restore_on_the_run_the_backup_page_created(administrator, settings):
    from cims.tasks_backup import restore_backup

    backup = backups.create_backup()
    run = RestoreRun.objects.create(
        backup=backup, backup_name=backup.file_name, kind=RestoreRun.Kind.RESTORE, created_by=administrator
    )
    settings.BACKUP_ENCRYPTION_KEY = os.urandom(32)
    with pytest.raises(backups.BackupKeyMismatch):
        restore_backup(backup.pk, administrator.pk, run.pk)
    run.refresh_from_db()
    assert run.status == RestoreRun.Status.FAILED and "backup key does not match" in run.error
    assert RestoreRun.objects.count() == 1
    assert Notification.objects.filter(user=administrator, key=f"restore-failed:{run.pk}").exists()


def test_it_restores_as_the_task_the_backup_page_queued_on_postgresql(administrator):
    if connection.vendor != "postgresql":
        pytest.skip("the SQLite test database lives in memory")
    from cims.tasks_backup import restore_backup
    from customers.models import Customer

    CustomerFactory(name="备份时")
    backup = backups.create_backup()
    CustomerFactory(name="备份后")
    run = RestoreRun.objects.create(backup=backup, backup_name=backup.file_name, kind=RestoreRun.Kind.RESTORE)
    assert restore_backup(backup.pk, administrator.pk, run.pk) == RestoreRun.Status.PASSED
    assert list(Customer._base_manager.values_list("name", flat=True)) == ["备份时"]
    # The RUNNING row was replaced with the rest of the table; the result is recorded anew.
    recorded = RestoreRun.objects.get(status=RestoreRun.Status.PASSED)
    assert recorded.created_by == administrator and recorded.report["rows_expected"] > 0


def test_it_backs_up_from_the_command_line_into_a_folder(tmp_path, capsys):
    call_command("backup", "-o", str(tmp_path / "elsewhere"))
    printed = Path(capsys.readouterr().out.strip())
    assert printed.parent == tmp_path / "elsewhere" and printed.is_file()
    assert Backup.objects.get().file_name == printed.name


def test_it_restores_from_the_command_line_and_prints_the_table(scratch, capsys):
    CustomerFactory()
    backup = backups.create_backup()
    call_command("restore", backup.file_name, "--database-url", scratch, "--scratch")
    out = capsys.readouterr().out
    assert "customers_customer" in out and "passed" in out
    assert RestoreRun.objects.get().status == RestoreRun.Status.PASSED


def test_it_migrates_an_older_backup_forward(tmp_path, scratch):
    """A backup taken before the latest migration is restored and brought up to the current code."""
    import dj_database_url

    CustomerFactory()
    first = backups.create_backup()
    backups.restore(backups.backup_dir() / first.file_name, database_url=scratch, scratch=True)
    # Make the scratch database what an older CIMS left: its last cims migration not yet applied.
    with backups.target_alias(dj_database_url.parse(scratch)) as alias:
        call_command("migrate", "cims", "0004", database=alias, verbosity=0)
        older = backups.start_backup()
        backups.run_backup(older, alias=alias)
    assert "0005_roles" not in older.manifest["migrations"]["cims"]
    second_scratch = scratch_url(tmp_path, "scratch2")
    try:
        result = backups.restore(backups.backup_dir() / older.file_name, database_url=second_scratch, scratch=True)
    finally:
        if connection.vendor == "postgresql":
            backups.drop_scratch_postgresql(dj_database_url.parse(second_scratch))
    assert result.ok
    # 0005 and whatever cims migrations follow it, nothing else; migrate --check passed inside.
    assert "cims.0005_roles" in result.migrations_applied
    assert all(name.startswith("cims.") for name in result.migrations_applied)


KILLED_BACKUP = """
import os, sys, time
import django
django.setup()
from cims import backups
emit = backups.EncryptingWriter._emit
def emit_then_hang(self, data):
    emit(self, data)
    if self.size > 1000:
        self._raw.flush()
        open(sys.argv[1], "w").close()
        time.sleep(120)
backups.EncryptingWriter._emit = emit_then_hang
backups.create_backup()
"""


def test_it_survives_a_backup_process_killed_in_the_middle_of_writing(tmp_path, settings):
    """A real SIGKILL: no file that looks complete, the good backup untouched, the leftovers (and
    the plaintext dump folder) removed by the next backup, the dead run marked failed."""
    import signal
    import subprocess
    import sys
    import time

    CustomerFactory.create_batch(3)
    good = backups.create_backup()
    good_path = backups.backup_dir() / good.file_name
    good_sha = sha256(good_path)
    if connection.vendor == "sqlite":
        # The test database lives in memory: the child works on a file copy of it.
        import sqlite3

        copy = tmp_path / "child.sqlite3"
        target = sqlite3.connect(copy)
        connection.ensure_connection()
        connection.connection.backup(target)
        target.close()
        database_url = f"sqlite:///{copy}"
    else:
        config = connection.settings_dict
        database_url = f"postgres://{config['USER']}@{config.get('HOST') or 'localhost'}:{config.get('PORT') or 5432}/{config['NAME']}"
    marker = tmp_path / "writing"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "BACKUP_DIR": str(settings.BACKUP_DIR),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_BACKUP, str(marker)], env=env, cwd=Path(__file__).resolve().parents[2]
    )
    try:
        for _ in range(600):
            if marker.exists() or child.poll() is not None:
                break
            time.sleep(0.1)
        assert marker.exists(), "the child never started writing"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    names = {p.name for p in backups.backup_dir().iterdir()}
    partials = [name for name in names if name.endswith(".partial")]
    assert len(partials) == 1 and partials[0].removesuffix(".partial") not in names
    name = partials[0].removesuffix(".partial")
    assert names == {good.file_name, good.file_name + ".json", name + ".partial", ".tmp-" + name}
    assert sha256(good_path) == good_sha

    after = backups.create_backup()
    assert {p.name for p in backups.backup_dir().iterdir()} == {
        good.file_name,
        good.file_name + ".json",
        after.file_name,
        after.file_name + ".json",
    }
    if connection.vendor == "postgresql":
        dead = Backup.objects.get(file_name=name)
        assert dead.status == Backup.Status.FAILED and "stopped" in dead.error
