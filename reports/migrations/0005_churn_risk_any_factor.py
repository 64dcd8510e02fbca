"""流失风险 is a contract ending soon together with a complaint, low satisfaction OR falling spend
(issue 7): each factor alone must reach the rule's score. The weights are 40/30/30, so the
default threshold is 30, not the 40 first shipped (which a complaint alone reached, but not the
other two). Rules an administrator already changed are left as they are."""

from django.db import migrations


def lower(apps, schema_editor):
    ProfileRule = apps.get_model("reports", "ProfileRule")
    ProfileRule.objects.filter(kind="churn_risk", score=40).update(score=30)


class Migration(migrations.Migration):
    dependencies = [("reports", "0004_derived_tables_without_permissions")]

    operations = [migrations.RunPython(lower, migrations.RunPython.noop)]
