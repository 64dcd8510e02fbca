"""The customer archive (客户档案): lookups, customers, contacts, tags, transactions, contracts."""

from __future__ import annotations

import datetime
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase
from simple_history.models import HistoricalRecords

from cims.crypto import BlindIndexField, EncryptedJSONField, EncryptedTextField
from cims.models import next_sequence_value

# --- Lookups (系统设置) -------------------------------------------------------------------------


class Lookup(models.Model):
    name = models.CharField(_("name"), max_length=64, unique=True)
    sort_order = models.PositiveIntegerField(_("sort order"), default=0)
    is_active = models.BooleanField(_("in use"), default=True)

    class Meta:
        abstract = True
        ordering = ["sort_order", "name"]

    def __str__(self) -> str:
        return self.name


class EnterpriseType(Lookup):
    class Meta(Lookup.Meta):
        verbose_name = _("enterprise type")
        verbose_name_plural = _("enterprise types")


class EnterpriseNature(Lookup):
    class Meta(Lookup.Meta):
        verbose_name = _("enterprise nature")
        verbose_name_plural = _("enterprise natures")


class CustomerLevel(Lookup):
    class Meta(Lookup.Meta):
        verbose_name = _("customer level")
        verbose_name_plural = _("customer levels")


class CustomerSource(Lookup):
    class Meta(Lookup.Meta):
        verbose_name = _("customer source")
        verbose_name_plural = _("customer sources")


class CustomerType(Lookup):
    class Meta(Lookup.Meta):
        verbose_name = _("customer type")
        verbose_name_plural = _("customer types")


class Industry(Lookup):
    class Meta(Lookup.Meta):
        verbose_name = _("industry")
        verbose_name_plural = _("industries")


class ProductCategory(Lookup):
    class Meta(Lookup.Meta):
        verbose_name = _("product category")
        verbose_name_plural = _("product categories")


class Province(models.Model):
    """The 34 provincial-level divisions, shipped as data (GB/T 2260 codes)."""

    code = models.CharField(_("code"), max_length=2, unique=True)
    name = models.CharField(_("name"), max_length=16, unique=True)
    short_name = models.CharField(_("short name"), max_length=8, unique=True)

    class Meta:
        verbose_name = _("province")
        verbose_name_plural = _("provinces")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    name = models.CharField(_("name"), max_length=32, unique=True)
    color = models.CharField(
        _("colour"),
        max_length=7,
        default="#2563eb",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Enter a colour such as #2563eb."))],
    )

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CustomField(models.Model):
    """An extra field the administrator defines for every customer (values in Customer.custom_data)."""

    TEXT, NUMBER, DATE, CHOICE = "text", "number", "date", "choice"
    TYPES = [(TEXT, _("Text")), (NUMBER, _("Number")), (DATE, _("Date")), (CHOICE, _("Choice"))]

    label = models.CharField(_("label"), max_length=64)
    key = models.SlugField(
        _("key"),
        max_length=32,
        unique=True,
        help_text=_("Used in imports, exports and the database; letters, digits, underscores."),
    )
    field_type = models.CharField(_("type"), max_length=8, choices=TYPES, default=TEXT)
    required = models.BooleanField(_("required"), default=False)
    choices = models.TextField(_("choices"), blank=True, help_text=_("For a choice field: one option per line."))
    sort_order = models.PositiveIntegerField(_("sort order"), default=0)
    is_active = models.BooleanField(_("in use"), default=True)

    class Meta:
        verbose_name = _("custom field")
        verbose_name_plural = _("custom fields")
        ordering = ["sort_order", "label"]

    def __str__(self) -> str:
        return self.label

    @property
    def choice_list(self) -> list[str]:
        return [line.strip() for line in self.choices.splitlines() if line.strip()]

    def clean(self) -> None:
        if self.field_type == self.CHOICE and not self.choice_list:
            raise ValidationError({"choices": _("A choice field needs at least one option.")})
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.key or ""):
            raise ValidationError(
                {"key": _("Start with a lower-case letter; use lower-case letters, digits and underscores.")}
            )


# --- Customers ---------------------------------------------------------------------------------


def name_grams(text: str) -> str:
    """Single characters and character pairs of a name, space-separated, for the substring index.

    A trigram index cannot serve two-character Chinese names (王伟); a bigram index can. Latin
    text is lower-cased so that search is case-insensitive.
    """
    text = re.sub(r"\s+", "", text.lower())
    grams = dict.fromkeys(list(text) + [text[i : i + 2] for i in range(len(text) - 1)])
    return " ".join(grams)


