"""The year-end lottery (年末抽奖): events, prize tiers, weights, the frozen entry list and the winners.

How a draw is made and checked is `lottery.algorithm` (docs/lottery.md); the writes that move an event
along 草稿 → 已公示 → 已开奖 → 已公布 are `lottery.services`. Once an event is published, nothing that
went into its list hash or its draw changes: the services refuse (and log) every attempt, and anyone
holding the published document can tell if the database was edited behind their back
(`manage.py verify_lottery`).
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from simple_history.models import HistoricalRecords

from cims.crypto import EncryptedTextField
from customers.models import Customer, CustomerLevel

MAX_WEIGHT = 100
MAX_TIER_QUANTITY = 100_000


def default_statuses() -> list[str]:
    return [Customer.Status.WON]


class LotteryEventQuerySet(models.QuerySet):
    def published(self) -> LotteryEventQuerySet:
        """Events whose entry list is frozen and public (已公示 and after)."""
        return self.exclude(status=LotteryEvent.Status.DRAFT)


class LotteryEvent(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", pgettext_lazy("lottery status", "Draft")  # 草稿
        PUBLISHED = "published", pgettext_lazy("lottery status", "Published")  # 已公示
        DRAWN = "drawn", pgettext_lazy("lottery status", "Drawn")  # 已开奖
        ANNOUNCED = "announced", pgettext_lazy("lottery status", "Announced")  # 已公布

    name = models.CharField(_("name"), max_length=100)
    year = models.PositiveSmallIntegerField(
        _("year"),
        validators=[MinValueValidator(2000), MaxValueValidator(2100)],
        help_text=_("The year it thanks customers for."),
    )
    description = models.TextField(_("description"), blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)

    # Who may win (lottery.eligibility). Empty levels: any level.
    statuses = models.JSONField(_("lifecycle statuses"), default=default_statuses)
    levels = models.ManyToManyField(CustomerLevel, verbose_name=_("customer levels"), blank=True, related_name="+")
    min_amount = models.DecimalField(
        _("minimum purchases in the year (CNY)"),
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text=_("Net purchases (refunds deducted) dated in the event's year."),
    )
    require_active_contract = models.BooleanField(
        _("contract in force in the year"), default=False, help_text=_("A contract in force at some time in the year.")
    )
    created_before = models.DateField(
        _("customer since before"), null=True, blank=True, help_text=_("Only customers created before this date.")
    )
    exclude_employees = models.BooleanField(
        _("exclude our own staff"), default=True, help_text=_("Customers marked as company employees cannot enter.")
    )

    # Fixed when published (lottery.services.event_publish). The salt makes the pseudonymous entry
    # ids; the secret is committed to by its hash now and revealed by the draw. Both are encrypted at
    # rest, so a copy of the database alone does not tell the winners ahead of the draw.
    salt = EncryptedTextField(_("entry id salt"), editable=False)
    secret = EncryptedTextField(_("server secret"), editable=False)
    commitment = models.CharField(_("commitment"), max_length=64, blank=True, editable=False)
    list_hash = models.CharField(_("entry list hash"), max_length=64, blank=True, editable=False)
    entry_count = models.PositiveIntegerField(_("entries"), null=True, blank=True, editable=False)
    total_weight = models.PositiveBigIntegerField(_("total weight"), null=True, blank=True, editable=False)
    # The rules and weights as published, in words: what the public page shows even if a level is
    # renamed later.
    published_rules = models.JSONField(_("published rules"), default=dict, blank=True, editable=False)
    published_at = models.DateTimeField(_("published at"), null=True, blank=True, editable=False)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("published by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
    )
    public_value = models.TextField(_("public value"), blank=True, editable=False)
    public_value_at = models.DateTimeField(_("public value entered at"), null=True, blank=True, editable=False)
    public_value_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("public value entered by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
    )
    drawn_at = models.DateTimeField(_("drawn at"), null=True, blank=True, editable=False)
    drawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("drawn by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
    )
    announced_at = models.DateTimeField(_("announced at"), null=True, blank=True, editable=False)
    announced_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("announced by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
    )

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    objects = LotteryEventQuerySet.as_manager()
    history = HistoricalRecords(excluded_fields=["salt", "secret"], m2m_fields=[levels])

    class Meta:
        verbose_name = _("lottery event")
        verbose_name_plural = _("lottery events")
        ordering = ["-year", "-id"]
        permissions = [
            ("publish_lotteryevent", _("Can publish a lottery (freeze its entry list)")),
            ("draw_lotteryevent", _("Can run the draw and the big screen")),
            ("announce_lotteryevent", _("Can announce a lottery's winners")),
            ("view_winner_details", _("Can see winners' names and phone numbers unmasked")),
            ("export_winners", _("Can export the winners list")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["year", "name"], name="lottery_event_year_name"),
            # A published event always carries what it published.
            models.CheckConstraint(
                condition=Q(status="draft") | (~Q(commitment="") & ~Q(list_hash="") & Q(published_at__isnull=False)),
                name="lottery_event_published_complete",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["draft", "published"]) | Q(drawn_at__isnull=False),
                name="lottery_event_drawn_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.year} {self.name}"

    @property
    def is_draft(self) -> bool:
        return self.status == self.Status.DRAFT

    @property
    def is_drawn(self) -> bool:
        return self.status in (self.Status.DRAWN, self.Status.ANNOUNCED)

    @property
    def is_announced(self) -> bool:
        return self.status == self.Status.ANNOUNCED


class LotteryTier(models.Model):
    """A prize tier (特等奖, 一等奖 …): drawn in ``draw_order``, ties by name (docs/lottery.md)."""

    event = models.ForeignKey(
        LotteryEvent, verbose_name=_("lottery event"), on_delete=models.CASCADE, related_name="tiers"
    )
    name = models.CharField(_("tier"), max_length=40)
    prize = models.CharField(_("prize"), max_length=200)
    quantity = models.PositiveIntegerField(
        _("quantity"), validators=[MinValueValidator(1), MaxValueValidator(MAX_TIER_QUANTITY)]
    )
    draw_order = models.SmallIntegerField(
        _("draw order"), default=1, help_text=_("Tiers are drawn from the lowest number up.")
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("prize tier")
        verbose_name_plural = _("prize tiers")
        ordering = ["draw_order", "name"]
        constraints = [
            models.UniqueConstraint(fields=["event", "name"], name="lottery_tier_event_name"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="lottery_tier_quantity_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class LotteryLevelWeight(models.Model):
    """How many entries a customer of one level holds (VIP 3, A 2 …); other levels hold one. Public."""

    event = models.ForeignKey(
        LotteryEvent, verbose_name=_("lottery event"), on_delete=models.CASCADE, related_name="weights"
    )
    level = models.ForeignKey(CustomerLevel, verbose_name=_("level"), on_delete=models.PROTECT, related_name="+")
    weight = models.PositiveSmallIntegerField(
        _("entries"), validators=[MinValueValidator(1), MaxValueValidator(MAX_WEIGHT)]
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("level weight")
        verbose_name_plural = _("level weights")
        constraints = [
            models.UniqueConstraint(fields=["event", "level"], name="lottery_weight_event_level"),
            models.CheckConstraint(condition=Q(weight__gte=1), name="lottery_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.level}: {self.weight}"


class LotteryEntry(models.Model):
    """One line of a published entry list, written once by event_publish and never changed.

    ``position`` is the line's index in the canonical list (sorted by entry id), so reading the list
    back in order needs no collation rules.
    """

    event = models.ForeignKey(
        LotteryEvent, verbose_name=_("lottery event"), on_delete=models.PROTECT, related_name="entries", db_index=False
    )
    position = models.PositiveIntegerField(_("position"))
    entry_id = models.CharField(_("entry id"), max_length=64)
    weight = models.PositiveIntegerField(_("entries"))
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="lottery_entries", db_index=False
    )

    class Meta:
        verbose_name = _("lottery entry")
        verbose_name_plural = _("lottery entries")
        ordering = ["event", "position"]
        default_permissions = ("view",)
        constraints = [
            models.UniqueConstraint(fields=["event", "position"], name="lottery_entry_event_position"),
            # One entry per customer per event; customer first, so it also finds a customer's entries.
            models.UniqueConstraint(fields=["customer", "event"], name="lottery_entry_customer_event"),
        ]

    def __str__(self) -> str:
        return self.entry_id


class LotteryWinner(models.Model):
    """One prize awarded by the draw. The constraints hold even against a buggy or doubled draw."""

    event = models.ForeignKey(
        LotteryEvent, verbose_name=_("lottery event"), on_delete=models.PROTECT, related_name="winners"
    )
    rank = models.PositiveIntegerField(_("draw number"))  # 1, 2, … in draw order
    tier = models.ForeignKey(LotteryTier, verbose_name=_("tier"), on_delete=models.PROTECT, related_name="winners")
    position = models.PositiveIntegerField(_("position in tier"))
    entry = models.OneToOneField(LotteryEntry, verbose_name=_("entry"), on_delete=models.PROTECT, related_name="win")
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="lottery_wins"
    )
    notified_at = models.DateTimeField(_("owner notified at"), null=True, blank=True)

    class Meta:
        verbose_name = _("winner")
        verbose_name_plural = _("winners")
        ordering = ["event", "rank"]
        default_permissions = ("view",)
        constraints = [
            models.UniqueConstraint(fields=["event", "customer"], name="lottery_winner_once_per_event"),
            models.UniqueConstraint(fields=["event", "rank"], name="lottery_winner_event_rank"),
            models.UniqueConstraint(fields=["tier", "position"], name="lottery_winner_tier_position"),
        ]

    def __str__(self) -> str:
        return f"{self.tier} #{self.position} {self.entry_id}"

    @property
    def entry_id(self) -> str:
        return self.entry.entry_id


class LotteryLog(models.Model):
    """What happened to an event, append-only: publishing, the public value, the draw, the
    announcement, exports, verifications — and every refused attempt to change what was published."""

    class Action(models.TextChoices):
        CREATED = "created", _("Created")
        PUBLISHED = "published", pgettext_lazy("lottery log", "Published")
        PUBLIC_VALUE = "public_value", _("Public value entered")
        DRAWN = "drawn", pgettext_lazy("lottery log", "Drawn")
        ANNOUNCED = "announced", pgettext_lazy("lottery log", "Announced")
        EXPORTED = "exported", _("Winners exported")
        VERIFIED = "verified", _("Verified")
        REFUSED = "refused", _("Refused")

    event = models.ForeignKey(
        LotteryEvent, verbose_name=_("lottery event"), on_delete=models.CASCADE, related_name="log"
    )
    action = models.CharField(_("action"), max_length=12, choices=Action.choices)
    detail = models.CharField(_("details"), max_length=500, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("lottery log entry")
        verbose_name_plural = _("lottery log")
        ordering = ["-created_at", "-id"]
        default_permissions = ("view",)
        indexes = [models.Index(fields=["event", "-created_at"], name="lottery_log_event_time")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.detail}"
