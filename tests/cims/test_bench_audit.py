"""Smoke test of ``manage.py bench_audit`` (the access-log chain benchmark of ``make bench``) at 500 rows.

The figures are the benchmark's business (docs/performance.md); this proves the command fills an
unsealed log with the mix it claims, seals, verifies and cuts it through ``cims.audit``, leaves a
chain that still verifies from its anchor, and prints the table.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from cims import audit
from cims.models import AuditAnchor, PersonalDataAccess

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the benchmark runs on PostgreSQL only")

STEPS = (
    "seal() of all 500 rows",
    "seal() of 1,000 new rows",
    "verify() of 2,500 rows",
    "1,000 × log_personal_data_access",
    "apply_retention(), oldest third",
    "verify() after retention (from the anchor)",
)


def _rows(output: str) -> dict[str, list[str]]:
    """The step rows of the Markdown table, by step name."""
    rows = [line for line in output.splitlines() if line.startswith("| ") and not line.startswith(("| step", "| ---"))]
    return {cells[0]: cells[1:] for cells in (row.strip("| ").split(" | ") for row in rows)}


# Each step runs in a forked process with its own connection: the data must be committed. The
# serialized rollback keeps the shipped roles and lookups for later tests.
@postgresql_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_seals_verifies_and_cuts_the_chain_and_prints_the_table():
    out = io.StringIO()
    call_command("bench_audit", rows=500, repeat=2, any_database=True, stdout=out)
    output = out.getvalue()

    table = _rows(output)
    assert list(table) == list(STEPS)
    for cells in table.values():
        assert cells[0].endswith(" s") and cells[3].endswith(" MiB")
    assert "OK: 2500 rows verified (seq 1–2500)" in output
    # 500 filled + 2 × 1,000 steady + 1,000 single INSERTs; retention cut about the oldest third.
    anchor = AuditAnchor.objects.get()
    assert 120 <= anchor.removed_rows <= 220
    assert PersonalDataAccess.objects.count() == 3500 - anchor.removed_rows
    assert f"{anchor.removed_rows:,} rows removed" in table["apply_retention(), oldest third"][-1]
    assert not PersonalDataAccess.objects.filter(seq__isnull=True).exists()
    result = audit.verify()
    assert result.ok and result.anchor_seq == anchor.seq and result.rows == 3500 - anchor.removed_rows
    # A realistic mix: the main actions all present, failed logins without a user.
    actions = set(PersonalDataAccess.objects.values_list("action", flat=True))
    assert {"view", "search", "reveal", "login"} <= actions
    assert not PersonalDataAccess.objects.filter(action="login_failed", user__isnull=False).exists()


@postgresql_only
@pytest.mark.django_db
def test_it_refuses_a_database_not_named_for_benchmarks():
    original = connection.settings_dict["NAME"]
    connection.settings_dict["NAME"] = "cims"  # the check reads the name only; nothing is written
    try:
        with pytest.raises(CommandError, match="lacks 'bench'"):
            call_command("bench_audit", rows=10, stdout=io.StringIO())
    finally:
        connection.settings_dict["NAME"] = original
    assert not PersonalDataAccess.objects.exists()


@postgresql_only
@pytest.mark.django_db
def test_it_refuses_to_run_inside_a_transaction():
    with pytest.raises(CommandError, match="outside a transaction"):
        call_command("bench_audit", rows=10, any_database=True, stdout=io.StringIO())


@pytest.mark.skipif(connection.vendor != "sqlite", reason="checks the refusal of SQLite")
@pytest.mark.django_db
def test_it_refuses_sqlite_with_a_clear_message():
    with pytest.raises(CommandError, match="PostgreSQL only"):
        call_command("bench_audit", rows=10, any_database=True, stdout=io.StringIO())
    assert not PersonalDataAccess.objects.exists()