class NameGramsField(models.TextField):
    def __init__(self, *args, source: str = "name", **kwargs):
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        kwargs.setdefault("editable", False)
        self.source = source
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["source"] = self.source
        for key, default in (("blank", True), ("default", ""), ("editable", False)):
            if kwargs.get(key) == default:
                kwargs.pop(key, None)
        return name, path, args, kwargs

    def pre_save(self, model_instance, add):
        value = name_grams(f"{model_instance.name} {getattr(model_instance, 'company', '')}")
        setattr(model_instance, self.attname, value)
        return value


class CustomerQuerySet(models.QuerySet):
    def visible_to(self, user) -> CustomerQuerySet:
        """The customers ``user`` may see: the one rule used by views, exports, reports and search.

        All customers for holders of ``customers.view_all_customers`` (managers, service, admins).
        Otherwise: the customers they own, those owned by anyone in the departments they head and
        the departments below (a query on columns, not a permission row per customer), and those
        shared with them or one of their groups through django-guardian's direct object
        permissions. A model-wide ``view_customer`` alone widens nothing.
        """
        from customers.access import scope_filter

        return self.filter(scope_filter(user, "view"))

    def editable_by(self, user) -> CustomerQuerySet:
        from customers.access import scope_filter

        return self.filter(scope_filter(user, "change"))

    def search_name(self, text: str) -> CustomerQuerySet:
        from customers.search import filter_name_substring

        return filter_name_substring(self, text)


class AliveManager(models.Manager.from_queryset(CustomerQuerySet)):
    """Customers not in the recycle bin."""

    def get_queryset(self):
        return super().get_queryset().filter(deleted_at__isnull=True)


