"""Follow-ups (跟进记录), tasks (待办), personal notes (记事本) and in-app notifications.

Who sees a follow-up or a task follows its customer (customers.access.scope_filter); notes and
notifications belong to one user. Reminders are notifications made by a Celery beat job; the
unique (user, key) pair makes each one exactly once, however often the job runs.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from simple_history.models import HistoricalRecords


class FollowUpQuerySet(models.QuerySet):
    def visible_to(self, user) -> FollowUpQuerySet:
        """Follow-ups of the customers ``user`` may see (the customer archive's one rule)."""
        from customers.models import Customer

        return self.filter(customer__in=Customer.objects.visible_to(user))


class FollowUp(models.Model):
    class Kind(models.TextChoices):
        PHONE = "phone", _("Phone call")  # 电话
        VISIT = "visit", _("Visit")  # 拜访
        EMAIL = "email", pgettext_lazy("follow-up type", "Email")  # 邮件, not the 邮箱 of an address
        WECHAT = "wechat", _("WeChat")  # 微信
        MEETING = "meeting", _("Meeting")  # 会议
        RETURN_VISIT = "return_visit", _("Return visit")  # 回访 (with a satisfaction score)
        OTHER = "other", _("Other")  # 其他

    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="followups"
    )
    contact = models.ForeignKey(
        "customers.Contact",
        verbose_name=_("contact"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="followups",
    )
    opportunity = models.ForeignKey(
        "followups.Opportunity",
        verbose_name=_("opportunity"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="followups",
    )
    kind = models.CharField(_("type"), max_length=16, choices=Kind.choices, default=Kind.PHONE)
    happened_at = models.DateTimeField(_("time"), default=timezone.now)
    content = models.TextField(_("content"))
    result = models.CharField(_("result"), max_length=200, blank=True)
    next_contact_date = models.DateField(_("next contact date"), null=True, blank=True)
    satisfaction = models.PositiveSmallIntegerField(
        _("satisfaction"), null=True, blank=True, help_text=_("For a return visit: 1 (poor) to 5 (excellent).")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recorded by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    objects = FollowUpQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        ordering = ["-happened_at", "-id"]
        permissions = [("view_due_return_visits", _("Can see which customers are due a return visit"))]
        indexes = [
            models.Index(fields=["customer", "-happened_at", "-id"], name="followup_customer_time"),
            models.Index(fields=["created_by", "-happened_at", "-id"], name="followup_author_time"),
            models.Index(
                fields=["next_contact_date"], condition=Q(next_contact_date__isnull=False), name="followup_next_contact"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(satisfaction__isnull=True) | Q(satisfaction__gte=1, satisfaction__lte=5),
                name="followup_satisfaction_1_to_5",
                violation_error_message=_("Satisfaction is a score from 1 to 5."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.happened_at:%Y-%m-%d}"


class TaskQuerySet(models.QuerySet):
    def open(self) -> TaskQuerySet:
        return self.filter(done=False)


class Task(models.Model):
    """Something someone must do by a time (待办), by hand or from a follow-up's next contact date."""

    title = models.CharField(_("title"), max_length=200)
    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="tasks",
    )
    followup = models.ForeignKey(
        FollowUp,
        verbose_name=_("from follow-up"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tasks",
    )
    due_at = models.DateTimeField(_("due"))
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("assignee"), on_delete=models.PROTECT, related_name="tasks"
    )
    done = models.BooleanField(_("done"), default=False)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = TaskQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        ordering = ["done", "due_at", "id"]
        indexes = [
            models.Index(fields=["assignee", "done", "due_at"], name="task_assignee_due"),
            models.Index(fields=["done", "due_at"], name="task_open_due"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_overdue(self) -> bool:
        return not self.done and self.due_at < timezone.now()


class Note(models.Model):
    """A personal note (记事本) for a day; only its author ever sees it."""

    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("author"), on_delete=models.CASCADE, related_name="notes"
    )
    date = models.DateField(_("date"), default=timezone.localdate)
    text = models.TextField(_("text"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("note")
        verbose_name_plural = _("notes")
        ordering = ["date", "id"]
        indexes = [models.Index(fields=["author", "date"], name="note_author_date")]

    def __str__(self) -> str:
        return f"{self.date} {self.text[:30]}"


class Notification(models.Model):
    """An in-app message to one user (the bell). ``key`` names what it is about, so a reminder for
    the same thing is created once only (unique per user), even if two workers run the job."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="notifications"
    )
    key = models.CharField(_("key"), max_length=120)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text"), blank=True)
    url = models.CharField(_("link"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    emailed_at = models.DateTimeField(_("e-mailed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="notification_once_per_user")]
        indexes = [models.Index(fields=["user", "read_at", "-created_at"], name="notification_user_unread")]

    def __str__(self) -> str:
        return self.title


class OpportunityQuerySet(models.QuerySet):
    def visible_to(self, user) -> OpportunityQuerySet:
        """Opportunities of the customers ``user`` may see (the customer archive's one rule)."""
        from customers.models import Customer

        return self.filter(customer__in=Customer.objects.visible_to(user))

    def open(self) -> OpportunityQuerySet:
        return self.exclude(stage__in=Opportunity.CLOSED_STAGES)


class Opportunity(models.Model):
    """A sales opportunity (商机): a deal in the pipeline from first contact to won or lost."""

    class Stage(models.TextChoices):
        INITIAL = "initial", _("Initial contact")  # 初步接触
        NEEDS = "needs", _("Needs confirmed")  # 需求确认
        PROPOSAL = "proposal", _("Proposal and quote")  # 方案报价
        NEGOTIATION = "negotiation", _("Negotiation")  # 商务谈判
        WON = "won", _("Won")  # 赢单
        LOST = "lost", pgettext_lazy("opportunity stage", "Lost")  # 输单, not the 流失 of a customer

    # The probability (percent) a stage starts with; the user may change it per opportunity.
    DEFAULT_PROBABILITY = {
        Stage.INITIAL: 10,
        Stage.NEEDS: 30,
        Stage.PROPOSAL: 50,
        Stage.NEGOTIATION: 75,
        Stage.WON: 100,
        Stage.LOST: 0,
    }
    CLOSED_STAGES = (Stage.WON, Stage.LOST)

    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="opportunities"
    )
    title = models.CharField(_("title"), max_length=200)
    stage = models.CharField(_("stage"), max_length=16, choices=Stage.choices, default=Stage.INITIAL)
    amount = models.DecimalField(_("expected amount (CNY)"), max_digits=14, decimal_places=2, default=0)
    probability = models.PositiveSmallIntegerField(_("probability (%)"), default=10)
    expected_close_date = models.DateField(_("expected close date"), null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.PROTECT, related_name="opportunities"
    )
    description = models.TextField(_("products or description"), blank=True)
    lost_reason = models.CharField(_("lost reason"), max_length=200, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    objects = OpportunityQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("opportunity")
        verbose_name_plural = _("opportunities")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "stage"], name="opportunity_owner_stage"),
            models.Index(fields=["stage", "-created_at", "-id"], name="opportunity_stage_time"),
            models.Index(fields=["customer", "-created_at", "-id"], name="opportunity_customer_time"),
            # Won and lost opportunities by close time (the sales report's won/lost and rep ranking).
            models.Index(
                fields=["closed_at"],
                include=["stage", "amount", "owner", "customer"],
                condition=Q(closed_at__isnull=False),
                name="opportunity_closed",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gte=0),
                name="opportunity_amount_not_negative",
                violation_error_message=_("The amount cannot be negative."),
            ),
            models.CheckConstraint(
                condition=Q(probability__gte=0, probability__lte=100),
                name="opportunity_probability_0_to_100",
                violation_error_message=_("The probability is a percentage from 0 to 100."),
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_closed(self) -> bool:
        return self.stage in self.CLOSED_STAGES

    @property
    def weighted_amount(self):
        from decimal import Decimal

        return (self.amount * self.probability / Decimal(100)).quantize(Decimal("0.01"))


class OpportunityLine(models.Model):
    """A product an opportunity is about, with the quantity and the price offered."""

    opportunity = models.ForeignKey(
        Opportunity, verbose_name=_("opportunity"), on_delete=models.CASCADE, related_name="lines"
    )
    product = models.ForeignKey(
        "customers.Product", verbose_name=_("product"), on_delete=models.PROTECT, related_name="+"
    )
    quantity = models.DecimalField(_("quantity"), max_digits=14, decimal_places=2)
    unit_price = models.DecimalField(_("unit price (CNY)"), max_digits=14, decimal_places=2)

    class Meta:
        verbose_name = _("opportunity line")
        verbose_name_plural = _("opportunity lines")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0),
                name="opportunityline_quantity_positive",
                violation_error_message=_("The quantity must be more than zero."),
            ),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0),
                name="opportunityline_price_not_negative",
                violation_error_message=_("The price cannot be negative."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product_id} × {self.quantity}"

    @property
    def line_total(self):
        return (self.quantity * self.unit_price).quantize(self.unit_price)


# --- Marketing campaigns (市场营销活动) -------------------------------------------------------------


class Campaign(models.Model):
    class Kind(models.TextChoices):
        TRADE_SHOW = "trade_show", _("Trade show")  # 展会
        ONLINE = "online", _("Online promotion")  # 线上推广
        DEMO = "demo", _("Product demonstration")  # 产品演示
        PROMOTION = "promotion", _("Sales promotion")  # 促销
        SEMINAR = "seminar", _("Seminar")  # 研讨会
        OTHER = "other", _("Other")

    class Status(models.TextChoices):
        PLANNED = "planned", _("Planned")
        RUNNING = "running", _("Running")
        FINISHED = "finished", _("Finished")
        CANCELLED = "cancelled", _("Cancelled")

    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("type"), max_length=16, choices=Kind.choices, default=Kind.PROMOTION)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PLANNED)
    start_date = models.DateField(_("start date"))
    end_date = models.DateField(_("end date"))
    budget = models.DecimalField(_("budget (CNY)"), max_digits=14, decimal_places=2, default=0)
    actual_cost = models.DecimalField(_("actual cost (CNY)"), max_digits=14, decimal_places=2, null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.PROTECT, related_name="campaigns"
    )
    description = models.TextField(_("description"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-start_date", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__gte=models.F("start_date")),
                name="campaign_ends_after_start",
                violation_error_message=_("The end date cannot be before the start date."),
            ),
            models.CheckConstraint(
                condition=Q(budget__gte=0) & (Q(actual_cost__isnull=True) | Q(actual_cost__gte=0)),
                name="campaign_money_not_negative",
                violation_error_message=_("Budget and cost cannot be negative."),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CampaignMember(models.Model):
    """A customer a campaign targets, and how far they came: targeted → responded → converted."""

    class Status(models.TextChoices):
        TARGETED = "targeted", _("Reached")
        RESPONDED = "responded", _("Responded")
        CONVERTED = "converted", _("Converted")

    campaign = models.ForeignKey(Campaign, verbose_name=_("campaign"), on_delete=models.CASCADE, related_name="members")
    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="campaign_memberships",
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.TARGETED)
    added_at = models.DateTimeField(_("added at"), default=timezone.now)
    responded_at = models.DateTimeField(_("responded at"), null=True, blank=True)
    converted_at = models.DateTimeField(_("converted at"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("added by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("campaign member")
        verbose_name_plural = _("campaign members")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "customer"], name="campaign_member_once"),
        ]
        indexes = [
            models.Index(fields=["campaign", "status"], name="campaignmember_status"),
            models.Index(fields=["customer"], name="campaignmember_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}: {self.customer_id}"
