"""The customer import: upload → dry run (check) → confirm (commit), as a resumable job.

Why not ``Resource.import_data`` of django-import-export, though its Resource and Widgets describe
our columns (customers.resources): ``import_data`` saves row by row (a query or more per row and a
history row through ``save()``); its confirm step runs the whole dry run again, so a user may get
something other than what the preview showed and a large file is read twice; its bulk mode skips
``save()``, so django-simple-history writes nothing; and the admin's upload path joins the file's
chunks into one string (quadratic on large files). So the engine calls the resource's widgets
cell by cell itself, reads the file once for the dry run, stores the plan, and the confirm step
writes exactly that plan in bulk:

* ``job_create`` sniffs the file (format, encoding, header, limits) and stores it encrypted and
  compressed in ImportChunk pieces, so a worker on another machine can read it and no plaintext
  personal data sits on disk.
* ``job_check`` streams the rows once, cleans them with the widgets (the form's normalisation),
  de-duplicates them within the file and against the archive batch by batch (one query per key
  kind per batch over the blind indexes, never per row) and stores each batch's plan (action,
  target, normalised values) and its rejected rows as encrypted chunks.
* ``job_commit`` writes the plan batch by batch, each batch in one transaction that also advances
  the job's counters: a crash, even ``kill -9``, leaves whole batches, and the job resumes after the
  last committed one. History rows are written in bulk with the import as the change reason.

A run owns the job through a token in ``task_id``: a run started later (a resume, a redelivered
task) takes the job over, and the earlier one stops at its next batch.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import logging
import uuid
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from cims.crypto import EncryptedTextField, blind_index, decrypt_bytes, encrypt, encrypt_bytes
from cims.models import PersonalDataAccess, log_personal_data_access, next_sequence_block
from cims.pgcopy import copy_text
from customers.importing import columns as spec
from customers.importing import files
from customers.importing.files import ImportRefused
from customers.importing.rows import ENTERPRISE_FIELDS, RowCleaner
from customers.models import Customer, ImportChunk, ImportJob, name_grams

logger = logging.getLogger("cims.imports")

BATCH_ROWS = 5000  # rows per plan chunk and per committed transaction
INSERT_BATCH = 1000
KEPT_MESSAGES = 1000  # rejected rows and duplicates listed on the job itself
STALL_SECONDS = 120
SOURCE, PLAN, REJECTS = ImportChunk.SOURCE, ImportChunk.PLAN, ImportChunk.REJECTS
REASON_HEADER = "错误原因"

CREATE, UPDATE, SKIP = "create", "update", "skip"
# Customer fields a plan row may carry (besides tags, owner and custom fields).
PLAIN_FIELDS = (
    "kind",
    "name",
    "company",
    "gender",
    "mobile",
    "phone",
    "fax",
    "email",
    "id_number",
    "bank_account",
    "city",
    "address",
    "status",
    "notes",
    "scale",
)
DATE_FIELDS = ("birth_date",)
FK_FIELDS = (
    "province",
    "level",
    "source",
    "customer_type",
    "industry",
    "enterprise_type",
    "enterprise_nature",
)
BLIND_INDEXES = (
    ("phone_bidx", "phone", "phone"),
    ("mobile_bidx", "mobile", "phone"),
    ("email_bidx", "email", "email"),
    ("id_number_bidx", "id_number", "id_number"),
)


class _Superseded(Exception):
    """Another run took the job over (resume, redelivered task) or it was cancelled."""


# --- Chunks --------------------------------------------------------------------------------------


def _aad(job_id: int, kind: str, seq: int) -> str:
    return f"import:{job_id}:{kind}:{seq}"


def _store(job_id: int, kind: str, seq: int, data: bytes, rows: int = 0) -> None:
    sealed = encrypt_bytes(zlib.compress(data, 1), aad=_aad(job_id, kind, seq))
    ImportChunk.objects.create(job_id=job_id, kind=kind, seq=seq, rows=rows, data=sealed)


def _unseal(job_id: int, kind: str, seq: int, data) -> bytes:
    return zlib.decompress(decrypt_bytes(bytes(data), aad=_aad(job_id, kind, seq)))


def _chunks(job: ImportJob, kind: str) -> Iterator[tuple[int, int, bytes]]:
    """(seq, rows, plaintext) of the job's chunks of one kind, in order, one loaded at a time."""
    pieces = list(ImportChunk.objects.filter(job=job, kind=kind).order_by("seq").values_list("pk", "seq", "rows"))
    for pk, seq, rows in pieces:
        data = ImportChunk.objects.filter(pk=pk).values_list("data", flat=True).get()
        yield seq, rows, _unseal(job.pk, kind, seq, data)


def _source_file(job: ImportJob) -> io.BufferedReader:
    pieces = list(ImportChunk.objects.filter(job=job, kind=SOURCE).order_by("seq").values_list("seq", "pk", "rows"))

    def load(index: int) -> bytes:
        seq, pk, _size = pieces[index]
        data = ImportChunk.objects.filter(pk=pk).values_list("data", flat=True).get()
        return _unseal(job.pk, SOURCE, seq, data)

    reader = files.ChunkReader([size for _seq, _pk, size in pieces], load)
    return io.BufferedReader(reader, buffer_size=256 * 1024)


