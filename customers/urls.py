from django.urls import path

from customers import editing, views

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
]
