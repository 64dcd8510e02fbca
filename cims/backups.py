"""Encrypted backups, their restore, and the restore drill (docs/operations.md, "Backups").

A backup is one file in ``BACKUP_DIR``, ``cims-<UTC time>-<random>.cimsbak``: a tar stream holding
the database (``pg_dump -Fc`` on PostgreSQL, plus ``pg_dumpall --roles-only`` when the server lets
us; the online backup API on SQLite), the uploaded files of ``MEDIA_ROOT`` and ``manifest.json``,
sealed with AES-256-GCM under ``BACKUP_ENCRYPTION_KEY`` in chunks of ``CHUNK_SIZE`` bytes, so that
neither writing nor checking it needs the database in memory.

File layout::

    header  = MAGIC (8) ‖ file id (16) ‖ HMAC-SHA256(key, "cims-backup-key" ‖ file id) (32)
    chunk*  = length of sealed (4, big-endian) ‖ nonce (12) ‖ AES-GCM(plaintext) with tag
    associated data of chunk i = file id ‖ i (8, big-endian) ‖ final flag (1)

The key check tells "wrong key" apart from "damaged file"; the index and the final flag in the
associated data make a reordered, dropped or truncated chunk fail authentication. The file is
written as ``<name>.partial``, fsynced, and renamed only once complete; a sidecar ``<name>.json``
(checksum, size, manifest: no personal data) lets a restore on a new machine check the file
before it decrypts it and lets the Backup rows be rebuilt after a restore.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import hashlib
import hmac
import io
import json
import logging
import os
import secrets
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dj_database_url
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone
from django.utils.translation import gettext as _

from cims.models import Backup, RestoreRun

logger = logging.getLogger(__name__)

MAGIC = b"CIMSBK01"
FILE_ID_BYTES = 16
KEY_CHECK_BYTES = 32
HEADER_BYTES = len(MAGIC) + FILE_ID_BYTES + KEY_CHECK_BYTES
NONCE_BYTES = 12
TAG_BYTES = 16
CHUNK_SIZE = 2 * 1024 * 1024
SUFFIX = ".cimsbak"
PARTIAL = ".partial"
FORMAT_VERSION = 1
DB_MEMBER = {"postgresql": "database/db.dump", "sqlite": "database/db.sqlite3"}
ROLES_MEMBER = "database/roles.sql"
MANIFEST_MEMBER = "manifest.json"
# A RUNNING backup older than this is one whose process died (killed, machine rebooted).
STALE_AFTER = datetime.timedelta(hours=6)
TARGET_ALIAS = "backup_target"


class BackupError(Exception):
    """A backup or restore that cannot go on; the message is for the operator, no traceback."""


class BackupKeyMismatch(BackupError):
    pass


class BackupCorrupt(BackupError):
    pass


# --- Authenticated encryption in chunks ----------------------------------------------------------


def _key_check(key: bytes, file_id: bytes) -> bytes:
    return hmac.new(key, b"cims-backup-key" + file_id, hashlib.sha256).digest()


def _aad(file_id: bytes, index: int, final: bool) -> bytes:
    return file_id + index.to_bytes(8, "big") + (b"\x01" if final else b"\x00")


class EncryptingWriter(io.RawIOBase):
    """A write-only file object that seals what it is given, chunk by chunk, into ``raw``.

    A chunk is sealed only once the next byte arrives (or at ``finish``), so the last one can carry
    the final flag. ``sha256``/``size`` are those of the bytes written to ``raw`` (the file), and
    ``payload_sha256``/``payload_size`` those of the plaintext."""

    def __init__(self, raw, key: bytes, chunk_size: int = CHUNK_SIZE):
        super().__init__()
        self._raw = raw
        self._cipher = AESGCM(key)
        self._chunk_size = chunk_size
        self._file_id = secrets.token_bytes(FILE_ID_BYTES)
        self._buffer = bytearray()
        self._index = 0
        self.sha256 = hashlib.sha256()
        self.payload_sha256 = hashlib.sha256()
        self.size = 0
        self.payload_size = 0
        self._emit(MAGIC + self._file_id + _key_check(key, self._file_id))

    def writable(self) -> bool:
        return True

    def _emit(self, data: bytes) -> None:
        self._raw.write(data)
        self.sha256.update(data)
        self.size += len(data)

    def _seal(self, plaintext: bytes, final: bool) -> None:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._cipher.encrypt(nonce, plaintext, _aad(self._file_id, self._index, final))
        self._emit(len(sealed).to_bytes(4, "big") + nonce + sealed)
        self._index += 1

    def write(self, data) -> int:
        data = bytes(data)
        self.payload_sha256.update(data)
        self.payload_size += len(data)
        self._buffer += data
        # Keep at least one byte back: the chunk holding the last byte is sealed as final.
        while len(self._buffer) > self._chunk_size:
            self._seal(bytes(self._buffer[: self._chunk_size]), final=False)
            del self._buffer[: self._chunk_size]
        return len(data)

    def finish(self) -> None:
        self._seal(bytes(self._buffer), final=True)
        self._buffer.clear()


def read_header(raw, key: bytes) -> bytes:
    header = raw.read(HEADER_BYTES)
    if len(header) < HEADER_BYTES or not header.startswith(MAGIC):
        raise BackupCorrupt("this is not a CIMS backup file (or its header is damaged)")
    file_id = header[len(MAGIC) : len(MAGIC) + FILE_ID_BYTES]
    if not hmac.compare_digest(header[len(MAGIC) + FILE_ID_BYTES :], _key_check(key, file_id)):
        raise BackupKeyMismatch(
            "the backup key does not match the key this backup was made with: set BACKUP_ENCRYPTION_KEY "
            "to the key that was in use when the backup was taken"
        )
    return file_id


def decrypted_chunks(raw, key: bytes) -> Iterator[bytes]:
    """The plaintext of ``raw``, chunk by chunk, each authenticated before it is yielded.

    Raises BackupKeyMismatch for another key, BackupCorrupt for any damaged, reordered, missing or
    extra byte (including a file cut short before its final chunk)."""
    file_id = read_header(raw, key)
    cipher = AESGCM(key)
    index = 0
    while True:
        prefix = raw.read(4 + NONCE_BYTES)
        if not prefix:
            raise BackupCorrupt(f"the file ends after chunk {index}: it is truncated (an incomplete or cut copy)")
        if len(prefix) < 4 + NONCE_BYTES:
            raise BackupCorrupt(f"chunk {index} is truncated")
        length = int.from_bytes(prefix[:4], "big")
        if length < TAG_BYTES or length > CHUNK_SIZE * 4 + TAG_BYTES:
            raise BackupCorrupt(f"chunk {index} has an impossible length: the file is damaged or was tampered with")
        sealed = raw.read(length)
        if len(sealed) < length:
            raise BackupCorrupt(f"chunk {index} is truncated")
        nonce = prefix[4:]
        for final in (False, True):
            try:
                plaintext = cipher.decrypt(nonce, sealed, _aad(file_id, index, final))
                break
            except InvalidTag:
                continue
        else:
            raise BackupCorrupt(
                f"chunk {index} failed authentication: the file is damaged or was tampered with; it is refused"
            )
        yield plaintext
        index += 1
        if final:
            if raw.read(1):
                raise BackupCorrupt("bytes follow the final chunk: the file was tampered with")
            return


class DecryptingReader(io.RawIOBase):
    """A read-only file object over the authenticated plaintext (for ``tarfile`` in stream mode)."""

    def __init__(self, raw, key: bytes):
        super().__init__()
        self._chunks = decrypted_chunks(raw, key)
        self._buffer = b""
        self._done = False
        self.payload_sha256 = hashlib.sha256()
        self.payload_size = 0

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        if self._done:
            return False
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._done = True
            return False
        self.payload_sha256.update(chunk)
        self.payload_size += len(chunk)
        self._buffer += chunk
        return True

    def readinto(self, target) -> int:
        while not self._buffer and self._fill():
            pass
        count = min(len(target), len(self._buffer))
        target[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count

    def drain(self) -> None:
        """Read (and authenticate) to the final chunk: tar stops before the end of the stream."""
        while self._fill():
            self._buffer = b""


# --- Files and names -----------------------------------------------------------------------------


def backup_dir() -> Path:
    path = Path(settings.BACKUP_DIR)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _write_json_atomically(path: Path, data: dict) -> None:
    partial = path.with_name(path.name + PARTIAL)
    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True, default=str)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def _lock_held(lock: Path) -> bool:
    """Whether a live backup process holds ``lock`` (an flock released by the kernel when the process
    dies, however it dies)."""
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        # Killed between making its folder and its lock, or a process that is just starting.
        with contextlib.suppress(OSError):
            return time.time() - lock.parent.stat().st_mtime < 60
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def clean_leftovers(directory: Path) -> list[str]:
    """Remove what a killed backup left behind — its temporary folder (with the plaintext dump) and
    its ``.partial`` file — and mark its row failed. A backup still running holds the lock in its
    folder and is left alone. Returns the names removed."""
    alive, dead, removed = set(), set(), []
    for entry in directory.glob(".tmp-*"):
        name = entry.name[len(".tmp-") :]
        if _lock_held(entry / "lock"):
            alive.add(name)
            continue
        shutil.rmtree(entry, ignore_errors=True)
        dead.add(name)
        removed.append(entry.name)
    for entry in directory.glob(f"*{PARTIAL}"):
        name = entry.name[: -len(PARTIAL)].removesuffix(".json")
        if name not in alive:
            entry.unlink(missing_ok=True)
            dead.add(name)
            removed.append(entry.name)
    stopped = "The backup process stopped before it finished (killed, or the machine restarted)."
    now = timezone.now()
    Backup.objects.filter(status=Backup.Status.RUNNING, file_name__in=dead).update(
        status=Backup.Status.FAILED, finished_at=now, error=stopped
    )
    Backup.objects.filter(status=Backup.Status.RUNNING, started_at__lt=now - STALE_AFTER).exclude(
        file_name__in=alive
    ).update(status=Backup.Status.FAILED, finished_at=now, error=stopped)
    # A restore or drill killed half-way leaves its unpacked (decrypted) dump in a ``.restore-*``
    # folder, which TemporaryDirectory removes only on a normal exit; and its run "running".
    for entry in directory.glob(".restore-*"):
        if entry.stat().st_mtime < (now - STALE_AFTER).timestamp():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    RestoreRun.objects.filter(status=RestoreRun.Status.RUNNING, started_at__lt=now - STALE_AFTER).update(
        status=RestoreRun.Status.FAILED,
        finished_at=now,
        error="The restore process stopped before it finished (killed, or the machine restarted).",
    )
    return removed


# --- What the database holds ---------------------------------------------------------------------


def _vendor(config: dict) -> str:
    engine = config["ENGINE"]
    if engine.endswith("postgresql"):
        return "postgresql"
    if engine.endswith("sqlite3"):
        return "sqlite"
    raise BackupError(f"backups support PostgreSQL and SQLite, not {engine}")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sqlite_counts(path: str | Path) -> dict[str, int]:
    con = sqlite3.connect(str(path))
    try:
        names = [
            row[0]
            for row in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        return {name: con.execute(f"SELECT COUNT(*) FROM {_quote(name)}").fetchone()[0] for name in names}  # noqa: S608  # nosec B608  # table names from the catalog, quoted
    finally:
        con.close()


def _pg_counts(cursor) -> dict[str, int]:
    cursor.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename",
    )
    names = [row[0] for row in cursor.fetchall()]
    counts = {}
    for name in names:
        cursor.execute(f"SELECT COUNT(*) FROM {_quote(name)}")  # noqa: S608  # nosec B608  # table names from the catalog, quoted
        counts[name] = cursor.fetchone()[0]
    return counts


def _pg_env(config: dict) -> dict[str, str]:
    env = {**os.environ}
    for key, var in (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER"), ("PASSWORD", "PGPASSWORD")):
        if config.get(key):
            env[var] = str(config[key])
    options = config.get("OPTIONS") or {}
    if options.get("sslmode"):
        env["PGSSLMODE"] = str(options["sslmode"])
    return env


def _pg_connect(config: dict, dbname: str | None = None):
    import psycopg2

    return psycopg2.connect(
        dbname=dbname or config["NAME"],
        host=config.get("HOST") or None,
        port=config.get("PORT") or None,
        user=config.get("USER") or None,
        password=config.get("PASSWORD") or None,
    )


def _run(args: list[str], *, env: dict | None = None, stdout=None) -> subprocess.CompletedProcess:
    result = subprocess.run(args, env=env, stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE, check=False)  # noqa: S603
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise BackupError(f"{args[0]} failed: {' '.join(message[-3:]) or result.returncode}")
    return result


def _dump_postgresql(config: dict, workdir: Path) -> tuple[dict[str, int], bool]:
    """``pg_dump -Fc`` and the row counts of one snapshot, so that they agree exactly."""
    con = _pg_connect(config)
    try:
        con.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with con.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            with open(workdir / "db.dump", "wb") as out:
                _run(
                    ["pg_dump", "-Fc", "--no-owner", f"--snapshot={snapshot}", "-d", config["NAME"]],
                    env=_pg_env(config),
                    stdout=out,
                )
            counts = _pg_counts(cursor)
        con.rollback()
    finally:
        con.close()
    roles = False
    with open(workdir / "roles.sql", "wb") as out:
        try:
            _run(
                ["pg_dumpall", "--roles-only", "--no-role-passwords", "-l", config["NAME"]],
                env=_pg_env(config),
                stdout=out,
            )
            roles = True
        except BackupError as exc:
            # Managed servers refuse it to non-superusers; the roles are recreated by hand then.
            logger.info("pg_dumpall --roles-only skipped: %s", exc)
    return counts, roles


def _dump_sqlite(alias: str, workdir: Path) -> dict[str, int]:
    connection = connections[alias]
    connection.ensure_connection()
    target = sqlite3.connect(str(workdir / "db.sqlite3"))
    try:
        connection.connection.backup(target)
    finally:
        target.close()
    return _sqlite_counts(workdir / "db.sqlite3")


def applied_migrations(alias: str = DEFAULT_DB_ALIAS) -> dict[str, list[str]]:
    from django.db.migrations.recorder import MigrationRecorder

    applied: dict[str, list[str]] = {}
    for app, name in sorted(MigrationRecorder(connections[alias]).applied_migrations()):
        applied.setdefault(app, []).append(name)
    return applied


def _media_files() -> list[tuple[Path, str]]:
    root = Path(settings.MEDIA_ROOT)
    if not root.is_dir():
        return []
    files = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            files.append((path, path.relative_to(root).as_posix()))
    return files


# --- Making a backup -----------------------------------------------------------------------------


def _new_file_name() -> str:
    return f"cims-{timezone.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}{SUFFIX}"


def start_backup(*, kind: str = Backup.Kind.MANUAL, user=None) -> Backup:
    """The RUNNING row a backup fills in: created first, so that the page shows it running."""
    return Backup.objects.create(file_name=_new_file_name(), kind=kind, created_by=user)


def _add_file(tar: tarfile.TarFile, path: Path, arcname: str) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
    info = tar.gettarinfo(str(path), arcname=arcname)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o600
    with open(path, "rb") as handle:
        tar.addfile(info, handle)
    return {"size": info.size, "sha256": digest.hexdigest()}


def run_backup(backup: Backup, *, directory: Path | None = None, alias: str = DEFAULT_DB_ALIAS) -> Path:
    """Write ``backup`` (a RUNNING row) to its file; on failure the row is FAILED, administrators
    are alerted, no complete-looking file is left, and the exception propagates."""
    directory = Path(directory) if directory else backup_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    clean_leftovers(directory)
    final_path = directory / backup.file_name
    partial_path = directory / (backup.file_name + PARTIAL)
    workdir = directory / f".tmp-{backup.file_name}"
    lock_fd = None
    try:
        config = connections[alias].settings_dict
        vendor = _vendor(config)
        workdir.mkdir(mode=0o700)
        # Held until this function returns: the kernel releases it if the process is killed, which
        # is how the next backup tells a dead backup's leftovers from a running one's.
        lock_fd = os.open(workdir / "lock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        roles = False
        if vendor == "postgresql":
            counts, roles = _dump_postgresql(config, workdir)
            dump = workdir / "db.dump"
        else:
            counts = _dump_sqlite(alias, workdir)
            dump = workdir / "db.sqlite3"
        manifest = {
            "format": FORMAT_VERSION,
            "file_name": backup.file_name,
            "created_at": timezone.now().isoformat(),
            "cims_version": settings.CIMS_VERSION,
            "vendor": vendor,
            "database": {"member": DB_MEMBER[vendor]},
            "roles": None,
            "tables": counts,
            "total_rows": sum(counts.values()),
            "migrations": applied_migrations(alias),
            "media": {"files": 0, "bytes": 0, "items": []},
        }
        # Readable by the owner only: the content is encrypted, the name and size still tell something.
        with os.fdopen(os.open(partial_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as raw:
            writer = EncryptingWriter(raw, settings.BACKUP_ENCRYPTION_KEY)
            with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                manifest["database"].update(_add_file(tar, dump, DB_MEMBER[vendor]))
                dump.unlink()  # the plaintext dump leaves the disk as soon as it is sealed
                if roles:
                    manifest["roles"] = {"member": ROLES_MEMBER, **_add_file(tar, workdir / "roles.sql", ROLES_MEMBER)}
                for path, relative in _media_files():
                    item = _add_file(tar, path, f"media/{relative}")
                    manifest["media"]["items"].append({"path": relative, **item})
                    manifest["media"]["files"] += 1
                    manifest["media"]["bytes"] += item["size"]
                body = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
                info = tarfile.TarInfo(MANIFEST_MEMBER)
                info.size = len(body)
                info.mtime = int(time.time())
                info.mode = 0o600
                tar.addfile(info, io.BytesIO(body))
            writer.finish()
            raw.flush()
            os.fsync(raw.fileno())
        manifest["payload"] = {"size": writer.payload_size, "sha256": writer.payload_sha256.hexdigest()}
        manifest["file"] = {"size": writer.size, "sha256": writer.sha256.hexdigest()}
        os.replace(partial_path, final_path)
        _fsync_dir(directory)
        backup.status = Backup.Status.COMPLETE
        backup.finished_at = timezone.now()
        backup.size = writer.size
        backup.sha256 = writer.sha256.hexdigest()
        backup.manifest = manifest
        backup.error = ""
        backup.save(update_fields=["status", "finished_at", "size", "sha256", "manifest", "error"])
        _write_json_atomically(sidecar_path(final_path), _sidecar(backup))
        return final_path
    except BaseException as exc:
        partial_path.unlink(missing_ok=True)
        if not final_path.exists() or backup.status != Backup.Status.COMPLETE:
            final_path.unlink(missing_ok=True)
        reason = _describe(exc)
        Backup.objects.filter(pk=backup.pk).update(
            status=Backup.Status.FAILED, finished_at=timezone.now(), error=reason
        )
        backup.status, backup.error = Backup.Status.FAILED, reason
        logger.error("Backup %s failed: %s", backup.file_name, reason)
        alert_administrators(
            key=f"backup-failed:{backup.pk}",
            title=_("CIMS backup failed: %(name)s") % {"name": backup.file_name},
            body=reason,
            backup=backup,
        )
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if lock_fd is not None:
            os.close(lock_fd)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"No space left on the backup disk ({settings.BACKUP_DIR}): {exc}"
    if isinstance(exc, BackupError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _sidecar(backup: Backup) -> dict:
    return {
        "file_name": backup.file_name,
        "kind": backup.kind,
        "started_at": backup.started_at.isoformat(),
        "finished_at": backup.finished_at.isoformat() if backup.finished_at else None,
        "size": backup.size,
        "sha256": backup.sha256,
        "manifest": backup.manifest,
    }


def create_backup(*, kind: str = Backup.Kind.MANUAL, user=None, directory: Path | None = None) -> Backup:
    backup = start_backup(kind=kind, user=user)
    run_backup(backup, directory=directory)
    return backup


def alert_administrators(*, key: str, title: str, body: str, backup: Backup | None = None) -> None:
    """Every active administrator alerted (followups.reminders.notify_administrators), with a link
    to the backup. Never raises."""
    from django.urls import reverse

    from followups.reminders import notify_administrators

    try:
        url = reverse("system:backup_detail", args=[backup.pk]) if backup and backup.pk else reverse("system:backups")
    except Exception:  # noqa: BLE001 - an alert without a link is better than none
        url = ""
    notify_administrators(key=key, title=title, body=body, url=url)


# --- Retention -----------------------------------------------------------------------------------


def backups_to_keep(backups: list[Backup], *, now: datetime.datetime | None = None) -> set[int]:
    """Ids of the backups retention keeps: the newest of each of the last BACKUP_KEEP_DAILY days,
    BACKUP_KEEP_WEEKLY ISO weeks and BACKUP_KEEP_MONTHLY months (in the local time zone)."""
    now = timezone.localtime(now or timezone.now())
    today = now.date()
    newest_first = sorted(backups, key=lambda backup: (backup.started_at, backup.pk), reverse=True)
    keep: set[int] = set()

    def periods(key, limit: int, current) -> None:
        if limit <= 0:
            return
        seen = set()
        for backup in newest_first:
            period = key(timezone.localtime(backup.started_at).date())
            if period in seen or period not in current:
                continue
            seen.add(period)
            keep.add(backup.pk)

    days = {today - datetime.timedelta(days=offset) for offset in range(settings.BACKUP_KEEP_DAILY)}
    periods(lambda day: day, settings.BACKUP_KEEP_DAILY, days)
    weeks = {
        (today - datetime.timedelta(weeks=offset)).isocalendar()[:2] for offset in range(settings.BACKUP_KEEP_WEEKLY)
    }
    periods(lambda day: day.isocalendar()[:2], settings.BACKUP_KEEP_WEEKLY, weeks)
    months = set()
    year, month = today.year, today.month
    for _month in range(settings.BACKUP_KEEP_MONTHLY):
        months.add((year, month))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    periods(lambda day: (day.year, day.month), settings.BACKUP_KEEP_MONTHLY, months)
    if newest_first:
        keep.add(newest_first[0].pk)  # never prune the only (or the newest) good backup
    return keep


def prune_backups(*, now: datetime.datetime | None = None, directory: Path | None = None) -> list[Backup]:
    directory = Path(directory) if directory else backup_dir()
    complete = list(Backup.objects.filter(status=Backup.Status.COMPLETE))
    keep = backups_to_keep(complete, now=now)
    pruned = []
    for backup in complete:
        if backup.pk in keep:
            continue
        (directory / backup.file_name).unlink(missing_ok=True)
        sidecar_path(directory / backup.file_name).unlink(missing_ok=True)
        backup.status = Backup.Status.PRUNED
        backup.save(update_fields=["status"])
        pruned.append(backup)
    return pruned


# --- Checking and unpacking a backup -------------------------------------------------------------


@dataclass
class Unpacked:
    path: Path
    workdir: Path
    manifest: dict
    database: Path
    roles: Path | None
    media: Path
    payload_sha256: str
    file_sha256: str
    backup: Backup | None = None
    notes: list[str] = field(default_factory=list)


def _expected_checksum(path: Path) -> tuple[str | None, Backup | None]:
    backup = Backup.objects.filter(file_name=path.name).first()
    if backup and backup.sha256:
        return backup.sha256, backup
    side = sidecar_path(path)
    if side.is_file():
        with contextlib.suppress(ValueError, OSError):
            return json.loads(side.read_text("utf-8")).get("sha256") or None, backup
    return None, backup


def unpack(path: Path, workdir: Path, *, key: bytes | None = None) -> Unpacked:
    """Check ``path`` completely — checksum, every chunk's authentication, the manifest and every
    member's SHA-256 — while unpacking it into ``workdir``. Touches nothing else."""
    path = Path(path)
    key = key if key is not None else settings.BACKUP_ENCRYPTION_KEY
    if not path.is_file():
        raise BackupError(f"no backup file at {path}")
    expected, backup = _expected_checksum(path)
    with open(path, "rb") as raw:
        read_header(raw, key)  # a wrong key is told apart before anything else
    file_sha256, _size = _sha256_file(path)
    if expected and not hmac.compare_digest(expected, file_sha256):
        raise BackupCorrupt(
            f"the file's SHA-256 ({file_sha256[:16]}…) is not the one recorded when it was made ({expected[:16]}…): "
            "the file is damaged or was tampered with; it is refused"
        )
    members: dict[str, Path] = {}
    with open(path, "rb") as raw:
        reader = DecryptingReader(raw, key)
        try:
            with tarfile.open(fileobj=io.BufferedReader(reader, CHUNK_SIZE), mode="r|") as tar:
                for info in tar:
                    name = info.name
                    if not info.isfile() or name.startswith("/") or ".." in Path(name).parts:
                        raise BackupCorrupt(f"unexpected member {name!r} in the backup")
                    target = workdir / "unpacked" / name
                    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                    source = tar.extractfile(info)
                    with open(target, "wb") as out:
                        shutil.copyfileobj(source, out, 1024 * 1024)
                    members[name] = target
            reader.drain()
        except tarfile.TarError as exc:
            raise BackupCorrupt(f"the backup's content is not readable: {exc}") from None
    if MANIFEST_MEMBER not in members:
        raise BackupCorrupt("the backup holds no manifest")
    try:
        manifest = json.loads(members[MANIFEST_MEMBER].read_text("utf-8"))
    except ValueError:
        raise BackupCorrupt("the backup's manifest is not valid JSON") from None
    if manifest.get("format") != FORMAT_VERSION or manifest.get("vendor") not in DB_MEMBER:
        raise BackupCorrupt("the backup's manifest is of an unknown format")
    checks = [(manifest["database"]["member"], manifest["database"])]
    if manifest.get("roles"):
        checks.append((manifest["roles"]["member"], manifest["roles"]))
    checks += [(f"media/{item['path']}", item) for item in manifest["media"]["items"]]
    for name, expected_item in checks:
        member = members.get(name)
        if member is None:
            raise BackupCorrupt(f"the manifest lists {name}, which the backup does not hold")
        digest, size = _sha256_file(member)
        if digest != expected_item["sha256"] or size != expected_item["size"]:
            raise BackupCorrupt(f"{name} does not match its checksum in the manifest")
    recorded = backup.manifest if backup and backup.manifest else None
    if recorded and recorded.get("payload", {}).get("sha256") not in (None, reader.payload_sha256.hexdigest()):
        raise BackupCorrupt("the decrypted content does not match the checksum recorded when it was made")
    unpacked = Unpacked(
        path=path,
        workdir=workdir,
        manifest=manifest,
        database=members[manifest["database"]["member"]],
        roles=members.get(ROLES_MEMBER),
        media=workdir / "unpacked" / "media",
        payload_sha256=reader.payload_sha256.hexdigest(),
        file_sha256=file_sha256,
        backup=backup,
    )
    if not expected:
        unpacked.notes.append("no recorded checksum found (new machine?): authenticated decryption checked every byte")
    return unpacked


