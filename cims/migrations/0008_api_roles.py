from django.db import migrations
from django.utils import timezone

from accounts.roles import apply_role_matrix


def grant(apps, schema_editor):
    # API tokens and webhook endpoints are the administrator's (the role matrix: everything).
    apply_role_matrix(apps, app_labels=["accounts", "cims"])
    # Staff who have signed in before are not new: the guided tour is offered to new users only.
    User = apps.get_model("accounts", "User")
    User.objects.filter(last_login__isnull=False, tour_done_at__isnull=True).update(tour_done_at=timezone.now())


class Migration(migrations.Migration):
    dependencies = [
        ("cims", "0007_api_webhooks"),
        ("accounts", "0007_api_tokens_tour"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
