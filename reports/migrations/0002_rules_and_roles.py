"""The default profile rules (客户画像标签; administrators edit them afterwards) and the role
matrix's report permissions (accounts/roles.py)."""

from django.db import migrations

from accounts.roles import apply_role_matrix

RULES = [
    # kind, name, colour, thresholds, suggested action
    ("high_value", "高价值客户", "danger", {"percent": 20}, "高价值客户专属回访"),
    ("dormant", "沉睡客户", "secondary", {"days": 90}, "沉睡客户唤醒回访"),
    ("busy_no_win", "高活跃低转化", "warning", {"days": 90, "count": 5}, "梳理商机，推动成交"),
    ("new", "新客户", "success", {"days": 30}, "新客户首次回访"),
    ("churn_risk", "流失风险", "dark", {"days": 60, "percent": 30, "score": 30, "rating": 2}, "续约风险回访"),
]


def seed(apps, schema_editor):
    ProfileRule = apps.get_model("reports", "ProfileRule")
    for order, (kind, name, color, thresholds, action) in enumerate(RULES, start=1):
        ProfileRule.objects.get_or_create(
            kind=kind,
            defaults={"name": name, "color": color, "action": action, "sort_order": order * 10, **thresholds},
        )
    apply_role_matrix(apps, app_labels=["reports"])


class Migration(migrations.Migration):
    dependencies = [("reports", "0001_initial"), ("accounts", "0006_portal_account_roles")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