# --- Restoring -----------------------------------------------------------------------------------


@dataclass
class RestoreResult:
    target: str
    vendor: str
    counts_expected: dict[str, int]
    counts_found: dict[str, int]
    mismatched: dict[str, tuple[int, int | None]]
    migrations_applied: list[str]
    decrypted_fields: int
    media_files: int
    duration: float
    notes: list[str]

    @property
    def ok(self) -> bool:
        return not self.mismatched

    def as_report(self) -> dict:
        return {
            "target": self.target,
            "vendor": self.vendor,
            "tables": len(self.counts_expected),
            "rows_expected": sum(self.counts_expected.values()),
            "rows_found": sum(v for k, v in self.counts_found.items() if k in self.counts_expected),
            "mismatched": {name: list(pair) for name, pair in self.mismatched.items()},
            "migrations_applied": self.migrations_applied,
            "decrypted_fields": self.decrypted_fields,
            "media_files": self.media_files,
            "notes": self.notes,
        }


def resolve_path(name_or_path: str) -> Path:
    """A file name in BACKUP_DIR, or a path to a file anywhere (a copy brought to a new machine)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    candidate = Path(settings.BACKUP_DIR) / path.name
    if candidate.is_file():
        return candidate
    raise BackupError(f"no backup file {name_or_path} (looked in the current folder and in {settings.BACKUP_DIR})")


def _target_config(database_url: str | None) -> tuple[dict, bool]:
    """The database to restore into and whether it is the configured one."""
    if not database_url:
        return dict(connections[DEFAULT_DB_ALIAS].settings_dict), True
    try:
        config = dj_database_url.parse(database_url)
    except (ValueError, dj_database_url.UnknownSchemeError) as exc:
        raise BackupError(f"--database-url is not a valid database URL: {exc}") from None
    live = connections[DEFAULT_DB_ALIAS].settings_dict
    same = (
        _vendor(config) == _vendor(live)
        and str(config["NAME"]) == str(live["NAME"])
        and (config.get("HOST") or "") == (live.get("HOST") or "")
    )
    return config, same


def _check_migrations_known(manifest: dict) -> None:
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    known = set(loader.disk_migrations)
    unknown = [
        f"{app}.{name}" for app, names in manifest["migrations"].items() for name in names if (app, name) not in known
    ]
    if unknown:
        raise BackupError(
            "this backup was made by a newer CIMS (migrations unknown to this code: "
            f"{', '.join(unknown[:5])}{'…' if len(unknown) > 5 else ''}); upgrade the code first"
        )


def _restore_sqlite(source: Path, config: dict) -> None:
    name = str(config["NAME"])
    if name.startswith("file:") or name == ":memory:":
        raise BackupError("cannot restore into an in-memory SQLite database")
    Path(name).parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(str(source))
    dest = sqlite3.connect(name, timeout=30)
    try:
        src.backup(dest)
    finally:
        dest.close()
        src.close()


def create_scratch_postgresql(config: dict) -> None:
    con = _pg_connect(config, dbname="postgres")
    con.autocommit = True
    try:
        with con.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {_quote(config['NAME'])} WITH (FORCE)")
            cursor.execute(f"CREATE DATABASE {_quote(config['NAME'])}")
    finally:
        con.close()


def drop_scratch_postgresql(config: dict) -> None:
    con = _pg_connect(config, dbname="postgres")
    con.autocommit = True
    try:
        with con.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {_quote(config['NAME'])} WITH (FORCE)")
    finally:
        con.close()


def _restore_postgresql(source: Path, config: dict) -> None:
    _run(
        [
            "pg_restore",
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "-d",
            config["NAME"],
            str(source),
        ],
        env=_pg_env(config),
    )


def _restore_media(source: Path) -> int:
    """Put the backup's files in MEDIA_ROOT; what was there is kept aside beside it, not deleted.

    The folder itself stays where it is and only its entries move: in docker-compose MEDIA_ROOT is
    a volume's mount point, which cannot be renamed."""
    root = Path(settings.MEDIA_ROOT)
    files = [path for path in source.rglob("*") if path.is_file()] if source.is_dir() else []
    if not files and not (root.exists() and any(root.iterdir())):
        return 0
    root.mkdir(parents=True, exist_ok=True)
    entries = list(root.iterdir())
    if entries:
        aside = root.with_name(f"{root.name}.before-restore-{timezone.now().strftime('%Y%m%d-%H%M%S')}")
        aside.mkdir(parents=True, exist_ok=True)
        for entry in entries:
            shutil.move(str(entry), str(aside / entry.name))
    if source.is_dir():
        shutil.copytree(source, root, dirs_exist_ok=True)
    return len(files)


