"""The 360 timeline and pipeline benchmark (``make bench``): server times, query counts, peak memory.

Not a test. On its own PostgreSQL database it builds (or reuses) ``--customers`` customers with
``seed_demo`` and, on top of them, ``--followups`` follow-ups with a realistic skew (a fifth of the
customers never followed up, most a handful, some hundreds, and ``--big`` "big" customers with
thousands each, the timeline's worst case), status changes, opportunities over every stage owned
by ~50 reps, and extra transactions and contracts for the big customers — all written with COPY
while the next batch is generated, then ANALYZE. The seed parameters are kept in a small table
(``bench_followups_seed``) so that a second run reuses the data when they match.

Then it drives the real views through ``django.test.Client`` (``force_login``, production
settings apart from plain HTTP): the 360 page of typical customers, the timeline's first page and
a deep cursor page of the big customers, and the pipeline board as a manager (everyone's), a
manager filtered by rep (``?rep=``) and a sales rep (their customers'). Every timed run picks its
customer or rep from a fixed-seed random sequence and counts its queries: the table shows p50, p95
and the min–max query count over all runs (equal when the count is constant), and the
``tracemalloc`` peak of one extra run.
"""

from __future__ import annotations

import datetime
import difflib
import io
import json
import os
import platform
import queue
import random
import statistics
import threading
import time
import tracemalloc
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections, models, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import roles
from accounts.management.commands.load_demo import DEMO_PASSWORD
from accounts.models import Department, Employee, User
from accounts.services import employee_save
from cims.models import next_sequence_block
from cims.pgcopy import copy_text
from customers.management.commands.bench_customers import ensure_database, served_over_plain_http
from customers.models import Contract, Customer, StatusChange, Transaction
from followups.models import FollowUp, Opportunity, OpportunityLine, Task
from followups.services import TimelineItem

DATA_VERSION = 2  # bump when the generator changes, so that an old database is rebuilt
TARGET_P95_MS = 150
BATCH = 50_000  # rows per COPY batch
TYPICAL_REP_CUSTOMERS = 2000  # POOL_MAX_OWNED's default: a rep's board at the size claims stop at
REPS = 50  # sales1 … sales50 own the opportunities (seed_demo's sales1 … sales10 own the customers)

KINDS = [(kind.value, weight) for kind, weight in zip(FollowUp.Kind, (40, 15, 8, 20, 7, 6, 4), strict=True)]
CONTENTS = [
    "电话沟通了产品报价，客户表示需要内部讨论",
    "上门拜访，了解了客户今年的采购计划",
    "发送了产品介绍资料和报价单",
    "微信回复客户关于售后服务的咨询",
    "与客户采购部召开项目需求会议",
    "客户反馈上次交付的设备运行正常",
    "跟进合同续签事宜，客户倾向于续签两年",
    "客户询问批量采购的折扣政策",
    "回访客户满意度，整体评价良好",
    "客户提出发票抬头变更，已转财务处理",
    "约定下周到客户现场做产品演示",
    "客户暂无采购需求，三个月后再联系",
    "协助客户解决系统登录问题",
    "向客户介绍新上市的年度服务套餐",
]
RESULTS = ["", "", "", "有意向", "待报价", "已报价", "暂无需求", "已解决", "需再次跟进", "约定拜访"]
STATUS_FLOW = ["prospect", "intent", "customer", "after_sales", "lost"]
REASONS = ["", "", "首次成交", "合同到期未续", "重新签约", "客户主动联系", "长期未联系"]
PRODUCTS = ["年度服务套餐", "标准版软件授权", "办公设备", "定制开发服务", "硬件维保", "咨询服务", "培训课程"]
LOST_REASONS = ["价格过高", "选择了竞争对手", "预算取消", "需求变更"]
STAGES = [  # (stage, share ‰)
    (Opportunity.Stage.INITIAL, 250),
    (Opportunity.Stage.NEEDS, 200),
    (Opportunity.Stage.PROPOSAL, 150),
    (Opportunity.Stage.NEGOTIATION, 100),
    (Opportunity.Stage.WON, 180),
    (Opportunity.Stage.LOST, 120),
]
CHANNELS = list(Transaction.Channel.values)


# --- COPY -----------------------------------------------------------------------------------------


class _Rows:
    """COPY text rows for ``model``: the given columns from generated text values, every other
    column its field's default (prepared once), so the writer keeps working when a model gains a
    nullable or defaulted field."""

    def __init__(self, model, columns: list[str]):
        fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        by_attname = {f.attname: f for f in fields}
        unknown = set(columns) - set(by_attname)
        if unknown:
            raise CommandError(f"{model.__name__} has no column {', '.join(sorted(unknown))}")
        parts = []
        for f in fields:
            if f.attname in columns:
                parts.append(f"{{{columns.index(f.attname)}}}")
                continue
            if not f.has_default() and not f.null:
                raise CommandError(f"The benchmark does not fill {model.__name__}.{f.name} (no default): update it.")
            value = f.get_db_prep_save(f.get_default(), connection) if f.has_default() else None
            if isinstance(f, models.JSONField) and value is not None:
                value = json.dumps(f.get_default(), ensure_ascii=False)
            parts.append(copy_text(value).replace("{", "{{").replace("}", "}}"))
        self.template = "\t".join(parts)
        quoted = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        self.sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({quoted}) FROM STDIN"

    def line(self, *values: str) -> str:
        return self.template.format(*values)


