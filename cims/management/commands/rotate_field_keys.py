"""Re-encrypt every encrypted column still under an older key of FIELD_ENCRYPTION_KEYS.

Run after putting a new key first in the ring (docs/operations.md, "Field-key rotation"). Walks
every model with EncryptedTextField columns, the django-simple-history tables included, and
rewrites the rows whose stored value does not start with ``v1:<primary key id>:``, in batches,
one transaction per batch. Safe to interrupt and run again: rows already under the primary key
are not selected, so a second run changes nothing.
"""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import connections, router, transaction
from django.db.models import Model, Q

from cims import crypto


def encrypted_fields(model: type[Model]) -> list[crypto.EncryptedTextField]:
    return [f for f in model._meta.concrete_fields if isinstance(f, crypto.EncryptedTextField)]


def models_with_encrypted_fields() -> list[type[Model]]:
    found = []
    for model in apps.get_models():
        opts = model._meta
        if opts.proxy or not opts.managed or opts.swapped:
            continue
        if encrypted_fields(model):
            found.append(model)
    return sorted(found, key=lambda m: m._meta.label)


def stale_filter(fields: list[crypto.EncryptedTextField], primary: str) -> Q:
    """Rows where any of ``fields`` holds a value not encrypted under ``primary``.

    ``startswith`` does not pass its argument through the field's get_prep_value (Django's pattern
    lookups do not prepare the right-hand side), so this compares the stored text as it is.
    """
    current = f"{crypto.PREFIX}:{primary}:"
    stale = Q()
    for field in fields:
        filled = Q(**{f"{field.name}__isnull": False}) & ~Q(**{field.name: ""})
        stale |= filled & ~Q(**{f"{field.name}__startswith": current})
    return stale


class Command(BaseCommand):
    help = "Re-encrypt encrypted fields still stored under an older key of FIELD_ENCRYPTION_KEYS."

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size", type=int, default=1000, help="Rows per batch and transaction (default 1000)."
        )
        parser.add_argument("--dry-run", action="store_true", help="Count the rows to re-encrypt; change nothing.")

    def handle(self, *args, batch_size: int, dry_run: bool, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        primary = crypto.primary_key_id()
        total = 0
        for model in models_with_encrypted_fields():
            fields = encrypted_fields(model)
            stale = model._base_manager.filter(stale_filter(fields, primary))
            if dry_run:
                count = stale.count()
                self.stdout.write(f"{model._meta.label}: {count} rows to re-encrypt")
            else:
                count = self._rotate(model, fields, stale, batch_size)
                self.stdout.write(f"{model._meta.label}: {count} rows re-encrypted")
            total += count
        # The files kept with customers and tickets are encrypted blobs, not EncryptedTextField columns.
        from complaints.services import ticket_attachment_contents_rotate
        from customers.attachments import attachment_contents_rotate

        for label, rotate in (
            ("customers.AttachmentContent", attachment_contents_rotate),
            ("complaints.TicketAttachmentContent", ticket_attachment_contents_rotate),
        ):
            try:
                count = rotate(dry_run=dry_run)
            except crypto.DecryptionError as exc:
                raise CommandError(
                    f"{label}: {exc}. Put the missing key back into FIELD_ENCRYPTION_KEYS and run the command again."
                ) from exc
            self.stdout.write(f"{label}: {count} rows {'to re-encrypt' if dry_run else 're-encrypted'}")
            total += count
        verb = "to re-encrypt" if dry_run else "re-encrypted"
        self.stdout.write(self.style.SUCCESS(f"{total} rows {verb}; primary key id {primary!r}."))

    def _rotate(self, model, fields, stale, batch_size: int) -> int:
        names = [f.name for f in fields]
        using = router.db_for_write(model)
        connection = connections[using]
        write_rows = _row_writer(model, fields, connection)
        stale = stale.using(using)
        done = 0
        last_pk = None
        while True:
            # Keyset pagination on the primary key: each batch is found through the pk index,
            # never by OFFSET, and never loads more than one batch of rows.
            page = stale.order_by("pk")
            if last_pk is not None:
                page = page.filter(pk__gt=last_pk)
            pks = list(page.values_list("pk", flat=True)[:batch_size])
            if not pks:
                return done
            last_pk = pks[-1]
            try:
                with transaction.atomic(using=using):
                    # Locked, so that an edit made meanwhile is neither lost nor overwritten.
                    # Loading decrypts (any key of the ring); get_db_prep_save encrypts under the
                    # primary key. Only the encrypted columns are written: blind indexes depend on
                    # BLIND_INDEX_KEY alone, and updated_at and the history stay as they are,
                    # because no value changes.
                    rows = list(stale.filter(pk__in=pks).select_for_update().only("pk", *names).order_by("pk"))
                    if rows:
                        write_rows(rows)
            except crypto.DecryptionError as exc:
                # A value under a key no longer in the ring (or damaged): stop, never skip it.
                raise CommandError(
                    f"{model._meta.label}, rows {pks[0]}..{pks[-1]}: {exc}. Nothing in this batch was changed; "
                    "put the missing key back into FIELD_ENCRYPTION_KEYS and run the command again."
                ) from exc
            done += len(rows)


def _row_writer(model, fields, connection):
    """A function writing the encrypted columns of loaded rows back, encrypted under the primary key.

    Not bulk_update: it builds a CASE with one branch per row and column, which costs milliseconds
    of Python per row at a thousand rows a batch. On PostgreSQL one UPDATE … FROM (VALUES …) per
    batch; elsewhere (SQLite, in-process) one parameterised UPDATE per row through executemany.
    """
    opts = model._meta
    quote = connection.ops.quote_name
    table, pk_column = quote(opts.db_table), quote(opts.pk.column)

    def values(row) -> list:
        encrypted = [f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields]
        return [opts.pk.get_db_prep_value(row.pk, connection), *encrypted]

    if connection.vendor == "postgresql":
        pk_type = opts.pk.rel_db_type(connection)
        aliases = ["pk", *(f"c{i}" for i in range(len(fields)))]
        assignments = ", ".join(f"{quote(f.column)} = CAST(v.c{i} AS text)" for i, f in enumerate(fields))
        row_placeholder = "(" + ", ".join(["%s"] * len(aliases)) + ")"

        def write(rows) -> None:
            sql = (
                f"UPDATE {table} SET {assignments} "  # noqa: S608 - names from the models, values as parameters
                f"FROM (VALUES {', '.join([row_placeholder] * len(rows))}) AS v({', '.join(aliases)}) "
                f"WHERE {table}.{pk_column} = CAST(v.pk AS {pk_type})"
            )
            with connection.cursor() as cursor:
                cursor.execute(sql, [value for row in rows for value in values(row)])

        return write

    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    sql = f"UPDATE {table} SET {assignments} WHERE {pk_column} = %s"  # noqa: S608 - names from the models

    def write(rows) -> None:
        with connection.cursor() as cursor:
            cursor.executemany(sql, [[*params[1:], params[0]] for params in map(values, rows)])

    return write
