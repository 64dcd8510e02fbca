"""What the system page (运行环境) and /healthz know about the running installation.

Each probe is a function returning plain data; ``status_facts()`` gathers them all for the page.
A probe that fails (a database function missing, a folder gone, Redis down) is logged and
answers ``None`` — the page says "unavailable" — and never turns the page into a 500. Nothing
here may be slow: no COUNT(*) on PostgreSQL tables (``reltuples`` estimates instead), and the
broker is asked with a one-second socket timeout.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import shutil
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import celery
import django
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from cims.models import Backup, Heartbeat, JobRun, RestoreRun

logger = logging.getLogger("cims")

T = TypeVar("T")

# The thresholds behind the page's warnings.
BACKUP_MAX_AGE = timedelta(hours=26)
DRILL_MAX_AGE = timedelta(days=8)
DISK_MIN_FREE_RATIO = 0.10
DISK_MIN_FREE_BYTES = 2 * 1024**3
BROKER_TIMEOUT_SECONDS = 1.0
AUDIT_VERIFY_TASK = "cims.tasks_audit.verify"
HEARTBEAT_NAME = "celery"
LARGEST_TABLES = 10
# Counting message files stops here: past it the number only says "a lot".
QUEUE_FILE_COUNT_CAP = 100_000
# kombu's Redis transport keeps a queue's priorities 3, 6 and 9 in lists "<queue>\x06\x16<priority>".
_REDIS_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def probe(func: Callable[..., T]) -> Callable[..., T | None]:
    """Run a probe; on any error log it and answer None ("unavailable")."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Exception:  # noqa: BLE001 - a probe that fails is shown as unavailable, never a 500
            logger.warning("system probe %s failed", func.__name__, exc_info=True)
            return None

    return wrapper


# --- The broker ---------------------------------------------------------------------------------


def broker_url() -> str:
    return settings.CELERY_BROKER_URL or ""


def broker_kind(url: str | None = None) -> str:
    scheme = urlsplit(url if url is not None else broker_url()).scheme.lower()
    if scheme in {"redis", "rediss", "redis+socket", "unix"}:
        return "redis"
    if scheme == "filesystem":
        return "filesystem"
    return scheme or "unknown"


_redis_clients: dict[str, Any] = {}
_redis_lock = threading.Lock()


def redis_client(url: str):
    """One client (and connection pool) per broker URL, with short timeouts, kept for the process."""
    client = _redis_clients.get(url)
    if client is None:
        import redis

        with _redis_lock:
            client = _redis_clients.get(url)
            if client is None:
                client = redis.Redis.from_url(
                    url,
                    socket_timeout=BROKER_TIMEOUT_SECONDS,
                    socket_connect_timeout=BROKER_TIMEOUT_SECONDS,
                    retry_on_timeout=False,
                )
                _redis_clients[url] = client
    return client


def filesystem_queue_folder() -> Path:
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
    return Path(options.get("data_folder_in") or Path(settings.CELERY_QUEUE_DIR) / "out")


def broker_reachable() -> bool:
    """Whether a message could be sent now: Redis answers PING, or the queue folder is writable."""
    url = broker_url()
    kind = broker_kind(url)
    if kind == "redis":
        return bool(redis_client(url).ping())
    if kind == "filesystem":
        # The Celery app creates the folder when it is first configured (cims.celery), which a web
        # process may not have done yet: create it here too; failing to is the failure we look for.
        folder = filesystem_queue_folder()
        folder.mkdir(parents=True, exist_ok=True)
        return os.access(folder, os.W_OK | os.X_OK)
    from kombu import Connection

    with Connection(url, connect_timeout=BROKER_TIMEOUT_SECONDS) as conn:
        conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
    return True


