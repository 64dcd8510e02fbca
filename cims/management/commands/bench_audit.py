"""The access log's chain at scale (``make bench``): sealing, verifying, writing and retention.

Not a test. On its own PostgreSQL database (its name must contain "bench") it fills the access log
(``cims.PersonalDataAccess``) with ``--rows`` unsealed rows by COPY — a realistic mix of actions
(most of them customer pages opened and identifier searches, then reveals, logins, exports, access
requests), 40 staff users plus anonymous failed logins, object ids spread over a million customers,
``created_at`` spread over three years in id order with jitter — then times, through ``cims.audit``:

1. ``seal()`` of all N rows, the first time;
2. ``seal()`` of 1,000 new rows on top (the job's steady per-minute case; ``--repeat`` times);
3. ``verify()`` of the whole chain (``--repeat`` times; it must pass);
4. one ``log_personal_data_access`` INSERT (1,000 of them, each timed; median and p95 in ms);
5. ``apply_retention()`` with a clock set so that its cut-off falls a third of the way into the
   three years: it removes roughly the oldest third and records an anchor;
6. ``verify()`` once more, from that anchor.

Retention is destructive, so it runs last and the next run fills the log again (a run that stopped
before sealing leaves the fill, which is then reused). Each step runs in a child process forked
for it (connections closed first); its peak memory is the child's ``getrusage`` high-water mark,
which includes the Django process it was forked from (shown as "at start"): a verify that streams
has the same peak at 100,000 rows as at 1,000,000.
"""

from __future__ import annotations

import datetime
import io
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from cims import audit
from cims.models import AuditAnchor, PersonalDataAccess, log_personal_data_access
from cims.pgcopy import copy_text
from customers.management.commands.bench_customers import ensure_database
from lottery.management.commands.bench_lottery import in_child

USERS = 40
USER_PREFIX = "bench_audit_"
SPAN_DAYS = 3 * 365
CUSTOMERS = 1_000_000
STEADY_ROWS = 1000
INSERTS = 1000
COPY_CHUNK = 50_000
COLUMNS = (
    "user_id",
    "action",
    "object_type",
    "object_id",
    "object_label",
    "field",
    "rows",
    "detail",
    "masked",
    "ip_address",
    "created_at",
    "seq",
    "chain_hash",
)
A = PersonalDataAccess.Action
# (action, weight): a working CRM's log is mostly customer pages opened and identifier searches.
ACTIONS = (
    (A.VIEW, 48),
    (A.SEARCH, 16),
    (A.REVEAL, 12),
    (A.LOGIN, 9),
    (A.LOGOUT, 5),
    (A.LOGIN_FAILED, 2),
    (A.EXPORT, 3),
    (A.IMPORT, 1),
    (A.REQUEST, 2),
    (A.DECISION, 1.5),
    (A.GRANT_EXPIRED, 0.5),
)
REVEAL_FIELDS = ("phone", "mobile", "id_number", "email", "address", "bank_account")
SEARCH_FIELDS = ("phone", "mobile", "id_number", "email")


@dataclass
class Step:
    name: str
    seconds: list[float] = field(default_factory=list)
    peak_kib: list[int] = field(default_factory=list)
    base_kib: list[int] = field(default_factory=list)
    note: str = ""


