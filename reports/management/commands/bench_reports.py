"""The reports and dashboard benchmark (``make bench``): server times, query counts, peak memory.

Not a test. It runs on the follow-ups benchmark's database (``bench_followups`` builds 1,000,000
customers with ~2.5 transactions each, 5,000,000 follow-ups and 300,000 opportunities;
``bench_complaints`` adds 500,000 tickets), so ``make bench`` runs it after those two. First it
times what Celery does in production — the summary tables' refresh (``facts_refresh``) and the
nightly customer profiles (``profiles_refresh``) — then it drives the real views through
``django.test.Client`` as the people who use them: the dashboard (manager, sales rep, service
agent, analyst; this month and this year) and every registered report (manager unfiltered, by one
dimension, by two dimensions — the facts path —, by day, a rep with ~100,000 customers, an
analyst). The table shows p50/p95 and the query counts of each, against the issue's targets:
the dashboard under 300 ms p95, every report under 1 s p95.
"""

from __future__ import annotations

import datetime
import os
import platform
import random
import statistics
import time
from collections.abc import Callable

from django.contrib.auth.models import Group
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Count
from django.urls import reverse

from accounts import roles
from accounts.models import Department, User
from customers.management.commands.bench_customers import served_over_plain_http
from customers.models import Customer, CustomerLevel, Province, Transaction
from followups.management.commands import bench_followups
from reports import facts
from reports.models import SalesFact
from reports.registry import REPORTS

DASHBOARD_TARGET_MS = 300
REPORT_TARGET_MS = 1000