def _json(data) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


# --- Upload --------------------------------------------------------------------------------------


def _columns() -> list[spec.Column]:
    from customers.forms import active_custom_fields

    return list(spec.IMPORT_COLUMNS) + spec.custom_columns(active_custom_fields())


def _raw_file(upload):
    """The binary file object behind a Django UploadedFile (or the file itself)."""
    raw = getattr(upload, "file", upload)
    return raw if hasattr(raw, "seek") else upload


def _size(upload, raw) -> int:
    size = getattr(upload, "size", None)
    if size is None:
        raw.seek(0, io.SEEK_END)
        size = raw.tell()
        raw.seek(0)
    return size


def _read_full(raw, size: int) -> bytes:
    parts, left = [], size
    while left:
        data = raw.read(left)
        if not data:
            break
        parts.append(data)
        left -= len(data)
    return b"".join(parts)


def _header_and_count(fileobj, file_format: str, encoding: str) -> tuple[spec.HeaderMapping, int | None]:
    """The header mapping, and the number of data rows (None when only the check can count them)."""
    rows = files.iter_rows(fileobj, file_format, encoding)
    try:
        return _scan(rows, fileobj, file_format)
    finally:
        rows.close()


def _scan(rows, fileobj, file_format: str) -> tuple[spec.HeaderMapping, int | None]:
    first = next(rows, None)
    if first is None:
        raise ImportRefused(_("The file is empty."))
    mapping = spec.map_headers(first[1], _columns())
    if mapping.missing:
        raise ImportRefused(
            _("The file lacks required columns: %(columns)s. Download the template to see the headers.")
            % {"columns": "、".join(column.header for column in mapping.missing)}
        )
    limit = settings.IMPORT_MAX_ROWS
    if file_format == files.XLSX:
        if next(rows, None) is None:
            raise ImportRefused(_("The file has a header row but no data rows."))
        rows.close()  # the workbook is opened again below
        dimension = files.xlsx_dimension_rows(fileobj)
        # The stored dimension may count formatted empty rows: a guess for the progress bar; the
        # check counts the real rows (and enforces the limit).
        return mapping, max(1, dimension - 1) if dimension else None
    count = sum(1 for _ in islice(rows, limit + 1))
    if count == 0:
        raise ImportRefused(_("The file has a header row but no data rows."))
    if count > limit:
        raise ImportRefused(_("The file has more than %(limit)s rows; split it into smaller files.") % {"limit": limit})
    return mapping, count


def job_create(*, upload, file_name: str, by, owner=None, on_duplicate: str = "skip") -> ImportJob:
    """Check and store an uploaded file; the job is UPLOADED (nothing of it imported yet)."""
    if not by.has_perm("customers.import_customers"):
        raise ImportRefused(_("You may not import customers."))
    if on_duplicate not in ImportJob.OnDuplicate.values:
        raise ImportRefused(_("Choose what to do with duplicates."))
    if owner is not None and owner.pk != by.pk:
        if not by.has_perm("customers.change_all_customers"):
            raise ImportRefused(_("You may import customers only for yourself."))
        if not owner.is_active or not owner.has_perm("customers.change_customer"):
            raise ImportRefused(_("The owner must be an active user who may edit customers."))
    raw = _raw_file(upload)
    size = _size(upload, raw)
    if size == 0:
        raise ImportRefused(_("The file is empty."))
    limit_mb = settings.IMPORT_MAX_UPLOAD_MB
    if size > limit_mb * 1024 * 1024:
        raise ImportRefused(_("The file is larger than %(size)s MB; split it into smaller files.") % {"size": limit_mb})
    file_format = files.sniff_format(raw)

    with transaction.atomic():
        job = ImportJob.objects.create(
            created_by=by,
            owner=owner,
            on_duplicate=on_duplicate,
            file_name=(file_name or "upload")[:255],
            file_size=size,
            file_format=file_format,
            file_sha256="",
        )
        digest = hashlib.sha256()
        sniffer = files.EncodingSniffer()
        raw.seek(0)
        seq = 0
        while data := _read_full(raw, files.CHUNK_SIZE):
            digest.update(data)
            if file_format == files.CSV:
                sniffer.feed(data)
            _store(job.pk, SOURCE, seq, data, rows=len(data))  # rows: the piece's plaintext size
            seq += 1
        encoding = ""
        if file_format == files.CSV:
            sniffer.feed(b"", final=True)
            encoding = files.detect_encoding(sniffer, raw)
        mapping, count = _header_and_count(raw, file_format, encoding)
        job.file_sha256 = digest.hexdigest()
        job.encoding = encoding
        job.columns = mapping.as_json()
        job.total_rows = count or 0
        previous = previous_import_of(job)
        if previous is not None:
            job.message = already_imported_message(previous)
        job.save(update_fields=["file_sha256", "encoding", "columns", "total_rows", "message"])
    return job


def already_imported_message(previous: ImportJob) -> str:
    when = timezone.localtime(previous.finished_at or previous.created_at)
    return _("This same file was already imported as import #%(number)s on %(date)s.") % {
        "number": previous.pk,
        "date": when.strftime("%Y-%m-%d %H:%M"),
    }