@contextlib.contextmanager
def target_alias(config: dict) -> Iterator[str]:
    """A temporary connection alias for ``config`` (migrate and the model checks use it)."""
    settings_dict = {**connections[DEFAULT_DB_ALIAS].settings_dict, **config, "TEST": {}}
    settings_dict.setdefault("CONN_MAX_AGE", 0)
    settings_dict["CONN_MAX_AGE"] = 0
    settings_dict["CONN_HEALTH_CHECKS"] = False
    settings_dict.setdefault("TIME_ZONE", None)
    settings_dict.setdefault("AUTOCOMMIT", True)
    settings_dict.setdefault("ATOMIC_REQUESTS", False)
    settings_dict.setdefault("OPTIONS", {})
    # Not added to connections.settings: an alias made for the occasion (which the test runner allows).
    from django.db.utils import load_backend

    connections[TARGET_ALIAS] = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, TARGET_ALIAS)
    try:
        yield TARGET_ALIAS
    finally:
        with contextlib.suppress(Exception):
            connections[TARGET_ALIAS].close()
        with contextlib.suppress(AttributeError, KeyError):
            del connections[TARGET_ALIAS]


def _counts_of(alias: str) -> dict[str, int]:
    connection = connections[alias]
    if connection.vendor == "sqlite":
        return _sqlite_counts(connection.settings_dict["NAME"])
    with connection.cursor() as cursor:
        return _pg_counts(cursor)


