"""The default ticket categories (administrator-maintained afterwards) and the role matrix's ticket
permissions (accounts/roles.py)."""

from django.db import migrations

from accounts.roles import apply_role_matrix

CATEGORIES = ["产品质量", "服务态度", "物流配送", "账单费用", "其他"]


def seed(apps, schema_editor):
    TicketCategory = apps.get_model("complaints", "TicketCategory")
    for order, name in enumerate(CATEGORIES, start=1):
        TicketCategory.objects.get_or_create(name=name, defaults={"sort_order": order * 10})
    apply_role_matrix(apps, app_labels=["complaints"])


class Migration(migrations.Migration):
    dependencies = [("complaints", "0001_initial"), ("accounts", "0005_portal_account")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