def previous_import_of(job: ImportJob) -> ImportJob | None:
    """An earlier finished import of the same file (same SHA-256) that the job's importer can see."""
    if not job.file_sha256:
        return None
    return (
        jobs_for(job.created_by)
        .filter(file_sha256=job.file_sha256, status=ImportJob.Status.DONE)
        .exclude(pk=job.pk)
        .order_by("-finished_at", "-pk")
        .first()
    )


# --- Run ownership -------------------------------------------------------------------------------


def _claim(job: ImportJob, status: str, **fields) -> str:
    token = uuid.uuid4().hex
    now = timezone.now()
    ImportJob.objects.filter(pk=job.pk).update(task_id=token, status=status, heartbeat_at=now, **fields)
    job.task_id, job.status, job.heartbeat_at = token, status, now
    for name, value in fields.items():
        setattr(job, name, value)
    return token


def _progress(job: ImportJob, token: str, **fields) -> None:
    now = timezone.now()
    if not ImportJob.objects.filter(pk=job.pk, task_id=token).update(heartbeat_at=now, **fields):
        raise _Superseded
    job.heartbeat_at = now
    for name, value in fields.items():
        setattr(job, name, value)


def _fail(job: ImportJob, token: str | None, message: str) -> None:
    query = ImportJob.objects.filter(pk=job.pk)
    if token:
        query = query.filter(task_id=token)
    query.update(status=ImportJob.Status.FAILED, message=message, heartbeat_at=timezone.now())
    job.refresh_from_db()


# --- Check (dry run) -----------------------------------------------------------------------------


