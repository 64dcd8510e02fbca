from django.urls import path

from accounts import portal_views as accounts_portal
from customers import (
    access_request_views,
    attachment_views,
    editing,
    export_views,
    import_views,
    merge_views,
    pool_views,
    privacy_views,
    product_views,
    views,
)

app_name = "customers"

urlpatterns = [
    # Reading, the 360° page and actions on existing customers (customers/views.py)
    path("", views.customer_list, name="list"),
    path("bulk/", views.customer_bulk, name="bulk"),
    path("recycle-bin/", views.recycle_bin, name="recycle_bin"),
    path("phonebook/", views.phonebook, name="phonebook"),
    path("access-log/", views.access_log, name="access_log"),
    path("<int:pk>/", views.customer_detail, name="detail"),
    path("<int:pk>/history/", views.customer_history, name="history"),
    path("<int:pk>/reveal/<slug:field>/", views.customer_reveal, name="reveal"),
    path("<int:pk>/transfer/", views.customer_transfer, name="transfer"),
    path("<int:pk>/share/", views.customer_share, name="share"),
    path("<int:pk>/delete/", views.customer_delete, name="delete"),
    path("<int:pk>/restore/", views.customer_restore, name="restore"),
    # Creating and editing (customers/editing.py)
    path("new/", editing.customer_create, name="create"),
    path("duplicates/", editing.duplicate_check, name="duplicate_check"),
    path("<int:pk>/edit/", editing.customer_edit, name="edit"),
    path("<int:pk>/transactions/new/", editing.transaction_create, name="transaction_create"),
    path("transactions/<int:pk>/edit/", editing.transaction_edit, name="transaction_edit"),
    path("<int:pk>/contracts/new/", editing.contract_create, name="contract_create"),
    path("contracts/<int:pk>/edit/", editing.contract_edit, name="contract_edit"),
    path("settings/", editing.settings_index, name="settings"),
    path("settings/<slug:kind>/", editing.lookup_list, name="lookup_list"),
    path("settings/<slug:kind>/new/", editing.lookup_create, name="lookup_create"),
    path("settings/<slug:kind>/<int:pk>/", editing.lookup_edit, name="lookup_edit"),
    # Import (customers/import_views.py, engine in customers/importing/)
    path("import/", import_views.import_start, name="import"),
    path("import/template/", import_views.import_template, name="import_template"),
    path("import/jobs/", import_views.import_jobs, name="import_jobs"),
    path("import/jobs/<int:pk>/", import_views.import_job, name="import_job"),
    path("import/jobs/<int:pk>/status/", import_views.import_job_status, name="import_job_status"),
    path("import/jobs/<int:pk>/confirm/", import_views.import_confirm, name="import_confirm"),
    path("import/jobs/<int:pk>/cancel/", import_views.import_cancel, name="import_cancel"),
    path("import/jobs/<int:pk>/errors/", import_views.import_errors, name="import_errors"),
    # Export (customers/export_views.py, writers in customers/exporting.py)
    path("export/", export_views.customer_export, name="export"),
    path("export/transactions/", export_views.transaction_export, name="export_transactions"),
    path("export/contracts/", export_views.contract_export, name="export_contracts"),
    path("export/followups/", export_views.followup_export, name="export_followups"),
    # Duplicates already in the archive, and merging (customers/merge_views.py, customers/merging.py)
    path("duplicates/archive/", merge_views.duplicate_list, name="duplicates"),
    path("merge/<int:pk>/<int:other>/", merge_views.customer_merge, name="merge"),
    # The customer pool (公海) (customers/pool_views.py, services in customers/pool.py)
    path("pool/", pool_views.pool, name="pool"),
    path("pool/<int:pk>/claim/", pool_views.pool_claim, name="pool_claim"),
    path("<int:pk>/release/", pool_views.pool_release, name="pool_release"),
    # Products and stock (customers/product_views.py, services in customers/products.py)
    path("products/", product_views.product_list, name="products"),
    path("products/new/", product_views.product_create, name="product_create"),
    path("products/<int:pk>/", product_views.product_detail, name="product_detail"),
    path("products/<int:pk>/edit/", product_views.product_edit, name="product_edit"),
    path("products/<int:pk>/stock/", product_views.product_stock, name="product_stock"),
    # Files kept with customers and contracts (customers/attachment_views.py, customers/attachments.py)
    path("<int:pk>/attachments/new/", attachment_views.attachment_upload, name="attachment_upload"),
    path("attachments/<int:pk>/", attachment_views.attachment_download, name="attachment_download"),
    path("attachments/<int:pk>/delete/", attachment_views.attachment_delete, name="attachment_delete"),
    # Personal data: consents, requests and their approval (customers.privacy)
    path("<int:pk>/consents/", privacy_views.consents, name="consents"),
    path("data-requests/", privacy_views.data_requests, name="data_requests"),
    path("data-requests/<int:pk>/", privacy_views.data_request_detail, name="data_request"),
    # Access requests: time-limited grants beyond one's scope (customers.access_requests)
    path("access-requests/", access_request_views.access_requests, name="access_requests"),
    path("access-requests/new/", access_request_views.access_request_new, name="access_request_new"),
    path("access-requests/<int:pk>/", access_request_views.access_request_detail, name="access_request_detail"),
    path("access-requests/<int:pk>/decide/", access_request_views.access_request_decide, name="access_request_decide"),
    path("access-requests/<int:pk>/revoke/", access_request_views.access_request_revoke, name="access_request_revoke"),
    # The customer's portal account and its invitation (accounts.portal)
    path("<int:pk>/portal-account/", accounts_portal.portal_account, name="portal_account"),
]