class Command(bench_followups.Command):
    help = (
        "Benchmark the dashboard and every report on PostgreSQL, on the follow-ups benchmark's database "
        "(run bench_followups and bench_complaints first), and print p50/p95 as Markdown."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=20261124, help="Random seed of the scenarios.")
        parser.add_argument("--repeat", type=int, default=30, help="Timed runs per scenario (default 30).")
        parser.add_argument("--warmup", type=int, default=3, help="Untimed runs first (default 3).")
        parser.add_argument("--only", default="", help="Run only scenarios whose name contains this text.")
        parser.add_argument("--explain", action="store_true", help="Print EXPLAIN ANALYZE of each scenario's queries.")
        parser.add_argument(
            "--no-refresh", action="store_true", help="Do not time the refresh of summaries and profiles."
        )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("The benchmark runs on PostgreSQL: set DATABASE_URL (make bench does).")
        if "bench" not in connection.settings_dict["NAME"]:
            raise CommandError("Refusing to run on a database whose name lacks 'bench'.")
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        if not Customer.objects.exists() or not Transaction.objects.exists():
            raise CommandError("No customers or transactions: run bench_followups (make bench) first.")
        self.verbosity = options["verbosity"]
        self.repeat = max(3, options["repeat"])
        self.warmup = max(1, options["warmup"])
        self.explain = options["explain"]
        self.seed = options["seed"]
        self.targets: dict[str, int] = {}
        self.load_before = os.getloadavg()
        self.refresh_lines = [] if options["no_refresh"] else self._refresh()
        self._vacuum()
        with served_over_plain_http():
            results = []
            for name, run, note, target in self._scenarios():
                if options["only"] and options["only"] not in name:
                    continue
                self.targets[name] = target
                results.append(self._measure(name, run, note))
        self.load_after = os.getloadavg()
        self._report(results)

    @property
    def explain_models(self):
        """The tables whose queries --explain prints: the summaries and the live tables reports read."""
        from complaints.models import Ticket
        from customers.models import Contract
        from followups.models import Opportunity, Task
        from reports import models as summaries

        return (
            summaries.CustomerFact,
            summaries.SalesFact,
            summaries.TicketFact,
            summaries.CustomerDaily,
            summaries.SalesDaily,
            summaries.CustomerProfile,
            summaries.ProfileTag,
            Ticket,
            Contract,
            Opportunity,
            Task,
        )

    VACUUMED = (
        "customers_customer",
        "customers_transaction",
        "customers_contract",
        "followups_opportunity",
        "followups_task",
        "complaints_ticket",
        "reports_customerfact",
        "reports_salesfact",
        "reports_ticketfact",
    )

    def _vacuum(self) -> None:
        """Tables written by COPY have no visibility map until vacuumed, so index-only scans read
        the heap anyway; in production autovacuum has long done this. Vacuum them once (quick when
        already done) so the figures are those of a database in its normal state."""
        self._say("VACUUM (ANALYZE) of the tables the reports read …")
        with connection.cursor() as cursor:
            for table in self.VACUUMED:
                cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(table)}")

    def _refresh(self) -> list[str]:
        lines = []
        self._say("Refreshing the report summaries (what Celery beat runs every REPORT_REFRESH_MINUTES) …")
        started = time.monotonic()
        timings = facts.facts_refresh()
        lines.append(
            f"Summary refresh (`facts_refresh`, no changes since the last one): {time.monotonic() - started:.1f} s "
            f"({', '.join(f'{k} {v:.1f} s' for k, v in timings.items())})."
        )
        try:
            from reports.profiles import profiles_refresh
        except ImportError:
            return lines
        self._say("Recomputing the customer profiles (the nightly job) …")
        started = time.monotonic()
        profiles_refresh()
        lines.append(f"Customer profiles and tags (`profiles_refresh`, nightly): {time.monotonic() - started:.1f} s.")
        return lines

    def _scenarios(self) -> list[tuple[str, Callable[[int], object], str, int]]:
        clients: dict = {}
        rng = random.Random(self.seed)  # noqa: S311 - the scenarios' fixed sequence
        manager = User.objects.filter(groups__name=roles.MANAGER, is_active=True).order_by("pk").first()
        analyst = User.objects.filter(groups__name=roles.ANALYST, is_active=True).order_by("pk").first()
        service = User.objects.filter(groups__name=roles.SERVICE, is_active=True).order_by("pk").first()
        if manager is None:
            raise CommandError("No manager account: run load_demo on the benchmark database.")
        if analyst is None:
            analyst = User.objects.create(username="bench_analyst", name="分析师")
            analyst.groups.add(Group.objects.get(name=roles.ANALYST))
        heads = set(Department.objects.exclude(head=None).values_list("head_id", flat=True))
        books = dict(
            Customer.objects.filter(owner__groups__name=roles.SALES)
            .exclude(owner__in=heads)
            .order_by()
            .values_list("owner_id")
            .annotate(n=Count("pk"))
        )
        reps = sorted(pk for pk, n in books.items() if n >= 50_000) or sorted(books)
        # A realistic book too: the rep bench_followups gives 2,000 customers (POOL_MAX_OWNED's default).
        typical = sorted((n, pk) for pk, n in books.items() if 100 <= n <= 10_000)
        small_rep, small_book = (typical[-1][1], typical[-1][0]) if typical else (None, 0)
        rep_book = round(statistics.mean(books[pk] for pk in reps)) if reps else 0
        rep_sequence = [rng.choice(reps) for _ in range(self.repeat + self.warmup + 2)] if reps else []
        province = Province.objects.order_by("pk").values_list("pk", flat=True).first()
        level = CustomerLevel.objects.order_by("pk").values_list("pk", flat=True).first()
        for user in {
            manager.pk,
            analyst.pk,
            *(service and [service.pk] or []),
            *rep_sequence,
            *([small_rep] if small_rep else []),
        }:
            self._client(user, clients)

        def page(path: str, user_of, params: dict | None = None):
            def run(n: int):
                response = self._client(user_of(n), clients).get(path, params or {})
                if response.status_code != 200:
                    raise CommandError(f"GET {path} {params} answered {response.status_code}")
                return response

            return run

        def constant(pk):
            return lambda n: pk

        rep = rep_sequence.__getitem__
        rep_note = f"a random one of {len(reps)} reps (~{rep_book:,} customers each)"
        dashboard = reverse("reports:dashboard")
        scenarios = [
            ("dashboard, manager, this month", page(dashboard, constant(manager.pk)), "", DASHBOARD_TARGET_MS),
            (
                "dashboard, manager, this year",
                page(dashboard, constant(manager.pk), {"period": "year"}),
                "",
                DASHBOARD_TARGET_MS,
            ),
            ("dashboard, analyst, this month", page(dashboard, constant(analyst.pk)), "", DASHBOARD_TARGET_MS),
        ]
        if service:
            scenarios.append(
                ("dashboard, service agent, this month", page(dashboard, constant(service.pk)), "", DASHBOARD_TARGET_MS)
            )
        if reps:
            scenarios.append(("dashboard, sales rep, this month", page(dashboard, rep), rep_note, DASHBOARD_TARGET_MS))
        small_note = f"a rep with {small_book:,} customers (a realistic book)"
        if small_rep:
            scenarios.append(
                (
                    f"dashboard, sales rep with {small_book:,} customers",
                    page(dashboard, constant(small_rep)),
                    small_note,
                    DASHBOARD_TARGET_MS,
                )
            )
        for key, cls in REPORTS.items():
            if key.startswith("probe"):
                continue
            path = reverse("reports:report", args=[key])
            scenarios += [
                (
                    f"{key}, manager, 12 months",
                    page(path, constant(manager.pk)),
                    "monthly, no filter",
                    REPORT_TARGET_MS,
                ),
                (
                    f"{key}, manager, by province",
                    page(path, constant(manager.pk), {"province": province}),
                    "one dimension: the rollups",
                    REPORT_TARGET_MS,
                ),
                (
                    f"{key}, manager, province + level",
                    page(path, constant(manager.pk), {"province": province, "level": level}),
                    "two dimensions: the facts",
                    REPORT_TARGET_MS,
                ),
                (
                    f"{key}, manager, daily, 30 days",
                    page(path, constant(manager.pk), {"period": "day"}),
                    "",
                    REPORT_TARGET_MS,
                ),
                (f"{key}, analyst, 12 months", page(path, constant(analyst.pk)), "", REPORT_TARGET_MS),
            ]
            if reps and cls.allowed(User.objects.get(pk=reps[0])):
                scenarios.append((f"{key}, sales rep, 12 months", page(path, rep), rep_note, REPORT_TARGET_MS))
            if small_rep and cls.allowed(User.objects.get(pk=small_rep)):
                scenarios.append(
                    (
                        f"{key}, sales rep with {small_book:,} customers",
                        page(path, constant(small_rep)),
                        small_note,
                        REPORT_TARGET_MS,
                    )
                )
        scenarios += self._profile_scenarios(page, constant, manager, analyst, rep, rep_note)
        return scenarios

    def _profile_scenarios(self, page, constant, manager, analyst, rep, rep_note) -> list:
        """客户画像: the tag counts page, a tag's customer list (first page) — once the nightly job ran."""
        from reports.models import ProfileRule, ProfileTag

        if not ProfileTag.objects.exists():
            return []
        profiles = reverse("reports:profiles")
        rule = ProfileRule.objects.filter(is_active=True).order_by("sort_order", "pk").first()
        scenarios = [
            (
                "profiles, manager",
                page(profiles, constant(manager.pk)),
                "tag counts over every customer",
                REPORT_TARGET_MS,
            ),
            ("profiles, analyst", page(profiles, constant(analyst.pk)), "counts only", REPORT_TARGET_MS),
            ("profiles, sales rep", page(profiles, rep), rep_note, REPORT_TARGET_MS),
        ]
        if rule is not None:
            tagged = reverse("reports:profile_tag", args=[rule.pk])
            scenarios.append(
                (
                    f"profile tag list ({rule.name}), manager",
                    page(tagged, constant(manager.pk)),
                    "first page",
                    REPORT_TARGET_MS,
                )
            )
        return scenarios

    def _report(self, results) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            server = cursor.fetchone()[0]
            counts = {}
            for label, table in (
                ("customers", "customers_customer"),
                ("transactions", "customers_transaction"),
                ("follow-ups", "followups_followup"),
                ("opportunities", "followups_opportunity"),
                ("tickets", "complaints_ticket"),
            ):
                cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
                counts[label] = max(0, cursor.fetchone()[0])
        lines = [
            "",
            "Dataset (≈, planner statistics): " + ", ".join(f"{v:,} {k}" for k, v in counts.items()) + ".",
            f"Summary tables: {SalesFact.objects.count():,} sales facts.",
            *self.refresh_lines,
            f"Measured {datetime.date.today():%Y-%m-%d}: real views through django.test.Client, "
            f"{self.warmup} warm-up + {self.repeat} timed runs each · {os.cpu_count()} cores · "
            f"load average {self.load_before[0]:.1f} before, {self.load_after[0]:.1f} after · "
            f"Python {platform.python_version()} · PostgreSQL {server.split()[0]}",
            "",
            "| scenario | p50 ms | p95 ms | max ms | queries (min–max) | SQL ms p50 | peak KiB | target p95 | met | note |",
            "| --- | ---: | ---: | ---: | :---: | ---: | ---: | ---: | :---: | --- |",
        ]
        for r in results:
            low, high = min(r.queries), max(r.queries)
            queries = f"{low}" if low == high else f"{low}–{high}"
            target = self.targets[r.name]
            met = "yes" if r.percentile(0.95) < target else "**no**"
            lines.append(
                f"| {r.name} | {r.percentile(0.5):.1f} | {r.percentile(0.95):.1f} | {max(r.times_ms):.1f} | "
                f"{queries} | {statistics.median(r.sql_ms):.1f} | {r.peak_kib:,.0f} | {target} ms | {met} | {r.note} |"
            )
        self.stdout.write("\n".join(lines))