def sample_decrypt(alias: str, sample: int = 5) -> int:
    """Decrypt the encrypted fields of a few customers and contacts (newest first) with the current
    key ring; a DecryptionError propagates. Returns how many values were decrypted."""
    from customers.models import Contact, Customer

    decrypted = 0
    for model, fields in (
        (Customer, ["phone", "mobile", "email", "address", "id_number", "bank_account"]),
        (Contact, ["phone", "email"]),
    ):
        for row in model._base_manager.using(alias).order_by("-pk").only("pk", *fields)[:sample]:
            for name in fields:
                value = getattr(row, name)
                if value:
                    decrypted += 1
    return decrypted


def restore(
    path: Path,
    *,
    database_url: str | None = None,
    scratch: bool = False,
    workdir: Path | None = None,
) -> RestoreResult:
    """Check the whole file first, then restore it into the target, migrate it forward, compare the
    row counts with the manifest and decrypt a sample of encrypted fields.

    ``scratch`` (the drill, or a test restore): the target database is dropped and created first
    (PostgreSQL) or the file replaced (SQLite), and media files are not restored."""
    from django.core.management import call_command

    started = time.monotonic()
    config, is_live = _target_config(database_url)
    if scratch and is_live:
        raise BackupError("refusing to use the configured database as a scratch database")
    with tempfile.TemporaryDirectory(prefix=".restore-", dir=workdir or backup_dir()) as tmp:
        unpacked = unpack(path, Path(tmp))
        manifest = unpacked.manifest
        vendor = _vendor(config)
        if manifest["vendor"] != vendor:
            raise BackupError(f"this is a {manifest['vendor']} backup; it cannot be restored into {vendor}")
        _check_migrations_known(manifest)
        notes = list(unpacked.notes)
        # Only now is anything touched.
        if is_live:
            connections.close_all()
        if vendor == "postgresql":
            if scratch:
                create_scratch_postgresql(config)
            _restore_postgresql(unpacked.database, config)
        else:
            if scratch:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{config['NAME']}{suffix}").unlink(missing_ok=True)
            _restore_sqlite(unpacked.database, config)
        media_files = 0
        if is_live:
            media_files = _restore_media(unpacked.media)
        else:
            media_files = manifest["media"]["files"]
            notes.append("media files checked, not restored (not the configured database)")
        with target_alias(config) as alias:
            found = _counts_of(alias)
            expected = manifest["tables"]
            mismatched = {
                name: (count, found.get(name)) for name, count in expected.items() if found.get(name) != count
            }
            before = {(app, name) for app, names in applied_migrations(alias).items() for name in names}
            out = io.StringIO()
            call_command("migrate", database=alias, interactive=False, verbosity=0, stdout=out)
            try:
                call_command(
                    "migrate", database=alias, check_unapplied=True, interactive=False, verbosity=0, stdout=out
                )
            except SystemExit:
                raise BackupError("migrate --check still finds unapplied migrations after migrate") from None
            after = {(app, name) for app, names in applied_migrations(alias).items() for name in names}
            decrypted = sample_decrypt(alias)
        if is_live:
            connections.close_all()
            sync_backup_rows()
    return RestoreResult(
        target=_describe_target(config),
        vendor=vendor,
        counts_expected=expected,
        counts_found=found,
        mismatched=mismatched,
        migrations_applied=sorted(f"{app}.{name}" for app, name in after - before),
        decrypted_fields=decrypted,
        media_files=media_files,
        duration=time.monotonic() - started,
        notes=notes,
    )


