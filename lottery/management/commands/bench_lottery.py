"""The year-end lottery benchmark (``make bench``): publishing and drawing at a million entries.

Not a test. On its own PostgreSQL database (its name must contain "bench") it builds, once,
``--customers`` eligible customers — ``seed_demo``'s generator and COPY writer (no contacts or
transactions: the lottery does not read them), then every live customer made 成交客户 (won), taken
out of the recycle bin and not an employee, so that exactly ``--customers`` meet the rules. The
levels are seed_demo's realistic mix (VIP 5 %, A 15 %, B 35 %, C 45 % of those with a level, one in
ten without), so the weights matter: VIP 3 entries, A 2, the others 1. A second run reuses them.

Then the scenario, ``--repeat`` times, through the services a person's clicks call: an event with
1,000 prizes (特等奖 1, 一等奖 9, 二等奖 90, 三等奖 300, 参与奖 600) saved with ``event_save``,
published with ``event_publish`` (timed), a public value entered, drawn with ``event_draw`` (timed),
checked with ``event_problems`` (timed; it must find nothing), then removed (winners, entries, log,
tiers, weights, the event and its history rows) so that the next run starts from the same state.

Each timed step runs in a child process forked for it (the database connections closed first, so
the child opens its own). Its peak memory is the child's ``getrusage(RUSAGE_SELF).ru_maxrss`` at the
end of the step: the high-water resident set of a process that runs the step — the Django process
it was forked from (shown as the baseline) plus everything the step allocated.
"""

from __future__ import annotations

import datetime
import io
import multiprocessing
import os
import platform
import resource
import statistics
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections, transaction
from django.utils import timezone

from accounts.models import User
from customers.management.commands.bench_customers import ensure_database
from customers.models import Customer, CustomerLevel
from lottery import services
from lottery.eligibility import eligible_customers
from lottery.models import LotteryEntry, LotteryEvent, LotteryLevelWeight, LotteryLog, LotteryTier, LotteryWinner

EVENT_PREFIX = "基准测试抽奖"
TIERS = (
    services.TierData("特等奖", "汽车一辆", 1, 1),
    services.TierData("一等奖", "笔记本电脑", 9, 2),
    services.TierData("二等奖", "智能手机", 90, 3),
    services.TierData("三等奖", "智能手表", 300, 4),
    services.TierData("参与奖", "保温杯", 600, 5),
)
LEVEL_WEIGHTS = {"VIP": 3, "A": 2}  # other levels and none: 1 entry
PUBLIC_VALUE = "福彩3D 第2026356期 开奖号码 4 0 7"
PUBLISH_TARGET_S = 30
DRAW_TARGET_S = 3
MEMORY_TARGET_KIB = 1024 * 1024  # 1 GB (GiB)


@dataclass
class Step:
    name: str
    target_s: float | None
    target_kib: int | None
    seconds: list[float] = field(default_factory=list)
    peak_kib: list[int] = field(default_factory=list)
    base_kib: list[int] = field(default_factory=list)

    @property
    def met(self) -> bool:
        return (self.target_s is None or max(self.seconds) < self.target_s) and (
            self.target_kib is None or max(self.peak_kib) < self.target_kib
        )


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _child(prepare: Callable[[], tuple], step: Callable[..., object], pipe) -> None:
    """In the forked child: prepare the step's arguments (untimed: the event and user are read and
    the connection opened), run the step, send back (ok, seconds, result, peak KiB, baseline KiB)."""
    try:
        arguments = prepare()
        base = _rss_kib()
        started = time.perf_counter()
        result = step(*arguments)
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        pipe.send((True, seconds, result, peak, base))
    except BaseException:  # noqa: BLE001 - reported by the parent
        pipe.send((False, traceback.format_exc(), None, 0, 0))
    finally:
        connections.close_all()
        pipe.close()


def in_child(prepare: Callable[[], tuple], step: Callable[..., object]) -> tuple[float, object, int, int]:
    """Run ``step(*prepare())`` in a forked child process, timing the step only: (seconds, its result,
    peak RSS KiB, RSS at start KiB)."""
    connections.close_all()  # the child must not share the parent's socket
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(prepare, step, sender))
    process.start()
    sender.close()
    try:
        ok, seconds, result, peak, base = receiver.recv()
    except EOFError:
        ok, seconds, result, peak, base = False, "the child process died without a word", None, 0, 0
    process.join()
    receiver.close()
    if not ok:
        raise CommandError(f"The step failed in its child process:\n{seconds}")
    return seconds, result, peak, base


