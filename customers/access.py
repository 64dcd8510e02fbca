"""Who sees and edits which customer: the one place the rule lives.

``Customer.objects.visible_to(user)`` / ``editable_by(user)`` build on ``scope_filter``;
``get_customer_for`` is how every view resolves a customer id (404 outside the user's reach,
403 when the user may only read it); ``personal_fields_for`` decides masking.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import F, Q
from django.db.models.lookups import In
from django.shortcuts import get_object_or_404

from cims import masking

NOTHING = Q(pk__in=[])

# Fields that are personal data, and how each is masked for users who may not see it whole.
PERSONAL_FIELDS = {
    "phone": masking.mask_phone,
    "mobile": masking.mask_phone,
    "email": masking.mask_email,
    "address": masking.mask_text,
}
# Sensitive fields are masked for everyone; a user with reveal permission may reveal one (logged).
SENSITIVE_FIELDS = {
    "id_number": masking.mask_id_number,
    "bank_account": masking.mask_bank_account,
}
REVEALABLE_FIELDS = {**PERSONAL_FIELDS, **SENSITIVE_FIELDS}


def _headed_subtree(user) -> set[int]:
    from accounts.models import Department

    cache = getattr(user, "_cims_headed_subtree", None)
    if cache is None:
        headed = list(Department.objects.filter(head=user).values_list("pk", flat=True))
        cache = Department.objects.subtree_ids(headed) if headed else set()
        user._cims_headed_subtree = cache
    return cache


class _InSubquery(In):
    """``column IN (subquery)``, written for PostgreSQL as ``column = ANY(ARRAY(subquery))``.

    The same rows, but PostgreSQL then runs the subquery once up front and serves the condition
    from an index even inside the OR of ``scope_filter``; a hashed ``IN`` subplan there forces a
    walk over the whole table instead (0.5–1.3 s at a million customers for a rep who owns few; see
    docs/performance.md).
    """

    def as_postgresql(self, compiler, connection):
        lhs_sql, lhs_params = self.process_lhs(compiler, connection)
        rhs_sql, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs_sql} = ANY(ARRAY{rhs_sql})", (*lhs_params, *rhs_params)


def scope_filter(user, action: str = "view") -> Q:
    """A Q() selecting the customers ``user`` may ``view`` or ``change``."""
    from accounts.models import Employee
    from customers.models import CustomerGroupObjectPermission, CustomerUserObjectPermission

    if user is None or not user.is_authenticated or not user.is_active:
        return NOTHING
    if user.has_perm(f"customers.{action}_all_customers"):
        return Q()
    if not user.has_perm(f"customers.{action}_customer"):
        return NOTHING
    scope = Q(owner=user)
    subtree = _headed_subtree(user)
    if subtree:
        scope |= Q(
            _InSubquery(
                F("owner_id"),
                Employee.objects.filter(department_id__in=subtree, user__isnull=False).values("user_id"),
            )
        )
    codename = f"{action}_customer"
    scope |= Q(
        _InSubquery(
            F("pk"),
            CustomerUserObjectPermission.objects.filter(user=user, permission__codename=codename).values(
                "content_object_id"
            ),
        )
    )
    scope |= Q(
        _InSubquery(
            F("pk"),
            CustomerGroupObjectPermission.objects.filter(group__user=user, permission__codename=codename).values(
                "content_object_id"
            ),
        )
    )
    return scope


def scope_ids(user, action: str = "view"):
    """The ids of the live customers ``user`` may ``view`` or ``change``, as a subquery, for
    aggregates over everything in a user's scope (the pipeline board's totals).

    The same customers as ``Customer.objects.filter(scope_filter(user, action))``, but each source
    of the scope (owned, the headed departments', shared with the user, shared with a group) is its
    own branch of a UNION ALL: the owned branch then reads the covering ``customer_live_owner`` index
    alone (index-only), where the OR of the sources needs a bitmap scan that visits the heap page
    of every owned customer — 100,000 random pages for a rep who owns 100,000 (docs/performance.md).
    Returns None for a user who sees every customer (no filter needed).
    """
    from accounts.models import Employee
    from customers.models import Customer, CustomerGroupObjectPermission, CustomerUserObjectPermission

    scope = scope_filter(user, action)
    if scope == Q():
        return None
    if scope == NOTHING:
        return Customer.objects.none().values("pk")
    live = Customer.objects.order_by()
    codename = f"{action}_customer"
    branches = [live.filter(owner=user).values("pk")]
    subtree = _headed_subtree(user)
    if subtree:
        heads = Employee.objects.filter(department_id__in=subtree, user__isnull=False).values("user_id")
        branches.append(live.filter(owner_id__in=heads).values("pk"))
    branches.append(
        live.filter(
            pk__in=CustomerUserObjectPermission.objects.filter(user=user, permission__codename=codename).values(
                "content_object_id"
            )
        ).values("pk")
    )
    branches.append(
        live.filter(
            pk__in=CustomerGroupObjectPermission.objects.filter(group__user=user, permission__codename=codename).values(
                "content_object_id"
            )
        ).values("pk")
    )
    return branches[0].union(*branches[1:])


def get_customer_for(user, pk: int, *, edit: bool = False, queryset=None):
    """The customer ``pk`` if ``user`` may see it (else 404); with ``edit``, 403 if read-only."""
    from customers.models import Customer

    queryset = queryset if queryset is not None else Customer.objects.all()
    customer = get_object_or_404(queryset.visible_to(user), pk=pk)
    if edit and not can_edit(user, customer):
        raise PermissionDenied("read-only customer")
    return customer


def can_edit(user, customer) -> bool:
    from customers.models import Customer

    if getattr(customer, "_cims_editable_for", None) == user.pk:
        return True
    editable = Customer.objects.editable_by(user).filter(pk=customer.pk).exists()
    if editable:
        customer._cims_editable_for = user.pk
    return editable


def sees_personal_data(user) -> bool:
    return user.has_perm("customers.view_personal_data")


def personal_fields_for(user, obj, fields=None) -> dict[str, dict]:
    """Display values of the personal fields of ``obj`` for ``user``: plain or masked, and
    whether the user may reveal the masked one."""
    plain_personal = sees_personal_data(user)
    may_reveal = user.has_perm("customers.reveal_sensitive_data")
    shown = {}
    for name, mask in REVEALABLE_FIELDS.items():
        if fields is not None and name not in fields:
            continue
        if not hasattr(obj, name):
            continue
        value = getattr(obj, name) or ""
        plain = plain_personal and name in PERSONAL_FIELDS
        shown[name] = {
            "value": value if plain else mask(value),
            "masked": bool(value) and not plain,
            "revealable": bool(value) and not plain and may_reveal,
        }
    return shown