def queue_names() -> list[str]:
    names = {getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", None) or "celery"}
    for route in (getattr(settings, "CELERY_TASK_ROUTES", None) or {}).values():
        if isinstance(route, dict) and route.get("queue"):
            names.add(route["queue"])
    return sorted(names)


@probe
def broker_facts() -> dict[str, Any]:
    """The broker's kind, server version (Redis) and the number of messages waiting in each queue."""
    url = broker_url()
    kind = broker_kind(url)
    facts: dict[str, Any] = {"kind": kind, "version": None, "queues": []}
    if kind == "redis":
        client = redis_client(url)
        facts["version"] = client.info("server").get("redis_version")
        with client.pipeline(transaction=False) as pipe:
            for name in queue_names():
                for suffix in _REDIS_PRIORITY_SUFFIXES:
                    pipe.llen(name + suffix)
            lengths = pipe.execute()
        per_queue = len(_REDIS_PRIORITY_SUFFIXES)
        for index, name in enumerate(queue_names()):
            facts["queues"].append({"name": name, "length": sum(lengths[index * per_queue : (index + 1) * per_queue])})
    elif kind == "filesystem":
        folder = filesystem_queue_folder()
        counts = dict.fromkeys(queue_names(), 0)
        with os.scandir(folder) as entries:
            for seen, entry in enumerate(entries):
                if seen >= QUEUE_FILE_COUNT_CAP:
                    break
                # kombu names each message "<time>_<uuid>.<queue>.msg".
                parts = entry.name.rsplit(".", 2)
                if len(parts) == 3 and parts[2] == "msg" and parts[1] in counts:
                    counts[parts[1]] += 1
        facts["queues"] = [{"name": name, "length": length} for name, length in counts.items()]
    return facts


# --- Versions, database --------------------------------------------------------------------------


def database_vendor() -> str:
    return connection.vendor


@probe
def database_version() -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            return f"PostgreSQL {cursor.fetchone()[0]}"
        if connection.vendor == "sqlite":
            cursor.execute("SELECT sqlite_version()")
            return f"SQLite {cursor.fetchone()[0]}"
    return connection.display_name


@probe
def git_commit() -> str | None:
    """The checked-out commit, if the code runs from a git checkout (not in the Docker image)."""
    git = Path(settings.BASE_DIR) / ".git"
    head_file = git / "HEAD"
    if not head_file.is_file():
        return None
    head = head_file.read_text().strip()
    if not head.startswith("ref: "):
        return head[:12]
    ref = head[5:]
    ref_file = git / ref
    if ref_file.is_file():
        return ref_file.read_text().strip()[:12]
    packed = git / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split(" ", 1)[0][:12]
    return None


def versions() -> dict[str, Any]:
    return {
        "cims": settings.CIMS_VERSION,
        "python": platform.python_version(),
        "django": django.get_version(),
        "database": database_version(),
        "celery": celery.__version__,
        "commit": git_commit(),
    }


def _sqlite_file() -> Path | None:
    name = str(settings.DATABASES["default"]["NAME"])
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        return None
    return Path(name)


@probe
def database_size() -> dict[str, Any]:
    """The database's size and its largest tables (size in bytes, estimated rows when known)."""
    tables: list[dict[str, Any]] = []
    size = None
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_database_size(current_database())")
            size = cursor.fetchone()[0]
            # pg_class holds the planner's row estimate: reading it costs nothing, unlike COUNT(*).
            cursor.execute(
                """
                SELECT c.relname, pg_total_relation_size(c.oid), c.reltuples::bigint
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()
                ORDER BY 2 DESC LIMIT %s
                """,
                [LARGEST_TABLES],
            )
            tables = [
                {"name": name, "size": total, "rows": rows if rows is not None and rows >= 0 else None}
                for name, total, rows in cursor.fetchall()
            ]
        elif connection.vendor == "sqlite":
            cursor.execute("PRAGMA page_count")
            pages = cursor.fetchone()[0]
            cursor.execute("PRAGMA page_size")
            size = pages * cursor.fetchone()[0]
            tables = _sqlite_tables(cursor)
    path = _sqlite_file()
    if path is not None and path.exists():
        size = path.stat().st_size
    return {"size": size, "tables": tables}


def _sqlite_tables(cursor) -> list[dict[str, Any]]:
    try:
        with transaction.atomic():
            # dbstat (when SQLite is built with it) sums the pages of each table and its indexes.
            cursor.execute(
                """
                SELECT m.tbl_name, SUM(d.pgsize) FROM dbstat d JOIN sqlite_master m ON m.name = d.name
                WHERE m.tbl_name NOT LIKE 'sqlite_%%'
                GROUP BY m.tbl_name ORDER BY 2 DESC LIMIT %s
                """,
                [LARGEST_TABLES],
            )
            return [{"name": name, "size": size, "rows": None} for name, size in cursor.fetchall()]
    except Exception:  # noqa: BLE001 - no dbstat: fall back to row counts (the quick start's small files)
        logger.info("SQLite has no dbstat table: the system page counts rows instead")
    names = connection.introspection.table_names(cursor)
    counts = []
    for name in names:
        cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(name)}")  # noqa: S608 - introspected names  # nosec B608  # table names from the catalog, quoted
        counts.append({"name": name, "size": None, "rows": cursor.fetchone()[0]})
    counts.sort(key=lambda table: table["rows"], reverse=True)
    return counts[:LARGEST_TABLES]


