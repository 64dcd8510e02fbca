"""Give every existing department its member group and put its employees' accounts in it."""

from django.db import migrations


def forwards(apps, schema_editor):
    Department = apps.get_model("accounts", "Department")
    Employee = apps.get_model("accounts", "Employee")
    Group = apps.get_model("auth", "Group")
    for department in Department.objects.filter(group__isnull=True):
        department.group = Group.objects.create(name=f"dept:{department.pk}:{department.name}"[:150])
        department.save(update_fields=["group"])
        for employee in Employee.objects.filter(department=department, is_active=True, user__isnull=False):
            employee.user.groups.add(department.group)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_department_group")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
