"""The complaint desk benchmark (``make bench``): server times, query counts and peak memory at 500,000 tickets.

Not a test. It runs on the follow-ups benchmark's PostgreSQL database (``cims_bench_followups``,
1,000,000 customers; seeded the same way, through ``bench_followups``' own seeding, when they are
missing) and adds, or reuses, ``--tickets`` tickets: about a fifth of the live customers have
tickets (a lognormal spread, most one or two, some a dozen) and ``--big`` customers hundreds each;
kinds, categories, severities and channels in realistic shares; 8 % open (new, assigned, in
progress; filed recently, so that some are due soon and some breached), the rest resolved or
closed, three in five of them rated; 2–6 timeline events a ticket, and ``--long`` open tickets with
a couple of hundred. Ids and numbers follow the filing time (``T<year>-<seq>``; each year's
``Sequence`` row is advanced past them, so a ticket filed later does not collide). ~20 service
agents (``service1`` …) work two categories each. Everything is written with COPY on a second
connection while the next batch is generated (``bench_followups``' writer), the tables' secondary
indexes dropped during the load and rebuilt after it, then VACUUM (ANALYZE). The parameters are
kept in ``bench_complaints_seed``, so that a second run reuses the data; a rebuild removes only the
ticket ids this command reserved.

Then it drives the real desk views through ``django.test.Client`` exactly as ``bench_followups``
does (production settings apart from plain HTTP; warm-up runs, then timed runs, each drawing its
user or ticket from a fixed-seed random sequence; p50/p95/max, query counts, SQL time, the
``tracemalloc`` peak of one extra run) and prints a Markdown table with the load average.
"""

from __future__ import annotations

import datetime
import html
import json
import os
import platform
import random
import re
import statistics
import time
from array import array
from collections import Counter
from collections.abc import Callable
from urllib.parse import unquote

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Count
from django.test import Client
from django.urls import reverse

from accounts import roles
from accounts.management.commands.load_demo import DEMO_PASSWORD
from accounts.models import Department, Employee, User
from accounts.services import employee_save
from cims.models import next_sequence_block
from cims.pgcopy import copy_text
from complaints.models import Ticket, TicketAttachment, TicketAttachmentContent, TicketCategory, TicketEvent
from customers.management.commands.bench_customers import ensure_database, served_over_plain_http
from customers.models import Customer
from followups.management.commands import bench_followups
from followups.management.commands.bench_followups import BATCH, Result, _Rows, _stamp, _Writer

DATA_VERSION = 1  # bump when the generator changes, so that an old build is replaced
AGENTS = 20  # service1 … service20, two categories each
TYPICAL_BOOK = 2000  # a rep's book at POOL_MAX_OWNED's default (bench_followups gives one rep that many)
TICKET_SHARE = 0.22  # of the live customers have (non-big) tickets
OPEN_SHARE = 0.08
HOUR = 3600.0
DAY = 86400.0

S, E = Ticket.Status, TicketEvent.Kind
SEVERITIES = [("low", 30), ("medium", 45), ("high", 20), ("critical", 5)]
KINDS = [("complaint", 45), ("inquiry", 25), ("service", 22), ("suggestion", 8)]
CHANNELS = [("portal", 35), ("phone", 40), ("email", 15), ("onsite", 10)]
OPEN = [(S.NEW.value, 15), (S.ASSIGNED.value, 30), (S.IN_PROGRESS.value, 55)]
CATEGORY_WEIGHTS = (35, 15, 20, 15, 15)  # the default categories in sort order; any further one 5
RATINGS = [(1, 5), (2, 7), (3, 15), (4, 33), (5, 40)]
SUBJECTS = [  # by category position (产品质量, 服务态度, 物流配送, 账单费用, 其他)
    ["设备开机后频繁死机", "收到的产品外壳有划痕", "软件升级后无法登录", "配件与说明书不符", "使用一周后出现异响"],
    ["客服电话长时间无人接听", "上门工程师迟到两小时", "销售承诺的赠品未兑现", "售后人员态度冷淡"],
    ["订单超过约定时间仍未发货", "快递外包装破损", "货物被送到了错误地址", "物流信息三天未更新"],
    ["发票金额与合同不符", "重复扣费需要退款", "申请开具增值税专用发票", "续费价格与报价不一致"],
    ["咨询年度服务套餐内容", "建议增加微信下单功能", "申请修改联系人信息", "希望安排产品培训"],
]
DESCRIPTIONS = [
    "客户来电反映上述问题，希望尽快处理并给予答复。",
    "客户通过门户提交，附带了照片，要求三个工作日内解决。",
    "问题已出现多次，客户对此比较不满，请优先跟进。",
    "客户表示如果不能及时解决将考虑更换供应商。",
    "客户希望有专人对接，并在处理完成后电话告知。",
]
REPLIES = [
    "您好，已收到您的反馈，我们正在核实处理，请耐心等待。",
    "已安排工程师与您联系，预计明天上门。",
    "补发的配件已寄出，快递单号稍后发送给您。",
    "退款申请已提交财务，预计三个工作日内到账。",
    "感谢您的耐心，问题原因已经查明，正在处理中。",
]
CUSTOMER_REPLIES = ["请问处理进度如何？", "补充一下：问题今天又出现了。", "好的，谢谢。", "希望尽快给个答复。"]
NOTES = ["已联系物流公司核实", "需要技术部门协助排查", "客户是重点客户，请优先处理", "已与销售确认合同条款"]
RESOLUTIONS = ["已更换新设备，客户确认正常", "已补发配件", "已退款并致歉", "已重新开具发票", "已解答客户疑问"]
RATING_COMMENTS = ["", "", "处理及时，满意", "响应有点慢", "问题解决了，谢谢", "希望以后少出这种问题"]

