"""The cims models in the Django admin."""

from __future__ import annotations

from django.contrib import admin

from cims.models import AuditAnchor, PersonalDataAccess

# --- Audit log (cims.audit): to look at, never to change -------------------------------------------


class ViewOnlyAdmin(admin.ModelAdmin):
    """An admin to look at, never to edit: records whose changes go through services that check and
    log them (lottery, access requests, stock movements) or that are evidence (the audit log)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class AuditViewOnlyAdmin(ViewOnlyAdmin):
    """No bulk actions either: the rows are evidence. Retention removes old access-log rows through
    cims.audit only, recording an anchor."""

    actions = None


@admin.register(PersonalDataAccess)
class PersonalDataAccessAdmin(AuditViewOnlyAdmin):
    list_display = ["created_at", "user", "action", "object_type", "object_label", "field", "rows", "ip_address", "seq"]
    # No filters that read distinct values or dates over the whole log (a million rows and more).
    list_filter = ["action"]
    # Exact matches only: a substring search would scan the whole log (the audit views filter it).
    search_fields = ["=object_label", "=object_id", "=user__username"]
    list_select_related = ["user"]
    show_full_result_count = False  # no COUNT(*) over the whole log on each page


@admin.register(AuditAnchor)
class AuditAnchorAdmin(AuditViewOnlyAdmin):
    list_display = ["seq", "removed_rows", "reason", "created_at"]
