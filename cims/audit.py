"""The tamper-evident access log: sealing, verification, retention, and recording who looked.

Rows of ``PersonalDataAccess`` are written unsealed (one cheap INSERT, ``seq`` null). The sealing
job (``seal``, every minute) numbers them in id order and stores in ``chain_hash`` a keyed hash
that links each row to the one before it, so that an edited, inserted or deleted row shows:

``chain_hash`` is 64 hex characters in two parts:

* the **link** (first 34): ``HMAC(key, "link" ‖ previous link ‖ canonical core)``. The core is
  every column that never changes legitimately: id, seq, user, action, object type and id, field,
  rows, masked, time. A changed core column, a row inserted with a forged hash or a missing
  sequence number breaks the chain.
* three **field tags** (10 each) for the columns a personal-data erasure (``customers.privacy``)
  blanks on purpose: object label, detail and IP address. Each is ``HMAC(key, name ‖ link ‖
  value)``. A blanked value is reported as erased, not as tampering; any other change to such a
  column is reported as an edit.

The key is derived from ``BLIND_INDEX_KEY`` with HKDF, so someone with database access alone can
neither recompute the chain after editing a row nor forge a row. The first row links to a fixed
genesis value or, after retention removed the oldest rows, to the newest ``AuditAnchor``.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.signals import setting_changed
from django.db import connection, transaction
from django.dispatch import receiver
from django.utils import timezone

from cims.models import AuditAnchor, PersonalDataAccess, log_personal_data_access

log = logging.getLogger("cims.security")

CHAIN_INFO = b"cims audit chain v1"
LINK_CHARS = 34
TAG_CHARS = 10
GENESIS_LINK = "0" * LINK_CHARS
# The columns a personal-data erasure may blank; each has its own tag in the chain hash.
ERASABLE_FIELDS = ("object_label", "detail", "ip_address")
CORE_FIELDS = ("id", "seq", "user_id", "action", "object_type", "object_id", "field", "rows", "masked", "created_at")
SEAL_BATCH = 2000
VERIFY_CHUNK = 2000
DELETE_BATCH = 5000
# pg_advisory_xact_lock key of the sealing and retention jobs ("CIMSAUDT").
LOCK_KEY = 0x43494D5341554454
# Customers named per identifier search; ``rows`` on each SEARCH row carries the total found.
SEARCH_LOG_CAP = 20


@lru_cache(maxsize=1)
def chain_key() -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=CHAIN_INFO).derive(settings.BLIND_INDEX_KEY)


@receiver(setting_changed)
def _reset_key(setting, **kwargs):
    if setting == "BLIND_INDEX_KEY":
        chain_key.cache_clear()


# --- Hashing --------------------------------------------------------------------------------------


def _plain(value):
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).isoformat(timespec="microseconds")
    return value


def canonical(row: PersonalDataAccess) -> bytes:
    """The core columns of ``row`` as JSON with sorted keys: the same bytes on every database."""
    data = {name: _plain(getattr(row, name)) for name in CORE_FIELDS}
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _mac(*parts: bytes) -> str:
    mac = hmac.new(chain_key(), digestmod=hashlib.sha256)
    for part in parts:
        # Length-prefixed, so that no two sequences of parts give the same input.
        mac.update(len(part).to_bytes(8, "big"))
        mac.update(part)
    return mac.hexdigest()


def link_of(previous_link: str, row: PersonalDataAccess) -> str:
    return _mac(b"link", previous_link.encode("ascii"), canonical(row))[:LINK_CHARS]


def field_tag(link: str, name: str, value) -> str:
    text = "" if value is None else str(value)
    return _mac(b"field", name.encode("ascii"), link.encode("ascii"), text.encode("utf-8"))[:TAG_CHARS]


def chain_hash_of(previous_link: str, row: PersonalDataAccess) -> str:
    link = link_of(previous_link, row)
    return link + "".join(field_tag(link, name, getattr(row, name)) for name in ERASABLE_FIELDS)


def _is_blank(value) -> bool:
    return value is None or value == ""


# --- Sealing --------------------------------------------------------------------------------------


def _lock() -> None:
    """Serialise sealers and retention. On SQLite the IMMEDIATE transaction already does it."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


def _chain_head() -> tuple[int, str]:
    """The sequence number and link the next sealed row follows."""
    last = (
        PersonalDataAccess.objects.filter(seq__isnull=False).order_by("-seq").values_list("seq", "chain_hash").first()
    )
    if last is not None:
        return last[0], last[1][:LINK_CHARS]
    anchor = AuditAnchor.objects.order_by("-seq").values_list("seq", "chain_hash").first()
    if anchor is not None:
        return anchor[0], anchor[1][:LINK_CHARS]
    return 0, GENESIS_LINK