# --- Background jobs, backups -------------------------------------------------------------------


@probe
def heartbeat() -> dict[str, Any]:
    beat = Heartbeat.objects.filter(name=HEARTBEAT_NAME).first()
    if beat is None:
        return {"seen": False, "fresh": False, "last_seen": None, "hostname": "", "beats": 0}
    return {
        "seen": True,
        "fresh": beat.is_fresh,
        "last_seen": beat.last_seen,
        "hostname": beat.hostname,
        "beats": beat.beats,
    }


def describe_schedule(schedule: Any) -> str:
    if isinstance(schedule, timedelta):
        seconds = int(schedule.total_seconds())
        if seconds % 3600 == 0:
            hours = seconds // 3600
            return ngettext("every %(count)d hour", "every %(count)d hours", hours) % {"count": hours}
        if seconds % 60 == 0:
            minutes = seconds // 60
            return ngettext("every %(count)d minute", "every %(count)d minutes", minutes) % {"count": minutes}
        return ngettext("every %(count)d second", "every %(count)d seconds", seconds) % {"count": seconds}
    fields = ("_orig_minute", "_orig_hour", "_orig_day_of_month", "_orig_month_of_year", "_orig_day_of_week")
    if all(hasattr(schedule, field) for field in fields):
        cron = " ".join(str(getattr(schedule, field)) for field in fields)
        return gettext("cron %(expression)s") % {"expression": cron}
    return str(schedule)


@probe
def scheduled_jobs() -> dict[str, Any]:
    """Each beat entry with the last run of its task, and the other tasks that ran."""
    from cims.celery import app

    runs = {run.name: run for run in JobRun.objects.all()}
    entries = []
    scheduled_tasks = set()
    for entry, spec in sorted(app.conf.beat_schedule.items()):
        task = spec["task"]
        scheduled_tasks.add(task)
        entries.append(
            {"entry": entry, "task": task, "schedule": describe_schedule(spec["schedule"]), "run": runs.get(task)}
        )
    others = [
        {"entry": None, "task": name, "schedule": None, "run": run}
        for name, run in sorted(runs.items())
        if name not in scheduled_tasks
    ]
    return {
        "scheduled": entries,
        "others": others,
        "groups": [{"others": False, "items": entries}, {"others": True, "items": others}],
    }


