"""Complaints and service requests (投诉 / 服务工单): tickets, their timeline, files and categories.

Rules live in complaints.services (filing, automatic assignment, the status flow, SLA flags, the
售后中 round trip, ratings); views and the portal only call them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from cims.models import next_sequence_value


class TicketCategory(models.Model):
    """An administrator-maintained category (产品质量, 服务态度, 物流配送, 账单费用, 其他). Its ``agents``
    are the service staff who take its tickets by automatic assignment."""

    name = models.CharField(_("name"), max_length=64, unique=True)
    sort_order = models.PositiveIntegerField(_("sort order"), default=0)
    is_active = models.BooleanField(_("in use"), default=True)
    agents = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("service staff"),
        blank=True,
        related_name="ticket_categories",
        help_text=_("New tickets of this category are assigned to one of them automatically."),
    )

    history = HistoricalRecords(m2m_fields=[agents])

    class Meta:
        verbose_name = _("ticket category")
        verbose_name_plural = _("ticket categories")
        ordering = ["sort_order", "name"]

    def __str__(self) -> str:
        return self.name


class TicketQuerySet(models.QuerySet):
    def visible_to(self, user) -> TicketQuerySet:
        """Tickets of the customers ``user`` may see (the customer archive's one rule)."""
        from customers.access import scope_filter
        from customers.models import Customer

        if not user.has_perm("complaints.view_ticket"):
            return self.none()
        if user.has_perm("customers.view_all_customers"):
            return self
        return self.filter(customer__in=Customer.all_objects.filter(scope_filter(user)).values("pk"))

    def visible_parts(self, user) -> list[TicketQuerySet] | None:
        """The tickets ``visible_to(user)`` as disjoint querysets, for counting (None: every ticket).

        Each is a plain semi-join the planner estimates well: "owned, live customer" reads the
        covering ``customer_live_owner`` index alone, where the OR of every source of a rep's scope
        visits the heap page of each customer (a rep with 100,000 customers: 170 → 80 ms; see
        docs/performance.md). Disjoint, so a UNION ALL of them counts each ticket once.
        """
        from customers.access import scope_split
        from customers.models import Customer

        if not user.has_perm("complaints.view_ticket"):
            return [self.none()]
        parts = scope_split(user)
        if parts is None:
            return None
        owned, others = parts
        customers = [
            Customer.objects.filter(owned),  # live: index-only
            Customer.all_objects.filter(owned, deleted_at__isnull=False),  # in the recycle bin
        ]
        if others is not None:
            customers.append(Customer.all_objects.filter(others))  # shared, headed departments
        return [self.filter(customer__in=c.values("pk")) for c in customers]

    def open(self) -> TicketQuerySet:
        return self.filter(status__in=Ticket.OPEN_STATUSES)


class Ticket(models.Model):
    class Kind(models.TextChoices):
        COMPLAINT = "complaint", _("Complaint")  # 投诉
        INQUIRY = "inquiry", _("Inquiry")  # 咨询
        SERVICE = "service", _("Service request")  # 服务请求
        SUGGESTION = "suggestion", _("Suggestion")  # 建议

    class Severity(models.TextChoices):
        LOW = "low", _("Low")
        MEDIUM = "medium", _("Medium")
        HIGH = "high", _("High")
        CRITICAL = "critical", _("Critical")

    class Channel(models.TextChoices):
        PORTAL = "portal", _("Portal")
        PHONE = "phone", _("Phone")  # 电话
        EMAIL = "email", _("E-mail")  # 邮件
        ONSITE = "onsite", _("On site")  # 现场

    class Status(models.TextChoices):
        NEW = "new", _("New")  # 新建
        ASSIGNED = "assigned", _("Assigned")  # 已分配
        IN_PROGRESS = "in_progress", _("In progress")  # 处理中
        RESOLVED = "resolved", _("Resolved")  # 已解决
        CLOSED = "closed", _("Closed")  # 已关闭

    OPEN_STATUSES = (Status.NEW, Status.ASSIGNED, Status.IN_PROGRESS)

    # T2026-000123 (complaints.services assigns it from the year's sequence).
    number = models.CharField(_("number"), max_length=16, editable=False)
    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.PROTECT, related_name="tickets"
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, default=Kind.COMPLAINT)
    category = models.ForeignKey(TicketCategory, verbose_name=_("category"), on_delete=models.PROTECT)
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices, default=Severity.MEDIUM)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, default=Channel.PHONE)
    subject = models.CharField(_("subject"), max_length=200)
    description = models.TextField(_("description"))
    contact = models.ForeignKey(
        "customers.Contact",
        verbose_name=_("contact"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tickets",
    )
    opportunity = models.ForeignKey(
        "followups.Opportunity",
        verbose_name=_("opportunity"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tickets",
    )
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.NEW)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assignee"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_tickets",
        db_index=False,  # the (assignee, status, sla) index below
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("filed by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(_("filed at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    sla_due_at = models.DateTimeField(_("due by"), null=True, blank=True)
    first_response_at = models.DateTimeField(_("first response at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    escalated_at = models.DateTimeField(_("escalated at"), null=True, blank=True)
    # The customer's satisfaction (1–5) after resolution, and what they said.
    rating = models.PositiveSmallIntegerField(_("satisfaction"), null=True, blank=True)
    rating_comment = models.TextField(_("rating comment"), blank=True)
    rated_at = models.DateTimeField(_("rated at"), null=True, blank=True)

    objects = TicketQuerySet.as_manager()
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-id"]
        permissions = [
            ("assign_ticket", _("Can assign tickets to any service staff member")),
            ("view_all_tickets", _("Can see the whole team's ticket queue")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["number"], name="ticket_number_unique"),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5), name="ticket_rating_1_to_5"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "-id"], name="ticket_customer"),
            models.Index(fields=["status", "-id"], name="ticket_status"),
            models.Index(fields=["assignee", "status", "-id"], name="ticket_assignee_status"),
            models.Index(
                fields=["sla_due_at"],
                condition=Q(status__in=["new", "assigned", "in_progress"]),
                name="ticket_open_sla",
            ),
            # The service report and the dashboard: tickets filed, and ratings given, in a range.
            models.Index(fields=["created_at"], name="ticket_created"),
            models.Index(fields=["rated_at"], condition=Q(rated_at__isnull=False), name="ticket_rated"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.subject}"

    def save(self, *args, **kwargs) -> None:
        if not self.number:
            year = timezone.localdate().year
            self.number = f"T{year}-{next_sequence_value(f'ticket:{year}'):06d}"
        super().save(*args, **kwargs)

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class TicketEvent(models.Model):
    """One step on a ticket's timeline: filed, assigned, a status change, a reply the customer sees,
    an internal note the customer never sees, a rating. Written by complaints.services only."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Filed")
        ASSIGNED = "assigned", _("Assigned")
        STATUS = "status", _("Status changed")
        REPLY = "reply", _("Reply")
        NOTE = "note", _("Internal note")
        RATED = "rated", _("Rated")
        ESCALATED = "escalated", _("Escalated")

    ticket = models.ForeignKey(Ticket, verbose_name=_("ticket"), on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    from_status = models.CharField(_("from"), max_length=12, choices=Ticket.Status.choices, blank=True)
    to_status = models.CharField(_("to"), max_length=12, choices=Ticket.Status.choices, blank=True)
    # Staff who acted; None with ``by_customer`` for the customer (portal or rating link), None
    # alone for the system (automatic assignment, the SLA job).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    by_customer = models.BooleanField(_("by the customer"), default=False)
    # Internal notes and system events the customer must not see; replies and the main steps they may.
    internal = models.BooleanField(_("internal"), default=False)
    body = models.TextField(_("comment"), blank=True)
    created_at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        verbose_name = _("ticket event")
        verbose_name_plural = _("ticket events")
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at", "id"], name="ticketevent_ticket_time")]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.kind}"


class TicketAttachment(models.Model):
    """A file on a ticket (a photo of the damage, a receipt). Checked and encrypted exactly as the
    customer archive's files (customers.attachments); served only to those who may see the ticket."""

    ticket = models.ForeignKey(Ticket, verbose_name=_("ticket"), on_delete=models.CASCADE, related_name="attachments")
    event = models.ForeignKey(
        TicketEvent, verbose_name=_("event"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # An attachment to an internal note is internal too: never listed or served in the portal.
    internal = models.BooleanField(_("internal"), default=False)
    filename = models.CharField(_("file name"), max_length=200)
    content_type = models.CharField(_("content type"), max_length=100)
    size = models.PositiveIntegerField(_("size (bytes)"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    uploaded_at = models.DateTimeField(_("uploaded at"), default=timezone.now)

    class Meta:
        verbose_name = _("ticket attachment")
        verbose_name_plural = _("ticket attachments")
        ordering = ["uploaded_at", "id"]
        indexes = [models.Index(fields=["ticket", "uploaded_at"], name="ticketattachment_ticket")]

    def __str__(self) -> str:
        return self.filename


class TicketAttachmentContent(models.Model):
    """The encrypted bytes of one ticket attachment, apart so that listing files never loads them."""

    attachment = models.OneToOneField(
        TicketAttachment, on_delete=models.CASCADE, primary_key=True, related_name="content"
    )
    data = models.BinaryField()

    class Meta:
        verbose_name = _("ticket attachment content")
        verbose_name_plural = _("ticket attachment contents")

    def __str__(self) -> str:
        return f"content of ticket attachment {self.attachment_id}"