def _batches(rows: Iterable, size: int) -> Iterator[list]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def _match(columns: list[str], digests) -> list[tuple]:
    """(pk, *columns) of live customers whose blind index in any of ``columns`` is one of ``digests``.

    On PostgreSQL one array parameter (``= ANY(%s)``) instead of thousands of placeholders.
    """
    if connection.vendor != "postgresql":
        q = Q()
        for column in columns:
            q |= Q(**{f"{column}__in": list(digests)})
        return list(Customer.objects.filter(q).values_list("pk", *columns))
    quote = connection.ops.quote_name
    wanted = list(digests)
    where = " OR ".join(f"{quote(column)} = ANY(%s)" for column in columns)
    sql = (
        f"SELECT id, {', '.join(quote(c) for c in columns)} FROM {quote(Customer._meta.db_table)} "  # noqa: S608 - our names
        f"WHERE deleted_at IS NULL AND ({where})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [wanted] * len(columns))
        return cursor.fetchall()


class _Planner:
    """The dry run's state across batches: the in-file keys seen and the counters."""

    def __init__(self, job: ImportJob, cleaner: RowCleaner):
        self.job = job
        self.cleaner = cleaner
        self.importer = job.created_by
        self.policy = job.on_duplicate
        self.seen: dict[int, int] = {}  # hash of a duplicate key → first line having it
        self.targets: dict[int, int] = {}  # customer updated → line updating it
        self.counts = {"to_create": 0, "to_update": 0, "to_skip": 0, "rejected": 0}
        self.errors: list[dict] = []
        self.duplicates: list[dict] = []

    @staticmethod
    def keys(values: dict) -> list[tuple]:
        keys = [("p", values[name]) for name in ("phone", "mobile") if values.get(name)]
        for name in ("email", "id_number"):
            if values.get(name):
                keys.append((name, values[name]))
        if values.get("name") and values.get("company"):
            keys.append(("n", values["name"], values["company"]))
        return keys

    def existing(self, rows) -> dict[tuple, set[int]]:
        """For every key of these rows: the ids of live customers having it (a query per key kind)."""
        found: dict[tuple, set[int]] = {}
        index = blind_index
        phones = {row.values[n] for row in rows for n in ("phone", "mobile") if row.values.get(n)}
        if phones:
            digests = {index("phone", value): value for value in phones}
            for pk, phone, mobile in _match(["phone_bidx", "mobile_bidx"], digests):
                for digest in (phone, mobile):
                    if digest in digests:
                        found.setdefault(("p", digests[digest]), set()).add(pk)
        for name in ("email", "id_number"):
            wanted = {row.values[name] for row in rows if row.values.get(name)}
            if wanted:
                digests = {index(name, value): value for value in wanted}
                for pk, digest in _match([f"{name}_bidx"], digests):
                    found.setdefault((name, digests[digest]), set()).add(pk)
        pairs = {
            (row.values["name"], row.values["company"])
            for row in rows
            if row.values.get("name") and row.values.get("company")
        }
        if pairs:
            names = list({name for name, _company in pairs})
            companies = list({company for _name, company in pairs})
            query = Customer.objects.filter(name__in=names, company__in=companies)
            for pk, name, company in query.values_list("pk", "name", "company"):
                if (name, company) in pairs:
                    found.setdefault(("n", name, company), set()).add(pk)
        return found

    def clean(self, batch: list[tuple[int, list]], language: str | None = None) -> list:
        """The rows of a batch through the widgets: pure Python, no database (the caches are
        primed first), so it may run in the helper thread while the previous batch is planned."""
        with translation.override(language):
            return [self.cleaner.clean(line, cells) for line, cells in batch]

    def plan(self, cleaned: list) -> tuple[list, list, int]:
        """Plan entries [line, action, target, values], rejected rows, and the number skipped."""
        good = [row for row in cleaned if not row.errors]
        existing = self.existing(good) if good else {}
        matched = set().union(*existing.values()) if existing else set()
        editable, codes = set(), {}
        if matched:
            if self.policy == ImportJob.OnDuplicate.UPDATE:
                editable = set(
                    Customer.objects.editable_by(self.importer).filter(pk__in=matched).values_list("pk", flat=True)
                )
            codes = dict(Customer.objects.visible_to(self.importer).filter(pk__in=matched).values_list("pk", "code"))

        entries, rejects, skipped = [], [], 0
        for row in cleaned:
            if row.errors:
                self.counts["rejected"] += 1
                rejects.append([row.line, row.original(), row.reason()])
                for header, message in row.errors:
                    if len(self.errors) < KEPT_MESSAGES:
                        self.errors.append({"line": row.line, "column": header, "reason": message})
                continue
            keys = self.keys(row.values)
            hashes = [hash(key) for key in keys]
            earlier = min((self.seen[h] for h in hashes if h in self.seen), default=None)
            for h in hashes:
                self.seen.setdefault(h, row.line)
            if earlier is not None:
                skipped += 1
                self._duplicate(row.line, SKIP, _("Repeats line %(line)s of this file.") % {"line": earlier})
                continue
            targets = sorted(set().union(*(existing.get(key, ()) for key in keys)))
            if not targets:
                entries.append([row.line, CREATE, None, self._values(row.values)])
                continue
            code = next((codes[pk] for pk in targets if pk in codes), "")
            if self.policy == ImportJob.OnDuplicate.CREATE:
                entries.append([row.line, CREATE, None, self._values(row.values)])
                self._duplicate(row.line, CREATE, _("Created although it matches an existing customer."), code)
            elif self.policy == ImportJob.OnDuplicate.UPDATE:
                reason = self._refuse_update(targets, editable)
                if reason:
                    skipped += 1
                    self._duplicate(row.line, SKIP, reason, code if targets[0] in codes else "")
                    continue
                target = targets[0]
                self.targets[target] = row.line
                entries.append([row.line, UPDATE, target, self._values(row.values)])
                self._duplicate(row.line, UPDATE, _("Updates the existing customer."), codes.get(target, ""))
            else:
                skipped += 1
                self._duplicate(row.line, SKIP, _("Already in the archive."), code)
        self.counts["to_create"] += sum(1 for entry in entries if entry[1] == CREATE)
        self.counts["to_update"] += sum(1 for entry in entries if entry[1] == UPDATE)
        self.counts["to_skip"] += skipped
        return entries, rejects, skipped

    def _refuse_update(self, targets: list[int], editable: set[int]) -> str:
        if len(targets) > 1:
            return _("Matches several existing customers; update it by hand.")
        if targets[0] not in editable:
            # Says nothing of the customer: the importer may not even know it exists.
            return _("Matches an existing customer you may not edit; not imported.")
        if targets[0] in self.targets:
            return _("Updates the same customer as line %(line)s.") % {"line": self.targets[targets[0]]}
        return ""

    def _duplicate(self, line: int, action: str, reason: str, code: str = "") -> None:
        if len(self.duplicates) < KEPT_MESSAGES:
            self.duplicates.append({"line": line, "action": action, "reason": reason, "code": code})

    @staticmethod
    def _values(values: dict) -> dict:
        out = {}
        custom = {}
        for key, value in values.items():
            if value is None or value == "" or value == []:
                continue
            if key.startswith("cf_"):
                custom[key[3:]] = value
            elif isinstance(value, datetime.date):
                out[key] = value.isoformat()
            else:
                out[key] = value
        if custom:
            out["custom_data"] = custom
        return out


def job_check(job: ImportJob) -> None:
    """The dry run: read the stored file once and store the plan. Runs in the caller's process;
    failures leave the job FAILED with a message (and no plan)."""
    from customers.resources import CustomerImportResource

    token = _claim(
        job,
        ImportJob.Status.CHECKING,
        rows_checked=0,
        to_create=0,
        to_update=0,
        to_skip=0,
        rejected=0,
        plan_rows=0,
        errors=[],
        duplicates=[],
        message="",
    )
    try:
        ImportChunk.objects.filter(job=job, kind__in=[PLAN, REJECTS]).delete()
        source = _source_file(job)
        rows = files.iter_rows(source, job.file_format, job.encoding)
        header = next(rows, None)
        if header is None:
            raise ImportRefused(_("The file is empty."))
        resource = CustomerImportResource.for_import()
        columns = list(spec.IMPORT_COLUMNS) + spec.custom_columns(resource.custom_fields)
        mapping = spec.map_headers(header[1], columns)
        if mapping.missing:
            raise ImportRefused(
                _("The file lacks required columns: %(columns)s.")
                % {"columns": "、".join(column.header for column in mapping.missing)}
            )
        cleaner = RowCleaner(mapping, resource, importer=job.created_by)
        cleaner.prime()
        planner = _Planner(job, cleaner)
        limit = settings.IMPORT_MAX_ROWS
        checked = plan_rows = 0
        plan_seq = reject_seq = 0
        language = translation.get_language()

        def cleaned_batches() -> Iterator[tuple[int, list]]:
            # The next batch is cleaned in a helper thread while this thread reads the file and
            # plans the previous one against the database (which waits on PostgreSQL): two cores.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-clean") as pool:
                pending = None
                for batch in _batches(rows, BATCH_ROWS):
                    upcoming = (len(batch), pool.submit(planner.clean, batch, language))
                    if pending is not None:
                        yield pending[0], pending[1].result()
                    pending = upcoming
                if pending is not None:
                    yield pending[0], pending[1].result()

        for size, cleaned in cleaned_batches():
            checked += size
            if checked > limit:
                raise ImportRefused(
                    _("The file has more than %(limit)s rows; split it into smaller files.") % {"limit": limit}
                )
            entries, rejects, skipped = planner.plan(cleaned)
            if entries or skipped:
                _store(job.pk, PLAN, plan_seq, _json({"rows": entries, "skipped": skipped}), len(entries) + skipped)
                plan_seq += 1
                plan_rows += len(entries) + skipped
            if rejects:
                _store(job.pk, REJECTS, reject_seq, _json(rejects), len(rejects))
                reject_seq += 1
            _progress(job, token, rows_checked=checked, **planner.counts)
        if checked == 0:
            raise ImportRefused(_("The file has a header row but no data rows."))
        previous = previous_import_of(job)
        _progress(
            job,
            token,
            status=ImportJob.Status.CHECKED,
            checked_at=timezone.now(),
            total_rows=checked,
            plan_rows=plan_rows,
            columns=mapping.as_json(),
            errors=planner.errors,
            duplicates=planner.duplicates,
            message=already_imported_message(previous) if previous else "",
            **planner.counts,
        )
    except _Superseded:
        return
    except ImportRefused as refused:
        ImportChunk.objects.filter(job=job, kind__in=[PLAN, REJECTS]).delete()
        _fail(job, token, refused.message)
    except Exception:
        logger.exception("import #%s: the check failed", job.pk)
        ImportChunk.objects.filter(job=job, kind__in=[PLAN, REJECTS]).delete()
        _fail(job, token, _("The file could not be checked because of an unexpected error; please try again."))


# --- Commit --------------------------------------------------------------------------------------


def _may_commit(job: ImportJob, by) -> None:
    if by.pk != job.created_by_id and not by.has_perm("customers.change_importjob"):
        raise ImportRefused(_("Only the person who uploaded the file may import it."))
    if job.status == ImportJob.Status.CHECKED:
        return
    resumable = job.confirmed_at is not None and job.status in (ImportJob.Status.IMPORTING, ImportJob.Status.FAILED)
    if not resumable:
        raise ImportRefused(_("This import is not ready to be confirmed."))


def job_commit(job: ImportJob, *, by) -> None:
    """Write the plan, batch by batch (each batch one transaction); resumes after ``rows_done``.

    The customers are written by and for the job's importer (the one whose rights the plan was made
    with); ``by`` may be the importer or an administrator resuming the job.
    """
    _may_commit(job, by)
    token = _claim(job, ImportJob.Status.IMPORTING, confirmed_at=job.confirmed_at or timezone.now(), message="")
    writer = _Writer(job)
    try:
        # While one batch is written (the database's work), the next is decrypted, decoded and
        # turned into COPY rows in a helper thread (Python's work): the two overlap on two cores.
        # The helper thread never touches the database; every query stays in this thread.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-prepare") as pool:
            pending = None
            for seq, done_after, sealed in _plan_chunks_after(job):
                upcoming = (seq, done_after, pool.submit(writer.prepare, seq, sealed))
                if pending is not None:
                    writer.write(pending[0], pending[1], pending[2].result(), token)
                pending = upcoming
            if pending is not None:
                writer.write(pending[0], pending[1], pending[2].result(), token)
        _finish(job, token)
    except _Superseded:
        return
    except Exception:
        logger.exception("import #%s: the import stopped", job.pk)
        job.refresh_from_db()
        _fail(
            job,
            token,
            _(
                "The import stopped because of an unexpected error after %(done)s of %(total)s rows; "
                "the rows before were imported. Resume it to import the rest."
            )
            % {"done": job.rows_done, "total": job.plan_rows},
        )


def _plan_chunks_after(job: ImportJob) -> Iterator[tuple[int, int, bytes]]:
    """(seq, rows done once this chunk is written, sealed data) of the plan chunks not yet written."""
    done_before = job.rows_done
    total = 0
    pieces = list(ImportChunk.objects.filter(job=job, kind=PLAN).order_by("seq").values_list("pk", "seq", "rows"))
    for pk, seq, rows in pieces:
        total += rows
        if total <= done_before:
            continue  # committed earlier (before a crash)
        yield seq, total, bytes(ImportChunk.objects.filter(pk=pk).values_list("data", flat=True).get())


class _Writer:
    """Writes plan chunks: bulk inserts and updates, tags, history, counters - one transaction each."""

    def __init__(self, job: ImportJob):
        self.job = job
        self.user = job.created_by
        self.default_owner_id = job.owner_id or job.created_by_id
        self.reason = job.label
        self.tags_through = Customer.tags.through
        self.copied = _copy_supported()

    def prepare(self, seq: int, sealed: bytes) -> dict:
        """Decrypt and decode one plan chunk and, on PostgreSQL, render its new customers as COPY
        rows (encrypted, blind-indexed). Runs in the helper thread: no database access here."""
        chunk = json.loads(_unseal(self.job.pk, PLAN, seq, sealed))
        entries = chunk["rows"]
        creates = [entry for entry in entries if entry[1] == CREATE]
        prepared = {
            "creates": creates,
            "updates": [entry for entry in entries if entry[1] == UPDATE],
            "skipped": chunk.get("skipped", 0),
            "copy": None,
        }
        if self.copied and creates:
            now = timezone.now()
            prepared["now"] = now
            prepared["copy"] = [_copy_line(self._row(entry[3], now)) for entry in creates]
        return prepared

    def write(self, seq: int, done_after: int, chunk: dict, token: str) -> None:
        with transaction.atomic():
            locked = ImportJob.objects.select_for_update().get(pk=self.job.pk)
            if locked.task_id != token:
                raise _Superseded
            if locked.rows_done >= done_after:
                return
            now = chunk.get("now") or timezone.now()
            created = self._create(chunk["creates"], now, chunk["copy"])
            updated, vanished = self._update(chunk["updates"], now)
            record_history_bulk(updated, history_type="~", by=self.user, reason=self.reason, when=now)
            locked.rows_done = done_after
            locked.created += len(created)
            locked.updated += len(updated)
            locked.skipped += chunk["skipped"] + vanished
            locked.heartbeat_at = now
            locked.save(update_fields=["rows_done", "created", "updated", "skipped", "heartbeat_at"])
        for name in ("rows_done", "created", "updated", "skipped", "heartbeat_at"):
            setattr(self.job, name, getattr(locked, name))

    @staticmethod
    def _assign(customer: Customer, values: dict) -> None:
        for key in PLAIN_FIELDS:
            if key in values:
                setattr(customer, key, values[key])
        for key in DATE_FIELDS:
            if key in values:
                setattr(customer, key, datetime.date.fromisoformat(values[key]))
        for key in FK_FIELDS:
            if key in values:
                setattr(customer, f"{key}_id", values[key])
        if "custom_data" in values:
            customer.custom_data = {**(customer.custom_data or {}), **values["custom_data"]}
        if customer.kind != Customer.ENTERPRISE:
            # Whatever kind the row or the stored record says, an individual has no enterprise details.
            for key in ENTERPRISE_FIELDS:
                setattr(customer, f"{key}_id" if key != "scale" else key, "" if key == "scale" else None)

    def _create(self, entries: list, now, copy_lines: list[str] | None) -> list[int]:
        if not entries:
            return []
        year = timezone.localdate().year
        first = next_sequence_block(f"customer:{year}", len(entries))
        codes = [f"C{year}-{first + offset:06d}" for offset in range(len(entries))]
        if copy_lines is not None:
            ids = _copy_customers(codes, copy_lines)
        else:
            customers = []
            for entry, code in zip(entries, codes, strict=True):
                customer = Customer(code=code, created_at=now)
                self._assign(customer, entry[3])
                customer.created_by_id = self.user.pk
                customer.owner_id = entry[3].get("owner") or self.default_owner_id
                customers.append(customer)
            Customer.objects.bulk_create(customers, batch_size=INSERT_BATCH)
            ids = [customer.pk for customer in customers]
        links = [
            self.tags_through(customer_id=pk, tag_id=tag)
            for pk, entry in zip(ids, entries, strict=True)
            for tag in entry[3].get("tags", ())
        ]
        if links:
            self.tags_through.objects.bulk_create(links, batch_size=INSERT_BATCH, ignore_conflicts=True)
        record_history_bulk(ids, history_type="+", by=self.user, reason=self.reason, when=now)
        return ids

    def _row(self, values: dict, now) -> dict:
        """A new customer's columns but its code (attname → Python value) without building a model
        instance, with what ``save()`` would compute: blind indexes, name grams, timestamps."""
        row = dict(_defaults())
        row.update(created_by_id=self.user.pk, created_at=now, updated_at=now)
        row["owner_id"] = values.get("owner") or self.default_owner_id
        for key in PLAIN_FIELDS:
            if key in values:
                row[key] = values[key]
        for key in DATE_FIELDS:
            if key in values:
                row[key] = values[key]  # ISO already
        for key in FK_FIELDS:
            if key in values:
                row[f"{key}_id"] = values[key]
        if "custom_data" in values:
            row["custom_data"] = values["custom_data"]
        if row["kind"] != Customer.ENTERPRISE:
            row.update(enterprise_type_id=None, enterprise_nature_id=None, scale="")
        for index, source, kind in BLIND_INDEXES:
            row[index] = blind_index(kind, row[source] or "")
        row["name_grams"] = name_grams(f"{row['name']} {row['company']}")
        return row

    def _update(self, entries: list, now) -> tuple[list[int], int]:
        if not entries:
            return [], 0
        existing = Customer.objects.in_bulk([entry[2] for entry in entries])
        customers, fields, links = [], set(), []
        for _line, _action, target, values in entries:
            customer = existing.get(target)
            if customer is None:
                continue  # deleted since the check: nothing to update
            self._assign(customer, values)
            # bulk_update skips pre_save: blind indexes, name grams and updated_at are set here.
            for index, source, kind in BLIND_INDEXES:
                setattr(customer, index, blind_index(kind, getattr(customer, source) or ""))
            customer.name_grams = name_grams(f"{customer.name} {customer.company}")
            customer.updated_at = now
            fields.update(self._fields_of(values, customer))
            customers.append(customer)
            links.extend(self.tags_through(customer_id=customer.pk, tag_id=tag) for tag in values.get("tags", ()))
        if customers:
            fields.update(["phone_bidx", "mobile_bidx", "email_bidx", "id_number_bidx", "name_grams", "updated_at"])
            Customer.objects.bulk_update(customers, sorted(fields), batch_size=500)
        if links:
            self.tags_through.objects.bulk_create(links, batch_size=INSERT_BATCH, ignore_conflicts=True)
        return [customer.pk for customer in customers], len(entries) - len(customers)

    @staticmethod
    def _fields_of(values: dict, customer: Customer) -> set[str]:
        fields = {key for key in (*PLAIN_FIELDS, *DATE_FIELDS, *FK_FIELDS) if key in values}
        if "custom_data" in values:
            fields.add("custom_data")
        if customer.kind != Customer.ENTERPRISE:
            fields.update(ENTERPRISE_FIELDS)
        return fields


_DEFAULTS: dict | None = None


def _copy_supported() -> bool:
    return connection.vendor == "postgresql" and connection.Database.__name__ == "psycopg2"


def _defaults() -> dict:
    global _DEFAULTS
    if _DEFAULTS is None:
        _DEFAULTS = {f.attname: f.get_default() for f in Customer._meta.concrete_fields if not f.primary_key}
    return _DEFAULTS


_COPY_PLAN: list | None = None


def _copy_plan() -> list:
    """(attname, converter) of every column a COPY row carries after id and code, in table order:
    each value prepared as its field would prepare it (encrypted, JSON, t/f, ISO time)."""
    global _COPY_PLAN
    if _COPY_PLAN is None:
        plan = []
        for field in _copy_fields():
            if isinstance(field, EncryptedTextField):

                def convert(value, aad=field.aad):
                    return encrypt(value, aad=aad) if value else ""  # base64: nothing to escape

            elif isinstance(field, models.JSONField):

                def convert(value):
                    return copy_text(json.dumps(value, ensure_ascii=False))

            elif isinstance(field, models.BooleanField):

                def convert(value):
                    return "t" if value else "f"

            elif isinstance(field, models.DateTimeField):

                def convert(value):
                    return value.isoformat()

            elif isinstance(field, models.CharField | models.TextField):
                convert = copy_text
            else:
                convert = str
            plan.append((field.attname, convert))
        _COPY_PLAN = plan
    return _COPY_PLAN


def _copy_fields() -> list:
    return [f for f in Customer._meta.concrete_fields if not f.primary_key and f.attname != "code"]


def _copy_line(row: dict) -> str:
    """One new customer in PostgreSQL's COPY text format, without its id and code."""
    return "\t".join(["\\N" if (value := row[name]) is None else convert(value) for name, convert in _copy_plan()])


def _copy_customers(codes: list[str], lines: list[str]) -> list[int]:
    """Insert new customers with COPY (PostgreSQL); ids are drawn from the table's sequence first,
    so the caller knows them without RETURNING.

    (Writing their history rows with a second COPY was measured slower than
    record_history_bulk's INSERT … SELECT, so history stays set-based SQL.)
    """
    table = Customer._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, len(lines)]
        )
        ids = [pk for (pk,) in cursor.fetchall()]
        buffer = io.StringIO(
            "".join(f"{pk}\t{copy_text(code)}\t{line}\n" for pk, code, line in zip(ids, codes, lines, strict=True))
        )
        quote = connection.ops.quote_name
        columns = ", ".join(quote(name) for name in ["id", "code", *(f.column for f in _copy_fields())])
        cursor.copy_expert(f"COPY {quote(table)} ({columns}) FROM STDIN", buffer)
    return ids


