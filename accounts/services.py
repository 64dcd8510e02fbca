"""Writes of the accounts app that touch more than one row."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import transaction

from accounts.models import Department, Employee, User


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
