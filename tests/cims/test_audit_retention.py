"""Retention: old access-log rows go at a recorded anchor; old change history goes in batches."""

from __future__ import annotations

import datetime

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from cims import audit
from cims.models import AuditAnchor, PersonalDataAccess, log_personal_data_access
from customers.models import Customer
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def write_aged(*days_ago: int) -> list[PersonalDataAccess]:
    rows = []
    for n, days in enumerate(days_ago):
        row = log_personal_data_access(
            user=None, action="reveal", object_type="customers.customer", object_id=n, object_label=f"C{n}"
        )
        # Back-dated before sealing, as if written then (the hash covers the time).
        PersonalDataAccess.objects.filter(pk=row.pk).update(created_at=NOW - datetime.timedelta(days=days))
        rows.append(row)
    return rows


def test_it_removes_old_rows_at_an_anchor_and_the_chain_still_verifies(settings):
    settings.AUDIT_RETENTION_DAYS = 30
    rows = write_aged(400, 100, 31, 5, 1)
    audit.seal()
    result = audit.apply_retention(now=NOW)
    assert result.removed_rows == 3
    assert list(PersonalDataAccess.objects.order_by("seq").values_list("pk", flat=True)) == [rows[3].pk, rows[4].pk]
    anchor = AuditAnchor.objects.get()
    assert (anchor.seq, anchor.removed_rows) == (3, 3) and anchor == result.anchor
    assert len(anchor.chain_hash) == 64 and "30 days" in anchor.reason
    verified = audit.verify()
    assert verified.ok and (verified.anchor_seq, verified.first_seq, verified.last_seq) == (3, 4, 5)
    # New rows continue the chain after the anchor, and a second run has nothing to cut.
    write_aged(0)
    audit.seal()
    assert audit.apply_retention(now=NOW).removed_rows == 0
    assert AuditAnchor.objects.count() == 1
    assert audit.verify().ok and audit.verify().last_seq == 6


def test_it_cuts_only_a_contiguous_run_of_old_rows(settings):
    settings.AUDIT_RETENTION_DAYS = 30
    write_aged(400, 2, 400, 1)  # the third row is old but follows a recent one: kept for now
    audit.seal()
    assert audit.apply_retention(now=NOW).removed_rows == 1
    assert AuditAnchor.objects.get().seq == 1
    assert audit.verify().ok


def test_it_continues_the_chain_from_the_anchor_when_every_row_was_removed(settings):
    settings.AUDIT_RETENTION_DAYS = 30
    write_aged(90, 60)
    audit.seal()
    assert audit.apply_retention(now=NOW).removed_rows == 2
    assert not PersonalDataAccess.objects.exists()
    write_aged(0)
    audit.seal()
    assert PersonalDataAccess.objects.get().seq == 3
    assert audit.verify().ok


def test_it_never_deletes_unsealed_rows(settings):
    settings.AUDIT_RETENTION_DAYS = 30
    write_aged(400)
    audit.seal()
    write_aged(300)  # written but not sealed yet
    assert audit.apply_retention(now=NOW).removed_rows == 1
    assert PersonalDataAccess.objects.get().seq is None


def test_it_refuses_to_cut_a_tampered_part_of_the_log(settings):
    settings.AUDIT_RETENTION_DAYS = 30
    rows = write_aged(400, 300, 1)
    audit.seal()
    PersonalDataAccess.objects.filter(pk=rows[1].pk).update(object_id="999")
    with pytest.raises(audit.AuditChainBroken, match="seq 2"):
        audit.apply_retention(now=NOW)
    assert PersonalDataAccess.objects.count() == 3 and not AuditAnchor.objects.exists()


def test_it_catches_rows_deleted_in_the_middle_without_an_anchor(settings):
    settings.AUDIT_RETENTION_DAYS = 30
    rows = write_aged(400, 300, 200, 1)
    audit.seal()
    audit.apply_retention(now=NOW)  # anchor at seq 3
    write_aged(0, 0, 0)
    audit.seal()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {PersonalDataAccess._meta.db_table} WHERE seq IN (5, 6)")  # noqa: S608
    result = audit.verify()
    assert [(p.seq, p.kind) for p in result.problems] == [(5, audit.MISSING)]
    assert "seq 5–6 deleted" in str(result.problems[0])
    assert rows[3].pk in PersonalDataAccess.objects.values_list("pk", flat=True)


def test_it_reports_rows_older_than_the_anchor_that_are_still_present(settings):
    settings.AUDIT_RETENTION_DAYS = 30
    write_aged(400, 1)
    audit.seal()
    AuditAnchor.objects.create(seq=1, chain_hash=PersonalDataAccess.objects.get(seq=1).chain_hash, reason="restored")
    result = audit.verify()
    assert result.ok and result.older_rows == 1 and (result.first_seq, result.last_seq) == (2, 2)


def test_the_retention_task_seals_and_cuts(settings):
    from cims import tasks_audit

    settings.AUDIT_RETENTION_DAYS = 30
    write_aged(400, 1)
    assert tasks_audit.apply_retention.apply().get().startswith("access log: 1 rows removed")
    assert AuditAnchor.objects.get().seq == 1


# --- Change history -------------------------------------------------------------------------------


def _age_history(customer, days: int) -> None:
    Customer.history.filter(id=customer.pk).update(history_date=NOW - datetime.timedelta(days=days))


def test_it_keeps_change_history_for_ever_by_default(settings):
    settings.HISTORY_RETENTION_DAYS = 0
    customer = CustomerFactory()
    _age_history(customer, 5000)
    assert audit.apply_retention(now=NOW).history_removed == {}
    assert Customer.history.filter(id=customer.pk).exists()


def test_it_removes_change_history_older_than_the_setting_in_batches(settings, monkeypatch):
    settings.HISTORY_RETENTION_DAYS = 365
    monkeypatch.setattr(audit, "DELETE_BATCH", 2)
    old = [CustomerFactory() for _ in range(5)]
    for customer in old:
        _age_history(customer, 400)
    recent = CustomerFactory()
    result = audit.apply_retention(now=NOW)
    assert result.history_removed["customers.HistoricalCustomer"] == 5
    assert list(Customer.history.values_list("id", flat=True)) == [recent.pk]
    assert Customer.objects.count() == 6  # the records themselves stay


def test_verify_audit_reads_the_anchor(settings, capsys):
    settings.AUDIT_RETENTION_DAYS = 30
    write_aged(400, 1)
    audit.seal()
    audit.apply_retention(now=NOW)
    call_command("verify_audit")
    output = capsys.readouterr().out
    assert "starting after the retention anchor at seq 1" in output and "OK: 1 rows verified (seq 2–2)" in output


def test_it_refuses_to_cut_when_the_row_at_the_cut_was_deleted(settings):
    settings.AUDIT_RETENTION_DAYS = 30
    write_aged(400, 300, 1)
    audit.seal()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {PersonalDataAccess._meta.db_table} WHERE seq = 2")  # noqa: S608
    with pytest.raises(audit.AuditChainBroken, match="seq 2"):
        audit.apply_retention(now=NOW)
    assert PersonalDataAccess.objects.count() == 2 and not AuditAnchor.objects.exists()