TICKET_COLUMNS = [
    "number",
    "customer_id",
    "kind",
    "category_id",
    "severity",
    "channel",
    "subject",
    "description",
    "status",
    "assignee_id",
    "created_by_id",
    "created_at",
    "updated_at",
    "sla_due_at",
    "first_response_at",
    "resolved_at",
    "closed_at",
    "escalated_at",
    "rating",
    "rating_comment",
    "rated_at",
]
EVENT_COLUMNS = [
    "ticket_id",
    "kind",
    "from_status",
    "to_status",
    "actor_id",
    "by_customer",
    "internal",
    "body",
    "created_at",
]
NULL = "\\N"

# The desk's GET parameters (complaints.views.ticket_list, complaints.forms.TicketFilterForm): the
# status filter defaults to the open tickets, ordered by due time; "all" lists every ticket newest first.
QUEUE = {"tab": "team"}
MINE = {"tab": "mine"}
EVERY = {"status": "all"}
HIGH = {"severity": "high"}
BREACHED = {"sla": "breached"}
SEARCH = "q"
CURSOR = "after"


class _IdRows(_Rows):
    """``_Rows`` with the primary key first: the generator takes the ids from the table's sequence
    so that the events of a batch can point at their ticket."""

    def __init__(self, model, columns: list[str]):
        super().__init__(model, columns)
        table = connection.ops.quote_name(model._meta.db_table)
        pk = connection.ops.quote_name(model._meta.pk.column)
        self.sql = self.sql.replace(f"COPY {table} (", f"COPY {table} ({pk}, ", 1)

    def line(self, pk: int, *values: str) -> str:  # type: ignore[override]
        return f"{pk}\t{super().line(*values)}"


def _year(epoch: float) -> int:
    """The ticket's numbering year: the year of its filing time in China (UTC+8)."""
    return datetime.datetime.fromtimestamp(epoch + 8 * HOUR, datetime.UTC).year


def _opt(epoch: float | None) -> str:
    return NULL if epoch is None else _stamp(epoch)


