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


def _scope_sources(user, action: str) -> list[Q] | None:
    """The sources of ``user``'s scope, owned first; None: every customer; []: none."""
    from accounts.models import Employee
    from customers.models import CustomerGroupObjectPermission, CustomerUserObjectPermission

    if user is None or not user.is_authenticated or not user.is_active:
        return []
    if user.has_perm(f"customers.{action}_all_customers"):
        return None
    if not user.has_perm(f"customers.{action}_customer"):
        return []
    sources = [Q(owner=user)]
    subtree = _headed_subtree(user)
    if subtree:
        sources.append(
            Q(
                _InSubquery(
                    F("owner_id"),
                    Employee.objects.filter(department_id__in=subtree, user__isnull=False).values("user_id"),
                )
            )
        )
    codename = f"{action}_customer"
    sources.append(
        Q(
            _InSubquery(
                F("pk"),
                CustomerUserObjectPermission.objects.filter(user=user, permission__codename=codename).values(
                    "content_object_id"
                ),
            )
        )
    )
    sources.append(
        Q(
            _InSubquery(
                F("pk"),
                CustomerGroupObjectPermission.objects.filter(group__user=user, permission__codename=codename).values(
                    "content_object_id"
                ),
            )
        )
    )
    return sources


def _any_of(sources: list[Q]) -> Q:
    scope = sources[0]
    for source in sources[1:]:
        scope |= source
    return scope


def scope_filter(user, action: str = "view") -> Q:
    """A Q() selecting the customers ``user`` may ``view`` or ``change``."""
    sources = _scope_sources(user, action)
    if sources is None:
        return Q()
    if not sources:
        return NOTHING
    return _any_of(sources)


def scope_split(user, action: str = "view") -> tuple[Q, Q | None] | None:
    """``user``'s scope as two disjoint parts, for aggregates over everything in it (the pipeline
    board's totals): the customers they own, and the others (their headed departments', shared with
    them or a group) that they do not own — or None when they see every customer.

    Together the parts select exactly ``scope_filter(user, action)``. Apart, each reads well: "owner
    = me" alone is an index-only scan of ``customer_live_owner`` that the planner estimates right (a
    parallel hash join over the opportunities), where the OR of every source needs a bitmap scan
    that visits the heap page of each owned customer — 100,000 random pages for a rep who owns
    100,000 (docs/performance.md). Being disjoint, sums over the parts add up without counting a
    customer twice.
    """
    sources = _scope_sources(user, action)
    if sources is None:
        return None
    if not sources:
        return NOTHING, None
    owned, others = sources[0], sources[1:]
    return owned, (_any_of(others) & ~owned) if others else None


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

    if getattr(customer, "erased_at", None) is not None:
        return False  # anonymized on request (customers.privacy): nobody types personal data back in
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
