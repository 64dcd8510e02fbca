"""Models that cut across apps: number sequences and background-job heartbeats."""

from __future__ import annotations

from django.db import models, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from cims.crypto import EncryptedTextField


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


class ImmutableAuditLog(Exception):
    """An access-log row was about to be changed or deleted outside the audit jobs."""


class PersonalDataAccessQuerySet(models.QuerySet):
    def delete(self):
        # Only retention removes rows (cims.audit.cut_access_log), and records an anchor for them.
        raise ImmutableAuditLog("access-log rows are removed by retention only (cims.audit)")

    delete.alters_data = True
    delete.queryset_only = True

    def _delete_for_retention(self):
        return super().delete()


class PersonalDataAccess(models.Model):
    """Who looked at or exported personal data: one row per reveal, export or import.

    Holds no personal data itself: the object is named by type, id and code, never by name,
    phone or any other field value. Rows are written once: ``save()`` refuses to update one and
    ``delete()`` refuses outright (the sealing job numbers rows with a bulk update; retention
    deletes through ``cims.audit``).
    """

    class Action(models.TextChoices):
        REVEAL = "reveal", _("Revealed a field")
        EXPORT = "export", _("Exported")
        IMPORT = "import", _("Imported")
        # Opened a customer's 360 page; searched by an exact personal identifier (the field
        # searched is in ``field``, never the value); one row per customer found.
        VIEW = "view", _("Opened")
        SEARCH = "search", _("Searched by identifier")
        LOGIN = "login", _("Logged in")
        LOGIN_FAILED = "login_failed", _("Failed login")
        LOGOUT = "logout", _("Logged out")
        # Access requests (数据访问权限审批): filed, approved or refused, expired.
        REQUEST = "request", _("Requested access")
        DECISION = "decision", _("Decided an access request")
        GRANT_EXPIRED = "grant_expired", _("Access grant expired")

    # PROTECT: the log is sealed into a hash chain, so the user named on a row can't be nulled out by
    # deleting the account; staff who leave are deactivated (accounts), never deleted.
    user = models.ForeignKey(
        "accounts.User", verbose_name=_("user"), null=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(_("action"), max_length=16, choices=Action.choices)
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
    # The tamper-evident chain (cims.audit): rows are written unsealed (seq null) so that writing
    # one never waits on another; the sealing job numbers them in id order and stores the HMAC of
    # (previous hash, this row's content). An edited, inserted or deleted sealed row breaks it.
    seq = models.BigIntegerField(_("sequence"), null=True, blank=True, unique=True, editable=False)
    chain_hash = models.CharField(_("chain hash"), max_length=64, blank=True, editable=False)

    objects = PersonalDataAccessQuerySet.as_manager()

    class Meta:
        verbose_name = _("personal data access")
        verbose_name_plural = _("personal data access log")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="pda_object"),
            models.Index(fields=["user", "created_at"], name="pda_user_time"),
            # The sealing job's "rows not sealed yet", without walking the whole log.
            models.Index(fields=["id"], name="pda_unsealed", condition=models.Q(seq__isnull=True)),
        ]
        permissions = [
            ("export_personaldataaccess", _("Can export the access log")),
            ("view_change_history", _("Can search the change history of all records")),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.user} {self.action} {self.object_label} {self.field}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableAuditLog("access-log rows cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableAuditLog("access-log rows cannot be deleted")


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


class AuditAnchor(models.Model):
    """Where the access log's chain starts after retention removed its oldest rows.

    Retention deletes sealed rows up to ``seq`` and records the hash of the last one removed;
    verification starts from the newest anchor, so a cut made by retention is recorded, not silent.
    """

    seq = models.BigIntegerField(_("last removed sequence"), unique=True)
    chain_hash = models.CharField(_("chain hash"), max_length=64)
    removed_rows = models.BigIntegerField(_("rows removed"), default=0)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("audit chain anchor")
        verbose_name_plural = _("audit chain anchors")
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"anchor @{self.seq}"


class Backup(models.Model):
    """One encrypted backup file (cims.backups) and what its manifest says."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        COMPLETE = "complete", _("Complete")
        FAILED = "failed", _("Failed")
        PRUNED = "pruned", _("Pruned")

    class Kind(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        MANUAL = "manual", _("On demand")

    file_name = models.CharField(_("file"), max_length=255, unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.MANUAL)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(_("started"), default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    size = models.BigIntegerField(_("size"), null=True, blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True)
    # Sizes, checksums, per-table row counts, app version, applied migrations (cims.backups).
    manifest = models.JSONField(_("manifest"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_by = models.ForeignKey(
        "accounts.User", verbose_name=_("by"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("backup")
        verbose_name_plural = _("backups")
        ordering = ["-started_at", "-id"]
        permissions = [("restore_backup", _("Can restore a backup"))]

    def __str__(self) -> str:
        return self.file_name


class RestoreRun(models.Model):
    """A restore of a backup: the weekly drill into a scratch database, or a real restore."""

    class Kind(models.TextChoices):
        DRILL = "drill", _("Restore drill")
        RESTORE = "restore", _("Restore")

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        PASSED = "passed", _("Passed")
        FAILED = "failed", _("Failed")

    backup = models.ForeignKey(
        Backup, verbose_name=_("backup"), null=True, blank=True, on_delete=models.SET_NULL, related_name="restores"
    )
    backup_name = models.CharField(_("backup file"), max_length=255)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(_("started"), default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # The time the restore took end to end: the measured RTO.
    duration_seconds = models.FloatField(_("duration (s)"), null=True, blank=True)
    # Row counts compared, fields decrypted, migrations applied: what the check found.
    report = models.JSONField(_("report"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_by = models.ForeignKey(
        "accounts.User", verbose_name=_("by"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("restore run")
        verbose_name_plural = _("restore runs")
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.backup_name} {self.status}"


class JobRun(models.Model):
    """The last run of each Celery task, recorded by signals (cims.jobs) for the system page."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCESS = "success", _("Succeeded")
        FAILURE = "failure", _("Failed")

    name = models.CharField(_("task"), max_length=200, primary_key=True)
    last_started_at = models.DateTimeField(_("last started"), null=True, blank=True)
    last_finished_at = models.DateTimeField(_("last finished"), null=True, blank=True)
    last_status = models.CharField(_("last result"), max_length=16, choices=Status.choices, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    last_duration = models.FloatField(_("last duration (s)"), null=True, blank=True)
    runs = models.BigIntegerField(_("runs"), default=0)
    failures = models.BigIntegerField(_("failures"), default=0)

    class Meta:
        verbose_name = _("background job")
        verbose_name_plural = _("background jobs")
        ordering = ["name"]
        permissions = [("view_system_status", _("Can see the system page"))]

    def __str__(self) -> str:
        return self.name


class IdempotencyRecord(models.Model):
    """A create request of the REST API sent with an ``Idempotency-Key`` header (cims.api.idempotency).

    A retry with the same key and the same body answers what the first request created instead of
    creating it again; the same key with another body is refused (409). Only the id of what was
    created is kept, never the response itself, so no personal data is stored here: the replay
    serializes the object afresh, through the token's current permissions.
    """

    token = models.ForeignKey("accounts.ApiToken", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)  # SHA-256 of method, path and body
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)  # null: still running
    resource_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [models.UniqueConstraint(fields=["token", "key"], name="idempotency_token_key_unique")]

    def __str__(self) -> str:
        return self.key


class WebhookEvent(models.TextChoices):
    """The events a webhook endpoint may subscribe to (cims.webhooks emits them)."""

    CUSTOMER_CREATED = "customer.created", _("Customer created")
    CUSTOMER_UPDATED = "customer.updated", _("Customer updated")
    CUSTOMER_MERGED = "customer.merged", _("Customers merged")
    OPPORTUNITY_WON = "opportunity.won", _("Opportunity won")
    OPPORTUNITY_LOST = "opportunity.lost", _("Opportunity lost")
    CONTRACT_EXPIRING = "contract.expiring", _("Contract expiring")
    COMPLAINT_CREATED = "complaint.created", _("Complaint created")
    COMPLAINT_RESOLVED = "complaint.resolved", _("Complaint resolved")


class WebhookEndpoint(models.Model):
    """An address outside CIMS told of events, registered by an administrator.

    Deliveries are signed with HMAC-SHA256 under ``secret`` (stored encrypted: it must be read to
    sign). Personal data in payloads is masked unless an administrator marked the endpoint trusted.
    """

    name = models.CharField(_("name"), max_length=64, unique=True)
    url = models.URLField(_("URL"), max_length=500)
    events = models.JSONField(_("events"), default=list, blank=True)
    secret = EncryptedTextField(_("signing secret"), aad="cims_webhookendpoint.secret")
    is_active = models.BooleanField(_("active"), default=True)
    trusted = models.BooleanField(
        _("trusted"),
        default=False,
        help_text=_("A trusted endpoint receives personal data unmasked. Mark only a system you control."),
    )
    created_by = models.ForeignKey(
        "accounts.User", verbose_name=_("created by"), on_delete=models.PROTECT, related_name="+", editable=False
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    history = HistoricalRecords(excluded_fields=["secret"])

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One event sent (or to be sent) to one endpoint, with its attempts' outcome."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RETRYING = "retrying", _("Retrying")
        SUCCEEDED = "succeeded", _("Delivered")
        FAILED = "failed", _("Failed")

    endpoint = models.ForeignKey(
        WebhookEndpoint, verbose_name=_("endpoint"), on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(_("event"), max_length=32, choices=WebhookEvent.choices)
    event_id = models.UUIDField(_("event id"))  # the same for every endpoint told of one event
    # The customer the event is about: erasing the customer's personal data removes these too.
    customer_id = models.BigIntegerField(_("customer"), null=True, blank=True, db_index=True)
    # The JSON body as sent, encrypted: a trusted endpoint's payload holds personal data unmasked.
    payload = EncryptedTextField(_("payload"), aad="cims_webhookdelivery.payload")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    response_code = models.PositiveSmallIntegerField(_("response code"), null=True, blank=True)
    response_ms = models.PositiveIntegerField(_("response time (ms)"), null=True, blank=True)
    response_excerpt = models.CharField(_("response"), max_length=500, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    resent_from = models.ForeignKey(
        "self", verbose_name=_("resent from"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resent_by = models.ForeignKey(
        "accounts.User", verbose_name=_("resent by"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_endpoint"),
            # The sweeper's question: open deliveries falling due (a small set, however long the log).
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_open",
                condition=models.Q(status__in=["pending", "retrying"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint_id} ({self.status})"
