"""The customer archive benchmark (``make bench``): server times, query counts and peak memory.

Not a test: it builds (or reuses) a PostgreSQL database of ``--customers`` customers with
``seed_demo`` and times the pages a person uses most — the list as a sales rep and as a manager
(first page and a deep keyset page), a filtered list, exact-phone and name-substring search, the
360° page and creating a customer with two contacts — and prints a Markdown table.

The real views are driven through ``django.test.Client`` (``force_login``, production settings
apart from plain HTTP), so a figure is the server's whole time for the request: middleware, queries,
decryption, masking and template rendering, without network. ``--mode queries`` times the ORM
queries those pages run instead (used while the views were placeholders). Creates run inside a
transaction that is rolled back, so the database stays as seeded. Peak memory is measured with
``tracemalloc`` in one extra run per scenario (it slows Python down, so not during the timed runs).
"""

from __future__ import annotations

import datetime
import io
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse

from accounts import roles
from accounts.models import Department, User
from cims.normalize import format_phone
from customers.models import Customer, CustomerLevel, Province

PAGE = 50  # rows of the ORM stand-in for a list page (LIMIT 51 tells whether there is a next one)
COUNT_CAP = 10_000


class _Rollback(Exception):
    pass


@dataclass
class Result:
    name: str
    times_ms: list[float]
    queries: int
    db_ms: float
    peak_kib: float
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def served_over_plain_http():
    """Production settings, apart from what the test client cannot do (HTTPS, a collected static
    manifest): the settings every benchmark drives its views under."""
    return override_settings(
        ALLOWED_HOSTS=["testserver"],
        # Hundreds of searches a minute from one user: the rate limits (cims.hardening) would answer
        # 429; raised so that the pages are measured, the limiter's counting still included.
        RATE_LIMIT_SEARCH_PER_MINUTE=10**9,
        RATE_LIMIT_EXPORT_PER_HOUR=10**9,
        API_RATE_LIMIT_PER_MINUTE=10**9,
        SECURE_SSL_REDIRECT=False,
        SESSION_COOKIE_SECURE=False,
        CSRF_COOKIE_SECURE=False,
        STORAGES={
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
    )


def ensure_database() -> None:
    """Create the benchmark database when it does not exist yet (PostgreSQL only)."""
    import psycopg2

    params = settings.DATABASES["default"]
    connect = {
        "host": params.get("HOST") or None,
        "port": params.get("PORT") or None,
        "user": params.get("USER") or None,
        "password": params.get("PASSWORD") or None,
    }
    try:
        psycopg2.connect(dbname=params["NAME"], **connect).close()
    except psycopg2.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
        admin = psycopg2.connect(dbname="postgres", **connect)
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{params["NAME"]}"')
        admin.close()


class Command(BaseCommand):
    help = (
        "Benchmark the customer archive on PostgreSQL: build or reuse a database of N customers, "
        "then print median/p95 server time, query count and peak memory per page as a Markdown table."
    )

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=int(os.environ.get("BENCH_CUSTOMERS", "100000")))
        parser.add_argument("--repeat", type=int, default=30, help="Timed runs per scenario (default 30).")
        parser.add_argument("--mode", choices=["auto", "views", "queries"], default="auto")
        parser.add_argument("--explain", action="store_true", help="Print EXPLAIN ANALYZE of the customer queries.")
        parser.add_argument("--only", default="", help="Run only scenarios whose name contains this text.")

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("The benchmark runs on PostgreSQL: set DATABASE_URL (make bench does).")
        ensure_database()
        self.repeat = max(3, options["repeat"])
        self.explain = options["explain"]
        self.seed_seconds = self._build(options["customers"])
        mode = options["mode"]
        if mode == "auto":
            views_source = (settings.BASE_DIR / "customers" / "views.py").read_text(encoding="utf-8")
            mode = "queries" if "PLACEHOLDER" in views_source else "views"
        self.mode = mode
        with served_over_plain_http():
            self._cast()
            scenarios = self._view_scenarios() if mode == "views" else self._query_scenarios()
            results = []
            for name, run, note in scenarios:
                if options["only"] and options["only"] not in name:
                    continue
                results.append(self._measure(name, run, note))
        self._report(results)

    # --- the database ------------------------------------------------------------------------------

    def _build(self, wanted: int) -> float | None:
        call_command("migrate", verbosity=0)
        have = Customer.all_objects.count()
        if have >= wanted:
            self.stdout.write(f"Reusing {connection.settings_dict['NAME']}: {have:,} customers.")
            return None
        call_command("load_demo", not_production=True, stdout=io.StringIO())
        self.stdout.write(f"Seeding {wanted - have:,} customers into {connection.settings_dict['NAME']} …")
        started = time.monotonic()
        call_command("seed_demo", customers=wanted - have, not_production=True, stdout=self.stdout)
        return time.monotonic() - started

    def _cast(self) -> None:
        self.total = Customer.all_objects.count()
        self.manager = User.objects.filter(groups__name=roles.MANAGER, is_active=True).order_by("pk").first()
        heads = set(Department.objects.exclude(head=None).values_list("head_id", flat=True))
        reps = User.objects.filter(groups__name=roles.SALES, is_active=True, username__startswith="sales")
        self.rep = reps.exclude(pk__in=heads).order_by("pk").first()
        self.head = reps.filter(pk__in=heads).order_by("pk").first()
        # A rep who owns nothing yet: the case where a scope that PostgreSQL cannot serve from an
        # index walks the whole table looking for a first page.
        self.new_rep, created = User.objects.get_or_create(username="bench_newrep", defaults={"name": "新销售"})
        if created:
            self.new_rep.set_unusable_password()
            self.new_rep.save()
        self.new_rep.groups.add(Group.objects.get(name=roles.SALES))
        if not (self.manager and self.rep):
            raise CommandError("The database has no manager or plain sales rep: run load_demo and seed_demo.")
        self.province = Province.objects.get(short_name="广东")
        self.level = CustomerLevel.objects.get(name="A")
        visible = Customer.objects.visible_to(self.rep)
        # The oldest customers: the deepest page, reached from a cursor (as "next" links do).
        self.rep_deep = visible.order_by("pk").values_list("pk", flat=True)[PAGE * 2]
        self.manager_deep = Customer.objects.order_by("pk").values_list("pk", flat=True)[PAGE * 2]
        mine = visible.filter(kind=Customer.ENTERPRISE, contacts__isnull=False, transactions__isnull=False)
        self.customer = mine.order_by("-pk").first()
        with_mobile = visible.exclude(mobile="").order_by("pk")[self.total // 20 :].first()
        self.mobile = format_phone(with_mobile.mobile)  # as a person types it: 138 1234 5678

    def _client(self, user) -> Client:
        client = Client()
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        return client

    # --- scenarios -----------------------------------------------------------------------------

    def _view_scenarios(self) -> list[tuple[str, Callable[[], object], str]]:
        rep, manager = self._client(self.rep), self._client(self.manager)
        url = reverse("customers:list")
        filtered = {"province": self.province.pk, "level": self.level.pk}

        def get(client, path, params=None, expect=200):
            def run():
                response = client.get(path, params or {})
                if response.status_code != expect:
                    raise CommandError(f"GET {path} {params} answered {response.status_code}")
                return response

            return run

        scenarios = [
            ("list, sales rep, first page", get(rep, url), ""),
            ("list, sales rep, deep page", get(rep, url, {"after": self.rep_deep}), "keyset cursor near the end"),
            ("list, manager, first page", get(manager, url), ""),
            ("list, manager, deep page", get(manager, url, {"after": self.manager_deep}), "keyset cursor near the end"),
            ("list, sales rep, province + level", get(rep, url, filtered), "广东, level A"),
            ("list, manager, province + level", get(manager, url, filtered), "广东, level A"),
            ("exact phone search, sales rep", get(rep, url, {"q": self.mobile}), "blind index"),
            ("exact phone search, manager", get(manager, url, {"q": self.mobile}), "blind index"),
            ("name search 王伟, sales rep", get(rep, url, {"q": "王伟"}), "two characters"),
            ("name search 王伟, manager", get(manager, url, {"q": "王伟"}), "two characters"),
            ("name search 李建华, manager", get(manager, url, {"q": "李建华"}), "three characters"),
            ("name search 科技有限, manager", get(manager, url, {"q": "科技有限"}), "common company words"),
            ("360 page, sales rep", get(rep, reverse("customers:detail", args=[self.customer.pk])), "owner"),
        ]
        if self.head:
            scenarios.insert(2, ("list, department head, first page", get(self._client(self.head), url), ""))
        scenarios.insert(2, ("list, new sales rep, first page", get(self._client(self.new_rep), url), "owns none"))
        counter = iter(range(10**9))

        def create():
            n = next(counter)
            data = {
                "kind": Customer.ENTERPRISE,
                "name": f"基准测试科技有限公司{n}",
                "mobile": f"139{n % 10**8:08d}",
                "email": f"bench{n}@example.com",
                "status": Customer.Status.PROSPECT,
                "province": self.province.pk,
                "city": "广州",
                "save_anyway": "on",
                "contacts-TOTAL_FORMS": "2",
                "contacts-INITIAL_FORMS": "0",
                "contacts-MIN_NUM_FORMS": "0",
                "contacts-MAX_NUM_FORMS": "20",
                "contacts-0-name": "张伟",
                "contacts-0-phone": f"137{n % 10**8:08d}",
                "contacts-0-is_primary": "on",
                "contacts-1-name": "李娜",
                "contacts-1-phone": f"136{n % 10**8:08d}",
            }
            try:
                with transaction.atomic():
                    response = rep.post(reverse("customers:create"), data)
                    if response.status_code != 302:
                        raise CommandError(f"create answered {response.status_code} (form errors?)")
                    raise _Rollback
            except _Rollback:
                pass

        scenarios.append(("create with 2 contacts, sales rep", create, "POST, rolled back"))
        scenarios.extend(self._api_scenarios(get, filtered))
        return scenarios

    def _api_client(self, user) -> Client:
        """A client sending a fresh read-write API token of ``user`` (no rate limit in the way)."""
        from accounts.models import ApiToken
        from accounts.services import api_token_create

        name = f"bench-{user.username}"
        ApiToken.objects.filter(name=name).delete()  # the previous run's: its secret is gone
        _token, raw = api_token_create(
            name=name, user=user, scope=ApiToken.Scope.READ_WRITE, rate_limit=10**6, by=self.manager
        )
        return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")

    def _api_scenarios(self, get, filtered) -> list[tuple[str, Callable[[], object], str]]:
        """The REST API's customer list and detail (cims.api): the same scope and pages, as JSON."""
        rep, manager = self._api_client(self.rep), self._api_client(self.manager)
        url = "/api/v1/customers/"
        counter = iter(range(10**9))

        def create():
            n = next(counter)
            body = {
                "kind": Customer.ENTERPRISE,
                "name": f"接口基准科技有限公司{n}",
                "mobile": f"135{n % 10**8:08d}",
                "province": self.province.pk,
                "save_anyway": True,
            }
            try:
                with transaction.atomic():
                    response = rep.post(url, body, content_type="application/json")
                    if response.status_code != 201:
                        raise CommandError(f"API create answered {response.status_code}: {response.content[:300]!r}")
                    raise _Rollback
            except _Rollback:
                pass

        return [
            ("API list, sales rep, first page", get(rep, url, {"page_size": PAGE}), "token, JSON, access-logged"),
            ("API list, sales rep, deep page", get(rep, url, {"page_size": PAGE, "after": self.rep_deep}), "cursor"),
            ("API list, manager, province + level", get(manager, url, {**filtered, "page_size": PAGE}), ""),
            ("API exact phone search, manager", get(manager, url, {"q": self.mobile}), "blind index"),
            ("API customer, sales rep", get(rep, f"{url}{self.customer.pk}/"), "retrieve, access-logged"),
            ("API create, sales rep", create, "POST JSON, rolled back"),
        ]

    def _query_scenarios(self) -> list[tuple[str, Callable[[], object], str]]:
        from customers.models import Contact
        from customers.services import customer_save, exact_search

        def page(user, *, after=None, **filters):
            def run():
                queryset = Customer.objects.visible_to(user).filter(**filters)
                if after:
                    queryset = queryset.filter(pk__lt=after)
                rows = list(queryset.select_related("owner", "level", "province").order_by("-pk")[: PAGE + 1])
                count = queryset.order_by().values("pk")[: COUNT_CAP + 1].count()
                return rows, count

            return run

        def search(user, text):
            def run():
                found = exact_search(Customer.objects.visible_to(user), text)
                if found is None:
                    found = Customer.objects.visible_to(user).search_name(text)
                rows = list(found.order_by("-pk")[: PAGE + 1])
                return rows, found.order_by().values("pk")[: COUNT_CAP + 1].count()

            return run

        def detail():
            customer = (
                Customer.objects.visible_to(self.rep)
                .select_related("owner", "level", "province")
                .get(pk=self.customer.pk)
            )
            return (
                customer.mobile,
                list(customer.contacts.all()),
                list(customer.transactions.all()[:20]),
                list(customer.contracts.all()[:20]),
                list(customer.tags.all()),
            )

        def create():
            try:
                with transaction.atomic():
                    customer = Customer(kind=Customer.ENTERPRISE, name="基准测试科技有限公司", mobile="+8613900000000")
                    contacts = [
                        Contact(name="张伟", phone="+8613700000000", is_primary=True),
                        Contact(name="李娜", phone="+8613600000000"),
                    ]
                    customer_save(customer=customer, contacts=contacts, by=self.rep)
                    raise _Rollback
            except _Rollback:
                pass

        p, lvl = self.province.pk, self.level.pk
        return [
            ("list, sales rep, first page", page(self.rep), ""),
            ("list, sales rep, deep page", page(self.rep, after=self.rep_deep), "keyset id < cursor"),
            ("list, new sales rep, first page", page(self.new_rep), "owns none"),
            ("list, manager, first page", page(self.manager), ""),
            ("list, manager, deep page", page(self.manager, after=self.manager_deep), "keyset id < cursor"),
            ("list, sales rep, province + level", page(self.rep, province_id=p, level_id=lvl), "广东, level A"),
            ("list, manager, province + level", page(self.manager, province_id=p, level_id=lvl), "广东, level A"),
            ("exact phone search, manager", search(self.manager, self.mobile), "blind index"),
            ("name search 王伟, sales rep", search(self.rep, "王伟"), "two characters"),
            ("name search 王伟, manager", search(self.manager, "王伟"), "two characters"),
            ("name search 李建华, manager", search(self.manager, "李建华"), "three characters"),
            ("360 page queries, sales rep", detail, ""),
            ("create with 2 contacts (customer_save)", create, "rolled back"),
        ]

    # --- measuring ---------------------------------------------------------------------------------

    def _measure(self, name: str, run: Callable[[], object], note: str) -> Result:
        for _ in range(3):  # warm the caches and the connection
            run()
        with CaptureQueriesContext(connection) as captured:
            run()
        queries = [q for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
        times = []
        for _ in range(self.repeat):
            started = time.perf_counter()
            run()
            times.append((time.perf_counter() - started) * 1000)
        tracemalloc.start()
        response = run()
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        if b"10,000+" in getattr(response, "content", b""):
            note = f"{note} · shows “10,000+”".lstrip(" ·")
        db_ms = sum(float(q["time"]) for q in queries) * 1000
        result = Result(name, times, len(queries), db_ms, peak / 1024, note)
        self.stdout.write(f"  {name}: median {result.median:.1f} ms, p95 {result.p95:.1f} ms, {len(queries)} queries")
        if self.explain:
            self._explain(queries)
        return result

    def _explain(self, queries) -> None:
        for query in queries:
            sql = query["sql"]
            if '"customers_customer"' not in sql or not sql.lstrip().upper().startswith("SELECT"):
                continue
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                plan = "\n".join(row[0] for row in cursor.fetchall())
            self.stdout.write(f"\n    {sql[:2000]}\n{plan}\n")

    def _report(self, results: list[Result]) -> None:
        label = "real views through django.test.Client" if self.mode == "views" else "ORM queries of the pages"
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            server = cursor.fetchone()[0]
        lines = [
            "",
            f"Customers: {self.total:,} · measured: {label} · {self.repeat} timed runs each · "
            f"{datetime.date.today():%Y-%m-%d} · {os.cpu_count()} cores · Python {platform.python_version()} · "
            f"PostgreSQL {server.split()[0]}",
        ]
        if self.seed_seconds is not None:
            lines.append(f"Seeding took {self.seed_seconds:.0f} s.")
        lines += [
            "",
            "| scenario | median ms | p95 ms | queries | of which SQL ms | peak KiB | note |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for r in results:
            lines.append(
                f"| {r.name} | {r.median:.1f} | {r.p95:.1f} | {r.queries} | {r.db_ms:.1f} | {r.peak_kib:,.0f} | {r.note} |"
            )
        self.stdout.write("\n".join(lines))
