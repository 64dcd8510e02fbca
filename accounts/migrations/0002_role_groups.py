"""Create the role groups and grant them the permissions of the role matrix (accounts/roles.py)."""

from django.db import migrations

from accounts.roles import apply_role_matrix

# The apps whose permissions exist at this point; every later app grants its own in its migration.
APP_LABELS = ["admin", "auth", "contenttypes", "sessions", "axes", "guardian", "cims", "accounts"]


def forwards(apps, schema_editor):
    apply_role_matrix(apps, app_labels=APP_LABELS)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("cims", "0001_initial"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("sessions", "0001_initial"),
        ("axes", "0010_accessattemptexpiration"),
        ("guardian", "0003_remove_groupobjectpermission_guardian_gr_content_ae6aec_idx_and_more"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
