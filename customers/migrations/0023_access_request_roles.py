"""Grant the role matrix's access-request permissions (accounts/roles.py)."""

from django.db import migrations

from accounts.roles import apply_role_matrix


def grant_roles(apps, schema_editor):
    apply_role_matrix(apps, app_labels=["customers"])


class Migration(migrations.Migration):
    dependencies = [("customers", "0022_accessrequest")]

    operations = [migrations.RunPython(grant_roles, migrations.RunPython.noop)]