def record_history_bulk(ids, **kwargs) -> None:
    from customers.services import record_history_bulk as record

    record(ids, **kwargs)


def _finish(job: ImportJob, token: str) -> None:
    job.refresh_from_db()
    _progress(job, token, status=ImportJob.Status.DONE, finished_at=timezone.now())
    log_personal_data_access(
        user=job.created_by,
        action=PersonalDataAccess.Action.IMPORT,
        object_type="customers.customer",
        rows=job.created + job.updated,
        detail=f"{job.file_name} (import #{job.pk})",
    )
    ImportChunk.objects.filter(job=job, kind=SOURCE).delete()


# --- Cancel, background, resume ------------------------------------------------------------------


def job_cancel(job: ImportJob, *, by) -> None:
    """Cancel an import not yet confirmed: its stored file, plan and rejected rows are deleted."""
    if by.pk != job.created_by_id and not by.has_perm("customers.change_importjob"):
        raise ImportRefused(_("Only the person who uploaded the file may cancel it."))
    if job.confirmed_at is not None or job.status in (ImportJob.Status.DONE, ImportJob.Status.CANCELLED):
        raise ImportRefused(_("This import can no longer be cancelled."))
    with transaction.atomic():
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.CANCELLED, task_id="", finished_at=timezone.now()
        )
        ImportChunk.objects.filter(job=job).delete()
    job.refresh_from_db()