def _write(payloads: list[tuple[str, list[str]]], *, skip_triggers: bool) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO off")  # benchmark data: a crash loses a batch
        if skip_triggers:
            # The generator only uses ids it read from the referenced tables: skip the per-row
            # foreign-key triggers (millions of SELECT … FOR KEY SHARE), as pg_restore does.
            cursor.execute("SET LOCAL session_replication_role TO replica")
        for sql, lines in payloads:
            if lines:
                cursor.cursor.copy_expert(sql, io.StringIO("\n".join(lines) + "\n"))


class _Writer:
    """Writes batches on a second connection while the next one is generated (two cores)."""

    def __init__(self, *, skip_triggers: bool, threaded: bool):
        self.skip_triggers = skip_triggers
        self.error: BaseException | None = None
        self.thread = None
        if threaded:
            self.queue: queue.Queue = queue.Queue(maxsize=2)
            self.thread = threading.Thread(target=self._run, name="bench-followups-copy", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        try:
            while (payloads := self.queue.get()) is not None:
                if self.error is None:
                    try:
                        _write(payloads, skip_triggers=self.skip_triggers)
                    except Exception as exc:  # noqa: BLE001 - raised again in the main thread
                        self.error = exc
        finally:
            connections.close_all()

    def put(self, payloads: list[tuple[str, list[str]]]) -> None:
        self._raise()
        if self.thread is None:
            _write(payloads, skip_triggers=self.skip_triggers)
        else:
            self.queue.put(payloads)

    def close(self) -> None:
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            raise CommandError(f"Writing a batch failed: {self.error}") from self.error


# --- measuring ------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    times_ms: list[float]
    queries: list[int]
    sql_ms: list[float]
    peak_kib: float
    note: str = ""
    plans: list[str] = field(default_factory=list)

    def percentile(self, share: float) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _stamp(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat()


def _day(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch + 8 * 3600, datetime.UTC).date().isoformat()


class Command(BaseCommand):
    help = (
        "Benchmark the 360 timeline and the pipeline board on PostgreSQL: build or reuse N customers "
        "with M follow-ups, then print p50/p95 server time, query counts and peak memory as Markdown."
    )

    def add_arguments(self, parser):
        env = os.environ.get
        parser.add_argument("--customers", type=int, default=int(env("BENCH_FOLLOWUPS_CUSTOMERS", "1000000")))
        parser.add_argument("--followups", type=int, default=int(env("BENCH_FOLLOWUPS_COUNT", "5000000")))
        parser.add_argument(
            "--opportunities", type=int, default=None, help="Default: 6 %% of the follow-ups (300,000 for 5 M)."
        )
        parser.add_argument("--big", type=int, default=10, help="Customers with thousands of follow-ups (10).")
        parser.add_argument("--seed", type=int, default=20261124, help="Random seed of data and scenarios.")
        parser.add_argument("--repeat", type=int, default=60, help="Timed runs per scenario (default 60).")
        parser.add_argument("--warmup", type=int, default=5, help="Untimed runs first (default 5).")
        parser.add_argument("--only", default="", help="Run only scenarios whose name contains this text.")
        parser.add_argument("--explain", action="store_true", help="Print EXPLAIN ANALYZE of the timeline and board.")
        parser.add_argument("--rebuild", action="store_true", help="Rebuild the follow-up data even if it matches.")
        parser.add_argument(
            "--any-database",
            action="store_true",
            help="Allow a database whose name does not contain 'bench' (its follow-up data is replaced).",
        )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("The benchmark runs on PostgreSQL: set DATABASE_URL (make bench does).")
        name = connection.settings_dict["NAME"]
        if "bench" not in name and not options["any_database"]:
            raise CommandError(f"Refusing to replace the follow-ups of database {name!r}: its name lacks 'bench'.")
        if options["followups"] < 0 or options["customers"] < 1 or options["big"] < 0:
            raise CommandError("--customers must be at least 1, --followups and --big 0 or more.")
        ensure_database()
        self.verbosity = options["verbosity"]
        self.repeat = max(3, options["repeat"])
        self.warmup = max(1, options["warmup"])
        self.explain = options["explain"]
        self.seed = options["seed"]
        self.now = timezone.now()
        started = time.monotonic()
        self.customer_seconds = self._customers(options["customers"])
        self.build_seconds = self._followups(options)
        self.total_seconds = time.monotonic() - started
        with served_over_plain_http():
            results = []
            for scenario in self._scenarios():
                if options["only"] and options["only"] not in scenario[0]:
                    continue
                results.append(self._measure(*scenario))
        self._report(results)

    def _say(self, text: str) -> None:
        if self.verbosity:
            self.stdout.write(text)
            self.stdout.flush()

    # --- the customers -----------------------------------------------------------------------------

    def _customers(self, wanted: int) -> float | None:
        call_command("migrate", verbosity=0)
        have = Customer.all_objects.count()
        if have >= wanted:
            self._say(f"Reusing {connection.settings_dict['NAME']}: {have:,} customers.")
            return None
        call_command("load_demo", not_production=True, stdout=io.StringIO())
        have = Customer.all_objects.count()
        self._say(f"Seeding {wanted - have:,} customers into {connection.settings_dict['NAME']} …")
        started = time.monotonic()
        if wanted > have:
            out = self.stdout if self.verbosity > 1 else io.StringIO()
            call_command("seed_demo", customers=wanted - have, not_production=True, stdout=out)
        return time.monotonic() - started

    # --- the seed table ----------------------------------------------------------------------------

    def _meta(self) -> dict[str, str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS bench_followups_seed (key text PRIMARY KEY, value text NOT NULL)"
            )
            cursor.execute("SELECT key, value FROM bench_followups_seed")
            return dict(cursor.fetchall())

    def _set_meta(self, key: str, value: str | None) -> None:
        with connection.cursor() as cursor:
            if value is None:
                cursor.execute("DELETE FROM bench_followups_seed WHERE key = %s", [key])
            else:
                cursor.execute(
                    "INSERT INTO bench_followups_seed (key, value) VALUES (%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    [key, value],
                )

    def _restore_indexes(self) -> None:
        """Create the indexes a build dropped (also after a build that was killed half-way)."""
        pending = {k: v for k, v in self._meta().items() if k.startswith("index:")}
        if not pending:
            return
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem TO '512MB'")
            for key, definition in sorted(pending.items()):
                started = time.monotonic()
                cursor.execute(definition.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1))
                self._set_meta(key, None)
                self._say(f"  index {key[6:]}: {time.monotonic() - started:.1f}s")
            cursor.execute("RESET maintenance_work_mem")

    def _drop_indexes(self, table: str) -> None:
        """Drop ``table``'s secondary indexes for the bulk load (recorded first, rebuilt after)."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i "
                "WHERE i.schemaname = current_schema() AND i.tablename = %s AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint c WHERE c.conindid = (quote_ident(i.indexname))::regclass)",
                [table],
            )
            for index, definition in cursor.fetchall():
                self._set_meta(f"index:{index}", definition)
                cursor.execute(f"DROP INDEX IF EXISTS {connection.ops.quote_name(index)}")

    # --- the follow-up data ------------------------------------------------------------------------

    def _followups(self, options) -> float | None:
        self._restore_indexes()
        customers = Customer.all_objects.count()
        followups = options["followups"]
        opportunities = options["opportunities"]
        if opportunities is None:
            opportunities = followups * 6 // 100
        params = {
            "version": DATA_VERSION,
            "customers": customers,
            "followups": followups,
            "opportunities": opportunities,
            "big": options["big"],
            "seed": self.seed,
        }
        meta = self._meta()
        self._reps()
        if (
            not options["rebuild"]
            and meta.get("params") == json.dumps(params, sort_keys=True)
            and meta.get("state") == "done"
        ):
            self._say(
                f"Reusing the follow-up data: {followups:,} follow-ups, {opportunities:,} opportunities "
                f"(built in {float(meta.get('seconds', 0)):.0f}s)."
            )
            self._load_cast(json.loads(meta["big_ids"]))
            return None
        started = time.monotonic()
        self._clean(meta)
        self._set_meta("params", json.dumps(params, sort_keys=True))
        self._set_meta("state", "building")
        self._build(params)
        seconds = time.monotonic() - started
        self._set_meta("seconds", f"{seconds:.1f}")
        self._set_meta("state", "done")
        return seconds

    def _clean(self, meta: dict[str, str]) -> None:
        """Remove follow-up data of an earlier build (or of load_demo) before building anew."""
        tables = [m._meta.db_table for m in (FollowUp, Opportunity, StatusChange)]
        # TRUNCATE … CASCADE also empties the tables that refer to these: only the ones known to
        # hang off them (tasks made from follow-ups, opportunity lines), never, say, transactions.
        # Tickets refer to opportunities: bench_complaints notices its tickets are gone and rebuilds them.
        from complaints.models import Ticket

        dependants = {Task._meta.db_table, OpportunityLine._meta.db_table, Ticket._meta.db_table, *tables}
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT conrelid::regclass::text FROM pg_constraint "
                "WHERE contype = 'f' AND confrelid = ANY(%s::regclass[])",
                [tables],
            )
            unknown = {row[0].strip('"') for row in cursor.fetchall()} - dependants
            if unknown:
                raise CommandError(
                    f"{', '.join(sorted(unknown))} refer(s) to the follow-up tables: the benchmark would empty "
                    "them too. Use a fresh database (BENCH_FOLLOWUPS_DATABASE_URL) or teach the benchmark about them."
                )
            names = ", ".join(connection.ops.quote_name(t) for t in tables)
            # Rows written earlier in the same transaction (load_demo's tickets change statuses)
            # leave deferred foreign-key checks pending, which TRUNCATE refuses: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            for model, key in ((Transaction, "transaction_floor"), (Contract, "contract_floor")):
                if key in meta:
                    model.objects.filter(pk__gt=int(meta[key])).delete()
        for model, key in ((Transaction, "transaction_floor"), (Contract, "contract_floor")):
            floor = model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
            self._set_meta(key, str(floor))

    def _reps(self) -> None:
        """sales1 … sales50 in the sales group (seed_demo made sales1 … sales10, who own the customers)."""
        group = Group.objects.get(name=roles.SALES)
        units = list(Department.objects.filter(name__in=["销售一部", "销售二部", "销售三部"]).order_by("pk"))
        for number in range(1, REPS + 1):
            username = f"sales{number}"
            if User.objects.filter(username=username).exists():
                continue
            user = User(username=username, name=f"销售{number}", email=f"{username}@example.com")
            user.set_password(DEMO_PASSWORD)
            user.save()
            user.groups.add(group)
            if units:
                employee_save(
                    employee=Employee(
                        name=user.name,
                        department=units[number % len(units)],
                        position="销售代表",
                        hire_date=datetime.date(2025, 3, 1),
                        user=user,
                    )
                )
        self.reps = list(
            User.objects.filter(username__in=[f"sales{n}" for n in range(1, REPS + 1)], groups=group).values_list(
                "pk", flat=True
            )
        )

    def _load_customers(self) -> tuple[array, array, array, array]:
        """Every customer's id, owner, creation time (epoch seconds) and whether it is alive, in id order."""
        ids, owners, created, alive = array("q"), array("q"), array("d"), array("b")
        with transaction.atomic(), connection.chunked_cursor() as cursor:
            cursor.execute(
                "SELECT id, coalesce(owner_id, 0), extract(epoch FROM created_at), deleted_at IS NULL "
                "FROM customers_customer ORDER BY id"
            )
            while rows := cursor.fetchmany(50_000):
                for pk, owner, when, live in rows:
                    ids.append(pk)
                    owners.append(owner)
                    created.append(float(when))
                    alive.append(1 if live else 0)
        return ids, owners, created, alive

    def _build(self, params: dict) -> None:
        rng = random.Random(self.seed)  # noqa: S311 - benchmark data
        ids, owners, created, alive = self._load_customers()
        n = len(ids)
        now = self.now.timestamp()
        live = [i for i in range(n) if alive[i] and owners[i]]
        # Big customers belong to plain reps: a department head sees more and runs one query more,
        # and the scenarios view a big customer as its owner.
        heads = set(Department.objects.exclude(head=None).values_list("head_id", flat=True))
        plain = [i for i in live if owners[i] not in heads] or live
        if not live:
            raise CommandError("No live customers with an owner to give follow-ups to.")
        # Follow-ups per customer: big customers first, then a lognormal spread over the rest.
        total = params["followups"]
        big_count = min(params["big"], len(live) // 2)
        big_max = max(5, min(20_000, total // 250))
        big = rng.sample(plain, min(big_count, len(plain)))
        counts = array("q", bytes(8 * n))
        for rank, index in enumerate(big):
            counts[index] = max(1, round(big_max * 0.8**rank))
        remaining = max(0, total - sum(counts))
        big_set = set(big)
        weights = {i: rng.lognormvariate(0, 1.3) for i in live if i not in big_set and rng.random() >= 0.2}
        scale = remaining / max(sum(weights.values()), 1e-9)
        for i, w in weights.items():
            counts[i] = min(1000, int(w * scale + rng.random()))
        difference = remaining - (sum(counts) - sum(counts[i] for i in big))
        others = list(weights) or [i for i in live if i not in big_set] or big
        while difference:
            i = rng.choice(others)
            if difference > 0:
                counts[i] += 1
                difference -= 1
            elif counts[i] > 0:
                counts[i] -= 1
                difference += 1
        self.big_ids = [ids[i] for i in big]
        self._set_meta("big_ids", json.dumps(self.big_ids))
        self._say(
            f"Building {total:,} follow-ups over {n:,} customers (big: {', '.join(f'{counts[i]:,}' for i in big)}) …"
        )
        superuser = self._superuser()
        tables = [FollowUp._meta.db_table, StatusChange._meta.db_table, Opportunity._meta.db_table]
        for table in tables:
            self._drop_indexes(table)
        threaded = not connection.in_atomic_block
        writer = _Writer(skip_triggers=superuser, threaded=threaded)
        step = time.monotonic()
        try:
            self._write_opportunities(writer, rng, params["opportunities"], ids, owners, created, counts, live, big)
            self._write_followups(writer, rng, ids, owners, created, counts, now)
            self._write_status_changes(writer, rng, ids, owners, created, counts, live, big, now)
            self._write_big_records(writer, rng, ids, owners, created, counts, big, now)
        finally:
            writer.close()
        self._say(f"  rows written in {time.monotonic() - step:.0f}s; indexes …")
        self._restore_indexes()
        with connection.cursor() as cursor:
            for model in (FollowUp, Opportunity, StatusChange, Transaction, Contract):
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        self._load_cast(self.big_ids)

    @staticmethod
    def _superuser() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            row = cursor.fetchone()
        return bool(row and row[0])

    def _owner(self, rng, owner: int) -> int:
        return owner if rng.random() < 0.85 else rng.choice(self.reps)

    def _batches(self, writer: _Writer, rows: _Rows, lines: Iterator[str], label: str) -> int:
        done, batch, started = 0, [], time.monotonic()
        for line in lines:
            batch.append(line)
            if len(batch) >= BATCH:
                writer.put([(rows.sql, batch)])
                done += len(batch)
                batch = []
                if done % (BATCH * 20) == 0:
                    elapsed = time.monotonic() - started
                    self._say(f"  {done:,} {label}  {elapsed:6.1f}s  ({done / elapsed:,.0f}/s)")
        if batch:
            writer.put([(rows.sql, batch)])
            done += len(batch)
        self._say(f"  {done:,} {label} in {time.monotonic() - started:.1f}s")
        return done

    def _write_followups(self, writer, rng, ids, owners, created, counts, now) -> None:
        rows = _Rows(
            FollowUp,
            [
                "customer_id",
                "kind",
                "happened_at",
                "content",
                "result",
                "next_contact_date",
                "satisfaction",
                "created_by_id",
                "created_at",
            ],
        )
        kinds = [k for k, _w in KINDS]
        kind_weights = [w for _k, w in KINDS]
        contents = [copy_text(c) for c in CONTENTS]
        results = [copy_text(r) for r in RESULTS]
        return_visit = FollowUp.Kind.RETURN_VISIT.value
        rand, choice, choices = rng.random, rng.choice, rng.choices

        def lines() -> Iterator[str]:
            for i in range(len(ids)):
                count = counts[i]
                if not count:
                    continue
                pk, owner, start = str(ids[i]), owners[i], created[i]
                span = max(now - start, 3600.0)
                for kind in choices(kinds, kind_weights, k=count):
                    when = start + rand() * span
                    author = owner if rand() < 0.85 else choice(self.reps)
                    next_date = _day(when + 86400 * (3 + int(rand() * 27))) if rand() < 0.05 else "\\N"
                    score = str(1 + int(rand() * 5)) if kind == return_visit else "\\N"
                    yield rows.line(
                        pk,
                        kind,
                        _stamp(when),
                        choice(contents),
                        choice(results),
                        next_date,
                        score,
                        str(author),
                        _stamp(when + 60 + rand() * 3600),
                    )

        self._batches(writer, rows, lines(), "follow-ups")

    def _write_opportunities(self, writer, rng, total, ids, owners, created, counts, live, big) -> None:
        rows = _Rows(
            Opportunity,
            [
                "customer_id",
                "title",
                "stage",
                "amount",
                "probability",
                "expected_close_date",
                "owner_id",
                "description",
                "lost_reason",
                "closed_at",
                "created_by_id",
                "created_at",
            ],
        )
        now = self.now.timestamp()
        # A big customer has ~1 opportunity for every 100 follow-ups; the rest go to customers
        # in proportion to their follow-ups (plus one for everyone, so quiet customers get some).
        per_big = {i: max(1, counts[i] // 100) for i in big}
        rest = max(0, total - sum(per_big.values()))
        big_set = set(big)
        pool = [i for i in live if i not in big_set] or live
        cumulative, running = [], 0
        for i in pool:
            running += counts[i] + 1
            cumulative.append(running)
        chosen = sorted(rng.choices(pool, cum_weights=cumulative, k=rest)) if rest else []
        for i, many in per_big.items():
            chosen += [i] * many
        stages = [s.value for s, _w in STAGES]
        stage_weights = [w for _s, w in STAGES]
        closed = {Opportunity.Stage.WON.value, Opportunity.Stage.LOST.value}
        lost = Opportunity.Stage.LOST.value

        def lines() -> Iterator[str]:
            for i in chosen:
                stage = rng.choices(stages, stage_weights)[0]
                start = created[i]
                opened = start + rng.random() * max(now - start, 3600.0)
                owner = self._owner(rng, owners[i])
                amount = Decimal(int(rng.lognormvariate(10.5, 1.1) * 100)) / 100
                probability = Opportunity.DEFAULT_PROBABILITY[stage]
                if stage not in closed and rng.random() < 0.3:
                    probability = max(5, min(95, probability + rng.choice((-10, -5, 5, 10))))
                if stage in closed:
                    closed_at = opened + rng.random() * max(now - opened, 3600.0)
                    expected, closed_text = _day(closed_at), _stamp(closed_at)
                else:
                    expected = _day(now + rng.randint(-30, 180) * 86400) if rng.random() < 0.9 else "\\N"
                    closed_text = "\\N"
                yield rows.line(
                    str(ids[i]),
                    f"{rng.choice(PRODUCTS)}项目",
                    stage,
                    str(amount),
                    str(probability),
                    expected,
                    str(owner),
                    "",
                    rng.choice(LOST_REASONS) if stage == lost else "",
                    closed_text,
                    str(owner),
                    _stamp(opened),
                )

        self._batches(writer, rows, lines(), "opportunities")

    def _write_status_changes(self, writer, rng, ids, owners, created, counts, live, big, now) -> None:
        rows = _Rows(StatusChange, ["customer_id", "from_status", "to_status", "reason", "changed_by_id", "changed_at"])
        reasons = [copy_text(r) for r in REASONS]
        big_set = set(big)

        def lines() -> Iterator[str]:
            for i in live:
                # About one change for every eight follow-ups; a big customer's history is long.
                many = counts[i] // 8 + (1 if rng.random() < (counts[i] % 8) / 8 else 0)
                if i in big_set:
                    many = max(many // 10, 20)
                start = created[i]
                span = max(now - start, 3600.0)
                times = sorted(start + rng.random() * span for _ in range(many))
                state = 0
                for when in times:
                    after = rng.choice([s for s in range(len(STATUS_FLOW)) if s != state])
                    yield rows.line(
                        str(ids[i]),
                        STATUS_FLOW[state],
                        STATUS_FLOW[after],
                        rng.choice(reasons),
                        str(self._owner(rng, owners[i])),
                        _stamp(when),
                    )
                    state = after

        self._batches(writer, rows, lines(), "status changes")

    def _write_big_records(self, writer, rng, ids, owners, created, counts, big, now) -> None:
        """Transactions (one for every ten follow-ups) and contracts (one for every 200) of the big customers."""
        transactions = _Rows(
            Transaction, ["customer_id", "date", "amount", "product", "channel", "created_by_id", "created_at"]
        )
        contracts = _Rows(
            Contract,
            [
                "customer_id",
                "number",
                "title",
                "amount",
                "start_date",
                "end_date",
                "status",
                "created_by_id",
                "created_at",
            ],
        )
        year = timezone.localdate().year
        deals, agreements = [], []
        for i in big:
            start = created[i]
            span = max(now - start, 86400.0)
            for _ in range(counts[i] // 10):
                when = start + rng.random() * span
                amount = Decimal(rng.randrange(100_00, 5_000_000)) / 100
                deals.append(
                    transactions.line(
                        str(ids[i]),
                        _day(when),
                        str(amount),
                        rng.choice(PRODUCTS),
                        rng.choice(CHANNELS),
                        str(owners[i]),
                        _stamp(when),
                    )
                )
            many = max(1, counts[i] // 200)
            first = next_sequence_block(f"contract:{year}", many)
            for offset in range(many):
                when = start + rng.random() * span
                days = rng.choice((180, 365, 730))
                ends = when + days * 86400
                status = Contract.Status.ACTIVE if ends > now else Contract.Status.EXPIRED
                agreements.append(
                    contracts.line(
                        str(ids[i]),
                        f"HT{year}-{first + offset:06d}",
                        f"{rng.choice(PRODUCTS)}合作协议",
                        str(Decimal(rng.randrange(10_000, 2_000_000))),
                        _day(when),
                        _day(ends),
                        status.value,
                        str(owners[i]),
                        _stamp(when),
                    )
                )
        writer.put([(transactions.sql, deals), (contracts.sql, agreements)])
        self._say(f"  {len(deals):,} transactions and {len(agreements):,} contracts of the big customers")

    # --- the cast and the scenarios ----------------------------------------------------------------

    def _load_cast(self, big_ids: list[int]) -> None:
        self.big_ids = big_ids
        self.manager = User.objects.filter(groups__name=roles.MANAGER, is_active=True).order_by("pk").first()
        if self.manager is None:
            raise CommandError("The database has no manager: run load_demo.")
        self.reps = list(
            User.objects.filter(username__startswith="sales", groups__name=roles.SALES, is_active=True)
            .order_by("pk")
            .values_list("pk", flat=True)
        )

    def _client(self, user_id: int, cache: dict[int, Client]) -> Client:
        if user_id not in cache:
            client = Client()
            client.force_login(User.objects.get(pk=user_id), backend="django.contrib.auth.backends.ModelBackend")
            cache[user_id] = client
        return cache[user_id]

    def _scenarios(self) -> list[tuple[str, Callable[[int], object], str]]:
        rng = random.Random(self.seed + 1)  # noqa: S311 - the scenarios' fixed sequence
        clients: dict[int, Client] = {}
        runs = self.repeat + self.warmup + 2
        # Typical customers: live ones with a few follow-ups, drawn at random among the whole table.
        top = Customer.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        # Department heads see their departments' customers too, which costs them one query more:
        # the scenarios look through plain reps' eyes, so that a scenario's query count is one figure.
        heads = set(Department.objects.exclude(head=None).values_list("head_id", flat=True))
        # First, so that the customers picked below are not handed to this rep afterwards.
        typical_rep = self._rep_owning(TYPICAL_REP_CUSTOMERS, exclude=heads)
        typical: list[tuple[int, int]] = []
        for _attempt in range(50):
            picks = sorted({rng.randint(1, top) for _ in range(runs * 3)})
            found = (
                Customer.objects.filter(pk__in=picks, owner__isnull=False)
                .exclude(pk__in=self.big_ids)
                .exclude(owner__in=heads)
                .values_list("pk", "owner_id")
            )
            typical += list(found)
            if len(typical) >= runs:
                break
        rng.shuffle(typical)
        typical = typical[:runs]
        if not typical:
            raise CommandError("No customers to look at.")
        big = list(Customer.all_objects.filter(pk__in=self.big_ids).values_list("pk", "owner_id").order_by("pk"))
        deep = {pk: self._deep_cursor(pk) for pk, _owner in big}
        big_sequence = [rng.choice(big) for _ in range(runs)] if big else []
        board_reps = list(
            Customer.objects.filter(owner__in=set(self.reps) - heads - {typical_rep})
            .order_by()
            .values_list("owner_id", flat=True)
            .distinct()
        )
        rep_sequence = [rng.choice(self.reps) for _ in range(runs)]
        viewer_sequence = [rng.choice(board_reps or self.reps) for _ in range(runs)]
        manager = self.manager.pk
        # Log everyone in now: a first login inside a timed run would add its queries to that run.
        everyone = {manager, *rep_sequence, *viewer_sequence, *(o for _c, o in typical), *(o for _c, o in big)}
        for user_id in everyone | ({typical_rep} if typical_rep else set()):
            self._client(user_id, clients)

        def page(path_of, user_of, params_of=None) -> Callable[[int], object]:
            def run(n: int):
                client = self._client(user_of(n), clients)
                response = client.get(path_of(n), params_of(n) if params_of else {})
                if response.status_code != 200:
                    raise CommandError(f"GET {path_of(n)} answered {response.status_code}")
                return response

            return run

        detail = reverse("customers:detail", args=[0]).replace("/0/", "/{}/")
        timeline = reverse("followups:timeline", args=[0]).replace("/0/", "/{}/")
        pipeline = reverse("followups:pipeline")
        scenarios = [
            (
                "360 page, typical customer",
                page(lambda n: detail.format(typical[n % len(typical)][0]), lambda n: typical[n % len(typical)][1]),
                f"{len(typical)} random customers, as their owner",
            )
        ]
        if big:
            scenarios += [
                (
                    "360 page, big customer",
                    page(lambda n: detail.format(big_sequence[n][0]), lambda n: big_sequence[n][1]),
                    f"{len(big)} big customers, as their owner",
                ),
                (
                    "timeline first page, big customer",
                    page(lambda n: timeline.format(big_sequence[n][0]), lambda n: big_sequence[n][1]),
                    "htmx fragment",
                ),
                (
                    "timeline deep cursor page, big customer",
                    page(
                        lambda n: timeline.format(big_sequence[n][0]),
                        lambda n: big_sequence[n][1],
                        lambda n: {"before": deep[big_sequence[n][0]]},
                    ),
                    "cursor 90 % down the follow-ups",
                ),
            ]
        scenarios += [
            ("pipeline, manager (everyone's)", page(lambda n: pipeline, lambda n: manager), ""),
            (
                "pipeline, manager ?rep=",
                page(lambda n: pipeline, lambda n: manager, lambda n: {"rep": rep_sequence[n]}),
                f"a random one of {len(self.reps)} reps each run",
            ),
            (
                "pipeline, sales rep",
                page(lambda n: pipeline, lambda n: viewer_sequence[n]),
                f"a random one of {len(set(board_reps))} reps who own ~100,000 customers each",
            ),
        ]
        if typical_rep:
            scenarios.append(
                (
                    f"pipeline, sales rep with {TYPICAL_REP_CUSTOMERS:,} customers",
                    page(lambda n: pipeline, lambda n: typical_rep),
                    "POOL_MAX_OWNED's default: the most a rep claims",
                )
            )
        return scenarios

    def _rep_owning(self, count: int, *, exclude: set[int]) -> int | None:
        """A rep (the last of sales1 … sales50 who heads nothing) owning ``count`` customers: given
        them once, from the reps seed_demo made owners of ~100,000 each."""
        candidates = [pk for pk in self.reps if pk not in exclude]
        if not candidates:
            return None
        rep = candidates[-1]
        owned = Customer.objects.filter(owner_id=rep).count()
        if owned < count:
            donors = Customer.objects.exclude(owner_id=rep).filter(owner__isnull=False).exclude(pk__in=self.big_ids)
            ids = list(donors.order_by("?").values_list("pk", flat=True)[: count - owned])
            Customer.all_objects.filter(pk__in=ids).update(owner_id=rep)
        return rep

    def _deep_cursor(self, customer_id: int) -> str:
        """The cursor of the follow-up 90 % of the way down ``customer_id``'s follow-ups (newest first)."""
        followups = FollowUp.objects.filter(customer_id=customer_id).order_by("-happened_at", "-id")
        depth = followups.count() * 9 // 10
        target = followups[depth] if depth else followups.first()
        if target is None:
            return ""
        return TimelineItem("followup", target.happened_at, target).cursor

    # --- measuring ---------------------------------------------------------------------------------

    def _measure(self, name: str, run: Callable[[int], object], note: str) -> Result:
        n = 0
        for _ in range(self.warmup):
            run(n)
            n += 1
        times, counts, sql_ms = [], [], []
        plans: list[str] = []
        first = None
        for _ in range(self.repeat):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                run(n)
                times.append((time.perf_counter() - started) * 1000)
            queries = [q for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
            if first is None:
                first = queries
            elif len(queries) != len(first) and self.verbosity > 1:
                self._diff(name, first, queries)
            counts.append(len(queries))
            sql_ms.append(sum(float(q["time"]) for q in queries) * 1000)
            if self.explain and not plans:
                plans = self._explain(queries)
            n += 1
        tracemalloc.start()
        run(n)
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result = Result(name, times, counts, sql_ms, peak / 1024, note, plans)
        self._say(
            f"  {name}: p50 {result.percentile(0.5):.1f} ms, p95 {result.percentile(0.95):.1f} ms, "
            f"queries {min(counts)}–{max(counts)}"
        )
        for plan in plans:
            self.stdout.write(plan)
        return result

    def _diff(self, name: str, first, other) -> None:
        """Show how a run's queries differ from the first run's (``-v 2``): what made the count vary."""
        shorten = [q["sql"][:140] for q in first], [q["sql"][:140] for q in other]
        lines = difflib.unified_diff(
            *shorten, f"{name}: first run", f"{name}: a run with {len(other)}", lineterm="", n=0
        )
        self.stdout.write("\n".join(lines))

    # The tables whose queries --explain prints: the timeline's and the board's sources.
    explain_models = (FollowUp, Opportunity, StatusChange, Transaction, Contract)

    def _explain(self, queries) -> list[str]:
        tables = [m._meta.db_table for m in self.explain_models]
        plans = []
        for query in queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith("SELECT") or not any(f'"{t}"' in sql for t in tables):
                continue
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                plan = "\n".join(row[0] for row in cursor.fetchall())
            plans.append(f"\n    {sql[:2000]}\n{plan}\n")
        return plans

    def _report(self, results: list[Result]) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            server = cursor.fetchone()[0]
            cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
            size = cursor.fetchone()[0]
            counts = {}
            for label, model in (
                ("customers", Customer),
                ("follow-ups", FollowUp),
                ("opportunities", Opportunity),
                ("status changes", StatusChange),
                ("transactions", Transaction),
                ("contracts", Contract),
            ):
                # Planner estimates are enough for the header (a count(*) of 5 M rows takes seconds).
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table]
                )
                counts[label] = max(0, cursor.fetchone()[0])
        biggest = (
            FollowUp.objects.filter(customer_id__in=self.big_ids)
            .values("customer_id")
            .annotate(n=models.Count("pk"))
            .order_by("-n")
        )
        big_counts = [row["n"] for row in biggest]
        lines = [
            "",
            "Dataset (≈, planner statistics): "
            + ", ".join(f"{v:,} {k}" for k, v in counts.items())
            + f"; {size}. Big customers' follow-ups: {', '.join(f'{c:,}' for c in big_counts) or 'none'}.",
            f"Measured {datetime.date.today():%Y-%m-%d}: real views through django.test.Client, "
            f"{self.warmup} warm-up + {self.repeat} timed runs each · {os.cpu_count()} cores · "
            f"Python {platform.python_version()} · PostgreSQL {server.split()[0]}",
        ]
        self.stdout.write("\n".join(lines + self._timings("follow-up") + self._table(results)))

    def _timings(self, data: str) -> list[str]:
        lines = []
        if self.customer_seconds is not None:
            lines.append(f"Seeding the customers took {self.customer_seconds:.0f} s.")
        if self.build_seconds is not None:
            lines.append(f"Building the {data} data took {self.build_seconds:.0f} s.")
        return lines

    def _table(self, results: list[Result]) -> list[str]:
        """The results as a Markdown table, a row per scenario."""
        lines = [
            "",
            f"| scenario | p50 ms | p95 ms | max ms | queries (min–max) | SQL ms p50 | peak KiB | p95 < {TARGET_P95_MS} ms | note |",
            "| --- | ---: | ---: | ---: | :---: | ---: | ---: | :---: | --- |",
        ]
        for r in results:
            low, high = min(r.queries), max(r.queries)
            queries = f"{low}" if low == high else f"{low}–{high}"
            met = "yes" if r.percentile(0.95) < TARGET_P95_MS else "**no**"
            lines.append(
                f"| {r.name} | {r.percentile(0.5):.1f} | {r.percentile(0.95):.1f} | {max(r.times_ms):.1f} | "
                f"{queries} | {statistics.median(r.sql_ms):.1f} | {r.peak_kib:,.0f} | {met} | {r.note} |"
            )
        return lines
