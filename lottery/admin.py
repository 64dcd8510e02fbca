"""The lottery in the Django admin: to look at, never to edit.

Events are created, published, drawn and announced in the staff UI, through lottery.services, which
refuses and logs every change to what was published. The admin offers no second way around that."""

from __future__ import annotations

from django.contrib import admin

from cims.admin import ViewOnlyAdmin
from lottery.models import LotteryEntry, LotteryEvent, LotteryLog, LotteryTier, LotteryWinner


class TierInline(admin.TabularInline):
    model = LotteryTier
    fields = ["draw_order", "name", "prize", "quantity"]
    extra = 0

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(LotteryEvent)
class LotteryEventAdmin(ViewOnlyAdmin):
    list_display = ["year", "name", "status", "entry_count", "published_at", "drawn_at", "drawn_by"]
    list_filter = ["status", "year"]
    search_fields = ["name"]
    inlines = [TierInline]
    exclude = ["salt", "secret"]


@admin.register(LotteryWinner)
class LotteryWinnerAdmin(ViewOnlyAdmin):
    list_display = ["event", "rank", "tier", "position", "entry", "customer"]
    list_filter = ["event"]
    raw_id_fields = ["customer", "entry"]
    list_select_related = ["event", "tier", "entry", "customer"]


@admin.register(LotteryEntry)
class LotteryEntryAdmin(ViewOnlyAdmin):
    list_display = ["event", "position", "entry_id", "weight", "customer"]
    list_filter = ["event"]
    search_fields = ["=entry_id"]
    raw_id_fields = ["customer"]
    show_full_result_count = False


@admin.register(LotteryLog)
class LotteryLogAdmin(ViewOnlyAdmin):
    list_display = ["created_at", "event", "action", "user", "detail"]
    list_filter = ["action", "event"]