def _celery_app():
    from cims.celery import app

    return app


def _send(task: str, args: list) -> str:
    task_id = uuid.uuid4().hex
    app = _celery_app()
    transaction.on_commit(lambda: app.send_task(task, args=args, task_id=task_id))
    return task_id


def _background(job: ImportJob) -> bool:
    return job.total_rows > settings.IMPORT_BACKGROUND_ROWS or job.file_format == files.XLSX and not job.total_rows


def start_check(job: ImportJob) -> bool:
    """Check inline for small files; send larger ones to a Celery worker. True if sent."""
    if not _background(job):
        job_check(job)
        return False
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.CHECKING, heartbeat_at=timezone.now())
    job.status = ImportJob.Status.CHECKING
    _send("customers.tasks.import_check", [job.pk])
    return True


def start_commit(job: ImportJob, *, by) -> bool:
    """Import inline for small plans; in a Celery worker for larger ones. True if sent."""
    _may_commit(job, by)
    if job.plan_rows <= settings.IMPORT_BACKGROUND_ROWS:
        job_commit(job, by=by)
        return False
    now = timezone.now()
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.IMPORTING, confirmed_at=job.confirmed_at or now, heartbeat_at=now
    )
    job.refresh_from_db()
    _send("customers.tasks.import_commit", [job.pk, by.pk])
    return True


