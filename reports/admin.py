"""The reports in the Django admin: administrators edit the profile rules' thresholds (their
ranges are the model fields' validators; history kept); the derived tables (profiles, tags, summary states) are read-only; report subscriptions can
be listed and removed."""

from __future__ import annotations

from django.contrib import admin

from cims.history_admin import SimpleHistoryAdmin
from reports.models import CustomerProfile, ProfileRule, ProfileTag, ReportSubscription, SummaryState


@admin.register(ProfileRule)
class ProfileRuleAdmin(SimpleHistoryAdmin):
    """One rule per kind (seeded by a migration): the kind is fixed; a rule is switched off with
    "in use" rather than deleted (deleting it would drop its tags' history of since-dates)."""

    list_display = ["name", "kind", "is_active", "percent", "days", "count", "score", "rating", "action", "sort_order"]
    list_editable = ["is_active", "sort_order"]
    fields = [
        "kind",
        "name",
        "color",
        "is_active",
        "percent",
        "days",
        "count",
        "score",
        "rating",
        "action",
        "action_days",
        "sort_order",
    ]

    def get_readonly_fields(self, request, obj=None):
        return ["kind"] if obj is not None else []

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Derived data: rebuilt by jobs, never edited by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CustomerProfile)
class CustomerProfileAdmin(ReadOnlyAdmin):
    list_display = [
        "customer",
        "r_score",
        "f_score",
        "m_score",
        "recency_days",
        "frequency",
        "monetary",
        "followups_recent",
        "renewal_risk",
        "computed_at",
    ]
    list_select_related = ["customer"]
    search_fields = ["customer__code"]
    # A million rows: no full count, no select boxes of customers.
    show_full_result_count = False
    raw_id_fields = ["customer"]


@admin.register(ProfileTag)
class ProfileTagAdmin(ReadOnlyAdmin):
    list_display = ["customer", "rule", "since"]
    list_filter = ["rule"]
    list_select_related = ["customer", "rule"]
    search_fields = ["customer__code"]
    show_full_result_count = False
    raw_id_fields = ["customer"]


@admin.register(SummaryState)
class SummaryStateAdmin(ReadOnlyAdmin):
    list_display = ["name", "refreshed_at", "seconds", "rows"]

    def has_view_permission(self, request, obj=None) -> bool:
        # The table carries no permissions of its own (derived data): those who see every report may look.
        return request.user.has_perm("reports.view_all_reports")

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)


@admin.register(ReportSubscription)
class ReportSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["report", "user", "frequency", "is_active", "created_at", "last_sent_at", "last_error"]
    list_filter = ["report", "frequency", "is_active"]
    list_select_related = ["user"]
    search_fields = ["user__username", "report"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