def seal(*, batch_size: int = SEAL_BATCH) -> int:
    """Number and hash every unsealed row in id order; returns how many were sealed."""
    sealed = 0
    while True:
        with transaction.atomic():
            _lock()
            rows = list(PersonalDataAccess.objects.filter(seq__isnull=True).order_by("id")[:batch_size])
            if not rows:
                return sealed
            seq, link = _chain_head()
            for row in rows:
                seq += 1
                row.seq = seq
                row.chain_hash = chain_hash_of(link, row)
                link = row.chain_hash[:LINK_CHARS]
            _store_seals(rows)
        sealed += len(rows)
        if len(rows) < batch_size:
            return sealed


def _store_seals(rows: list[PersonalDataAccess]) -> None:
    """Write the batch's numbers and hashes in one statement.

    On PostgreSQL an UPDATE … FROM (VALUES …): ``bulk_update``'s CASE WHEN per row cost 90 % of
    sealing a million rows (Django building the expressions, then PostgreSQL matching each row
    against every WHEN; docs/performance.md). SQLite (small quick-start logs) keeps ``bulk_update``.
    """
    if connection.vendor != "postgresql":
        PersonalDataAccess.objects.bulk_update(rows, ["seq", "chain_hash"])
        return
    table = connection.ops.quote_name(PersonalDataAccess._meta.db_table)
    values = ", ".join(["(%s, %s, %s)"] * len(rows))
    params = [value for row in rows for value in (row.pk, row.seq, row.chain_hash)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS t SET seq = v.seq, chain_hash = v.chain_hash "  # noqa: S608  # nosec B608  # our own table name, values are parameters
            f"FROM (VALUES {values}) AS v(id, seq, chain_hash) WHERE t.id = v.id",
            params,
        )


# --- Verification ---------------------------------------------------------------------------------

EDITED = "edited"
INSERTED = "inserted"
MISSING = "missing"


@dataclass
class Problem:
    seq: int
    row_id: int | None
    kind: str  # EDITED, INSERTED or MISSING
    detail: str

    def __str__(self) -> str:
        where = f"seq {self.seq} (row id {self.row_id})" if self.row_id is not None else f"seq {self.seq}"
        return f"chain broken at {where}: {self.kind}: {self.detail}"


@dataclass
class VerifyResult:
    rows: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    anchor_seq: int | None = None
    # Rows at or before the anchor still present: not covered by the walk (retention keeps none).
    older_rows: int = 0
    unsealed: int = 0
    erased: int = 0  # rows whose erasable columns a personal-data erasure blanked
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            span = f" (seq {self.first_seq}–{self.last_seq})" if self.rows else ""
            return f"OK: {self.rows} rows verified{span}"
        return str(self.problems[0])


class AuditChainBroken(Exception):
    """The chain does not verify. Only the message travels (Celery pickles a task's exception)."""

    def __init__(self, message: str, result: VerifyResult | None = None):
        super().__init__(message)
        self.result = result

    @classmethod
    def of(cls, result: VerifyResult) -> AuditChainBroken:
        return cls("; ".join(str(problem) for problem in result.problems[:5]), result)


