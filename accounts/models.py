from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from cims.models import next_sequence_value


class User(AbstractUser):
    """Every person who signs in: staff (groups admin … analyst) and portal customers (group customer).

    Which UI a user may enter is a permission held through the role groups
    (``accounts.access_staff_ui`` / ``accounts.access_portal``), not a code branch.
    """

    name = models.CharField(_("full name"), max_length=64, blank=True)
    # The guided tour of the staff pages: offered at first sign-in until finished or skipped.
    tour_done_at = models.DateTimeField(_("guided tour done"), null=True, blank=True)

    objects = UserManager()
    history = HistoricalRecords(excluded_fields=["password", "last_login"])

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        permissions = [
            ("access_staff_ui", _("Can use the staff UI")),
            ("access_portal", _("Can use the customer portal")),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.name or self.get_full_name() or self.username

    @property
    def is_staff_member(self) -> bool:
        return self.is_active and self.has_perm("accounts.access_staff_ui")

    @property
    def is_portal_customer(self) -> bool:
        # A staff member is never treated as a portal customer, even a superuser who holds every permission.
        return self.is_active and not self.is_staff_member and self.has_perm("accounts.access_portal")


class DepartmentQuerySet(models.QuerySet):
    def subtree_ids(self, roots: Iterable[int]) -> set[int]:
        """Ids of the given departments and every department below them.

        One query over the (small) department table, walked in Python: a company has tens or
        hundreds of departments, never millions, and this keeps the tree free of denormalised paths.
        """
        children: dict[int | None, list[int]] = defaultdict(list)
        for pk, parent_id in Department.objects.values_list("pk", "parent_id"):
            children[parent_id].append(pk)
        found: set[int] = set()
        stack = list(roots)
        while stack:
            pk = stack.pop()
            if pk in found:
                continue
            found.add(pk)
            stack.extend(children.get(pk, ()))
        return found


class Department(models.Model):
    name = models.CharField(_("name"), max_length=64)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent department"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    head = models.ForeignKey(
        User,
        verbose_name=_("head"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="headed_departments",
    )
    sort_order = models.PositiveIntegerField(_("sort order"), default=0)
    # Members of the department (employees with a login) are kept in this group, so a customer can
    # be shared with a whole department through django-guardian group permissions.
    group = models.OneToOneField(
        "auth.Group", verbose_name=_("member group"), null=True, blank=True, editable=False, on_delete=models.SET_NULL,
        related_name="department",
    )  # fmt: skip
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = DepartmentQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["sort_order", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["parent", "name"],
                name="department_unique_name_under_parent",
                violation_error_message=_("A department with this name already exists at this level."),
            ),
            models.UniqueConstraint(
                fields=["name"],
                condition=Q(parent__isnull=True),
                name="department_unique_root_name",
                violation_error_message=_("A department with this name already exists at this level."),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.pk and self.parent_id and self.parent_id in Department.objects.subtree_ids([self.pk]):
            raise ValidationError(
                {"parent": _("A department cannot be placed under itself or one of its sub-departments.")}
            )

    def path_names(self) -> list[str]:
        """Names from the root down to this department (for breadcrumbs and labels)."""
        names, node, seen = [], self, set()
        while node is not None and node.pk not in seen:
            seen.add(node.pk)
            names.append(node.name)
            node = node.parent
        return list(reversed(names))


class EmployeeQuerySet(models.QuerySet):
    def search(self, text: str) -> EmployeeQuerySet:
        text = text.strip()
        if not text:
            return self
        return self.filter(Q(name__icontains=text) | Q(number__iexact=text) | Q(phone__contains=text))

    def in_department_tree(self, department: Department) -> EmployeeQuerySet:
        return self.filter(department_id__in=Department.objects.subtree_ids([department.pk]))


class Employee(models.Model):
    number = models.CharField(_("employee number"), max_length=16, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=64)
    department = models.ForeignKey(
        Department,
        verbose_name=_("department"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="employees",
    )
    position = models.CharField(_("position"), max_length=64, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    email = models.EmailField(_("email"), blank=True)
    hire_date = models.DateField(_("hire date"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    user = models.OneToOneField(
        User,
        verbose_name=_("login account"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="employee",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = EmployeeQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("employee")
        verbose_name_plural = _("employees")
        ordering = ["number"]
        indexes = [models.Index(fields=["department", "is_active"])]

    def __str__(self) -> str:
        return f"{self.number} {self.name}"

    def save(self, *args, **kwargs) -> None:
        if not self.number:
            self.number = f"E{next_sequence_value('employee'):05d}"
        super().save(*args, **kwargs)


class PortalAccount(models.Model):
    """The portal login of one customer (门户账号). Every portal view resolves the customer from the
    logged-in user through this row (accounts.portal.customer_for), never from an id in the URL.

    Created by an administrator or a sales rep who may edit the customer; the user starts with no
    usable password and sets one through the one-time invitation link (accounts.portal).
    """

    user = models.OneToOneField(
        User, verbose_name=_("login account"), on_delete=models.CASCADE, primary_key=True, related_name="portal_account"
    )
    customer = models.OneToOneField(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="portal_account"
    )
    created_by = models.ForeignKey(
        User, verbose_name=_("created by"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    invited_at = models.DateTimeField(_("invitation sent at"), null=True, blank=True)
    activated_at = models.DateTimeField(_("first password set at"), null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("portal account")
        verbose_name_plural = _("portal accounts")

    def __str__(self) -> str:
        return f"{self.user} → {self.customer_id}"


class ApiTokenQuerySet(models.QuerySet):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True, user__is_active=True)


class ApiToken(models.Model):
    """A per-integration credential of the REST API (cims.api), created by an administrator.

    The token acts as its service ``user``: that user's role and object permissions decide what
    it sees and may change, exactly as in the UI. Only a SHA-256 digest of the secret is stored
    (the secret has 256 random bits, so a slow hash adds nothing); the secret is shown once.
    ``prefix`` is public: it names the token in logs and finds its row without the secret.
    """

    class Scope(models.TextChoices):
        READ = "read", _("Read only")
        READ_WRITE = "read_write", _("Read and write")

    name = models.CharField(_("name"), max_length=64, unique=True)
    user = models.ForeignKey(User, verbose_name=_("service user"), on_delete=models.PROTECT, related_name="api_tokens")
    scope = models.CharField(_("scope"), max_length=16, choices=Scope.choices, default=Scope.READ)
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    # Requests a minute; empty: API_RATE_LIMIT_PER_MINUTE.
    rate_limit = models.PositiveIntegerField(_("requests per minute"), null=True, blank=True)
    created_by = models.ForeignKey(
        User, verbose_name=_("created by"), on_delete=models.PROTECT, related_name="+", editable=False
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(
        User,
        verbose_name=_("revoked by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
    )

    objects = ApiTokenQuerySet.as_manager()
    history = HistoricalRecords(excluded_fields=["key_hash", "last_used_at"])

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.user.is_active

    @property
    def writable(self) -> bool:
        return self.scope == self.Scope.READ_WRITE

    @property
    def actor_label(self) -> str:
        """How the token is named as the actor in change history (history_change_reason, ≤100)."""
        return f"API: {self.name}"[:100]