class Command(BaseCommand):
    help = (
        "Benchmark the year-end lottery on PostgreSQL: build or reuse N eligible customers, then publish, "
        "draw and verify a 1,000-prize event and print times and peak memory as a Markdown table."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--customers",
            type=int,
            default=int(os.environ.get("BENCH_LOTTERY_CUSTOMERS", "1000000")),
            help="Eligible customers (default 1,000,000).",
        )
        parser.add_argument("--repeat", type=int, default=3, help="Runs of the scenario (default 3).")

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("The benchmark runs on PostgreSQL: set DATABASE_URL (make bench does).")
        name = connection.settings_dict["NAME"]
        if "bench" not in name:
            raise CommandError(f"Refusing to rewrite the customers of database {name!r}: its name lacks 'bench'.")
        if options["customers"] < 1 or options["repeat"] < 1:
            raise CommandError("--customers and --repeat must be at least 1.")
        ensure_database()
        self.verbosity = options["verbosity"]
        self.wanted = options["customers"]
        self.build_seconds = self._build()
        self.load_before = os.getloadavg()
        self.admin = self._administrator()
        self._remove_leftovers()
        self.steps = {
            "publish": Step("publish (event_publish)", PUBLISH_TARGET_S, MEMORY_TARGET_KIB),
            "draw": Step("draw (event_draw)", DRAW_TARGET_S, MEMORY_TARGET_KIB),
            "verify": Step("verify (event_problems)", None, None),
        }
        self.facts: dict[str, object] = {}
        for run in range(1, options["repeat"] + 1):
            self._scenario(run)
        self.load_after = os.getloadavg()
        self._report(options["repeat"])

    def _say(self, text: str) -> None:
        if self.verbosity:
            self.stdout.write(text)
            self.stdout.flush()

    # --- the customers -----------------------------------------------------------------------------

    def _eligible(self) -> int:
        probe = LotteryEvent(year=timezone.localdate().year, statuses=[Customer.Status.WON], exclude_employees=True)
        return eligible_customers(probe).count()

    def _build(self) -> float | None:
        call_command("migrate", verbosity=0)
        have = self._eligible()
        if have == self.wanted:
            self._say(f"Reusing {connection.settings_dict['NAME']}: {have:,} eligible customers.")
            return None
        started = time.monotonic()
        if not User.objects.filter(username="admin").exists():
            call_command("load_demo", not_production=True, stdout=io.StringIO())
        usable = Customer.all_objects.filter(merged_into__isnull=True, erased_at__isnull=True).count()
        if usable < self.wanted:
            self._say(f"Seeding {self.wanted - usable:,} customers into {connection.settings_dict['NAME']} …")
            out = self.stdout if self.verbosity > 1 else io.StringIO()
            call_command(
                "seed_demo", customers=self.wanted - usable, contacts=0, transactions=0, not_production=True, stdout=out
            )
        self._say("Making exactly the first customers eligible (成交客户, live, not staff) …")
        table = connection.ops.quote_name(Customer._meta.db_table)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"SELECT max(id) FROM (SELECT id FROM {table} WHERE merged_into_id IS NULL AND erased_at IS NULL "  # noqa: S608 - our table name  # nosec B608  # our own table names, values are parameters
                "ORDER BY id LIMIT %s) AS first",
                [self.wanted],
            )
            last = cursor.fetchone()[0]
            cursor.execute(
                f"UPDATE {table} SET status = %s, deleted_at = NULL, deleted_by_id = NULL, is_employee = false "  # noqa: S608  # nosec B608  # our own table names, values are parameters
                "WHERE id <= %s AND merged_into_id IS NULL AND erased_at IS NULL "
                "AND (status <> %s OR deleted_at IS NOT NULL OR is_employee)",
                [Customer.Status.WON, last, Customer.Status.WON],
            )
            cursor.execute(
                f"UPDATE {table} SET status = %s WHERE id > %s AND status = %s",  # noqa: S608  # nosec B608  # our own table names, values are parameters
                [Customer.Status.PROSPECT, last, Customer.Status.WON],
            )
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM (ANALYZE) {table}")
        have = self._eligible()
        if have != self.wanted:
            raise CommandError(f"{have:,} customers are eligible after the build, not {self.wanted:,}.")
        return time.monotonic() - started

    def _administrator(self) -> User:
        admin = User.objects.filter(username="admin", is_active=True).first()
        if admin is None or not admin.has_perm("lottery.draw_lotteryevent"):
            raise CommandError("No administrator 'admin' who may draw: run load_demo on the benchmark database.")
        return admin

    # --- the scenario ------------------------------------------------------------------------------

    def _scenario(self, run: int) -> None:
        levels = dict(CustomerLevel.objects.values_list("name", "pk"))
        weights = {levels[name]: weight for name, weight in LEVEL_WEIGHTS.items() if name in levels}
        if len(weights) != len(LEVEL_WEIGHTS):
            raise CommandError(f"The levels {', '.join(LEVEL_WEIGHTS)} are missing: run load_demo.")
        event = services.event_save(
            event=LotteryEvent(),
            by=self.admin,
            fields={
                "name": f"{EVENT_PREFIX} {timezone.now():%Y%m%d%H%M%S} #{run}",
                "year": timezone.localdate().year,
                "statuses": [Customer.Status.WON],
                "exclude_employees": True,
            },
            levels=[],
            weights=weights,
            tiers=list(TIERS),
        )
        pk = self.event_pk = event.pk
        try:
            self._say(f"Run {run}: publishing …")

            def publish(event, admin):
                services.event_publish(event=event, by=admin)
                return event.entry_count, event.total_weight

            entries, total_weight = self._time("publish", publish)
            self.facts.update(entries=entries, total_weight=total_weight)
            services.event_set_public_value(event=LotteryEvent.objects.get(pk=pk), by=self.admin, value=PUBLIC_VALUE)
            self._say(f"Run {run}: drawing …")

            def draw(event, admin):
                return len(services.event_draw(event=event, by=admin))

            self.facts["winners"] = self._time("draw", draw)
            self._say(f"Run {run}: verifying …")

            def verify(event, _admin):
                return services.event_problems(event)

            problems = self._time("verify", verify)
            if problems:
                raise CommandError(f"event_problems found: {problems}")
        finally:
            self._remove(pk)

    def _time(self, key: str, step: Callable[..., object]):
        pk, admin_pk = self.event_pk, self.admin.pk

        def prepare():
            return LotteryEvent.objects.get(pk=pk), User.objects.get(pk=admin_pk)

        seconds, result, peak, base = in_child(prepare, step)
        record = self.steps[key]
        record.seconds.append(seconds)
        record.peak_kib.append(peak)
        record.base_kib.append(base)
        self._say(
            f"  {record.name}: {seconds:.2f} s, peak RSS {peak / 1024:,.0f} MiB (at start {base / 1024:,.0f} MiB)"
        )
        return result

    # --- cleaning up -------------------------------------------------------------------------------

    def _remove(self, pk: int) -> None:
        """Delete an event and all it wrote (raw SQL for the million entries: the ORM would load them)."""
        with transaction.atomic(), connection.cursor() as cursor:
            for model in (LotteryWinner, LotteryEntry, LotteryLog):
                cursor.execute(
                    f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)} WHERE event_id = %s",  # noqa: S608  # nosec B608  # our own table names, values are parameters
                    [pk],
                )
            event = LotteryEvent.objects.filter(pk=pk).first()
            if event is not None:
                event.delete()  # its tiers, weights and levels go with it
            LotteryEvent.history.model.objects.filter(id=pk).delete()
            for model in (LotteryTier, LotteryLevelWeight):
                model.history.model.objects.filter(event_id=pk).delete()
        with connection.cursor() as cursor:
            # The next run writes a million entries again: reclaim the space of this one's.
            cursor.execute(f"VACUUM {connection.ops.quote_name(LotteryEntry._meta.db_table)}")

    def _remove_leftovers(self) -> None:
        for pk in LotteryEvent.objects.filter(name__startswith=EVENT_PREFIX).values_list("pk", flat=True):
            self._say(f"Removing event {pk} left by an interrupted run.")
            self._remove(pk)

    # --- the table ---------------------------------------------------------------------------------

    def _report(self, repeat: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            server = cursor.fetchone()[0]
        memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        lines = [
            "",
            f"Eligible customers: {self.wanted:,} · entries {self.facts.get('entries', 0):,} · total weight "
            f"{self.facts.get('total_weight', 0):,} (VIP 3, A 2, others 1) · prizes {sum(t.quantity for t in TIERS):,} "
            f"in {len(TIERS)} tiers · winners {self.facts.get('winners', 0):,}",
            f"{repeat} run(s) · {datetime.date.today():%Y-%m-%d} · {os.cpu_count()} cores · {memory_gib:.0f} GiB · "
            f"load average {self.load_before[0]:.1f} before, {self.load_after[0]:.1f} after · "
            f"Python {platform.python_version()} · PostgreSQL {server.split()[0]}",
            "Time: the service call in a child process forked for the step. Peak RSS: that child's "
            "getrusage(RUSAGE_SELF).ru_maxrss, including the Django process it was forked from (at start).",
        ]
        if self.build_seconds is not None:
            lines.append(f"Building the customers took {self.build_seconds:.0f} s.")
        lines += [
            "",
            "| step | time median | time worst | peak RSS median | peak RSS worst | at start | target | met |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- | :---: |",
        ]
        for step in self.steps.values():
            target = []
            if step.target_s is not None:
                target.append(f"< {step.target_s:g} s")
            if step.target_kib is not None:
                target.append(f"< {step.target_kib / 2**20:g} GiB")
            lines.append(
                f"| {step.name} | {statistics.median(step.seconds):.2f} s | {max(step.seconds):.2f} s | "
                f"{statistics.median(step.peak_kib) / 1024:,.0f} MiB | {max(step.peak_kib) / 1024:,.0f} MiB | "
                f"{max(step.base_kib) / 1024:,.0f} MiB | {', '.join(target) or '—'} | "
                f"{('yes' if step.met else '**no**') if target else '—'} |"
            )
        self.stdout.write("\n".join(lines))