@probe
def backup_facts() -> dict[str, Any]:
    last_complete = Backup.objects.filter(status=Backup.Status.COMPLETE).order_by("-started_at", "-id").first()
    failed = Backup.objects.filter(status=Backup.Status.FAILED)
    if last_complete is not None:
        failed = failed.filter(started_at__gt=last_complete.started_at)
    last_failed = failed.order_by("-started_at", "-id").first()
    drill = (
        RestoreRun.objects.filter(kind=RestoreRun.Kind.DRILL)
        .exclude(status=RestoreRun.Status.RUNNING)
        .order_by("-started_at", "-id")
        .first()
    )
    last_passed_drill_at = None
    if drill is not None and drill.status == RestoreRun.Status.PASSED:
        last_passed_drill_at = drill.finished_at or drill.started_at
    elif drill is not None:
        last_passed_drill_at = (
            RestoreRun.objects.filter(kind=RestoreRun.Kind.DRILL, status=RestoreRun.Status.PASSED)
            .order_by("-started_at")
            .values_list("started_at", flat=True)
            .first()
        )
    return {
        "last_complete": last_complete,
        "last_complete_at": (last_complete.finished_at or last_complete.started_at) if last_complete else None,
        "last_failed": last_failed,
        "drill": drill,
        "last_passed_drill_at": last_passed_drill_at,
    }


# --- Disks, environment -------------------------------------------------------------------------


def disk_usage(label: str, path: Path | str) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "label": label,
        "path": str(path),
        "exists": os.path.isdir(path),
        "total": None,
        "free": None,
        "ratio": None,
    }
    if not facts["exists"]:
        # Not an error: BACKUP_DIR and MEDIA_ROOT are created by their first file.
        return facts
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        logger.warning("system probe: no disk usage for %s", path)
        return facts
    facts.update(total=usage.total, free=usage.free, ratio=usage.free / usage.total if usage.total else None)
    return facts


def disks() -> list[dict[str, Any]]:
    places = [(gettext("Backups"), settings.BACKUP_DIR), (gettext("Uploaded files"), settings.MEDIA_ROOT)]
    database_file = _sqlite_file() if connection.vendor == "sqlite" else None
    if database_file is not None:
        places.append((gettext("Database file"), database_file.parent))
    return [disk_usage(label, path) for label, path in places]


def environment(request_is_secure: bool | None = None) -> dict[str, Any]:
    return {
        "time_zone": settings.TIME_ZONE,
        "celery_time_zone": getattr(settings, "CELERY_TIMEZONE", None),
        "language_code": settings.LANGUAGE_CODE,
        "languages": [str(name) for _code, name in settings.LANGUAGES],
        "debug": settings.DEBUG,
        "https": bool(settings.SESSION_COOKIE_SECURE),
        "request_is_secure": request_is_secure,
        "always_eager": bool(getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False)),
    }


# --- Warnings -----------------------------------------------------------------------------------