def job_is_stalled(job: ImportJob) -> bool:
    """Checking or importing, but no progress for a while: the worker died (the UI offers resume)."""
    if job.status not in (ImportJob.Status.CHECKING, ImportJob.Status.IMPORTING):
        return False
    last = job.heartbeat_at or job.created_at
    return (timezone.now() - last).total_seconds() > STALL_SECONDS


def job_resume(job: ImportJob, *, by) -> bool:
    """Start a stalled or failed job again: the check from scratch, the import after the last
    committed batch. True if sent to the background."""
    if by.pk != job.created_by_id and not by.has_perm("customers.change_importjob"):
        raise ImportRefused(_("Only the person who uploaded the file may resume it."))
    stalled = job_is_stalled(job)
    if job.confirmed_at is not None:
        if not (stalled or job.status == ImportJob.Status.FAILED):
            raise ImportRefused(_("This import is not stalled."))
        return start_commit(job, by=by)
    if not (stalled or job.status in (ImportJob.Status.FAILED, ImportJob.Status.UPLOADED)):
        raise ImportRefused(_("This import is not stalled."))
    if not ImportChunk.objects.filter(job=job, kind=SOURCE).exists():
        raise ImportRefused(_("The uploaded file is no longer stored; upload it again."))
    return start_check(job)