def _describe_target(config: dict) -> str:
    if _vendor(config) == "sqlite":
        return f"sqlite:{config['NAME']}"
    return f"postgresql://{config.get('HOST') or 'localhost'}:{config.get('PORT') or 5432}/{config['NAME']}"


def sync_backup_rows(directory: Path | None = None) -> int:
    """After a restore the Backup table is the one of the backup's time: bring back the rows of the
    files present in BACKUP_DIR from their sidecars. Returns how many rows changed."""
    directory = Path(directory) if directory else backup_dir()
    changed = 0
    for side in directory.glob(f"*{SUFFIX}.json"):
        try:
            data = json.loads(side.read_text("utf-8"))
        except (ValueError, OSError):
            continue
        if not (directory / data.get("file_name", "")).is_file():
            continue
        defaults = {
            "kind": data.get("kind") or Backup.Kind.MANUAL,
            "status": Backup.Status.COMPLETE,
            "size": data.get("size"),
            "sha256": data.get("sha256") or "",
            "manifest": data.get("manifest") or {},
            "error": "",
        }
        if data.get("started_at"):
            defaults["started_at"] = datetime.datetime.fromisoformat(data["started_at"])
        if data.get("finished_at"):
            defaults["finished_at"] = datetime.datetime.fromisoformat(data["finished_at"])
        backup = Backup.objects.filter(file_name=data["file_name"]).first()
        if backup is None or backup.status != Backup.Status.COMPLETE:
            Backup.objects.update_or_create(file_name=data["file_name"], defaults=defaults)
            changed += 1
    return changed