class Command(bench_followups.Command):
    help = (
        "Benchmark the complaint desk on PostgreSQL: build or reuse N tickets over the follow-ups "
        "benchmark's customers, then print p50/p95 server time, query counts and peak memory as Markdown."
    )

    def add_arguments(self, parser):
        env = os.environ.get
        parser.add_argument("--tickets", type=int, default=int(env("BENCH_COMPLAINTS_TICKETS", "500000")))
        parser.add_argument(
            "--customers",
            type=int,
            default=int(env("BENCH_FOLLOWUPS_CUSTOMERS", "1000000")),
            help="Customers needed (seeded as bench_followups does when the database has fewer).",
        )
        parser.add_argument("--big", type=int, default=5, help="Customers with hundreds of tickets (5).")
        parser.add_argument("--long", type=int, default=5, help="Open tickets with ~200 events each (5).")
        parser.add_argument("--seed", type=int, default=20261124, help="Random seed of data and scenarios.")
        parser.add_argument("--repeat", type=int, default=60, help="Timed runs per scenario (default 60).")
        parser.add_argument("--warmup", type=int, default=5, help="Untimed runs first (default 5).")
        parser.add_argument("--only", default="", help="Run only scenarios whose name contains this text.")
        parser.add_argument(
            "--explain", action="store_true", help="Print EXPLAIN (ANALYZE, BUFFERS) of the desk's queries."
        )
        parser.add_argument("--rebuild", action="store_true", help="Rebuild the tickets even if they match.")
        parser.add_argument(
            "--any-database",
            action="store_true",
            help="Allow a database whose name does not contain 'bench' (the tickets this command made are replaced).",
        )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("The benchmark runs on PostgreSQL: set DATABASE_URL (make bench does).")
        name = connection.settings_dict["NAME"]
        if "bench" not in name and not options["any_database"]:
            raise CommandError(f"Refusing to add benchmark tickets to database {name!r}: its name lacks 'bench'.")
        if options["tickets"] < 1 or options["customers"] < 1 or options["big"] < 0 or options["long"] < 0:
            raise CommandError("--tickets and --customers must be at least 1, --big and --long 0 or more.")
        ensure_database()
        self.verbosity = options["verbosity"]
        self.repeat = max(3, options["repeat"])
        self.warmup = max(1, options["warmup"])
        self.explain = options["explain"]
        self.seed = options["seed"]
        self.now = datetime.datetime.now(datetime.UTC)
        self.load_before = os.getloadavg()
        started = time.monotonic()
        self.customer_seconds = self._customers(options["customers"])
        self.build_seconds = self._tickets(options)
        self.total_seconds = time.monotonic() - started
        with served_over_plain_http():
            results = []
            for scenario in self._scenarios():
                if options["only"] and options["only"] not in scenario[0]:
                    continue
                results.append(self._measure(*scenario))
        self.load_after = os.getloadavg()
        self._report(results)

    # --- the seed table (bench_followups' helpers, on a table of our own) ---------------------------

    def _meta(self) -> dict[str, str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS bench_complaints_seed (key text PRIMARY KEY, value text NOT NULL)"
            )
            cursor.execute("SELECT key, value FROM bench_complaints_seed")
            return dict(cursor.fetchall())

    def _set_meta(self, key: str, value: str | None) -> None:
        with connection.cursor() as cursor:
            if value is None:
                cursor.execute("DELETE FROM bench_complaints_seed WHERE key = %s", [key])
            else:
                cursor.execute(
                    "INSERT INTO bench_complaints_seed (key, value) VALUES (%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    [key, value],
                )

    # --- the tickets -------------------------------------------------------------------------------

    def _tickets(self, options) -> float | None:
        self._restore_indexes()
        params = {
            "version": DATA_VERSION,
            "customers": Customer.all_objects.count(),
            "tickets": options["tickets"],
            "big": options["big"],
            "long": options["long"],
            "agents": AGENTS,
            "seed": self.seed,
        }
        meta = self._meta()
        self._agents()
        if (
            not options["rebuild"]
            and meta.get("params") == json.dumps(params, sort_keys=True)
            and meta.get("state") == "done"
            and self._still_there(meta)
        ):
            self._say(
                f"Reusing the ticket data: {options['tickets']:,} tickets "
                f"(built in {float(meta.get('seconds', 0)):.0f}s)."
            )
            self._load_cast(meta)
            return None
        started = time.monotonic()
        self._clean(meta)
        self._set_meta("params", json.dumps(params, sort_keys=True))
        self._set_meta("state", "building")
        self._build(params)
        seconds = time.monotonic() - started
        self._set_meta("seconds", f"{seconds:.1f}")
        self._set_meta("state", "done")
        self._load_cast(self._meta())
        return seconds

    @staticmethod
    def _range(meta: dict[str, str]) -> tuple[int, int] | None:
        if "ticket_ids" not in meta:
            return None
        first, _dash, last = meta["ticket_ids"].partition("-")
        return int(first), int(last)

    def _still_there(self, meta: dict[str, str]) -> bool:
        """The first and last ticket of the build still exist (a manual clean-up removes them)."""
        span = self._range(meta)
        return span is not None and Ticket.objects.filter(pk__in=span).count() == len(set(span))

    def _clean(self, meta: dict[str, str]) -> None:
        """Remove the tickets of an earlier build: only the id range this command reserved."""
        span = self._range(meta)
        if span is None:
            return
        first, last = span
        mine = [TicketEvent, TicketAttachment, TicketAttachmentContent, Ticket]
        tables = [m._meta.db_table for m in mine]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT conrelid::regclass::text FROM pg_constraint "
                "WHERE contype = 'f' AND confrelid = ANY(%s::regclass[])",
                [tables],
            )
            referring = {row[0].strip('"') for row in cursor.fetchall()} - set(tables)
            others = Ticket.objects.exclude(pk__range=span).exists()
            # (Not inside a caller's transaction: rows it wrote may have deferred checks pending.)
            if not others and not referring and not connection.in_atomic_block:
                # Every ticket is ours: emptying the tables is instant where DELETE takes a minute.
                cursor.execute(f"TRUNCATE {', '.join(connection.ops.quote_name(t) for t in tables)}")
            else:
                # Table names from the models' metadata, the range as parameters.
                event, attachment, content, ticket = (connection.ops.quote_name(t) for t in tables)
                cursor.execute(
                    f"DELETE FROM {content} WHERE attachment_id IN "  # noqa: S608  # nosec B608  # our own table names, values are parameters
                    f"(SELECT id FROM {attachment} WHERE ticket_id BETWEEN %s AND %s)",
                    span,
                )
                for table in (attachment, event):
                    cursor.execute(f"DELETE FROM {table} WHERE ticket_id BETWEEN %s AND %s", span)  # noqa: S608  # nosec B608  # our own table names, values are parameters
                cursor.execute(f"DELETE FROM {ticket} WHERE id BETWEEN %s AND %s", span)  # noqa: S608  # nosec B608  # our own table names, values are parameters
        self._set_meta("ticket_ids", None)
        self._say(f"Removed the tickets {first}–{last} of an earlier build.")

    def _agents(self) -> None:
        """service1 … service20 in the service group (and 客服中心 when it exists), two categories each."""
        group = Group.objects.get(name=roles.SERVICE)
        unit = Department.objects.filter(name="客服中心").order_by("pk").first()
        names = [f"service{n}" for n in range(1, AGENTS + 1)]
        existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
        for number, username in enumerate(names, start=1):
            if username in existing:
                continue
            user = User(username=username, name=f"客服{number}", email=f"{username}@example.com")
            user.set_password(DEMO_PASSWORD)
            user.save()
            user.groups.add(group)
            if unit is not None and not Employee.objects.filter(user=user).exists():
                employee_save(
                    employee=Employee(
                        name=user.name,
                        department=unit,
                        position="客服专员",
                        hire_date=datetime.date(2025, 3, 1),
                        user=user,
                    )
                )
        agents = list(User.objects.filter(username__in=names, groups=group, is_active=True).order_by("pk"))
        categories = list(TicketCategory.objects.filter(is_active=True).order_by("sort_order", "pk"))
        if not categories or not agents:
            raise CommandError("No active ticket categories or service agents: migrate the database first.")
        for position, agent in enumerate(agents):
            for offset in (0, 2):
                categories[(position + offset) % len(categories)].agents.add(agent)
        self.agents = [a.pk for a in agents]
        self.agent_names = {a.pk: a.display_name for a in agents}
        chosen = set(self.agents)
        self.categories = [
            (c.pk, [pk for pk in c.agents.order_by("pk").values_list("pk", flat=True) if pk in chosen])
            for c in categories
        ]

    def _build(self, params: dict) -> None:
        rng = random.Random(self.seed)  # noqa: S311 - benchmark data
        ids, owners, created, alive = self._load_customers()
        now = self.now.timestamp()
        live = [i for i in range(len(ids)) if alive[i]]
        if not live:
            raise CommandError("No live customers to file tickets for.")
        heads = set(Department.objects.exclude(head=None).values_list("head_id", flat=True))
        # Big customers belong to plain reps, as in bench_followups: a scenario views them as their owner.
        plain = [i for i in live if owners[i] and owners[i] not in heads] or live
        total = params["tickets"]

        # Whose tickets: the big customers first, then a lognormal spread over a fifth of the rest.
        big = rng.sample(plain, min(params["big"], len(plain) // 2))
        big_max = max(5, min(2500, total // 200))
        per_big = [max(1, round(big_max * 0.7**rank)) for rank in range(len(big))]
        while per_big and sum(per_big) > total // 2:
            per_big = [max(1, n // 2) for n in per_big]
        big_set = set(big)
        pool = [i for i in live if i not in big_set and rng.random() < TICKET_SHARE]
        pool = pool or [i for i in live if i not in big_set] or live
        cumulative, running = [], 0.0
        for _i in pool:
            running += rng.lognormvariate(0, 1.0)
            cumulative.append(running)
        owner_of = array("q")
        for i, many in zip(big, per_big, strict=True):
            owner_of.extend([i] * many)
        owner_of.extend(rng.choices(pool, cum_weights=cumulative, k=total - len(owner_of)))
        del cumulative, pool

        # When each was filed and whether it is still open (open ones are recent: their SLA runs).
        sla = {sev: settings.SLA_HOURS[sev] * HOUR for sev, _w in SEVERITIES}
        severities = [s for s, _w in SEVERITIES]
        severity_weights = [w for _s, w in SEVERITIES]
        open_codes = [s for s, _w in OPEN]
        open_weights = [w for _s, w in OPEN]
        filed, severity_of, status_of = array("d"), array("b"), array("b")
        for t in range(total):
            start = created[owner_of[t]]
            sev = rng.choices(range(len(severities)), severity_weights)[0]
            if rng.random() < OPEN_SHARE:
                age = min(sla[severities[sev]] * rng.expovariate(1.3), 30 * DAY)
                when = min(max(now - age, start + 60), now - 30)
                status = 1 + rng.choices(range(len(open_codes)), open_weights)[0]
            else:
                when = start + rng.random() * max(now - start - HOUR, 60)
                status = 0  # resolved or closed: decided with its times
            filed.append(when)
            severity_of.append(sev)
            status_of.append(status)
        order = sorted(range(total), key=filed.__getitem__)  # ids and numbers in filing order

        # Numbers: one block of each year's sequence; ids: one block of the table's sequence.
        years = Counter(_year(filed[t]) for t in order)
        next_number = {year: next_sequence_block(f"ticket:{year}", count) for year, count in sorted(years.items())}
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Ticket._meta.db_table])
            sequence = cursor.fetchone()[0]
            cursor.execute("SELECT nextval(%s)", [sequence])
            first_id = cursor.fetchone()[0]
            cursor.execute("SELECT setval(%s, %s)", [sequence, first_id + total - 1])
        self._set_meta("ticket_ids", f"{first_id}-{first_id + total - 1}")

        in_progress = 1 + open_codes.index(S.IN_PROGRESS.value)
        plain_set = set(plain)
        candidates = [p for p, t in enumerate(order) if status_of[t] == in_progress and owner_of[t] in plain_set]
        long = set(rng.sample(candidates, min(params["long"], len(candidates))))
        self._set_meta("long_ids", json.dumps(sorted(first_id + p for p in long)))
        self._set_meta("big_ids", json.dumps([ids[i] for i in big]))
        self._say(
            f"Building {total:,} tickets over {len(live):,} live customers "
            f"(big: {', '.join(f'{n:,}' for n in per_big) or 'none'}; years {dict(sorted(years.items()))}) …"
        )

        tables = [Ticket._meta.db_table, TicketEvent._meta.db_table]
        if not connection.in_atomic_block:
            # Inside a caller's transaction (the tests: a few hundred rows) rows written before
            # may have deferred foreign-key checks pending, and PostgreSQL then refuses CREATE INDEX.
            for table in tables:
                self._drop_indexes(table)
        self._prepare()
        ticket_rows, event_rows = self._prepared["ticket_rows"], self._prepared["event_rows"]
        writer = _Writer(skip_triggers=self._superuser(), threaded=not connection.in_atomic_block)
        step = time.monotonic()
        tickets: list[str] = []
        events: list[str] = []
        done = event_count = 0
        try:
            for position, t in enumerate(order):
                year = _year(filed[t])
                number = f"T{year}-{next_number[year]:06d}"
                next_number[year] += 1
                i = owner_of[t]
                status = open_codes[status_of[t] - 1] if status_of[t] else ""
                line, lines = self._ticket(
                    rng,
                    pk=first_id + position,
                    number=number,
                    customer_id=ids[i],
                    owner=owners[i],
                    status=status,
                    severity=severities[severity_of[t]],
                    filed=filed[t],
                    long=position in long,
                    now=now,
                )
                tickets.append(line)
                events += lines
                if len(tickets) >= BATCH:
                    writer.put([(ticket_rows.sql, tickets), (event_rows.sql, events)])
                    done += len(tickets)
                    event_count += len(events)
                    tickets, events = [], []
                    elapsed = time.monotonic() - step
                    self._say(f"  {done:,} tickets, {event_count:,} events  {elapsed:6.1f}s")
            if tickets:
                writer.put([(ticket_rows.sql, tickets), (event_rows.sql, events)])
                done += len(tickets)
                event_count += len(events)
        finally:
            writer.close()
        self._say(f"  {done:,} tickets and {event_count:,} events in {time.monotonic() - step:.0f}s; indexes …")
        self._restore_indexes()
        with connection.cursor() as cursor:
            for table in tables:
                # VACUUM as autovacuum would soon: a fresh COPY leaves no page all-visible, and
                # index-only scans (the counts) would visit the heap. Not inside a transaction (tests).
                command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
                cursor.execute(f"{command} {connection.ops.quote_name(table)}")

    def _ticket(
        self, rng, *, pk, number, customer_id, owner, status, severity, filed, long, now
    ) -> tuple[str, list[str]]:
        """One ticket's COPY line and its events' lines."""
        p = self._prepared
        rand, uniform, choice = rng.random, rng.uniform, rng.choice
        position = rng.choices(p["category_positions"], p["category_weights"])[0]
        category_id, agents = self.categories[position]
        agents = agents or self.agents
        kind = rng.choices(p["kinds"], p["kind_weights"])[0]
        channel = rng.choices(p["channels"], p["channel_weights"])[0]
        by_customer = channel == "portal"
        filed_by = None if by_customer else (owner if owner and rand() < 0.2 else choice(agents))
        due = filed + settings.SLA_HOURS[severity] * HOUR
        assignee = None if status == S.NEW else choice(agents)
        first_response = resolved = closed = rated = escalated = rating = None
        rating_comment = ""
        # (time, kind, from, to, actor, by customer, internal, body): the steps, then optional extras.
        steps = [(filed, E.CREATED, "", S.NEW, filed_by, by_customer, False, "")]
        extras = []
        if assignee is not None:
            steps.append(
                (filed + uniform(1, 60), E.ASSIGNED, S.NEW, S.ASSIGNED, None, False, True, p["names"][assignee])
            )
        end = now
        if status == S.NEW:
            extras.append(
                (
                    filed + (now - filed) * uniform(0.1, 0.9),
                    E.REPLY,
                    "",
                    "",
                    None,
                    True,
                    False,
                    choice(p["customer_replies"]),
                )
            )
        elif status == S.ASSIGNED:
            if rand() < 0.4:
                first_response = filed + (now - filed) * uniform(0.1, 0.6)
                extras.append((first_response, E.REPLY, "", "", assignee, False, False, choice(p["replies"])))
        else:
            if status == S.IN_PROGRESS:
                first_response = filed + min(uniform(0.1, 4) * HOUR, (now - filed) * 0.5)
            else:
                resolved = filed + settings.SLA_HOURS[severity] * HOUR * rng.lognormvariate(-0.7, 0.8)
                if resolved > now - 60:
                    resolved = filed + (now - filed) * uniform(0.3, 0.9)
                first_response = filed + (resolved - filed) * uniform(0.05, 0.4)
                end = resolved
            steps.append((first_response, E.STATUS, S.ASSIGNED, S.IN_PROGRESS, assignee, False, False, ""))
            extras.append((first_response + 30, E.REPLY, "", "", assignee, False, False, choice(p["replies"])))
            if rand() < 0.3:
                extras.append(
                    (
                        first_response + (end - first_response) * uniform(0.1, 0.9),
                        E.NOTE,
                        "",
                        "",
                        assignee,
                        False,
                        True,
                        choice(p["notes"]),
                    )
                )
            if rand() < 0.2:
                extras.append(
                    (
                        first_response + (end - first_response) * uniform(0.1, 0.9),
                        E.REPLY,
                        "",
                        "",
                        None,
                        True,
                        False,
                        choice(p["customer_replies"]),
                    )
                )
        if resolved is not None:
            steps.append(
                (resolved, E.STATUS, S.IN_PROGRESS, S.RESOLVED, assignee, False, False, choice(p["resolutions"]))
            )
            status = S.RESOLVED
            if rand() < 0.6:
                rated = min(resolved + uniform(0.05, 3) * DAY, now - 1)
                rating = rng.choices(p["ratings"], p["rating_weights"])[0]
                rating_comment = choice(p["rating_comments"])
                body = f"{rating}/5" + (f"\\n{rating_comment}" if rating_comment else "")  # COPY's newline
                steps.append((rated, E.RATED, "", "", None, True, False, body))
            if resolved + 3 * DAY < now and rand() < 0.6:
                closed = min(resolved + uniform(3, 7) * DAY, now - 1)
                if rated is not None:
                    closed = max(closed, rated + 1)
                steps.append((closed, E.STATUS, S.RESOLVED, S.CLOSED, assignee, False, False, ""))
                status = S.CLOSED
        if due < end and rand() < (1.0 if resolved is None else 0.5):
            escalated = min(due + uniform(60, 900), end - 1)
            if escalated > filed:
                extras.insert(0, (escalated, E.ESCALATED, "", "", None, False, True, p["escalated"]))
            else:
                escalated = None
        timeline = steps + extras[: max(0, 6 - len(steps))]
        if long:  # a long back-and-forth: a couple of hundred replies and notes
            for _ in range(rng.randint(180, 240)):
                at = filed + (now - filed) * rand()
                if rand() < 0.3:
                    timeline.append((at, E.NOTE, "", "", assignee, False, True, choice(p["notes"])))
                elif rand() < 0.5:
                    timeline.append((at, E.REPLY, "", "", None, True, False, choice(p["customer_replies"])))
                else:
                    timeline.append((at, E.REPLY, "", "", assignee, False, False, choice(p["replies"])))
        timeline.sort(key=lambda event: event[0])
        ticket_id = str(pk)
        events = [
            p["event_rows"].line(
                ticket_id,
                kind,
                before,
                after,
                NULL if actor is None else str(actor),
                "t" if customer else "f",
                "t" if internal else "f",
                body,
                _stamp(at),
            )
            for at, kind, before, after, actor, customer, internal, body in timeline
        ]
        updated = timeline[-1][0]
        line = p["ticket_rows"].line(
            pk,
            number,
            str(customer_id),
            kind,
            str(category_id),
            severity,
            channel,
            choice(p["subjects"][position % len(p["subjects"])]),
            choice(p["descriptions"]),
            status,
            NULL if assignee is None else str(assignee),
            NULL if filed_by is None else str(filed_by),
            _stamp(filed),
            _stamp(updated),
            _stamp(due),
            _opt(first_response),
            _opt(resolved),
            _opt(closed),
            _opt(escalated),
            NULL if rating is None else str(rating),
            rating_comment,
            _opt(rated),
        )
        return line, events

    def _prepare(self) -> None:
        """Choice tables and COPY-escaped texts, once."""
        positions = list(range(len(self.categories)))
        escape = lambda texts: [copy_text(t) for t in texts]  # noqa: E731
        self._prepared = {
            "category_positions": positions,
            "category_weights": [CATEGORY_WEIGHTS[p] if p < len(CATEGORY_WEIGHTS) else 5 for p in positions],
            "kinds": [k for k, _w in KINDS],
            "kind_weights": [w for _k, w in KINDS],
            "channels": [c for c, _w in CHANNELS],
            "channel_weights": [w for _c, w in CHANNELS],
            "ratings": [r for r, _w in RATINGS],
            "rating_weights": [w for _r, w in RATINGS],
            "subjects": [escape(s) for s in SUBJECTS],
            "descriptions": escape(DESCRIPTIONS),
            "replies": escape(REPLIES),
            "customer_replies": escape(CUSTOMER_REPLIES),
            "notes": escape(NOTES),
            "resolutions": escape(RESOLUTIONS),
            "rating_comments": escape(RATING_COMMENTS),
            "names": {pk: copy_text(name) for pk, name in self.agent_names.items()},
            "escalated": copy_text("已超过处理时限"),
            "ticket_rows": _IdRows(Ticket, TICKET_COLUMNS),
            "event_rows": _Rows(TicketEvent, EVENT_COLUMNS),
        }

    # --- the cast and the scenarios ----------------------------------------------------------------

    def _load_cast(self, meta: dict[str, str]) -> None:
        self.big_ids = json.loads(meta.get("big_ids", "[]"))
        self.long_ids = json.loads(meta.get("long_ids", "[]"))
        self.span = self._range(meta)
        heads = set(Department.objects.exclude(head=None).values_list("head_id", flat=True))
        reps = User.objects.filter(groups__name=roles.SALES, is_active=True).exclude(pk__in=heads)
        # Plain reps (a department head sees more and runs one query more) by the size of their
        # book: seed_demo's ~100,000 each, and the 2,000 that bench_followups gives one rep
        # (POOL_MAX_OWNED's default) when it ran on this database.
        owned = dict(Customer.objects.filter(owner__in=reps).order_by().values_list("owner_id").annotate(n=Count("pk")))
        large = sorted(pk for pk, n in owned.items() if n > TYPICAL_BOOK * 5)
        self.reps = large or sorted(owned)
        self.rep_book = round(statistics.mean(owned[pk] for pk in self.reps)) if self.reps else 0
        small = sorted((n, pk) for pk, n in owned.items() if 100 <= n <= TYPICAL_BOOK * 5)
        self.small_rep, self.small_book = (small[-1][1], small[-1][0]) if small else (None, 0)

    def _scenarios(self) -> list[tuple[str, Callable[[int], object], str]]:
        rng = random.Random(self.seed + 1)  # noqa: S311 - the scenarios' fixed sequence
        clients: dict[int, Client] = {}
        runs = self.repeat + self.warmup + 2
        first, last = self.span
        agent_sequence = [rng.choice(self.agents) for _ in range(runs)]
        rep_sequence = [rng.choice(self.reps) for _ in range(runs)] if self.reps else []
        picks = [rng.randint(first, last) for _ in range(runs * 2)]
        sample = list(
            Ticket.objects.filter(pk__in=picks).order_by("pk").values_list("number", "customer__name", "customer_id")
        )
        rng.shuffle(sample)
        if not sample:
            raise CommandError("No tickets to look at.")
        numbers = [number for number, _name, _customer in sample]
        prefixes = [name[:4] for _number, name, _customer in sample]
        big = list(Customer.all_objects.filter(pk__in=self.big_ids).order_by("pk").values_list("pk", "owner_id"))
        big_sequence = [rng.choice(big) for _ in range(runs)] if big else []
        long_numbers = list(Ticket.objects.filter(pk__in=self.long_ids).order_by("pk").values_list("number", flat=True))
        long_sequence = [rng.choice(long_numbers) for _ in range(runs)] if long_numbers else []
        # Log everyone in now: a first login inside a timed run would add its queries to that run.
        small = {self.small_rep} if self.small_rep else set()
        for user_id in {*agent_sequence, *rep_sequence, *small, *(owner for _pk, owner in big_sequence if owner)}:
            self._client(user_id, clients)

        def page(path_of, user_of, params_of=None) -> Callable[[int], object]:
            def run(n: int):
                client = self._client(user_of(n), clients)
                params = params_of(n) if params_of else {}
                response = client.get(path_of(n), params)
                if response.status_code != 200:
                    raise CommandError(f"GET {path_of(n)} {params} answered {response.status_code}")
                return response

            return run

        desk = reverse("complaints:list")
        detail = reverse("complaints:detail", args=["T0-0"]).replace("T0-0", "{}")
        fragment = reverse("complaints:customer_tickets", args=[0]).replace("/0/", "/{}/")
        agent = agent_sequence.__getitem__
        cursor, depth = self._deep_cursor(self._client(agent_sequence[0], clients), desk, QUEUE, pages=5)
        scenarios = [
            ("team queue, agent", page(lambda n: desk, agent, lambda n: QUEUE), "open tickets by due time"),
            (
                "team queue, all statuses, agent",
                page(lambda n: desk, agent, lambda n: QUEUE | EVERY),
                "every ticket, newest first",
            ),
            (
                "my tickets, agent",
                page(lambda n: desk, agent, lambda n: MINE),
                f"open, by due time · a random one of {len(self.agents)} agents",
            ),
            ("team queue, open + high, agent", page(lambda n: desk, agent, lambda n: QUEUE | HIGH), "severity high"),
            ("team queue, SLA breached, agent", page(lambda n: desk, agent, lambda n: QUEUE | BREACHED), ""),
            (
                "search by number, agent",
                page(lambda n: desk, agent, lambda n: QUEUE | EVERY | {SEARCH: numbers[n % len(numbers)]}),
                "exact ticket number, all statuses",
            ),
            (
                "search by customer name, agent",
                page(lambda n: desk, agent, lambda n: QUEUE | EVERY | {SEARCH: prefixes[n % len(prefixes)]}),
                "name search (the desk's: a substring) for the first 4 characters of a ticket customer's name",
            ),
            (
                "team queue, deep page, agent",
                page(lambda n: desk, agent, lambda n: QUEUE | {CURSOR: cursor}),
                f"cursor after {depth} pages" if cursor else "**no next-page link found: first page**",
            ),
        ]
        if long_sequence:
            scenarios.append(
                (
                    "ticket detail, ~200 events, agent",
                    page(lambda n: detail.format(long_sequence[n]), agent),
                    f"{len(long_numbers)} long tickets",
                )
            )
        if big_sequence:
            scenarios.append(
                (
                    "360 tickets fragment, big customer, owner",
                    page(lambda n: fragment.format(big_sequence[n][0]), lambda n: big_sequence[n][1] or agent(n)),
                    f"{len(big)} customers with hundreds of tickets",
                )
            )
        if rep_sequence:
            scenarios += [
                (
                    "desk, sales rep",
                    page(lambda n: desk, rep_sequence.__getitem__, lambda n: QUEUE),
                    f"their customers' open tickets · a random one of {len(self.reps)} reps "
                    f"(~{self.rep_book:,} customers each)",
                ),
                (
                    "desk, sales rep, all statuses",
                    page(lambda n: desk, rep_sequence.__getitem__, lambda n: QUEUE | EVERY),
                    "their customers' tickets, newest first",
                ),
            ]
        if self.small_rep:
            scenarios.append(
                (
                    f"desk, sales rep with {self.small_book:,} customers, all statuses",
                    page(lambda n: desk, lambda n: self.small_rep, lambda n: QUEUE | EVERY),
                    "a typical book",
                )
            )
        return scenarios

    def _deep_cursor(self, client: Client, path: str, params: dict[str, str], *, pages: int) -> tuple[str, int]:
        """The next-page cursor after up to ``pages`` pages, followed through the pages' own links,
        and how many pages it skips."""
        cursor, depth = "", 0
        for _ in range(pages):
            response = client.get(path, params | ({CURSOR: cursor} if cursor else {}))
            found = re.search(rf"[?&;]{CURSOR}=([^\"'&\s<>]+)", response.content.decode())
            if response.status_code != 200 or not found:
                break
            cursor, depth = unquote(html.unescape(found.group(1))), depth + 1
        return cursor, depth

    # --- measuring and the report ------------------------------------------------------------------

    explain_models = (Ticket, TicketEvent)

    def _report(self, results: list[Result]) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            server = cursor.fetchone()[0]
            cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
            size = cursor.fetchone()[0]
            counts = {}
            for label, table in (
                ("customers", Customer._meta.db_table),
                ("tickets", Ticket._meta.db_table),
                ("ticket events", TicketEvent._meta.db_table),
            ):
                cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
                counts[label] = max(0, cursor.fetchone()[0])
        now = datetime.datetime.now(datetime.UTC)
        warning = now + datetime.timedelta(hours=settings.SLA_WARNING_HOURS)
        open_tickets = Ticket.objects.open()
        breached = open_tickets.filter(sla_due_at__lt=now).count()
        due_soon = open_tickets.filter(sla_due_at__gte=now, sla_due_at__lt=warning).count()
        lines = [
            "",
            "Dataset (≈, planner statistics): "
            + ", ".join(f"{v:,} {k}" for k, v in counts.items())
            + f"; {open_tickets.count():,} open ({breached:,} breached, {due_soon:,} due within "
            f"{settings.SLA_WARNING_HOURS} h); {size}.",
            f"Measured {datetime.date.today():%Y-%m-%d}: real views through django.test.Client, "
            f"{self.warmup} warm-up + {self.repeat} timed runs each · {os.cpu_count()} cores · "
            f"load average {self.load_before[0]:.1f} before, {self.load_after[0]:.1f} after · "
            f"Python {platform.python_version()} · PostgreSQL {server.split()[0]}",
        ]
        self.stdout.write("\n".join(lines + self._timings("ticket") + self._table(results)))
