"""Ship the provinces and default lookups; grant the role matrix's customer permissions;
on PostgreSQL, add the GIN index that serves name substring search (customers/search.py)."""

from django.db import migrations

from accounts.roles import apply_role_matrix
from customers.reference_data import LOOKUPS, PROVINCES


def load_reference_data(apps, schema_editor):
    Province = apps.get_model("customers", "Province")
    for code, name, short_name in PROVINCES:
        Province.objects.update_or_create(code=code, defaults={"name": name, "short_name": short_name})
    for model_name, names in LOOKUPS.items():
        model = apps.get_model("customers", model_name)
        for order, name in enumerate(names):
            model.objects.get_or_create(name=name, defaults={"sort_order": order})


def grant_roles(apps, schema_editor):
    apply_role_matrix(apps, app_labels=["customers", "cims"])


def add_name_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS customer_name_grams_gin ON customers_customer "
            "USING gin (string_to_array(name_grams, ' '))"
        )


def drop_name_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS customer_name_grams_gin")


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0001_initial"),
        ("cims", "0002_personaldataaccess"),
        ("accounts", "0002_role_groups"),
    ]

    operations = [
        migrations.RunPython(load_reference_data, migrations.RunPython.noop),
        migrations.RunPython(grant_roles, migrations.RunPython.noop),
        migrations.RunPython(add_name_index, drop_name_index),
    ]
