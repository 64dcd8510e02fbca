"""The import benchmark (part of ``make bench``): rows per second and peak memory, ours and plain.

Not a test. On a PostgreSQL database of its own it writes a realistic customer CSV (the generator
of ``seed_demo``: Chinese names, valid mobiles, landlines and ID numbers, provinces by short name,
lookups by name, about 1 % of rows repeating an earlier one), then imports it end to end twice,
each time into an emptied customer table and in a fresh process whose peak resident memory is read
from the kernel (``ru_maxrss``):

- **ours**: ``customers.importing.engine`` — upload into encrypted chunks, the dry run (parse,
  validate, normalise, de-duplicate, plan), then confirm (encrypt, blind-index, bulk write, bulk
  history, access log);
- **plain**: a plain django-import-export ``ModelResource`` over the same columns, the file loaded
  into a tablib ``Dataset`` and ``import_data(dry_run=False)``: one ``save()`` per row, so
  encryption, blind indexes and simple-history's row happen as in any form save, but without
  normalisation or de-duplication.

Prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from accounts import roles
from accounts.models import User
from customers.importing.columns import GENDER_LABELS, KIND_LABELS, SCALE_LABELS, STATUS_LABELS

HEADERS = [
    "客户名称", "个人/企业", "所在单位", "性别", "出生日期", "手机", "电话", "邮箱", "身份证号", "所在省份",
    "城市", "地址", "客户级别", "客户来源", "客户类型", "行业", "客户状态", "备注", "企业规模",
]  # fmt: skip
TABLES = [
    "customers_importchunk",
    "customers_importjob",
    "customers_historicalcustomer_tags",
    "customers_historicalcustomer",
    "customers_customer_tags",
    "customers_customer",
]


class Command(BaseCommand):
    help = "Benchmark customer imports: ours against a plain django-import-export ModelResource."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=100_000, help="Data rows in the file (default 100,000).")
        parser.add_argument(
            "--plain-rows",
            type=int,
            default=None,
            help="Rows for the plain resource (default: the same file up to 10,000 rows; 0 skips it). "
            "It saves row by row at about 100-150 rows/s, so 100,000 rows take a quarter of an hour.",
        )
        parser.add_argument("--phase", choices=["ours", "plain"], help=argparse_hidden())
        parser.add_argument("--file", help=argparse_hidden())

    def handle(self, *args, **options):
        if options["phase"]:
            return self._phase(options["phase"], Path(options["file"]))
        if connection.vendor != "postgresql":
            raise CommandError("Run the benchmark on PostgreSQL (make bench sets BENCH_IMPORT_DATABASE_URL).")
        from customers.management.commands.bench_customers import ensure_database

        ensure_database()
        call_command("migrate", verbosity=0)
        self._reps()
        rows = options["rows"]
        plain_rows = min(rows, 10_000) if options["plain_rows"] is None else options["plain_rows"]
        folder = Path(settings.VAR_DIR) / "bench"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"import-{rows}.csv"
        if not path.exists():
            self.stderr.write(f"Writing {rows:,} rows to {path} …")
            self._write_file(path, rows)
        results = [self._run("ours", path, rows)]
        if plain_rows:
            plain_path = path
            if plain_rows != rows:
                plain_path = folder / f"import-{plain_rows}.csv"
                if not plain_path.exists():
                    self._write_file(plain_path, plain_rows)
            results.append(self._run("plain", plain_path, plain_rows))
        self._truncate()
        self._report(results, rows)

    # --- the parent ---------------------------------------------------------------------------

    def _reps(self) -> None:
        """The importing user: a manager (may own customers and name owners)."""
        from django.contrib.auth.models import Group

        user, _ = User.objects.get_or_create(username="bench_importer", defaults={"name": "导入基准"})
        user.groups.add(Group.objects.get(name=roles.MANAGER))

    def _truncate(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {', '.join(TABLES)} CASCADE")  # noqa: S608 - fixed table names

    def _run(self, phase: str, path: Path, rows: int) -> dict:
        self._truncate()
        self.stderr.write(f"Importing {rows:,} rows ({phase}) …")
        output = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
            [sys.executable, "manage.py", "bench_import", "--phase", phase, "--file", str(path)],
            check=True,
            capture_output=True,
            text=True,
            cwd=settings.BASE_DIR,
            env=os.environ.copy(),
        )
        result = json.loads(output.stdout.strip().splitlines()[-1])
        result.update(phase=phase, rows=rows)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM customers_customer")
            result["customers"] = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM customers_historicalcustomer")
            result["history"] = cursor.fetchone()[0]
        return result

    def _report(self, results: list[dict], rows: int) -> None:
        ours = results[0]
        lines = [
            f"Import benchmark — {rows:,}-row CSV, PostgreSQL {connection.pg_version // 10000}, "
            f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {datetime.date.today()}",
            "",
            "| import | rows | seconds | rows/s | peak memory (RSS) | customers written | history rows |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for result in results:
            label = "CIMS engine (check + confirm)" if result["phase"] == "ours" else "plain ModelResource"
            lines.append(
                f"| {label} | {result['rows']:,} | {result['seconds']:.1f} | {result['rows'] / result['seconds']:,.0f} "
                f"| {result['peak_mb']:,.0f} MB | {result['customers']:,} | {result['history']:,} |"
            )
        if "check_seconds" in ours:
            lines += [
                "",
                f"CIMS phases: upload {ours['upload_seconds']:.1f} s, check (dry run) {ours['check_seconds']:.1f} s, "
                f"confirm {ours['commit_seconds']:.1f} s; plan: {ours['plan']}.",
            ]
        if len(results) == 2:
            ours_rate = ours["rows"] / ours["seconds"]
            plain_rate = results[1]["rows"] / results[1]["seconds"]
            lines.append(f"Speed-up over the plain resource: {ours_rate / plain_rate:.1f}×.")
        self.stdout.write("\n".join(lines))

    def _write_file(self, path: Path, rows: int) -> None:
        from customers.management.commands.seed_demo import Command as Seed

        seed = Seed()
        seed.rng = random.Random(42)  # noqa: S311 - test data, not secrets
        seed.now = datetime.datetime.now(tz=datetime.UTC)
        seed.year = seed.now.year
        seed._load_reference()
        seed.reps = [0]
        seed.managers = []
        names = _lookup_names()
        earlier: list[list[str]] = []
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADERS)
            for number in range(rows):
                if earlier and seed.rng.random() < 0.01:
                    writer.writerow(seed.rng.choice(earlier))  # the same customer twice in one file
                    continue
                customer = seed._customer(number + 1, number / rows)
                row = [
                    customer.name,
                    KIND_LABELS[customer.kind],
                    customer.company,
                    GENDER_LABELS.get(customer.gender, ""),
                    customer.birth_date.isoformat() if customer.birth_date else "",
                    customer.mobile.removeprefix("+86"),
                    customer.phone.replace("+86", "0", 1) if customer.phone else "",
                    customer.email,
                    customer.id_number,
                    customer.province.short_name if customer.province else "",
                    customer.city,
                    customer.address,
                    names["level"].get(customer.level_id, ""),
                    names["source"].get(customer.source_id, ""),
                    names["customer_type"].get(customer.customer_type_id, ""),
                    names["industry"].get(customer.industry_id, ""),
                    STATUS_LABELS[customer.status],
                    customer.notes,
                    SCALE_LABELS.get(customer.scale, ""),
                ]
                writer.writerow(row)
                if len(earlier) < 1000:
                    earlier.append(row)

    # --- a child process ----------------------------------------------------------------------

    def _phase(self, phase: str, path: Path) -> None:
        user = User.objects.filter(username="bench_importer").first()
        started = time.perf_counter()
        if phase == "ours":
            result = _import_ours(path, user)
        else:
            result = _import_plain(path)
        result["seconds"] = time.perf_counter() - started
        result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.stdout.write(json.dumps(result))


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


def _lookup_names() -> dict[str, dict[int, str]]:
    from customers.models import CustomerLevel, CustomerSource, CustomerType, Industry

    return {
        name: dict(model.objects.values_list("pk", "name"))
        for name, model in (
            ("level", CustomerLevel),
            ("source", CustomerSource),
            ("customer_type", CustomerType),
            ("industry", Industry),
        )
    }


def _import_ours(path: Path, user) -> dict:
    from customers.importing import engine

    started = time.perf_counter()
    with path.open("rb") as handle:
        job = engine.job_create(upload=handle, file_name=path.name, by=user, owner=user, on_duplicate="skip")
    uploaded = time.perf_counter()
    engine.job_check(job)
    checked = time.perf_counter()
    job.refresh_from_db()
    plan = f"{job.to_create:,} to create, {job.to_skip:,} duplicates skipped, {job.rejected:,} rejected"
    engine.job_commit(job, by=user)
    done = time.perf_counter()
    return {
        "upload_seconds": uploaded - started,
        "check_seconds": checked - uploaded,
        "commit_seconds": done - checked,
        "plan": plan,
    }


def _import_plain(path: Path) -> dict:
    import tablib
    from import_export import fields, resources

    from customers.models import Customer

    class PlainCustomerResource(resources.ModelResource):
        name = fields.Field(attribute="name", column_name="客户名称")
        company = fields.Field(attribute="company", column_name="所在单位")
        mobile = fields.Field(attribute="mobile", column_name="手机")
        phone = fields.Field(attribute="phone", column_name="电话")
        email = fields.Field(attribute="email", column_name="邮箱")
        id_number = fields.Field(attribute="id_number", column_name="身份证号")
        city = fields.Field(attribute="city", column_name="城市")
        address = fields.Field(attribute="address", column_name="地址")
        notes = fields.Field(attribute="notes", column_name="备注")

        class Meta:
            model = Customer
            fields = ("id", "name", "company", "mobile", "phone", "email", "id_number", "city", "address", "notes")

    dataset = tablib.Dataset().load(path.read_text(encoding="utf-8-sig"), format="csv")
    result = PlainCustomerResource().import_data(dataset, dry_run=False, raise_errors=False, use_transactions=True)
    return {"errors": len(result.row_errors()), "invalid": len(result.invalid_rows)}
