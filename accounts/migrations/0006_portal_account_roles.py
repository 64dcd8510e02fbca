"""Grant the role matrix's portal-account permissions (accounts/roles.py)."""

from django.db import migrations

from accounts.roles import apply_role_matrix


def grant_roles(apps, schema_editor):
    apply_role_matrix(apps, app_labels=["accounts"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_portal_account")]

    operations = [migrations.RunPython(grant_roles, migrations.RunPython.noop)]
