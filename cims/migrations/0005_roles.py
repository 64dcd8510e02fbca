from django.db import migrations

from accounts.roles import apply_role_matrix


def grant(apps, schema_editor):
    apply_role_matrix(apps, app_labels=["cims"])


class Migration(migrations.Migration):
    dependencies = [
        ("cims", "0004_audit_backups_jobs"),
        ("accounts", "0006_portal_account_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
