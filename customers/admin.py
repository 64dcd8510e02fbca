from django.contrib import admin

from cims.admin import ViewOnlyAdmin
from cims.history_admin import SimpleHistoryAdmin
from customers.models import (
    AccessRequest,
    Contact,
    Contract,
    Customer,
    CustomerLevel,
    CustomerSource,
    CustomerType,
    CustomField,
    EnterpriseNature,
    EnterpriseType,
    Industry,
    Product,
    ProductCategory,
    Province,
    StockMovement,
    Tag,
    Transaction,
    TransactionLine,
)


class LookupAdmin(admin.ModelAdmin):
    list_display = ["name", "sort_order", "is_active"]
    list_editable = ["sort_order", "is_active"]
    search_fields = ["name"]


for lookup in (
    EnterpriseType,
    EnterpriseNature,
    CustomerLevel,
    CustomerSource,
    CustomerType,
    Industry,
    ProductCategory,
):
    admin.site.register(lookup, LookupAdmin)


@admin.register(Province)
class ProvinceAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "short_name"]
    search_fields = ["name", "short_name"]

    def has_add_permission(self, request):
        return False  # fixed data

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "color"]
    search_fields = ["name"]


@admin.register(CustomField)
class CustomFieldAdmin(admin.ModelAdmin):
    list_display = ["label", "key", "field_type", "required", "sort_order", "is_active"]
    list_filter = ["field_type", "is_active"]


class ReadOnlyPersonalAdmin(SimpleHistoryAdmin):
    """Contacts, transactions and contracts in the admin: searchable by non-personal columns."""

    list_select_related = ["customer"]
    raw_id_fields = ["customer"]


@admin.register(Contact)
class ContactAdmin(ReadOnlyPersonalAdmin):
    list_display = ["name", "title", "customer", "is_primary"]
    search_fields = ["name", "customer__code", "customer__name"]
    exclude = ["phone_bidx", "email_bidx"]


class TransactionLineInline(admin.TabularInline):
    """Read-only here: lines move stock, so they change only through the staff UI's services."""

    model = TransactionLine
    fields = ["product", "quantity", "unit_price"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyPersonalAdmin):
    list_display = ["date", "customer", "product", "amount", "channel"]
    list_filter = ["channel", "date"]
    search_fields = ["product", "customer__code", "customer__name"]
    date_hierarchy = "date"
    inlines = [TransactionLineInline]


@admin.register(Product)
class ProductAdmin(SimpleHistoryAdmin):
    """The catalogue. The stock is read-only: it changes through receipts, corrections and sales
    (customers.products), each written as a stock movement."""

    list_display = ["code", "name", "category", "list_price", "stock_quantity", "low_stock_threshold", "is_active"]
    list_filter = ["is_active", "is_stocked", "category"]
    search_fields = ["code", "name"]
    list_select_related = ["category"]
    raw_id_fields = ["manager"]
    readonly_fields = ["stock_quantity", "created_at"]


@admin.register(StockMovement)
class StockMovementAdmin(ViewOnlyAdmin):
    """The stock ledger: read-only, written only by customers.products."""

    list_display = ["created_at", "product", "reason", "change", "balance", "transaction", "created_by"]
    list_filter = ["reason"]
    search_fields = ["product__code", "product__name", "note"]
    list_select_related = ["product", "created_by", "transaction"]
    date_hierarchy = "created_at"


@admin.register(Contract)
class ContractAdmin(ReadOnlyPersonalAdmin):
    list_display = ["number", "title", "customer", "amount", "start_date", "end_date", "status"]
    list_filter = ["status"]
    search_fields = ["number", "title", "customer__code", "customer__name"]


@admin.register(Customer)
class CustomerAdmin(SimpleHistoryAdmin):
    """The archive in the Django admin. Personal fields are shown masked in lists; the change form
    shows them to administrators, who hold every permission. Search uses codes and names only."""

    list_display = [
        "code",
        "name",
        "kind",
        "status",
        "level",
        "source",
        "province",
        "owner",
        "created_at",
        "deleted_at",
    ]
    list_filter = ["kind", "status", "level", "source", "province", "industry", "deleted_at"]
    search_fields = ["code", "name", "company"]
    list_select_related = ["level", "source", "province", "owner"]
    raw_id_fields = ["owner"]
    filter_horizontal = ["tags"]
    readonly_fields = ["code", "created_by", "created_at", "updated_at", "deleted_at", "deleted_by"]
    exclude = ["phone_bidx", "mobile_bidx", "email_bidx", "id_number_bidx"]
    show_full_result_count = False  # no COUNT(*) over a million rows on every page

    def get_queryset(self, request):
        return Customer.all_objects.all()

    def get_search_results(self, request, queryset, search_term):
        # Exact phone, email or ID number through the blind indexes; codes and names as usual.
        from customers.services import exact_search

        found = exact_search(queryset, search_term) if search_term else None
        if found is not None and found.exists():
            return found, False
        return super().get_search_results(request, queryset, search_term)


@admin.register(AccessRequest)
class AccessRequestAdmin(ViewOnlyAdmin):
    """Access requests, read-only: they are filed, decided and ended in the staff UI
    (customers.access_requests), where each step is logged and the grant follows the status."""

    list_display = ["id", "created_at", "requester", "kind", "customer", "status", "decided_by", "expires_at"]
    list_filter = ["kind", "status"]
    search_fields = ["customer__code", "requester__username"]
    list_select_related = ["requester", "customer", "decided_by"]
    date_hierarchy = "created_at"
