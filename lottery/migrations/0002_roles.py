# The lottery's rows in the role matrix (accounts.roles): every staff member sees events and winners.

from django.db import migrations

from accounts.roles import apply_role_matrix


def grant(apps, schema_editor):
    apply_role_matrix(apps, app_labels=["lottery"])


class Migration(migrations.Migration):
    dependencies = [("lottery", "0001_initial"), ("accounts", "0006_portal_account_roles")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
