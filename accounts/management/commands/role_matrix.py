"""Print the role matrix as a Markdown table, or write it into docs/roles.md between its markers.

``tests/accounts/test_roles.py`` checks that docs/roles.md holds exactly this table, so the doc
cannot drift from accounts/roles.py.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand

from accounts.roles import ADMIN, ROLE_PERMISSIONS, ROLES, expected_permissions

START, END = "<!-- role-matrix:start -->", "<!-- role-matrix:end -->"


def render_matrix() -> str:
    """One row per permission some non-admin role holds; the administrator holds every one."""
    permissions = {
        f"{p.content_type.app_label}.{p.codename}": p.name for p in Permission.objects.select_related("content_type")
    }
    held = {role: expected_permissions(role, permissions) for role in ROLES}
    named = sorted({perm for role, spec in ROLE_PERMISSIONS.items() if role != ADMIN for perm in spec})
    lines = [
        "| permission | meaning | " + " | ".join(f"`{role}`" for role in ROLES) + " |",
        "| --- | --- | " + " | ".join(":-:" for _ in ROLES) + " |",
    ]
    for perm in named:
        marks = " | ".join("✓" if perm in held[role] else "" for role in ROLES)
        lines.append(f"| `{perm}` | {permissions.get(perm, '(not yet created)')} | {marks} |")
    lines.append(
        f"| every other permission ({len(permissions) - len(named)}: add/change/delete of lookups, users, "
        "groups, history, axes, guardian …) | | " + " | ".join("✓" if role == ADMIN else "" for role in ROLES) + " |"
    )
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Print the role matrix as Markdown; with --write, refresh the table in docs/roles.md."

    def add_arguments(self, parser):
        parser.add_argument(
            "--write", action="store_true", help="Replace the table between the markers in docs/roles.md."
        )

    def handle(self, *args, **options):
        table = render_matrix()
        if not options["write"]:
            self.stdout.write(table)
            return
        path = Path(settings.BASE_DIR) / "docs" / "roles.md"
        text = path.read_text(encoding="utf-8")
        before, _, rest = text.partition(START)
        _, _, after = rest.partition(END)
        path.write_text(f"{before}{START}\n{table}\n{END}{after}", encoding="utf-8")
        self.stdout.write(f"Updated {path}")