def _row(rng: random.Random, users: list[int], when: datetime.datetime) -> tuple:
    """One access-log row as COPY columns (unsealed: seq NULL, chain_hash empty)."""
    action = rng.choices(_ACTION_NAMES, _ACTION_WEIGHTS)[0]
    user = rng.choice(users)
    customer = rng.randrange(1, CUSTOMERS + 1)
    label = f"KH{customer:08d}"
    ip = f"10.{rng.randrange(1, 20)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    object_type, object_id, field_name, rows, detail, masked = "customers.customer", str(customer), "", 1, "", None
    if action == A.VIEW:
        if rng.random() < 0.2:
            object_type = rng.choice(("customers.contact", "followups.followup", "complaints.ticket"))
    elif action == A.SEARCH:
        field_name, rows = rng.choice(SEARCH_FIELDS), rng.choice((0, 1, 1, 1, 1, 2, 3))
        if rows == 0:
            object_id, label = "", ""
    elif action == A.REVEAL:
        field_name = rng.choice(REVEAL_FIELDS)
    elif action in (A.LOGIN, A.LOGOUT, A.LOGIN_FAILED):
        object_type, object_id, label = "accounts.user", str(user), f"staff{user}"
        if action == A.LOGIN_FAILED:
            user, detail = None, "wrong password"
    elif action in (A.EXPORT, A.IMPORT):
        object_type, object_id, label = "customers.customer", "", ""
        rows = rng.randrange(10, 20_000)
        masked = rng.random() < 0.8
        detail = "status=won&province=44&level=VIP" if action == A.EXPORT else f"import {rng.randrange(1, 5000)}.xlsx"
    else:  # access requests: filed, decided, expired
        object_type, object_id, label = "accounts.accessgrant", str(rng.randrange(1, 50_000)), ""
        detail = f"customer KH{customer:08d}: 核对回访记录"
    return (user, action, object_type, object_id, label, field_name, rows, detail, masked, ip, when, None, "")


_ACTION_NAMES = [str(action) for action, _weight in ACTIONS]
_ACTION_WEIGHTS = [weight for _action, weight in ACTIONS]


def copy_rows(rows: list[tuple]) -> None:
    table = connection.ops.quote_name(PersonalDataAccess._meta.db_table)
    text = "".join("\t".join(copy_text(value) for value in row) + "\n" for row in rows)
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN", io.StringIO(text))


def fill(count: int, users: list[int], *, start: datetime.datetime, end: datetime.datetime, seed: int) -> None:
    """COPY ``count`` unsealed rows with times from ``start`` to ``end`` rising with the id (jittered)."""
    rng = random.Random(seed)  # noqa: S311 - benchmark data, not a secret
    step = (end - start) / max(count, 1)
    for first in range(0, count, COPY_CHUNK):
        rows = []
        for index in range(first, min(first + COPY_CHUNK, count)):
            jitter = datetime.timedelta(seconds=rng.uniform(-30, 30))
            rows.append(_row(rng, users, min(start + step * index + jitter, end)))
        with transaction.atomic():
            copy_rows(rows)


