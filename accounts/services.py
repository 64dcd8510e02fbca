"""Writes of the accounts app that touch more than one row."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import transaction

from accounts.models import ApiToken, Department, Employee, User


def department_group_name(department: Department) -> str:
    return f"dept:{department.pk}:{department.name}"[:150]


def _sync_department_membership(user: User, department: Department | None) -> None:
    """The user belongs to exactly one department group: their employee record's department."""
    groups = Group.objects.filter(department__isnull=False, user=user)
    if department is not None and department.group_id:
        groups = groups.exclude(pk=department.group_id)
    user.groups.remove(*groups)
    if department is not None and department.group_id:
        user.groups.add(department.group_id)


@transaction.atomic
def employee_save(*, employee: Employee) -> Employee:
    """Save an employee and keep the linked login account's active flag in step.

    Deactivating an employee deactivates their account, which ends their sessions at the next
    request (the auth backend refuses inactive users); reactivating restores it.
    """
    previous_user_id = (
        Employee.objects.filter(pk=employee.pk).values_list("user_id", flat=True).first() if employee.pk else None
    )
    employee.full_clean()
    employee.save()
    if employee.user_id:
        user: User = User.objects.select_for_update().get(pk=employee.user_id)
        changed = []
        if user.is_active != employee.is_active:
            user.is_active = employee.is_active
            changed.append("is_active")
        if not user.name:
            user.name = employee.name
            changed.append("name")
        if changed:
            user.save(update_fields=changed)  # through save(), so the change is in the user's history
        _sync_department_membership(user, employee.department if employee.is_active else None)
    if previous_user_id and previous_user_id != employee.user_id:
        _sync_department_membership(User.objects.get(pk=previous_user_id), None)
    return employee


@transaction.atomic
def department_save(*, department: Department) -> Department:
    """Save a department and keep its member group (named after it) in step."""
    department.full_clean()
    department.save()
    if department.group_id is None:
        department.group = Group.objects.create(name=department_group_name(department))
        department.save(update_fields=["group"])
    elif department.group.name != department_group_name(department):
        Group.objects.filter(pk=department.group_id).update(name=department_group_name(department))
    return department


@transaction.atomic
def api_token_create(*, name: str, user: User, scope: str, rate_limit: int | None, by: User) -> tuple[ApiToken, str]:
    """Create an API token acting as ``user``; returns it and its secret, which is never stored.

    The token sees what ``user``'s role sees, so it must be an active staff member: a portal
    customer's or a deactivated account's token would only ever answer 403 or 401.
    """
    from django.core.exceptions import ValidationError
    from django.utils.translation import gettext as _

    from cims.api.authentication import new_secret

    if not user.is_staff_member:
        raise ValidationError({"user": _("The service user must be an active staff member.")})
    raw, prefix, digest = new_secret()
    token = ApiToken(
        name=name, user=user, scope=scope, rate_limit=rate_limit, prefix=prefix, key_hash=digest, created_by=by
    )
    token.full_clean()
    token._history_user = by  # the history names the administrator, also outside a request
    token.save()
    return token, raw


@transaction.atomic
def api_token_revoke(*, token: ApiToken, by: User) -> ApiToken:
    """Revoke a token: the next request that presents it is refused (401). Revoking twice keeps the
    first revocation's time and author."""
    from django.utils import timezone

    locked = ApiToken.objects.select_for_update().get(pk=token.pk)
    if locked.revoked_at is None:
        locked.revoked_at = timezone.now()
        locked.revoked_by = by
        locked._history_user = by
        locked.save(update_fields=["revoked_at", "revoked_by"])
    token.revoked_at, token.revoked_by = locked.revoked_at, locked.revoked_by
    return locked
