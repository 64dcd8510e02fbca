"""The audit views (审计): change history across every audited model, and the access log."""

from django.urls import path

from cims import audit_views

app_name = "audit"

urlpatterns = [
    path("history/", audit_views.history, name="history"),
    path("history/export/", audit_views.history_export, name="history_export"),
    path("access-log/", audit_views.access_log, name="access_log"),
    path("access-log/export/", audit_views.access_log_export, name="access_log_export"),
]
