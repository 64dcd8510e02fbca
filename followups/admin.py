from django.contrib import admin

from cims.history_admin import SimpleHistoryAdmin
from followups.models import Campaign, CampaignMember


@admin.register(Campaign)
class CampaignAdmin(SimpleHistoryAdmin):
    list_display = ["name", "kind", "status", "start_date", "end_date", "budget", "actual_cost", "owner"]
    list_filter = ["status", "kind"]
    search_fields = ["name"]
    date_hierarchy = "start_date"
    list_select_related = ["owner"]
    raw_id_fields = ["owner", "created_by"]


@admin.register(CampaignMember)
class CampaignMemberAdmin(admin.ModelAdmin):
    """Members are many (a campaign may reach every customer): no select boxes of customers, no counts."""

    list_display = ["campaign", "customer", "status", "added_at", "responded_at", "converted_at"]
    list_filter = ["status"]
    list_select_related = ["campaign", "customer"]
    raw_id_fields = ["campaign", "customer", "added_by"]
    search_fields = ["campaign__name"]
    show_full_result_count = False