class Customer(models.Model):
    INDIVIDUAL, ENTERPRISE = "individual", "enterprise"
    KINDS = [(INDIVIDUAL, _("Individual")), (ENTERPRISE, _("Enterprise"))]

    class Gender(models.TextChoices):
        MALE = "M", _("Male")
        FEMALE = "F", _("Female")
        UNKNOWN = "", _("Not given")

    class Status(models.TextChoices):
        PROSPECT = "prospect", _("Prospect")  # 潜在客户
        INTENT = "intent", _("Intent")  # 意向客户
        WON = "won", pgettext_lazy("lifecycle status", "Customer")  # 成交客户, not the 客户 of a label
        AFTER_SALES = "after_sales", _("After-sales")  # 售后中
        LOST = "lost", _("Lost")  # 流失

    class Scale(models.TextChoices):
        MICRO = "micro", _("Under 20 staff")
        SMALL = "small", _("20–99 staff")
        MEDIUM = "medium", _("100–499 staff")
        LARGE = "large", _("500–1,999 staff")
        HUGE = "huge", _("2,000 staff or more")

    # Unique through Meta.constraints: a unique=True column gets a second "_like" index on PostgreSQL
    # that no query uses (codes are matched exactly).
    code = models.CharField(_("customer code"), max_length=16, editable=False)
    kind = models.CharField(_("kind"), max_length=10, choices=KINDS, default=INDIVIDUAL)
    name = models.CharField(_("name"), max_length=128)
    company = models.CharField(
        _("company"), max_length=128, blank=True, help_text=_("Employer of an individual customer.")
    )
    gender = models.CharField(_("gender"), max_length=1, choices=Gender.choices, blank=True, default="")
    birth_date = models.DateField(_("birth date"), null=True, blank=True)

    # Personal data, encrypted at rest; exact search through the blind indexes below.
    phone = EncryptedTextField(_("phone"))
    mobile = EncryptedTextField(_("mobile"))
    email = EncryptedTextField(_("email"))
    address = EncryptedTextField(_("address"))
    id_number = EncryptedTextField(_("ID card number"))
    bank_account = EncryptedTextField(_("bank account"))
    fax = models.CharField(_("fax"), max_length=32, blank=True)

    # Indexed by the partial covering indexes of Meta.indexes (live customers only), not by a
    # plain index and its unused "_like" twin each: fewer indexes to keep up on bulk imports.
    phone_bidx = BlindIndexField(source="phone", kind="phone", db_index=False)
    mobile_bidx = BlindIndexField(source="mobile", kind="phone", db_index=False)
    email_bidx = BlindIndexField(source="email", kind="email", db_index=False)
    id_number_bidx = BlindIndexField(source="id_number", kind="id_number", db_index=False)
    name_grams = NameGramsField()

    province = models.ForeignKey(Province, verbose_name=_("province"), null=True, blank=True, on_delete=models.PROTECT)
    city = models.CharField(_("city"), max_length=32, blank=True)
    level = models.ForeignKey(CustomerLevel, verbose_name=_("level"), null=True, blank=True, on_delete=models.PROTECT)
    source = models.ForeignKey(
        CustomerSource, verbose_name=_("source"), null=True, blank=True, on_delete=models.PROTECT
    )
    customer_type = models.ForeignKey(
        CustomerType, verbose_name=_("customer type"), null=True, blank=True, on_delete=models.PROTECT
    )
    industry = models.ForeignKey(Industry, verbose_name=_("industry"), null=True, blank=True, on_delete=models.PROTECT)
    status = models.CharField(_("lifecycle status"), max_length=12, choices=Status.choices, default=Status.PROSPECT)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="owned_customers",
        # A plain index (not owner + id): a rep's list is an OR with the shared customers, which
        # reads it with a bitmap scan (its capped count too); an (owner, -id) index measured the
        # same on the list pages and cost the imports an index more.
    )
    # When the current owner got the customer by a transfer or a claim: the pool's idle clock starts
    # again then (customers.pool.active_since), so a customer handed over is not taken back at once.
    owner_since = models.DateTimeField(_("owner since"), null=True, blank=True, editable=False)
    tags = models.ManyToManyField(Tag, verbose_name=_("tags"), blank=True, related_name="customers")
    notes = models.TextField(_("notes"), blank=True)
    # One of our own staff who is also a customer: left out of the year-end lottery by default.
    is_employee = models.BooleanField(
        _("company employee"), default=False, help_text=_("One of our own staff; left out of the year-end lottery.")
    )
    custom_data = models.JSONField(_("custom fields"), default=dict, blank=True)

    # Never filtered on: no index to keep up (a lookup entry is deactivated, never deleted).
    enterprise_type = models.ForeignKey(
        EnterpriseType,
        verbose_name=_("enterprise type"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        db_index=False,
    )
    enterprise_nature = models.ForeignKey(
        EnterpriseNature,
        verbose_name=_("enterprise nature"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        db_index=False,
    )
    scale = models.CharField(_("scale"), max_length=8, choices=Scale.choices, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # staff accounts are deactivated, not deleted
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)  # indexed with -id in Meta
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("deleted by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    # Set on a record merged away into another (customers.merging): it stays, in the recycle bin,
    # so that its history and the merge can be traced.
    merged_into = models.ForeignKey(
        "self",
        verbose_name=_("merged into"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="merged_from",
        db_index=False,  # a partial index in Meta: almost every row is NULL
    )

    # Set when an approved erasure request (customers.privacy) anonymized the record: only what
    # accounting must keep stays, under the pseudonymous code.
    erased_at = models.DateTimeField(_("erased at"), null=True, blank=True, editable=False)

    objects = AliveManager()
    all_objects = CustomerQuerySet.as_manager()
    # The history is read by customer id and date; its copies of the other indexed columns need no
    # index (each would be kept up on every change and every imported row).
    history = HistoricalRecords(
        excluded_fields=["name_grams", "updated_at"],
        m2m_fields=[tags],
        no_db_index=[
            "code",
            "created_at",
            "created_by",
            "customer_type",
            "deleted_by",
            "email_bidx",
            "enterprise_nature",
            "enterprise_type",
            "id_number_bidx",
            "industry",
            "level",
            "merged_into",
            "mobile_bidx",
            "owner",
            "phone_bidx",
            "province",
            "source",
        ],
    )

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-id"]
        base_manager_name = "all_objects"
        default_manager_name = "objects"
        permissions = [
            ("view_all_customers", _("Can see every customer")),
            ("change_all_customers", _("Can edit every customer")),
            ("view_personal_data", _("Can see personal fields unmasked")),
            ("reveal_sensitive_data", _("Can reveal a masked field (logged)")),
            ("transfer_customer", _("Can transfer customers to another owner")),
            ("restore_customer", _("Can restore customers from the recycle bin")),
            ("import_customers", _("Can import customers from files")),
            ("export_customers", _("Can export customer lists")),
            ("export_unmasked_customers", _("Can export personal fields unmasked")),
            ("merge_customers", _("Can find and merge duplicate customers")),
            ("claim_customer", _("Can browse the customer pool and claim customers from it")),
        ]
        indexes = [
            models.Index(fields=["status", "-id"], name="customer_status_id"),
            models.Index(fields=["-created_at", "-id"], name="customer_created_id"),
            models.Index(fields=["name"], name="customer_name"),
            # Exact search, duplicate checks and the duplicates page look at live customers only;
            # covering the id lets the duplicates page group by index-only scans.
            *(
                models.Index(fields=[column], include=["id"], condition=Q(deleted_at__isnull=True), name=name)
                for column, name in (
                    ("phone_bidx", "customer_live_phone"),
                    ("email_bidx", "customer_live_email"),
                    ("id_number_bidx", "customer_live_id_number"),
                )
            ),
            models.Index(
                fields=["mobile_bidx"],
                include=["id", "phone_bidx"],
                condition=Q(deleted_at__isnull=True),
                name="customer_live_mobile",
            ),
            models.Index(
                fields=["name", "company"],
                include=["id"],
                condition=Q(deleted_at__isnull=True) & ~Q(company=""),
                name="customer_live_name_company",
            ),
            models.Index(fields=["merged_into"], condition=Q(merged_into__isnull=False), name="customer_merged_into"),
            # The recycle bin, tiny: "customer not deleted" as NOT EXISTS reads it instead of the table
            # (the pipeline totals; docs/performance.md).
            models.Index(fields=["id"], condition=Q(deleted_at__isnull=False), name="customer_deleted"),
            # A rep's live customers, index-only: the owned part of customers.access.scope_split
            # (the pipeline board's totals of a rep who owns 100,000 customers).
            models.Index(
                fields=["owner"], include=["id"], condition=Q(deleted_at__isnull=True), name="customer_live_owner"
            ),
        ]
        constraints = [models.UniqueConstraint(fields=["code"], name="customer_code_unique")]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    def save(self, *args, **kwargs) -> None:
        if not self.code:
            year = timezone.localdate().year
            self.code = f"C{year}-{next_sequence_value(f'customer:{year}'):06d}"
        super().save(*args, **kwargs)

    @property
    def is_enterprise(self) -> bool:
        return self.kind == self.ENTERPRISE

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class CustomerUserObjectPermission(UserObjectPermissionBase):
    """A customer shared with one user (django-guardian direct foreign key)."""

    content_object = models.ForeignKey(Customer, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = _("customer shared with a user")
        verbose_name_plural = _("customers shared with users")


class CustomerGroupObjectPermission(GroupObjectPermissionBase):
    """A customer shared with a group, such as a department's group."""

    content_object = models.ForeignKey(Customer, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        verbose_name = _("customer shared with a group")
        verbose_name_plural = _("customers shared with groups")


class Contact(models.Model):
    """A person at a customer (联系人)."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="contacts"
    )
    name = models.CharField(_("name"), max_length=64)
    title = models.CharField(_("title"), max_length=64, blank=True)
    phone = EncryptedTextField(_("phone"))
    email = EncryptedTextField(_("email"))
    phone_bidx = BlindIndexField(source="phone", kind="phone")
    email_bidx = BlindIndexField(source="email", kind="email")
    is_primary = models.BooleanField(_("primary contact"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["-is_primary", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(is_primary=True),
                name="contact_one_primary_per_customer",
                violation_error_message=_("A customer has only one primary contact."),
            )
        ]

    def __str__(self) -> str:
        return self.name


class Transaction(models.Model):
    """A purchase (交易记录), or a refund when the amount is negative."""

    class Channel(models.TextChoices):
        OFFLINE = "offline", _("In store")
        ONLINE = "online", _("Online")
        PHONE = "phone", _("Phone")
        PARTNER = "partner", _("Partner")
        OTHER = "other", _("Other")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="transactions"
    )
    date = models.DateField(_("date"), default=datetime.date.today)
    amount = models.DecimalField(_("amount (CNY)"), max_digits=14, decimal_places=2)
    product = models.CharField(_("product or description"), max_length=200)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, default=Channel.OFFLINE)
    # The sales rep credited with the sale: the customer's owner when it was recorded. Moving the
    # customer to another rep later leaves it here, so the sales reports credit the rep who sold.
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("sales rep"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recorded by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("transaction")
        verbose_name_plural = _("transactions")
        ordering = ["-date", "-id"]
        indexes = [models.Index(fields=["customer", "-date"], name="transaction_customer_date")]
        constraints = [
            # A refund (退款) is a negative amount; zero is no transaction at all.
            models.CheckConstraint(
                condition=~Q(amount=0),
                name="transaction_amount_not_zero",
                violation_error_message=_("The amount cannot be zero."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.product} ¥{self.amount}"


class Contract(models.Model):
    """A cooperation contract (客户合作/合同)."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("In force")
        EXPIRED = "expired", _("Expired")
        TERMINATED = "terminated", _("Terminated")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="contracts"
    )
    number = models.CharField(_("contract number"), max_length=32, unique=True, blank=True)
    title = models.CharField(_("contract title"), max_length=200)
    amount = models.DecimalField(_("amount (CNY)"), max_digits=14, decimal_places=2)
    start_date = models.DateField(_("start date"))
    end_date = models.DateField(_("end date"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recorded by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("contract")
        verbose_name_plural = _("contracts")
        ordering = ["-start_date", "-id"]
        indexes = [
            models.Index(fields=["end_date", "status"], name="contract_end_status"),
            # Contract value signed in a range (the dashboard).
            models.Index(fields=["start_date"], name="contract_start"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__gte=models.F("start_date")),
                name="contract_ends_after_start",
                violation_error_message=_("The end date cannot be before the start date."),
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=0),
                name="contract_amount_not_negative",
                violation_error_message=_("The amount cannot be negative."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    def save(self, *args, **kwargs) -> None:
        if not self.number:
            year = timezone.localdate().year
            self.number = f"HT{year}-{next_sequence_value(f'contract:{year}'):06d}"
        super().save(*args, **kwargs)


class StatusChange(models.Model):
    """One change of a customer's lifecycle status: a timeline event with who and why."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="status_changes"
    )
    from_status = models.CharField(_("from"), max_length=12, choices=Customer.Status.choices)
    to_status = models.CharField(_("to"), max_length=12, choices=Customer.Status.choices)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("changed by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)

    class Meta:
        verbose_name = _("status change")
        verbose_name_plural = _("status changes")
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["customer", "-changed_at", "-id"], name="statuschange_customer_time")]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.from_status} → {self.to_status}"


# --- Products and stock (产品维护, 库存预警) -------------------------------------------------------


class ProductQuerySet(models.QuerySet):
    def active(self) -> ProductQuerySet:
        return self.filter(is_active=True)

    def low_stock(self) -> ProductQuerySet:
        """Stocked products at or below their low-stock threshold (库存预警)."""
        return self.filter(is_active=True, is_stocked=True, stock_quantity__lte=models.F("low_stock_threshold"))


class Product(models.Model):
    """A catalogue entry (产品). Stock moves only through customers.products' services, each move
    written as a StockMovement in the same transaction."""

    code = models.CharField(_("product code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=120)
    category = models.ForeignKey(
        ProductCategory,
        verbose_name=_("category"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="products",
    )
    unit = models.CharField(_("unit"), max_length=16, default="件")
    list_price = models.DecimalField(_("list price (CNY)"), max_digits=14, decimal_places=2, default=0)
    is_stocked = models.BooleanField(
        _("stock is tracked"), default=True, help_text=_("Untick for services and other goods without stock.")
    )
    stock_quantity = models.DecimalField(_("stock"), max_digits=14, decimal_places=2, default=0)
    low_stock_threshold = models.DecimalField(_("low-stock threshold"), max_digits=14, decimal_places=2, default=0)
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("product manager"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="managed_products",
    )
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(_("on sale"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = ProductQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["code"]
        permissions = [("backorder_product", _("Can sell beyond stock (backorder)"))]
        constraints = [
            models.CheckConstraint(
                condition=Q(list_price__gte=0),
                name="product_price_not_negative",
                violation_error_message=_("The price cannot be negative."),
            ),
            models.CheckConstraint(
                condition=Q(low_stock_threshold__gte=0),
                name="product_threshold_not_negative",
                violation_error_message=_("The low-stock threshold cannot be negative."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def is_low(self) -> bool:
        return self.is_active and self.is_stocked and self.stock_quantity <= self.low_stock_threshold


class StockMovement(models.Model):
    """One change of a product's stock (出入库): a sale, a receipt, a correction, a cancelled sale."""

    class Reason(models.TextChoices):
        SALE = "sale", _("Sale")
        RECEIPT = "receipt", _("Goods received")
        ADJUSTMENT = "adjustment", _("Stock count correction")
        RETURN = "return", _("Sale cancelled or returned")

    product = models.ForeignKey(Product, verbose_name=_("product"), on_delete=models.PROTECT, related_name="movements")
    change = models.DecimalField(_("change"), max_digits=14, decimal_places=2)
    balance = models.DecimalField(_("stock after"), max_digits=14, decimal_places=2)
    reason = models.CharField(_("reason"), max_length=12, choices=Reason.choices)
    transaction = models.ForeignKey(
        "Transaction",
        verbose_name=_("transaction"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="stock_movements",
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("stock movement")
        verbose_name_plural = _("stock movements")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["product", "-created_at", "-id"], name="stockmove_product_time")]

    def __str__(self) -> str:
        return f"{self.product_id} {self.change:+}"


class TransactionLine(models.Model):
    """A product line of a transaction: quantity and the price actually charged."""

    transaction = models.ForeignKey(
        "Transaction", verbose_name=_("transaction"), on_delete=models.CASCADE, related_name="lines"
    )
    product = models.ForeignKey(Product, verbose_name=_("product"), on_delete=models.PROTECT, related_name="+")
    quantity = models.DecimalField(_("quantity"), max_digits=14, decimal_places=2)
    unit_price = models.DecimalField(_("unit price (CNY)"), max_digits=14, decimal_places=2)

    class Meta:
        verbose_name = _("transaction line")
        verbose_name_plural = _("transaction lines")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0),
                name="transactionline_quantity_positive",
                violation_error_message=_("The quantity must be more than zero."),
            ),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0),
                name="transactionline_price_not_negative",
                violation_error_message=_("The price cannot be negative."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product_id} × {self.quantity}"

    @property
    def line_total(self):
        return (self.quantity * self.unit_price).quantize(self.unit_price)


# --- Files (附件: scanned contracts, business licences, quotes) ------------------------------------


class Attachment(models.Model):
    """A file kept with a customer, and optionally one of its contracts. The bytes live encrypted in
    AttachmentContent (never on a public path); customers.attachments serves them to users who may
    see the customer."""

    class Kind(models.TextChoices):
        CONTRACT = "contract", _("Signed contract")  # 合同扫描件
        LICENCE = "licence", _("Business licence")  # 营业执照
        QUOTE = "quote", _("Quote")  # 报价单
        OTHER = "other", _("Other")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="attachments"
    )
    contract = models.ForeignKey(
        "Contract",
        verbose_name=_("contract"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="attachments",
    )
    kind = models.CharField(_("type"), max_length=10, choices=Kind.choices, default=Kind.OTHER)
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
    )
    uploaded_at = models.DateTimeField(_("uploaded at"), default=timezone.now)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["-uploaded_at", "-id"]
        indexes = [models.Index(fields=["customer", "-uploaded_at", "-id"], name="attachment_customer_time")]

    def __str__(self) -> str:
        return self.filename


class AttachmentContent(models.Model):
    """The encrypted bytes of one attachment, apart so that listing attachments never loads them."""

    attachment = models.OneToOneField(Attachment, on_delete=models.CASCADE, primary_key=True, related_name="content")
    data = models.BinaryField()

    class Meta:
        verbose_name = _("attachment content")
        verbose_name_plural = _("attachment contents")

    def __str__(self) -> str:
        return f"content of attachment {self.attachment_id}"


# --- Personal data: consent and data-subject requests (PIPL arts. 44–47; GDPR arts. 15–20) -------


class Consent(models.Model):
    """One consent entry: the customer granted (or withdrew) consent to a purpose, in a version of
    the notice, at a time, through a channel. Entries are only added; the newest per purpose is the
    current state (customers.privacy.current_consents)."""

    class Purpose(models.TextChoices):
        SERVICE = "service", _("Processing for the contract and service")
        MARKETING = "marketing", _("Marketing messages")
        # Sensitive personal information (PIPL art. 29): ID card number, bank account.
        SENSITIVE = "sensitive", _("Sensitive data (ID card number, bank account)")

    class Channel(models.TextChoices):
        PORTAL = "portal", _("Portal")
        PAPER = "paper", _("Paper form")
        PHONE = "phone", _("Phone")
        EMAIL = "email", _("E-mail")
        ONSITE = "onsite", _("On site")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="consents"
    )
    purpose = models.CharField(_("purpose"), max_length=12, choices=Purpose.choices)
    granted = models.BooleanField(_("granted"), default=True)
    version = models.CharField(_("notice version"), max_length=32)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    recorded_at = models.DateTimeField(_("at"), default=timezone.now)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recorded by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        ordering = ["-recorded_at", "-id"]
        indexes = [models.Index(fields=["customer", "purpose", "-recorded_at", "-id"], name="consent_customer_purpose")]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.purpose} {self.granted}"


class DataRequest(models.Model):
    """A customer's request about their personal data: a copy, a correction or erasure. Erasure
    waits for a manager's approval (a refusal says why); every request and outcome stays listed."""

    class Kind(models.TextChoices):
        EXPORT = "export", _("Copy of my data")
        CORRECTION = "correction", _("Correction")
        ERASURE = "erasure", _("Erasure")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for approval")
        APPROVED = "approved", _("Approved")
        REFUSED = "refused", _("Refused")
        DONE = "done", _("Done")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="data_requests"
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    # What the customer asked (a correction's details). Erased with the customer's other free text.
    details = models.TextField(_("details"), blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_reason = models.TextField(_("reason"), blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("personal-data request")
        verbose_name_plural = _("personal-data requests")
        ordering = ["-requested_at", "-id"]
        permissions = [("decide_datarequest", _("Can approve or refuse personal-data requests"))]
        indexes = [
            models.Index(fields=["-requested_at", "-id"], name="datarequest_time"),  # the list's order
            models.Index(fields=["status", "-requested_at"], name="datarequest_status"),
            models.Index(fields=["customer", "-requested_at"], name="datarequest_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.kind} {self.status}"


# --- Imports (批量导入) ------------------------------------------------------------------------


class ImportJob(models.Model):
    """One uploaded file on its way into the archive: checked (dry run), then confirmed.

    The dry run reads the file once and stores its plan (each row's action and normalised values)
    encrypted in ImportChunk rows; confirming writes exactly that plan in transactional batches.
    ``rows_done`` advances in the same transaction as each batch, so a crash leaves whole batches
    and the job resumes after the last one.
    """

    class Status(models.TextChoices):
        UPLOADED = "uploaded", _("Uploaded")
        CHECKING = "checking", _("Checking")
        CHECKED = "checked", _("Ready to import")
        IMPORTING = "importing", _("Importing")
        DONE = "done", _("Imported")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    class OnDuplicate(models.TextChoices):
        SKIP = "skip", _("Skip duplicates")
        UPDATE = "update", _("Update the existing customer")
        CREATE = "create", _("Create anyway")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("imported by"), on_delete=models.PROTECT, related_name="+"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("Owner of the imported customers unless a row names another."),
    )
    on_duplicate = models.CharField(
        _("duplicates"), max_length=8, choices=OnDuplicate.choices, default=OnDuplicate.SKIP
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.UPLOADED)

    file_name = models.CharField(_("file name"), max_length=255)
    file_size = models.BigIntegerField(_("file size"), default=0)
    file_sha256 = models.CharField(_("SHA-256"), max_length=64, db_index=True)
    file_format = models.CharField(_("format"), max_length=8, blank=True)
    encoding = models.CharField(_("encoding"), max_length=16, blank=True)
    columns = models.JSONField(_("columns"), default=list, blank=True)

    total_rows = models.PositiveIntegerField(_("rows in the file"), default=0)
    rows_checked = models.PositiveIntegerField(_("rows checked"), default=0)
    to_create = models.PositiveIntegerField(_("to create"), default=0)
    to_update = models.PositiveIntegerField(_("to update"), default=0)
    to_skip = models.PositiveIntegerField(_("to skip"), default=0)
    rejected = models.PositiveIntegerField(_("rejected"), default=0)
    # Encrypted: a reason may quote the value it refuses ("“1381234” is not a valid phone number").
    errors = EncryptedJSONField(_("rejected rows"))
    duplicates = EncryptedJSONField(_("duplicate rows"))

    plan_rows = models.PositiveIntegerField(_("rows in the plan"), default=0)
    rows_done = models.PositiveIntegerField(_("rows done"), default=0)
    created = models.PositiveIntegerField(_("created"), default=0)
    updated = models.PositiveIntegerField(_("updated"), default=0)
    skipped = models.PositiveIntegerField(_("skipped"), default=0)

    message = models.TextField(_("message"), blank=True)
    task_id = models.CharField(_("task"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("uploaded at"), default=timezone.now, db_index=True)
    heartbeat_at = models.DateTimeField(_("last progress"), null=True, blank=True)
    checked_at = models.DateTimeField(_("checked at"), null=True, blank=True)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer import")
        verbose_name_plural = _("customer imports")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.file_name}"

    @property
    def label(self) -> str:
        """How the import is named in history rows (history_change_reason, at most 100 characters)."""
        return f"import #{self.pk}: {self.file_name}"[:100]


class ImportChunk(models.Model):
    """A piece of an import's data, compressed and encrypted (personal data is never stored plain).

    ``source``: the uploaded file, in pieces; ``plan``: the dry run's decisions, a batch of rows per
    chunk; ``rejects``: the rejected rows with their reasons, for the error file.
    """

    SOURCE, PLAN, REJECTS = "source", "plan", "rejects"
    KINDS = [(SOURCE, _("Uploaded file")), (PLAN, _("Plan")), (REJECTS, _("Rejected rows"))]

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="chunks")
    kind = models.CharField(max_length=8, choices=KINDS)
    seq = models.PositiveIntegerField()
    rows = models.PositiveIntegerField(default=0)
    data = models.BinaryField()

    class Meta:
        verbose_name = _("import data")
        verbose_name_plural = _("import data")
        constraints = [models.UniqueConstraint(fields=["job", "kind", "seq"], name="import_chunk_unique")]

    def __str__(self) -> str:
        return f"{self.job_id}/{self.kind}/{self.seq}"


# --- Access requests (数据访问权限审批) -------------------------------------------------------------


class AccessRequestQuerySet(models.QuerySet):
    def visible_to(self, user) -> AccessRequestQuerySet:
        """Every request for those who decide them; otherwise the user's own."""
        if user.has_perm("customers.decide_accessrequest"):
            return self.all()
        return self.filter(requester=user)

    def active(self, now: datetime.datetime | None = None) -> AccessRequestQuerySet:
        """Approved grants that have not reached their end yet (the expiry job may be late)."""
        return self.filter(status=AccessRequest.Status.APPROVED, expires_at__gt=now or timezone.now())

    def due(self, now: datetime.datetime | None = None) -> AccessRequestQuerySet:
        """Approved grants past their end, for the expiry job."""
        return self.filter(status=AccessRequest.Status.APPROVED, expires_at__lte=now or timezone.now())


class AccessRequest(models.Model):
    """A member of staff asks for a time-limited grant: access to a customer outside their scope
    (read, optionally edit), or unmasked exports. A manager approves or refuses; the expiry job
    (``customers.tasks.expire_access_grants``) ends an approved grant at ``expires_at``.

    The customer grant is a django-guardian object permission; ``granted_view``/``granted_change``
    record which permission rows this request created, so that its end removes only those (a
    share that existed before stays). An unmasked-export grant changes no permission: while it is
    active, ``customers.exporting.exports_masked`` answers "unmasked" (and stops at ``expires_at``
    even if the job is late). The reason is the requester's justification, not customer data; the
    requests stay when a customer is erased.
    """

    class Kind(models.TextChoices):
        CUSTOMER = "customer", _("Access to a customer")
        EXPORT = "export", _("Unmasked export")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for a decision")
        APPROVED = "approved", _("Granted")
        REFUSED = "refused", _("Refused")
        EXPIRED = "expired", _("Expired")
        REVOKED = "revoked", _("Revoked")
        CANCELLED = "cancelled", _("Withdrawn")

    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("requested by"), on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="access_requests",
    )
    # For a customer: edit as well as read (read is always part of the grant).
    with_edit = models.BooleanField(_("edit as well"), default=False)
    reason = models.TextField(_("reason"))
    days = models.PositiveSmallIntegerField(_("days asked for"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(_("requested at"), default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_note = models.TextField(_("decision note"), blank=True)
    granted_days = models.PositiveSmallIntegerField(_("days granted"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    # The permission rows this grant created (and its end removes); False where the user held it already.
    granted_view = models.BooleanField(_("granted read access"), default=False)
    granted_change = models.BooleanField(_("granted edit access"), default=False)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("ended by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )

    objects = AccessRequestQuerySet.as_manager()

    class Meta:
        verbose_name = _("access request")
        verbose_name_plural = _("access requests")
        ordering = ["-created_at", "-id"]
        permissions = [("decide_accessrequest", _("Can approve, refuse and revoke access requests"))]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="customer", customer__isnull=False) | Q(kind="export", customer__isnull=True),
                name="accessrequest_customer_matches_kind",
            ),
            # One pending request per (requester, kind, customer); an export request has no customer
            # (NULLs are distinct in a unique index), hence its own constraint.
            models.UniqueConstraint(
                fields=["requester", "kind", "customer"],
                condition=Q(status="pending", customer__isnull=False),
                name="accessrequest_one_pending_customer",
            ),
            models.UniqueConstraint(
                fields=["requester", "kind"],
                condition=Q(status="pending", customer__isnull=True),
                name="accessrequest_one_pending_export",
            ),
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="accessrequest_time"),
            models.Index(fields=["requester", "-created_at"], name="accessrequest_requester"),
            models.Index(fields=["status", "-created_at"], name="accessrequest_status"),
            # The expiry job's "approved and past their end", and exports_masked's active grant.
            models.Index(fields=["status", "expires_at"], name="accessrequest_expiry"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.status}"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.APPROVED and self.expires_at is not None and self.expires_at > timezone.now()