def verify(*, up_to: int | None = None, chunk_size: int = VERIFY_CHUNK, max_problems: int = 50) -> VerifyResult:
    """Walk the sealed rows in seq order from the newest anchor (streaming, constant memory).

    A row whose link does not match is classified by the row after it: if that one links to the
    stored hash, the row's content was edited after sealing; if not, the row was inserted (or its
    hash replaced). A gap in the numbers means rows were deleted. The walk goes on after a break so
    that every break is named, adopting the stored hash as the new starting point.
    """
    anchor = AuditAnchor.objects.order_by("-seq").values_list("seq", "chain_hash").first()
    prev_seq, prev_link = (anchor[0], anchor[1][:LINK_CHARS]) if anchor else (0, GENESIS_LINK)
    result = VerifyResult(anchor_seq=anchor[0] if anchor else None)
    sealed = PersonalDataAccess.objects.filter(seq__isnull=False)
    if anchor:
        result.older_rows = sealed.filter(seq__lte=prev_seq).count()
    result.unsealed = PersonalDataAccess.objects.filter(seq__isnull=True).count()
    rows = sealed.filter(seq__gt=prev_seq)
    if up_to is not None:
        rows = rows.filter(seq__lte=up_to)
    suspect: PersonalDataAccess | None = None

    def report(problem: Problem) -> None:
        if len(result.problems) < max_problems:
            result.problems.append(problem)

    for row in rows.order_by("seq").iterator(chunk_size=chunk_size):
        result.rows += 1
        result.first_seq = row.seq if result.first_seq is None else result.first_seq
        result.last_seq = row.seq
        stored_link = row.chain_hash[:LINK_CHARS]
        if row.seq != prev_seq + 1:
            if suspect is not None:
                report(_unclassified(suspect))
                suspect = None
            missing = f"seq {prev_seq + 1}" if row.seq == prev_seq + 2 else f"seq {prev_seq + 1}–{row.seq - 1}"
            report(
                Problem(
                    prev_seq + 1,
                    None,
                    MISSING,
                    f"{missing} deleted; the chain resumes at seq {row.seq} (row id {row.id})",
                )
            )
            # The row after a gap cannot be checked against its missing predecessor.
            prev_seq, prev_link = row.seq, stored_link
            continue
        linked = link_of(prev_link, row) == stored_link
        if suspect is not None:
            if linked:
                report(Problem(suspect.seq, suspect.id, EDITED, "its content no longer matches its hash"))
            else:
                report(
                    Problem(
                        suspect.seq,
                        suspect.id,
                        INSERTED,
                        "its hash does not chain, and the next row does not chain to it",
                    )
                )
                linked = True  # the row after an inserted one cannot be checked either
            suspect = None
        if not linked:
            suspect = row
        else:
            erased = _check_fields(row, stored_link, report)
            result.erased += erased
        prev_seq, prev_link = row.seq, stored_link
    if suspect is not None:
        report(_unclassified(suspect))
    return result


def _unclassified(row: PersonalDataAccess) -> Problem:
    # No next row to tell an edit from an insertion (the last row, or the last before a gap).
    return Problem(
        row.seq, row.id, EDITED, "its hash does not match its content (edited, or inserted with a forged hash)"
    )


def _check_fields(row: PersonalDataAccess, link: str, report: Callable[[Problem], None]) -> int:
    erased = 0
    tags = row.chain_hash[LINK_CHARS:]
    for index, name in enumerate(ERASABLE_FIELDS):
        tag = tags[index * TAG_CHARS : (index + 1) * TAG_CHARS]
        value = getattr(row, name)
        if field_tag(link, name, value) == tag:
            continue
        if _is_blank(value):
            erased = 1
        else:
            report(Problem(row.seq, row.id, EDITED, f"its {name} no longer matches its hash"))
    return erased


# --- Retention ------------------------------------------------------------------------------------


@dataclass
class RetentionResult:
    removed_rows: int = 0
    anchor: AuditAnchor | None = None
    history_removed: dict[str, int] = field(default_factory=dict)


def apply_retention(*, now: datetime.datetime | None = None) -> RetentionResult:
    result = RetentionResult()
    now = now or timezone.now()
    result.removed_rows, result.anchor = cut_access_log(
        before=now - datetime.timedelta(days=settings.AUDIT_RETENTION_DAYS)
    )
    if settings.HISTORY_RETENTION_DAYS:
        result.history_removed = prune_history(before=now - datetime.timedelta(days=settings.HISTORY_RETENTION_DAYS))
    return result


def cut_access_log(*, before: datetime.datetime) -> tuple[int, AuditAnchor | None]:
    """Delete the sealed rows older than ``before`` up to a seq cut point, recording an anchor.

    The cut is the longest run of sealed rows from the start of the chain that are all older than
    ``before`` (times are not strictly in seq order). Unsealed rows are never deleted. The part
    to be removed is verified first: a tampered row is never erased by retention.
    """
    with transaction.atomic():
        _lock()
        sealed = PersonalDataAccess.objects.filter(seq__isnull=False)
        first_kept = sealed.filter(created_at__gte=before).order_by("seq").values_list("seq", flat=True).first()
        if first_kept is None:
            cut = sealed.order_by("-seq").values_list("seq", flat=True).first()
        else:
            cut = first_kept - 1
        anchor_seq = AuditAnchor.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        if cut is None or cut <= anchor_seq:
            return 0, None
        checked = verify(up_to=cut)
        if not checked.ok:
            raise AuditChainBroken.of(checked)
        last = sealed.filter(seq=cut).first()
        if last is None:  # the row the anchor would name was deleted: never cut over a gap
            raise AuditChainBroken(f"chain broken at seq {cut}: {MISSING}: the row at the retention cut is gone")
        removed = 0
        while True:
            batch = list(sealed.filter(seq__lte=cut).order_by("seq").values_list("pk", flat=True)[:DELETE_BATCH])
            if not batch:
                break
            deleted, _ = PersonalDataAccess.objects.filter(pk__in=batch)._delete_for_retention()
            removed += deleted
        anchor = AuditAnchor.objects.create(
            seq=cut,
            chain_hash=last.chain_hash,
            removed_rows=removed,
            reason=f"retention: rows before {before:%Y-%m-%d} ({settings.AUDIT_RETENTION_DAYS} days)",
        )
    log.info("audit retention removed %s access-log rows up to seq %s", removed, cut)
    return removed, anchor