# --- Runs recorded -------------------------------------------------------------------------------


def drill_database_config() -> dict:
    if settings.BACKUP_DRILL_DATABASE_URL:
        try:
            return dj_database_url.parse(settings.BACKUP_DRILL_DATABASE_URL)
        except (ValueError, dj_database_url.UnknownSchemeError) as exc:
            raise BackupError(f"BACKUP_DRILL_DATABASE_URL is not a valid database URL: {exc}") from None
    live = connections[DEFAULT_DB_ALIAS].settings_dict
    if _vendor(live) == "postgresql":
        return {**live, "NAME": f"{live['NAME']}_drill"}
    return {"ENGINE": live["ENGINE"], "NAME": str(Path(tempfile.gettempdir()) / f"cims-drill-{os.getpid()}.sqlite3")}


def _config_url(config: dict) -> str:
    if _vendor(config) == "sqlite":
        return f"sqlite:///{Path(config['NAME']).resolve()}"
    from urllib.parse import quote

    auth = quote(config.get("USER") or "", safe="")
    if config.get("PASSWORD"):
        auth += ":" + quote(str(config["PASSWORD"]), safe="")
    host = config.get("HOST") or "localhost"
    port = f":{config['PORT']}" if config.get("PORT") else ""
    return f"postgres://{auth}{'@' if auth else ''}{host}{port}/{quote(config['NAME'], safe='')}"


