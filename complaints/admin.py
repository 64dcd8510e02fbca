"""The administrator's side of the complaints module: the categories (with the service staff who
take each one's tickets) and a read-mostly look at tickets; the work itself is on the desk."""

from django.contrib import admin

from cims.history_admin import SimpleHistoryAdmin
from complaints.models import Ticket, TicketCategory


@admin.register(TicketCategory)
class TicketCategoryAdmin(SimpleHistoryAdmin):
    list_display = ["name", "sort_order", "is_active", "agent_count"]
    list_editable = ["sort_order", "is_active"]
    search_fields = ["name"]
    filter_horizontal = ["agents"]

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(agents_total=Count("agents"))

    @admin.display(description="#", ordering="agents_total")
    def agent_count(self, obj) -> int:
        return obj.agents_total

    def has_delete_permission(self, request, obj=None):
        # A category with tickets is protected by the database; retire it with "in use" instead.
        return obj is None or not obj.ticket_set.exists()


@admin.register(Ticket)
class TicketAdmin(SimpleHistoryAdmin):
    """Read-only: tickets change through the desk's services (the flow, events, 售后中)."""

    list_display = ["number", "subject", "customer", "kind", "category", "severity", "status", "assignee", "created_at"]
    list_filter = ["status", "kind", "severity", "category"]
    list_select_related = ["customer", "category", "assignee"]
    search_fields = ["=number", "=customer__code"]
    show_full_result_count = False  # no COUNT(*) over half a million tickets on every page
    ordering = ["-id"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # The change page shows the ticket (read-only) to whoever may view it.
        return False
