"""Models of the reports module: summary tables the reports read, customer profiles and their
automatic tags, and report subscriptions.

The summary tables (``CustomerFact``, ``SalesFact``) are derived data: ``reports.facts`` rebuilds
them with set-based SQL on a Celery schedule (``REPORT_REFRESH_MINUTES``) and ``SummaryState``
records when, so that every page says how fresh its figures are. They hold ids and amounts only,
never a personal field, and no history is kept of them. Their foreign keys carry no database
constraint: a customer deleted between two refreshes must not block the deletion, and the next
refresh drops its row.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from customers.models import Customer

_LOOSE = {"on_delete": models.DO_NOTHING, "db_constraint": False, "related_name": "+"}


def _between(low: int, high: int, message) -> list:
    return [MinValueValidator(low, message), MaxValueValidator(high, message)]


_BARE = {**_LOOSE, "db_index": False}


class SummaryState(models.Model):
    """When a summary table was last rebuilt, how long it took and how many rows it holds."""

    name = models.CharField(_("name"), max_length=32, primary_key=True)
    refreshed_at = models.DateTimeField(_("refreshed at"), null=True, blank=True)
    seconds = models.FloatField(_("duration (s)"), default=0)
    rows = models.PositiveIntegerField(_("rows"), default=0)

    class Meta:
        default_permissions = ()  # derived data: nobody adds or edits it
        verbose_name = _("summary table")
        verbose_name_plural = _("summary tables")

    def __str__(self) -> str:
        return f"{self.name} @ {self.refreshed_at}"


class CustomerFact(models.Model):
    """One live customer's reporting dimensions and lifecycle dates (Asia/Shanghai dates)."""

    customer = models.OneToOneField(Customer, primary_key=True, verbose_name=_("customer"), **_LOOSE)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, verbose_name=_("owner"), **_LOOSE)
    # The owner's department when the row was refreshed.
    department = models.ForeignKey("accounts.Department", null=True, verbose_name=_("department"), **_LOOSE)
    kind = models.CharField(_("kind"), max_length=10)
    status = models.CharField(_("lifecycle status"), max_length=12)
    source = models.ForeignKey("customers.CustomerSource", null=True, verbose_name=_("source"), **_LOOSE)
    level = models.ForeignKey("customers.CustomerLevel", null=True, verbose_name=_("level"), **_LOOSE)
    customer_type = models.ForeignKey("customers.CustomerType", null=True, verbose_name=_("customer type"), **_LOOSE)
    province = models.ForeignKey("customers.Province", null=True, verbose_name=_("province"), **_LOOSE)
    industry = models.ForeignKey("customers.Industry", null=True, verbose_name=_("industry"), **_LOOSE)
    created_on = models.DateField(_("created on"))
    # The first day the customer reached 意向 (or went straight past it), and 成交.
    intent_on = models.DateField(_("became intent on"), null=True)
    won_on = models.DateField(_("became a customer on"), null=True)

    class Meta:
        default_permissions = ()  # derived data: nobody adds or edits it
        verbose_name = _("customer fact")
        verbose_name_plural = _("customer facts")
        indexes = [
            models.Index(fields=["created_on"], name="customerfact_created"),
            models.Index(fields=["owner"], name="customerfact_owner"),
            models.Index(fields=["won_on"], name="customerfact_won", condition=models.Q(won_on__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"customer {self.customer_id}"


class SalesFact(models.Model):
    """One transaction (a refund is a negative amount) with the dimensions reports filter by: the
    rep credited with the sale and their department, and the customer's dimensions."""

    transaction = models.OneToOneField(
        "customers.Transaction", primary_key=True, verbose_name=_("transaction"), **_LOOSE
    )
    customer = models.ForeignKey(Customer, verbose_name=_("customer"), **_LOOSE)
    day = models.DateField(_("date"))
    amount = models.DecimalField(_("amount (CNY)"), max_digits=14, decimal_places=2)
    rep = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, verbose_name=_("sales rep"), **_LOOSE)
    department = models.ForeignKey("accounts.Department", null=True, verbose_name=_("department"), **_LOOSE)
    source = models.ForeignKey("customers.CustomerSource", null=True, verbose_name=_("source"), **_LOOSE)
    level = models.ForeignKey("customers.CustomerLevel", null=True, verbose_name=_("level"), **_LOOSE)
    customer_type = models.ForeignKey("customers.CustomerType", null=True, verbose_name=_("customer type"), **_LOOSE)
    province = models.ForeignKey("customers.Province", null=True, verbose_name=_("province"), **_LOOSE)
    industry = models.ForeignKey("customers.Industry", null=True, verbose_name=_("industry"), **_LOOSE)

    class Meta:
        default_permissions = ()  # derived data: nobody adds or edits it
        verbose_name = _("sales fact")
        verbose_name_plural = _("sales facts")
        indexes = [
            models.Index(fields=["day"], name="salesfact_day"),
            models.Index(fields=["customer"], name="salesfact_customer"),
            models.Index(fields=["rep", "day"], name="salesfact_rep_day"),
        ]

    def __str__(self) -> str:
        return f"transaction {self.transaction_id}"


class TicketFact(models.Model):
    """One ticket of a live customer with what the service report and the dashboard count: the
    day it was filed and rated (Asia/Shanghai dates), the hours to first response and to
    resolution, whether it had a due time and broke it, and the customer's owner and dimensions
    when the row was refreshed. Only the three indexes below (no index per foreign key): the reports
    reach the rows by date or by customer, and every index is written again when a row changes.
    ``breached`` of a ticket still unresolved is judged at the refresh:
    one that passes its due time afterwards counts from the next refresh on."""

    ticket = models.OneToOneField("complaints.Ticket", primary_key=True, verbose_name=_("ticket"), **_LOOSE)
    customer = models.ForeignKey(Customer, verbose_name=_("customer"), **_BARE)
    created_on = models.DateField(_("filed on"))
    category = models.ForeignKey("complaints.TicketCategory", verbose_name=_("category"), **_BARE)
    severity = models.CharField(_("severity"), max_length=10)
    channel = models.CharField(_("channel"), max_length=10)
    kind = models.CharField(_("kind"), max_length=12)
    status = models.CharField(_("status"), max_length=12)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, verbose_name=_("assignee"), **_BARE)
    # The customer's owner and the owner's department when the row was refreshed.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, verbose_name=_("owner"), **_BARE)
    department = models.ForeignKey("accounts.Department", null=True, verbose_name=_("department"), **_BARE)
    source = models.ForeignKey("customers.CustomerSource", null=True, verbose_name=_("source"), **_BARE)
    level = models.ForeignKey("customers.CustomerLevel", null=True, verbose_name=_("level"), **_BARE)
    customer_type = models.ForeignKey("customers.CustomerType", null=True, verbose_name=_("customer type"), **_BARE)
    province = models.ForeignKey("customers.Province", null=True, verbose_name=_("province"), **_BARE)
    industry = models.ForeignKey("customers.Industry", null=True, verbose_name=_("industry"), **_BARE)
    first_response_hours = models.FloatField(_("hours to first response"), null=True)
    resolve_hours = models.FloatField(_("hours to resolution"), null=True)
    due = models.BooleanField(_("has a due time"), default=False)
    breached = models.BooleanField(_("SLA breached"), default=False)
    rating = models.PositiveSmallIntegerField(_("satisfaction"), null=True)
    rated_on = models.DateField(_("rated on"), null=True)

    class Meta:
        default_permissions = ()  # derived data: nobody adds or edits it
        verbose_name = _("ticket fact")
        verbose_name_plural = _("ticket facts")
        indexes = [
            models.Index(fields=["created_on"], name="ticketfact_created"),
            models.Index(fields=["rated_on"], name="ticketfact_rated", condition=models.Q(rated_on__isnull=False)),
            models.Index(fields=["customer"], name="ticketfact_customer"),
        ]

    def __str__(self) -> str:
        return f"ticket {self.ticket_id}"


class Rollup(models.Model):
    """Daily totals of a fact table for reports over every customer (users who hold
    ``reports.view_all_reports``): one set of rows per ``dim`` — ``""`` the plain totals by day,
    rep and department, then the same split once more by one customer dimension (``"source"`` with
    ``value`` a source id, …). A report filtered by at most one dimension reads a few thousand of
    these instead of scanning a million facts; with two or more it falls back to the facts."""

    day = models.DateField(_("date"))
    department = models.ForeignKey("accounts.Department", null=True, verbose_name=_("department"), **_LOOSE)
    dim = models.CharField(_("dimension"), max_length=16, blank=True)
    value = models.IntegerField(_("value"), null=True)

    class Meta:
        abstract = True


class CustomerDaily(Rollup):
    """Per day: customers created, and customers who first reached 意向 and 成交 that day (by
    owner); and of the customers created that day, how many have reached 意向 and 成交 since."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, verbose_name=_("owner"), **_LOOSE)
    created = models.PositiveIntegerField(_("created"), default=0)
    reached_intent = models.PositiveIntegerField(_("reached intent"), default=0)
    reached_won = models.PositiveIntegerField(_("reached won"), default=0)
    cohort_intent = models.PositiveIntegerField(_("of those created, reached intent"), default=0)
    cohort_won = models.PositiveIntegerField(_("of those created, reached won"), default=0)

    class Meta:
        default_permissions = ()  # derived data: nobody adds or edits it
        verbose_name = _("customer daily totals")
        verbose_name_plural = _("customer daily totals")
        indexes = [models.Index(fields=["dim", "value", "day"], name="customerdaily_dim_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.dim}={self.value}"


class SalesDaily(Rollup):
    """Per day and credited rep: net amount, orders (positive transactions) and refunds."""

    rep = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, verbose_name=_("sales rep"), **_LOOSE)
    net_amount = models.DecimalField(_("net amount"), max_digits=16, decimal_places=2, default=0)
    orders = models.PositiveIntegerField(_("orders"), default=0)
    order_amount = models.DecimalField(_("order amount"), max_digits=16, decimal_places=2, default=0)
    refunds = models.PositiveIntegerField(_("refunds"), default=0)
    refund_amount = models.DecimalField(_("refund amount"), max_digits=16, decimal_places=2, default=0)

    class Meta:
        default_permissions = ()  # derived data: nobody adds or edits it
        verbose_name = _("sales daily totals")
        verbose_name_plural = _("sales daily totals")
        indexes = [models.Index(fields=["dim", "value", "day"], name="salesdaily_dim_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.dim}={self.value}"


class CustomerProfile(models.Model):
    """A customer's RFM scores and the figures the automatic tags are decided on, recomputed in
    bulk every night (``reports.profiles.profiles_refresh``)."""

    customer = models.OneToOneField(
        Customer, primary_key=True, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="profile"
    )
    last_purchase_on = models.DateField(_("last purchase"), null=True, blank=True)
    recency_days = models.PositiveIntegerField(_("days since last purchase"), null=True, blank=True)
    frequency = models.PositiveIntegerField(_("purchases in 12 months"), default=0)
    monetary = models.DecimalField(_("net amount in 12 months (CNY)"), max_digits=16, decimal_places=2, default=0)
    r_score = models.PositiveSmallIntegerField(_("R score"), null=True, blank=True)
    f_score = models.PositiveSmallIntegerField(_("F score"), null=True, blank=True)
    m_score = models.PositiveSmallIntegerField(_("M score"), null=True, blank=True)
    last_contact_at = models.DateTimeField(_("last follow-up"), null=True, blank=True)
    followups_recent = models.PositiveIntegerField(_("recent follow-ups"), default=0)
    has_won_opportunity = models.BooleanField(_("has a won opportunity"), default=False)
    renewal_risk = models.PositiveSmallIntegerField(_("renewal risk (0–100)"), default=0)
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)

    class Meta:
        verbose_name = _("customer profile")
        verbose_name_plural = _("customer profiles")
        permissions = [("act_on_profiles", "Can turn profile tags into tasks for the owners")]

    def __str__(self) -> str:
        return f"profile of {self.customer_id}"


class ProfileRule(models.Model):
    """An automatic tag (客户画像标签): which rule decides it, its thresholds, and the action it
    suggests. One row per kind; administrators edit the thresholds in the admin."""

    class Kind(models.TextChoices):
        HIGH_VALUE = "high_value", _("High value: top share by 12-month amount")
        DORMANT = "dormant", _("Dormant: bought before, no purchase or follow-up lately")
        BUSY_NO_WIN = "busy_no_win", _("Active but not converting: many follow-ups, no won opportunity")
        NEW = "new", _("New customer")
        CHURN_RISK = "churn_risk", _("Churn risk: contract ending with complaints, low satisfaction or falling spend")

    kind = models.CharField(_("rule"), max_length=16, choices=Kind.choices, unique=True)
    name = models.CharField(_("tag name"), max_length=32, unique=True)
    color = models.CharField(_("colour"), max_length=16, default="secondary")
    is_active = models.BooleanField(_("in use"), default=True)
    # The thresholds; each kind uses the ones its help text names.
    percent = models.PositiveSmallIntegerField(
        _("percent"),
        default=20,
        validators=[*_between(1, 100, _("A percentage from 1 to 100."))],
        help_text=_("High value: the top share of customers (%). Churn risk: a spend fall of at least this much (%)."),
    )
    days = models.PositiveIntegerField(
        _("days"),
        default=90,
        validators=[MinValueValidator(1, _("At least 1 day."))],
        help_text=_(
            "Dormant: days without purchase or follow-up. New: days since created. Active: the window counted. Churn risk: days until the contract ends."
        ),
    )
    count = models.PositiveIntegerField(
        _("count"),
        default=5,
        validators=[MinValueValidator(1, _("At least 1 follow-up."))],
        help_text=_("Active but not converting: at least this many follow-ups in the window."),
    )
    # 30: any one of the renewal-risk factors alone reaches it (reports.profiles' weights 40/30/30).
    score = models.PositiveSmallIntegerField(
        _("score"),
        default=30,
        validators=[*_between(1, 100, _("A score from 1 to 100."))],
        help_text=_("Churn risk: the renewal-risk score (0–100) from which the tag is given."),
    )
    rating = models.PositiveSmallIntegerField(
        _("low satisfaction"),
        default=2,
        validators=[*_between(1, 5, _("A rating from 1 to 5."))],
        help_text=_("Churn risk: an average rating at or below this is low satisfaction."),
    )
    action = models.CharField(
        _("suggested action"),
        max_length=120,
        blank=True,
        help_text=_("The title of the task a manager can create for the owners."),
    )
    action_days = models.PositiveSmallIntegerField(_("task due in (days)"), default=3)
    sort_order = models.PositiveSmallIntegerField(_("sort order"), default=0)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("profile rule")
        verbose_name_plural = _("profile rules")
        ordering = ["sort_order", "pk"]

    def __str__(self) -> str:
        return self.name


class ProfileTag(models.Model):
    """An automatic tag a customer carries, with the figures that earned it (``reason``), so the
    360 page can say why."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="profile_tags"
    )
    rule = models.ForeignKey(ProfileRule, verbose_name=_("rule"), on_delete=models.CASCADE, related_name="tags")
    reason = models.JSONField(_("reason"), default=dict)
    since = models.DateTimeField(_("since"), default=timezone.now)

    class Meta:
        verbose_name = _("profile tag")
        verbose_name_plural = _("profile tags")
        constraints = [models.UniqueConstraint(fields=["rule", "customer"], name="profiletag_rule_customer")]
        indexes = [models.Index(fields=["customer"], name="profiletag_customer")]

    def __str__(self) -> str:
        return f"{self.rule_id} → {self.customer_id}"


class ReportSubscription(models.Model):
    """A user's standing order for a report with its filters, e-mailed daily, weekly or monthly."""

    class Frequency(models.TextChoices):
        DAILY = "daily", _("Daily")
        WEEKLY = "weekly", _("Weekly (Mondays)")
        MONTHLY = "monthly", _("Monthly (the 1st)")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("subscriber"),
        on_delete=models.CASCADE,
        related_name="report_subscriptions",
    )
    report = models.CharField(_("report"), max_length=32)
    query = models.CharField(_("filters"), max_length=500, blank=True)
    frequency = models.CharField(_("frequency"), max_length=8, choices=Frequency.choices, default=Frequency.WEEKLY)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    last_sent_at = models.DateTimeField(_("last sent"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("report subscription")
        verbose_name_plural = _("report subscriptions")
        ordering = ["report", "pk"]
        permissions = [
            ("view_report", "Can open reports"),
            ("view_all_reports", "Reports cover every customer and may be filtered by rep"),
        ]
        indexes = [models.Index(fields=["user"], name="reportsub_user")]

    def __str__(self) -> str:
        return f"{self.report} → {self.user} ({self.frequency})"
