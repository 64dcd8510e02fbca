from django.contrib.auth.models import Group, Permission

from accounts.roles import ROLE_PERMISSIONS, ROLES, apply_role_matrix, expected_permissions


def _all_permission_names():
    return {f"{p.content_type.app_label}.{p.codename}" for p in Permission.objects.select_related("content_type")}


def test_it_creates_every_role_group(db):
    assert set(Group.objects.values_list("name", flat=True)) >= set(ROLES)


def test_it_gives_each_group_exactly_its_permissions(db):
    available = _all_permission_names()
    for role in ROLES:
        group = Group.objects.get(name=role)
        held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        assert held == expected_permissions(role, available), role


def test_it_names_only_permissions_that_exist(db):
    available = _all_permission_names()
    for role, spec in ROLE_PERMISSIONS.items():
        if isinstance(spec, list):
            assert set(spec) <= available, f"{role}: {set(spec) - available}"


def test_it_keeps_the_portal_door_away_from_staff_roles(db):
    for role in ("admin", "manager", "sales", "service", "analyst"):
        assert not Group.objects.filter(name=role, permissions__codename="access_portal").exists()
    assert not Group.objects.filter(name="customer", permissions__codename="access_staff_ui").exists()


def test_it_gives_customers_nothing_but_the_portal(db):
    codenames = set(Group.objects.get(name="customer").permissions.values_list("codename", flat=True))
    assert codenames == {"access_portal"}


def test_it_applies_the_matrix_idempotently(db):
    from django.apps import apps

    before = {g.name: g.permissions.count() for g in Group.objects.all()}
    apply_role_matrix(apps)
    after = {g.name: g.permissions.count() for g in Group.objects.all()}
    assert before == after


def test_it_documents_the_matrix_in_force(db):
    from pathlib import Path

    from django.conf import settings

    from accounts.management.commands.role_matrix import END, START, render_matrix

    doc = (Path(settings.BASE_DIR) / "docs" / "roles.md").read_text(encoding="utf-8")
    documented = doc.split(START, 1)[1].split(END, 1)[0].strip()
    assert documented == render_matrix(), "docs/roles.md is stale: run `manage.py role_matrix --write`"