def prune_history(*, before: datetime.datetime) -> dict[str, int]:
    """Delete change-history records older than ``before`` from every historical model, in batches."""
    from django.apps import apps
    from simple_history.models import HistoricalChanges

    removed: dict[str, int] = {}
    for model in apps.get_models():
        if not issubclass(model, HistoricalChanges) or not hasattr(model, "history_date"):
            continue
        old = model._default_manager.filter(history_date__lt=before)
        total = 0
        while True:
            batch = list(old.order_by("pk").values_list("pk", flat=True)[:DELETE_BATCH])
            if not batch:
                break
            with transaction.atomic():
                model._default_manager.filter(pk__in=batch).delete()
            total += len(batch)
        if total:
            removed[model._meta.label] = total
    return removed


# --- Recording who looked -------------------------------------------------------------------------


def after_response(response, callback: Callable[[], None]):
    """Run ``callback`` once the response has been sent (the server closes it), not during the view.

    Django calls each of the response's resource closers from ``close()``, which the WSGI server
    and the test client call after the body went out; an exception there would be swallowed
    silently, so it is logged here.
    """

    def run() -> None:
        try:
            callback()
        except Exception:  # noqa: BLE001 - the page was served; the failure must still be seen
            log.exception("writing the access log after a response failed")

    response._resource_closers.append(run)
    return response


def log_view_later(
    request, response, *, object_type: str, object_id, object_label: str, detail: Callable[[], str] | None = None
):
    """A VIEW row for a page that shows personal data, once a successful GET has been served.

    An htmx request for the same URL is a partial refresh of a page already logged: not logged again.
    ``detail`` is called after the response too (e.g. to name the access request the page was
    opened under), so its query is not on the page's time either.
    """
    if request.method != "GET" or response.status_code != 200 or request.headers.get("HX-Request"):
        return response
    user = request.user
    return after_response(
        response,
        lambda: log_personal_data_access(
            user=user,
            action=PersonalDataAccess.Action.VIEW,
            object_type=object_type,
            object_id=object_id,
            object_label=object_label,
            detail=detail() if detail else "",
            request=request,
        ),
    )


def log_search_later(request, response, *, kind: str, found, object_type: str, label: Callable):
    """SEARCH rows for a search by an exact personal identifier: one per object found (the first
    ``SEARCH_LOG_CAP``), each with ``rows`` = the total found and ``field`` = the kind of identifier.
    The searched value itself is never written. ``found`` is a queryset evaluated after the response;
    ``label(obj)`` names an object by its code."""
    if not kind or request.method != "GET" or response.status_code != 200:
        return response
    user = request.user

    def write() -> None:
        objects = list(found.order_by("pk")[:SEARCH_LOG_CAP])
        total = len(objects) if len(objects) < SEARCH_LOG_CAP else found.count()
        entries = [
            PersonalDataAccess(
                user=user if user.is_authenticated else None,
                action=PersonalDataAccess.Action.SEARCH,
                object_type=object_type,
                object_id=str(obj.pk),
                object_label=label(obj)[:64],
                field=kind,
                rows=total,
                ip_address=_ip(request),
            )
            for obj in objects
        ]
        if not entries:
            # Nothing found is worth knowing too: someone probed for an identifier.
            entries = [
                PersonalDataAccess(
                    user=user if user.is_authenticated else None,
                    action=PersonalDataAccess.Action.SEARCH,
                    object_type=object_type,
                    field=kind,
                    rows=0,
                    ip_address=_ip(request),
                )
            ]
        PersonalDataAccess.objects.bulk_create(entries)

    return after_response(response, write)


def _ip(request):
    from cims.request_ip import client_ip

    return client_ip(request)
