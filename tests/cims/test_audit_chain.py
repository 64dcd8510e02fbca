"""The access log's tamper-evident chain: sealing, verification, immutability, and the admin."""

from __future__ import annotations

import datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import override_settings

from cims import audit
from cims.models import AuditAnchor, ImmutableAuditLog, PersonalDataAccess, log_personal_data_access
from followups.models import Notification
from tests.concurrency import run_at_once

pytestmark = pytest.mark.django_db


def write(count: int, **fields) -> list[PersonalDataAccess]:
    rows = []
    for n in range(count):
        rows.append(
            log_personal_data_access(
                user=fields.get("user"),
                action=fields.get("action", PersonalDataAccess.Action.REVEAL),
                object_type="customers.customer",
                object_id=100 + n,
                object_label=f"C2026-{n:06d}",
                field="mobile",
                detail=fields.get("detail", f"filter {n}"),
            )
        )
    return rows


def sealed(seq: int) -> PersonalDataAccess:
    return PersonalDataAccess.objects.get(seq=seq)


def verify_command(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("verify_audit", *args, stdout=out, stderr=out)
    return out.getvalue()


def broken(*args) -> str:
    with pytest.raises(CommandError) as error:
        verify_command(*args)
    assert error.value.returncode == 1
    return str(error.value)


# --- Sealing --------------------------------------------------------------------------------------


def test_it_numbers_rows_in_id_order_and_links_each_to_the_one_before():
    rows = write(5)
    assert PersonalDataAccess.objects.filter(seq__isnull=True).count() == 5
    assert audit.seal() == 5
    by_id = list(PersonalDataAccess.objects.order_by("id").values_list("id", "seq"))
    assert [seq for _id, seq in by_id] == [1, 2, 3, 4, 5]
    assert [row_id for row_id, _seq in by_id] == [row.pk for row in rows]
    first, second = sealed(1), sealed(2)
    assert first.chain_hash == audit.chain_hash_of(audit.GENESIS_LINK, first)
    assert second.chain_hash == audit.chain_hash_of(first.chain_hash[: audit.LINK_CHARS], second)
    assert len(first.chain_hash) == 64


def test_it_seals_idempotently_and_continues_the_chain():
    write(3)
    assert audit.seal() == 3
    hashes = list(PersonalDataAccess.objects.order_by("seq").values_list("chain_hash", flat=True))
    assert audit.seal() == 0
    assert list(PersonalDataAccess.objects.order_by("seq").values_list("chain_hash", flat=True)) == hashes
    write(2)
    assert audit.seal(batch_size=1) == 2
    assert list(PersonalDataAccess.objects.order_by("seq").values_list("seq", flat=True)) == [1, 2, 3, 4, 5]
    assert audit.verify().ok


def test_it_keys_the_chain_so_that_it_cannot_be_recomputed_without_the_key():
    write(1)
    audit.seal()
    row = sealed(1)
    with override_settings(BLIND_INDEX_KEY=b"\x01" * 32):
        assert audit.chain_hash_of(audit.GENESIS_LINK, row) != row.chain_hash
    assert audit.chain_hash_of(audit.GENESIS_LINK, row) == row.chain_hash


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sealers_do_not_fork_the_chain():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers and its test database is not shared between threads; needs PostgreSQL")
    write(300)
    results, errors = run_at_once(lambda: audit.seal(batch_size=7), threads=4)
    assert errors == []
    assert sum(results) == 300
    seqs = list(PersonalDataAccess.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 301))
    assert audit.verify().ok


# --- Verification ---------------------------------------------------------------------------------


def test_it_reports_an_intact_chain():
    write(4)
    assert "OK: 4 rows verified (seq 1–4)" in verify_command()


def test_it_seals_pending_rows_before_verifying_unless_told_not_to():
    write(2)
    output = verify_command("--no-seal")
    assert "OK: 0 rows verified" in output and "2 rows are not sealed yet" in output
    assert "OK: 2 rows verified (seq 1–2)" in verify_command()


def test_it_detects_a_row_edited_through_a_queryset_update():
    rows = write(5)
    audit.seal()
    PersonalDataAccess.objects.filter(pk=rows[2].pk).update(field="bank_account")
    message = broken()
    assert f"chain broken at seq 3 (row id {rows[2].pk}): edited" in message
    result = audit.verify()
    assert [(problem.seq, problem.kind) for problem in result.problems] == [(3, audit.EDITED)]


def test_it_detects_a_row_edited_in_sql():
    rows = write(4)
    audit.seal()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {PersonalDataAccess._meta.db_table} SET action = %s WHERE id = %s",  # noqa: S608
            ["export", rows[1].pk],
        )
    assert f"chain broken at seq 2 (row id {rows[1].pk}): edited" in broken()


def test_it_detects_an_edited_detail_that_is_not_an_erasure():
    rows = write(3)
    audit.seal()
    PersonalDataAccess.objects.filter(pk=rows[0].pk).update(detail="something else")
    result = audit.verify()
    assert [(p.seq, p.row_id, p.kind) for p in result.problems] == [(1, rows[0].pk, audit.EDITED)]
    assert "detail" in str(result.problems[0])


def test_it_accepts_fields_blanked_by_a_personal_data_erasure():
    rows = write(3)
    audit.seal()
    # What customers.privacy does on erasure: blank the label, the detail and the address.
    PersonalDataAccess.objects.filter(pk=rows[1].pk).update(object_label="", detail="", ip_address=None)
    result = audit.verify()
    assert result.ok and result.erased == 1
    assert "OK: 3 rows verified (seq 1–3)" in verify_command()