# --- Reading jobs --------------------------------------------------------------------------------


def jobs_for(user):
    """The imports a user may look at: their own; all of them for holders of view_importjob."""
    if not getattr(user, "is_authenticated", False):
        return ImportJob.objects.none()
    queryset = ImportJob.objects.select_related("created_by", "owner")
    if user.has_perm("customers.view_importjob"):
        return queryset
    return queryset.filter(created_by=user)


def get_job_for(user, pk) -> ImportJob:
    return get_object_or_404(jobs_for(user), pk=pk)


# --- Files for the user --------------------------------------------------------------------------


def error_file(job: ImportJob, fmt: str = "csv") -> tuple[str, str, Iterable[bytes]]:
    """The rejected rows as the file had them, plus a reason column, to fix and import again.

    Written by the export's streaming writers (formula-like cells neutralised, CSV with a BOM)."""
    from customers import exporting

    header = [column.get("header", "") for column in job.columns] + [REASON_HEADER]

    def rows() -> Iterator[list[str]]:
        for _seq, _rows, data in _chunks(job, REJECTS):
            for _line, cells, reason in json.loads(data):
                cells = list(cells) + [""] * (len(header) - 1 - len(cells))
                yield [*cells[: len(header) - 1], reason]

    filename = f"import-{job.pk}-errors.{fmt}"
    return filename, exporting.CONTENT_TYPES[fmt], exporting.stream(fmt, header, rows(), title="errors")


def import_template(fmt: str = "xlsx") -> tuple[str, str, bytes]:
    """The exact headers the import reads (custom fields included) and one example row."""
    from customers import exporting

    columns = _columns()
    header = [column.header for column in columns]
    example = [column.example for column in columns]
    body = b"".join(exporting.stream(fmt, header, [example], title="customers"))
    return f"customer-import-template.{fmt}", exporting.CONTENT_TYPES[fmt], body


__all__ = [
    "ImportRefused",
    "already_imported_message",
    "error_file",
    "get_job_for",
    "import_template",
    "job_cancel",
    "job_check",
    "job_commit",
    "job_create",
    "job_is_stalled",
    "job_resume",
    "jobs_for",
    "previous_import_of",
    "start_check",
    "start_commit",
]
