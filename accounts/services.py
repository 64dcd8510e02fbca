"""Writes of the accounts app that touch more than one row."""

from __future__ import annotations

from django.db import transaction

from accounts.models import Department, Employee, User


@transaction.atomic
def employee_save(*, employee: Employee) -> Employee:
    """Save an employee and keep the linked login account's active flag in step.

    Deactivating an employee deactivates their account, which ends their sessions at the next
    request (the auth backend refuses inactive users); reactivating restores it.
    """
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
    return employee


@transaction.atomic
def department_save(*, department: Department) -> Department:
    department.full_clean()
    department.save()
    return department