def test_it_detects_a_deleted_row():
    rows = write(5)
    audit.seal()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {PersonalDataAccess._meta.db_table} WHERE id = %s", [rows[2].pk])  # noqa: S608
    message = broken()
    assert "chain broken at seq 3: missing: seq 3 deleted" in message
    assert f"resumes at seq 4 (row id {rows[3].pk})" in message


def test_it_detects_rows_deleted_at_the_start_without_an_anchor():
    write(5)
    audit.seal()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {PersonalDataAccess._meta.db_table} WHERE seq <= 2")  # noqa: S608
    assert "chain broken at seq 1: missing: seq 1–2 deleted" in broken()


def test_it_detects_a_row_inserted_with_a_forged_seq_and_hash():
    rows = write(3)
    audit.seal()
    forged = log_personal_data_access(user=None, action="reveal", object_type="customers.customer", object_id=9)
    PersonalDataAccess.objects.filter(pk=forged.pk).update(seq=4, chain_hash="a" * 64)
    assert f"chain broken at seq 4 (row id {forged.pk})" in broken()
    # In the middle: the later rows renumbered to make room; the forged row does not chain, and
    # the row after it no longer chains to it.
    PersonalDataAccess.objects.filter(pk=forged.pk).update(seq=None)
    for row in reversed(rows[1:]):
        PersonalDataAccess.objects.filter(pk=row.pk).update(seq=row.pk - rows[0].pk + 2)
    PersonalDataAccess.objects.filter(pk=forged.pk).update(seq=2)
    result = audit.verify()
    assert (result.problems[0].seq, result.problems[0].row_id, result.problems[0].kind) == (
        2,
        forged.pk,
        audit.INSERTED,
    )
    assert "chain broken at seq 2" in broken("--no-seal")


# --- Immutability ---------------------------------------------------------------------------------


def test_it_refuses_to_save_an_existing_row():
    row = write(1)[0]
    row.field = "bank_account"
    with pytest.raises(ImmutableAuditLog):
        row.save()
    assert PersonalDataAccess.objects.get().field == "mobile"


def test_it_refuses_to_delete_a_row_or_a_queryset():
    row = write(1)[0]
    with pytest.raises(ImmutableAuditLog):
        row.delete()
    with pytest.raises(ImmutableAuditLog):
        PersonalDataAccess.objects.all().delete()
    assert PersonalDataAccess.objects.count() == 1


def test_the_admin_shows_the_log_but_refuses_to_change_or_delete(administrator, client_for):
    row = write(1)[0]
    audit.seal()
    client = client_for(administrator)
    change = f"/admin/cims/personaldataaccess/{row.pk}/change/"
    assert client.get("/admin/cims/personaldataaccess/").status_code == 200
    page = client.get(change)
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.post(change, {"field": "bank_account"}).status_code == 403
    assert client.post(f"/admin/cims/personaldataaccess/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/cims/personaldataaccess/add/").status_code == 403
    listing = client.get("/admin/cims/personaldataaccess/")
    assert b"delete_selected" not in listing.content and b'name="action"' not in listing.content
    assert PersonalDataAccess.objects.get().field == "mobile"
    anchor = AuditAnchor.objects.create(seq=1, chain_hash="0" * 64)
    assert client.get(f"/admin/cims/auditanchor/{anchor.pk}/change/").status_code == 200
    assert client.post(f"/admin/cims/auditanchor/{anchor.pk}/change/", {"seq": 2}).status_code == 403
    assert client.post(f"/admin/cims/auditanchor/{anchor.pk}/delete/", {"post": "yes"}).status_code == 403


def test_no_historical_record_is_editable_in_the_admin():
    from django.conf import settings
    from django.contrib import admin
    from simple_history.models import HistoricalChanges

    # History pages may be viewed; editing a historical record needs SIMPLE_HISTORY_EDIT.
    assert not getattr(settings, "SIMPLE_HISTORY_EDIT", False)
    assert not [model for model in admin.site._registry if issubclass(model, HistoricalChanges)]


# --- The nightly task ----------------------------------------------------------------------------


def test_the_verify_task_passes_on_an_intact_chain(administrator):
    from cims import tasks_audit

    write(2)
    assert tasks_audit.verify.apply().get() == "OK: 2 rows verified (seq 1–2)"
    assert not Notification.objects.exists()


def test_the_verify_task_alerts_administrators_and_fails_on_a_break(administrator, manager, mailoutbox, settings):
    from cims import tasks_audit

    settings.ADMINS = [("ops", "ops@example.com")]
    rows = write(3)
    audit.seal()
    PersonalDataAccess.objects.filter(pk=rows[1].pk).update(rows=99)
    outcome = tasks_audit.verify.apply()
    assert outcome.failed() and isinstance(outcome.result, audit.AuditChainBroken)
    alert = Notification.objects.get()
    assert alert.user == administrator and f"chain broken at seq 2 (row id {rows[1].pk})" in alert.body
    assert alert.url == "/audit/access-log/"
    assert len(mailoutbox) == 1 and "seq 2" in mailoutbox[0].body
    # Run again the same day: one notification per administrator and day, not one per run.
    tasks_audit.verify.apply()
    assert Notification.objects.count() == 1


def test_the_seal_task_seals():
    from cims import tasks_audit

    write(2)
    tasks_audit.seal.apply()
    assert not PersonalDataAccess.objects.filter(seq__isnull=True).exists()


def test_it_walks_in_chunks_without_loading_the_log():
    write(7)
    audit.seal()
    result = audit.verify(chunk_size=2)
    assert result.ok and (result.rows, result.first_seq, result.last_seq) == (7, 1, 7)


def test_it_keeps_time_with_microseconds_in_the_hash():
    row = write(1)[0]
    audit.seal()
    PersonalDataAccess.objects.filter(pk=row.pk).update(created_at=row.created_at + datetime.timedelta(microseconds=1))
    assert not audit.verify().ok
