from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from accounts.forms import EmployeeForm
from accounts.models import Department, Employee, User
from accounts.services import department_save, employee_save
from cims.history_admin import SimpleHistoryAdmin


@admin.register(User)
class UserAdmin(BaseUserAdmin, SimpleHistoryAdmin):
    list_display = ["username", "name", "email", "role_names", "is_active", "is_staff", "last_login"]
    list_filter = ["is_active", "is_staff", "is_superuser", "groups"]
    search_fields = ["username", "name", "email"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Personal info"), {"fields": ("name", "email")}),
        (
            _("Roles and permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "name", "email", "groups", "password1", "password2")}),
    )

    @admin.display(description=_("roles"))
    def role_names(self, obj: User) -> str:
        return ", ".join(group.name for group in obj.groups.all())

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")


@admin.register(Department)
class DepartmentAdmin(SimpleHistoryAdmin):
    list_display = ["name", "parent", "head", "sort_order"]
    list_filter = ["parent"]
    search_fields = ["name"]
    autocomplete_fields = ["head"]
    list_select_related = ["parent", "head"]

    def save_model(self, request, obj, form, change):
        department_save(department=obj)


@admin.register(Employee)
class EmployeeAdmin(SimpleHistoryAdmin):
    list_display = ["number", "name", "department", "position", "phone", "hire_date", "is_active", "user"]
    list_filter = ["is_active", "department"]
    search_fields = ["number", "name", "phone", "email"]
    form = EmployeeForm  # same normalisation (phone to E.164, full-width folding) as the staff UI
    readonly_fields = ["number", "created_at", "updated_at"]
    autocomplete_fields = ["user"]
    list_select_related = ["department", "user"]

    def save_model(self, request, obj, form, change):
        employee_save(employee=obj)


admin.site.site_header = _("CIMS administration")
admin.site.site_title = _("CIMS administration")
admin.site.index_title = _("System administration")