def _when(moment: datetime | None) -> str:
    if moment is None:
        return gettext("never")
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def health_warnings(facts: dict[str, Any], now: datetime | None = None) -> list[dict[str, str]]:
    """Everything unhealthy, each as {"code", "message"}: a sentence in the user's language."""
    now = now or timezone.now()
    found: list[dict[str, str]] = []

    def warn(code: str, message: str) -> None:
        found.append({"code": code, "message": message})

    debug = facts["environment"]["debug"]
    if debug:
        warn("debug", gettext("DEBUG is on: error pages show internals to anyone. Turn it off in production."))
    if settings.SECRETS_FROM_LOCAL_FILE and not debug:
        warn(
            "quick-start-secrets",
            gettext(
                "These keys come from the quick start's var/secrets.json, not from the environment: %(names)s. "
                "Set them in the environment of every web and worker process."
            )
            % {"names": ", ".join(settings.SECRETS_FROM_LOCAL_FILE)},
        )
    if facts["database_vendor"] != "postgresql" and not debug:
        warn("not-postgresql", gettext("The database is not PostgreSQL: production must run on PostgreSQL."))

    beat = facts["heartbeat"]
    if beat is None:
        warn("no-worker", gettext("The background jobs' heartbeat could not be read."))
    elif not beat["fresh"]:
        queued = sum(q["length"] for q in (facts["broker"] or {}).get("queues", []))
        if beat["seen"]:
            message = gettext(
                "No background worker: the last heartbeat was at %(when)s. Scheduled jobs, e-mails and backups are not running."
            ) % {"when": _when(beat["last_seen"])}
        else:
            message = gettext(
                "No background worker: no heartbeat has ever been recorded. Start the Celery worker and beat."
            )
        if queued:
            message += " " + ngettext(
                "%(count)d task is waiting in the queue.", "%(count)d tasks are waiting in the queue.", queued
            ) % {"count": queued}
        warn("no-worker", message)
    if facts["broker"] is None:
        warn("broker", gettext("The message broker does not answer: background jobs cannot be queued."))

    jobs = facts["jobs"]
    if jobs is not None:
        for item in jobs["scheduled"]:
            run = item["run"]
            if run is None or run.last_status != JobRun.Status.FAILURE:
                continue
            if item["task"] == AUDIT_VERIFY_TASK:
                warn(
                    "audit-chain",
                    gettext(
                        "The last verification of the access log's hash chain failed (%(when)s): see the audit pages."
                    )
                    % {"when": _when(run.last_finished_at)},
                )
            else:
                warn(
                    "job-failed",
                    gettext("The scheduled job “%(entry)s” (%(task)s) failed on its last run at %(when)s.")
                    % {"entry": item["entry"], "task": item["task"], "when": _when(run.last_finished_at)},
                )

    backups = facts["backups"]
    if backups is not None:
        if backups["last_failed"] is not None:
            warn(
                "backup-failed",
                gettext("The last backup failed (%(when)s).") % {"when": _when(backups["last_failed"].started_at)},
            )
        last_at = backups["last_complete_at"]
        if last_at is None:
            warn("no-backup", gettext("There is no complete backup."))
        elif now - last_at > BACKUP_MAX_AGE:
            warn(
                "no-backup",
                gettext("No backup in the last %(hours)d hours: the newest complete one is from %(when)s.")
                % {"hours": BACKUP_MAX_AGE.total_seconds() // 3600, "when": _when(last_at)},
            )
        drill = backups["drill"]
        if drill is not None and drill.status == RestoreRun.Status.FAILED:
            warn(
                "drill-failed",
                gettext("The last restore drill failed (%(when)s): the backups may not restore.")
                % {"when": _when(drill.started_at)},
            )
        passed_at = backups["last_passed_drill_at"]
        if passed_at is None or now - passed_at > DRILL_MAX_AGE:
            warn(
                "no-drill",
                gettext("No restore drill passed in the last %(days)d days (last passed: %(when)s).")
                % {"days": DRILL_MAX_AGE.days, "when": _when(passed_at)},
            )

    for disk in facts["disks"]:
        if disk["free"] is None:
            continue
        if disk["free"] < DISK_MIN_FREE_BYTES or (disk["ratio"] is not None and disk["ratio"] < DISK_MIN_FREE_RATIO):
            warn(
                "disk-low",
                gettext("Little disk space left for %(place)s (%(path)s): %(free)s free.")
                % {"place": disk["label"], "path": disk["path"], "free": _bytes(disk["free"])},
            )
    return found


def _bytes(count: int) -> str:
    from django.template.defaultfilters import filesizeformat

    return str(filesizeformat(count))


def status_facts(request_is_secure: bool | None = None) -> dict[str, Any]:
    """Everything the system page shows, with its warnings."""
    facts: dict[str, Any] = {
        "versions": versions(),
        "database_vendor": database_vendor(),
        "database": database_size(),
        "heartbeat": heartbeat(),
        "broker": broker_facts(),
        "jobs": scheduled_jobs(),
        "backups": backup_facts(),
        "disks": probe(disks)() or [],
        "environment": environment(request_is_secure),
    }
    facts["warnings"] = health_warnings(facts)
    return facts
