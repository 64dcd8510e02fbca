"""Models that cut across apps: number sequences and background-job heartbeats."""

from __future__ import annotations

from django.db import models, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Sequence(models.Model):
    """A named counter for human-readable numbers (E00001, C2026-000123, T2026-000123 …)."""

    name = models.CharField(_("name"), max_length=64, primary_key=True)
    last_value = models.BigIntegerField(_("last value"), default=0)

    class Meta:
        verbose_name = _("number sequence")
        verbose_name_plural = _("number sequences")

    def __str__(self) -> str:
        return f"{self.name}={self.last_value}"


def next_sequence_value(name: str) -> int:
    """Return the next value of sequence ``name``, unique even under concurrent callers.

    The UPDATE takes a row lock held until the surrounding transaction ends, so concurrent
    callers queue behind each other; on SQLite the database-wide write lock does the same.
    If the caller's transaction rolls back, the number is released with it (no gaps on failure
    would require serialising every creation; gaps are harmless, duplicates are not).
    """
    return next_sequence_block(name, 1)


def next_sequence_block(name: str, count: int) -> int:
    """Reserve ``count`` consecutive values of sequence ``name`` in one update; returns the first.

    Bulk writers (imports) number a whole batch with one row lock instead of one per record.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    with transaction.atomic():
        Sequence.objects.get_or_create(name=name)
        Sequence.objects.filter(name=name).update(last_value=F("last_value") + count)
        last = Sequence.objects.filter(name=name).values_list("last_value", flat=True).get()
        return last - count + 1


class Heartbeat(models.Model):
    """Last time a background process proved it was alive."""

    name = models.CharField(_("name"), max_length=64, primary_key=True)
    last_seen = models.DateTimeField(_("last seen"))
    hostname = models.CharField(_("host"), max_length=255, blank=True)
    beats = models.BigIntegerField(_("beats"), default=0)

    class Meta:
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_seen:%Y-%m-%d %H:%M:%S}"

    @property
    def is_fresh(self) -> bool:
        # Beat sends one a minute; three missed beats means the worker or beat is down.
        return (timezone.now() - self.last_seen).total_seconds() < 180


class PersonalDataAccess(models.Model):
    """Who looked at or exported personal data: one row per reveal, export or import.

    Holds no personal data itself: the object is named by type, id and code, never by name,
    phone or any other field value.
    """

    class Action(models.TextChoices):
        REVEAL = "reveal", _("Revealed a field")
        EXPORT = "export", _("Exported")
        IMPORT = "import", _("Imported")

    user = models.ForeignKey(
        "accounts.User", verbose_name=_("user"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(_("action"), max_length=8, choices=Action.choices)
    object_type = models.CharField(_("object type"), max_length=64)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    object_label = models.CharField(_("object"), max_length=64, blank=True)
    field = models.CharField(_("field"), max_length=64, blank=True)
    rows = models.PositiveIntegerField(_("rows"), default=1)
    # For exports and imports: the filter or file, never a personal value; masked or in clear.
    detail = models.CharField(_("details"), max_length=500, blank=True)
    masked = models.BooleanField(_("masked"), null=True, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("personal data access")
        verbose_name_plural = _("personal data access log")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="pda_object")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.user} {self.action} {self.object_label} {self.field}"


def log_personal_data_access(
    *,
    user,
    action: str,
    object_type: str,
    object_id="",
    object_label="",
    field="",
    rows=1,
    detail="",
    masked=None,
    request=None,
):
    from cims.request_ip import client_ip

    return PersonalDataAccess.objects.create(
        user=user if getattr(user, "is_authenticated", False) else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        object_label=object_label[:64],
        field=field,
        rows=rows,
        detail=detail[:500],
        masked=masked,
        ip_address=client_ip(request) if request is not None else None,
    )