def latest_complete_backup() -> Backup | None:
    directory = Path(settings.BACKUP_DIR)
    for backup in Backup.objects.filter(status=Backup.Status.COMPLETE).order_by("-started_at", "-id"):
        if (directory / backup.file_name).is_file():
            return backup
    return None


def _save_run(run_id: int | None, **fields) -> RestoreRun:
    """Fill in the RUNNING row the page created, or create the run (a restore into the configured
    database replaced the table that row was in)."""
    if run_id and RestoreRun.objects.filter(pk=run_id, backup_name=fields["backup_name"]).update(**fields):
        return RestoreRun.objects.get(pk=run_id)
    return RestoreRun.objects.create(**fields)


def record_restore(
    *,
    path: Path,
    kind: str,
    user=None,
    database_url: str | None = None,
    scratch: bool = False,
    run_id: int | None = None,
) -> RestoreRun:
    """Run a restore (or the drill) and record it as a RestoreRun; alert administrators when it fails.

    The run is written after the restore: a restore into the configured database replaces the
    table it would have been written to."""
    started_at = timezone.now()
    started = time.monotonic()
    backup_name = Path(path).name
    try:
        result = restore(Path(path), database_url=database_url, scratch=scratch)
    except Exception as exc:
        error = str(exc) if isinstance(exc, BackupError) else f"{type(exc).__name__}: {exc}"
        run = _save_run(
            run_id,
            backup=Backup.objects.filter(file_name=backup_name).first(),
            backup_name=backup_name,
            kind=kind,
            status=RestoreRun.Status.FAILED,
            started_at=started_at,
            finished_at=timezone.now(),
            duration_seconds=time.monotonic() - started,
            error=error,
            created_by=_still_there(user),
        )
        logger.error("%s of %s failed: %s", kind, backup_name, error)
        alert_administrators(
            key=f"restore-failed:{run.pk}",
            title=(
                _("CIMS restore drill failed: %(name)s")
                if kind == RestoreRun.Kind.DRILL
                else _("CIMS restore failed: %(name)s")
            )
            % {"name": backup_name},
            body=error,
            backup=run.backup,
        )
        raise
    status = RestoreRun.Status.PASSED if result.ok else RestoreRun.Status.FAILED
    run = _save_run(
        run_id,
        backup=Backup.objects.filter(file_name=backup_name).first(),
        backup_name=backup_name,
        kind=kind,
        status=status,
        started_at=started_at,
        finished_at=timezone.now(),
        duration_seconds=time.monotonic() - started,
        report=result.as_report(),
        error="" if result.ok else f"row counts differ from the manifest in {len(result.mismatched)} tables",
        created_by=_still_there(user),
    )
    if not result.ok:
        alert_administrators(
            key=f"restore-failed:{run.pk}",
            title=_("CIMS restore check failed: %(name)s") % {"name": backup_name},
            body=run.error,
            backup=run.backup,
        )
    run.result = result
    return run


def _still_there(user):
    from accounts.models import User

    if user is None:
        return None
    return User.objects.filter(pk=user.pk).first()


def run_drill(*, user=None) -> RestoreRun:
    """Restore the latest complete backup into the scratch database, check it, drop the scratch."""
    backup = latest_complete_backup()
    if backup is None:
        error = "no complete backup to restore"
        run = RestoreRun.objects.create(
            backup_name="—",
            kind=RestoreRun.Kind.DRILL,
            status=RestoreRun.Status.FAILED,
            finished_at=timezone.now(),
            error=error,
            created_by=user,
        )
        alert_administrators(key=f"restore-failed:{run.pk}", title=_("CIMS restore drill failed"), body=error)
        raise BackupError(error)
    config = drill_database_config()
    try:
        return record_restore(
            path=Path(settings.BACKUP_DIR) / backup.file_name,
            kind=RestoreRun.Kind.DRILL,
            user=user,
            database_url=_config_url(config),
            scratch=True,
        )
    finally:
        with contextlib.suppress(Exception):
            if _vendor(config) == "postgresql":
                drop_scratch_postgresql(config)
            else:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{config['NAME']}{suffix}").unlink(missing_ok=True)