class Command(BaseCommand):
    help = (
        "Benchmark the access log's tamper-evident chain on PostgreSQL: fill N unsealed rows, then time "
        "seal, a steady 1,000-row seal, verify, one INSERT and retention, and print a Markdown table."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--rows",
            type=int,
            default=int(os.environ.get("BENCH_AUDIT_ROWS", "1000000")),
            help="Access-log rows (default 1,000,000).",
        )
        parser.add_argument("--repeat", type=int, default=3, help="Runs of the steady seal and verify (default 3).")
        parser.add_argument(
            "--any-database", action="store_true", help="Allow a database whose name lacks 'bench' (the tests)."
        )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError(
                "The access-log benchmark runs on PostgreSQL only (COPY, advisory locks): set DATABASE_URL "
                "to a PostgreSQL database whose name contains 'bench' (make bench does)."
            )
        name = connection.settings_dict["NAME"]
        if "bench" not in name and not options["any_database"]:
            raise CommandError(f"Refusing to rewrite the access log of database {name!r}: its name lacks 'bench'.")
        if options["rows"] < 3 or options["repeat"] < 1:
            raise CommandError("--rows must be at least 3 and --repeat at least 1.")
        if connection.in_atomic_block:
            raise CommandError("Run the benchmark outside a transaction: each step runs in its own process.")
        ensure_database()
        call_command("migrate", verbosity=0)
        self.verbosity = options["verbosity"]
        self.wanted = options["rows"]
        self.repeat = options["repeat"]
        self.load_before = os.getloadavg()
        self.users = self._users()
        self.build_seconds = self._build()
        self.steps: dict[str, Step] = {}
        self.facts: dict[str, object] = {}
        self._scenario()
        self.load_after = os.getloadavg()
        self._report()

    def _say(self, text: str) -> None:
        if self.verbosity:
            self.stdout.write(text)
            self.stdout.flush()

    # --- the data ----------------------------------------------------------------------------------

    def _users(self) -> list[int]:
        existing = dict(User.objects.filter(username__startswith=USER_PREFIX).values_list("username", "pk"))
        missing = [f"{USER_PREFIX}{n:02d}" for n in range(1, USERS + 1) if f"{USER_PREFIX}{n:02d}" not in existing]
        if missing:
            unusable = make_password(None)
            User.objects.bulk_create([User(username=name, password=unusable, is_active=False) for name in missing])
        return sorted(User.objects.filter(username__startswith=USER_PREFIX).values_list("pk", flat=True))

    def _table(self) -> str:
        return connection.ops.quote_name(PersonalDataAccess._meta.db_table)

    def _build(self) -> float | None:
        log = PersonalDataAccess.objects
        if (
            log.count() == self.wanted
            and not log.filter(seq__isnull=False).exists()
            and not AuditAnchor.objects.exists()
        ):
            self._say(f"Reusing the {self.wanted:,} unsealed rows of {connection.settings_dict['NAME']}.")
            self.end = log.order_by("-created_at").values_list("created_at", flat=True).first()
            return None
        started = time.monotonic()
        self._say(f"Filling the access log with {self.wanted:,} unsealed rows by COPY …")
        anchors = connection.ops.quote_name(AuditAnchor._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {self._table()}, {anchors} RESTART IDENTITY")
        self.end = timezone.now() - datetime.timedelta(days=1)
        fill(self.wanted, self.users, start=self.end - datetime.timedelta(days=SPAN_DAYS), end=self.end, seed=20261124)
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM (ANALYZE) {self._table()}")
        return time.monotonic() - started

    # --- the scenario ------------------------------------------------------------------------------

    def _time(self, key: str, name: str, step: Callable[[], object], prepare: Callable[[], None] | None = None):
        def child_prepare():
            if prepare is not None:
                prepare()
            return ()

        seconds, result, peak, base = in_child(child_prepare, step)
        record = self.steps.setdefault(key, Step(name))
        record.seconds.append(seconds)
        record.peak_kib.append(peak)
        record.base_kib.append(base)
        self._say(f"  {name}: {seconds:.2f} s, peak RSS {peak / 1024:,.0f} MiB (at start {base / 1024:,.0f} MiB)")
        return result

    def _scenario(self) -> None:
        self._say("Sealing all rows …")
        sealed = self._time("seal_all", f"seal() of all {self.wanted:,} rows", audit.seal)
        if sealed != self.wanted:
            raise CommandError(f"seal() sealed {sealed:,} rows, not {self.wanted:,}.")
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM (ANALYZE) {self._table()}")  # the bulk update left a dead copy of every row

        for run in range(self.repeat):
            self._say(f"Sealing {STEADY_ROWS:,} new rows ({run + 1}/{self.repeat}) …")
            now = timezone.now()

            def add_rows(run=run, now=now):
                fill(STEADY_ROWS, self.users, start=now - datetime.timedelta(minutes=1), end=now, seed=run)

            sealed = self._time("seal_steady", f"seal() of {STEADY_ROWS:,} new rows", audit.seal, add_rows)
            if sealed != STEADY_ROWS:
                raise CommandError(f"seal() sealed {sealed:,} new rows, not {STEADY_ROWS:,}.")
        total = self.wanted + self.repeat * STEADY_ROWS

        for run in range(self.repeat):
            self._say(f"Verifying the chain ({run + 1}/{self.repeat}) …")
            result = self._time("verify", f"verify() of {total:,} rows", audit.verify)
            if not result.ok or result.rows != total:
                raise CommandError(f"verify() did not pass over {total:,} rows: {result.summary()}")
        self.facts["verified"] = result.summary()

        self._say(f"Timing {INSERTS:,} single log_personal_data_access INSERTs …")
        user_pk = self.users[0]

        def inserts():
            user = User.objects.get(pk=user_pk)
            times = []
            for n in range(INSERTS):
                started = time.perf_counter()
                log_personal_data_access(
                    user=user,
                    action=A.REVEAL,
                    object_type="customers.customer",
                    object_id=n + 1,
                    object_label=f"KH{n + 1:08d}",
                    field="mobile",
                )
                times.append(time.perf_counter() - started)
            return times

        times = self._time("insert", f"{INSERTS:,} × log_personal_data_access", inserts)
        ordered = sorted(times)
        self.facts["insert_ms"] = (
            statistics.median(ordered) * 1000,
            ordered[int(len(ordered) * 0.95)] * 1000,
            ordered[-1] * 1000,
        )
        self.steps["insert"].note = "median {:.2f} ms, p95 {:.2f} ms, worst {:.2f} ms per INSERT".format(
            *self.facts["insert_ms"]
        )
        audit.seal()  # untimed: the INSERTs' rows join the chain before retention

        # The cut-off a third of the way into the span: retention keeps AUDIT_RETENTION_DAYS before "now".
        first = PersonalDataAccess.objects.order_by("seq").values_list("created_at", flat=True).first()
        before = first + (self.end - first) / 3
        clock = before + datetime.timedelta(days=settings.AUDIT_RETENTION_DAYS)
        self._say(f"Retention with its cut-off at {before:%Y-%m-%d} …")
        retention = self._time(
            "retention", "apply_retention(), oldest third", lambda: audit.apply_retention(now=clock).removed_rows
        )
        self.steps["retention"].note = f"{retention:,} rows removed, anchor recorded"
        self.facts["removed"] = retention
        if not retention:
            raise CommandError("apply_retention() removed nothing.")
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM (ANALYZE) {self._table()}")
        self._say("Verifying the chain from the anchor …")
        result = self._time("verify_after", "verify() after retention (from the anchor)", audit.verify)
        kept = total + INSERTS - retention
        if not result.ok or result.rows != kept or result.anchor_seq is None:
            raise CommandError(f"verify() after retention did not pass over {kept:,} rows: {result.summary()}")
        self.steps["verify_after"].note = f"{kept:,} rows, from the anchor at seq {result.anchor_seq:,}"

    # --- the table ---------------------------------------------------------------------------------

    def _report(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            server = cursor.fetchone()[0]
            cursor.execute("SELECT pg_total_relation_size(%s)", [PersonalDataAccess._meta.db_table])
            size = cursor.fetchone()[0]
        memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        lines = [
            "",
            f"Access log: {self.wanted:,} rows over {SPAN_DAYS // 365} years, {USERS} users · seal batch "
            f"{audit.SEAL_BATCH:,}, verify chunk {audit.VERIFY_CHUNK:,} · table with indexes "
            f"{size / 2**20:,.0f} MiB at the end · {self.facts.get('verified', '')}",
            f"{self.repeat} run(s) · {datetime.date.today():%Y-%m-%d} · {os.cpu_count()} cores · {memory_gib:.0f} GiB · "
            f"load average {self.load_before[0]:.1f} before, {self.load_after[0]:.1f} after · "
            f"Python {platform.python_version()} · PostgreSQL {server.split()[0]}",
            "Time: the cims.audit call in a child process forked for the step. Peak RSS: that child's "
            "getrusage(RUSAGE_SELF).ru_maxrss, including the Django process it was forked from (at start).",
        ]
        if self.build_seconds is not None:
            lines.append(f"Filling the log took {self.build_seconds:.0f} s.")
        lines += [
            "",
            "| step | time median | time worst | peak RSS median | peak RSS worst | at start | notes |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for step in self.steps.values():
            lines.append(
                f"| {step.name} | {statistics.median(step.seconds):.2f} s | {max(step.seconds):.2f} s | "
                f"{statistics.median(step.peak_kib) / 1024:,.0f} MiB | {max(step.peak_kib) / 1024:,.0f} MiB | "
                f"{max(step.base_kib) / 1024:,.0f} MiB | {step.note or '—'} |"
            )
        self.stdout.write("\n".join(lines))
