"""Grant the role matrix's follow-up, task and note permissions (accounts/roles.py)."""

from django.db import migrations

from accounts.roles import apply_role_matrix


def grant_roles(apps, schema_editor):
    apply_role_matrix(apps, app_labels=["followups"])


class Migration(migrations.Migration):
    dependencies = [("followups", "0001_initial")]

    operations = [migrations.RunPython(grant_roles, migrations.RunPython.noop)]
