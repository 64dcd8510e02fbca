"""Grant the role matrix's campaign and return-visit permissions (accounts/roles.py)."""

from django.db import migrations

from accounts.roles import apply_role_matrix


def grant_roles(apps, schema_editor):
    apply_role_matrix(apps, app_labels=["followups"])


class Migration(migrations.Migration):
    dependencies = [
        ("followups", "0005_campaigns_lines_return_visits"),
        ("customers", "0012_products_attachments_roles"),
    ]

    operations = [migrations.RunPython(grant_roles, migrations.RunPython.noop)]
