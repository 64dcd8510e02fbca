"""The administrator's system pages: 运行环境 (system status), backups, API tokens and webhooks."""

from django.urls import path

from accounts import api_token_views
from cims import backup_views, system_views, webhook_views

app_name = "system"

urlpatterns = [
    path("", system_views.status, name="status"),
    path("backups/", backup_views.backup_list, name="backups"),
    path("backups/new/", backup_views.backup_create, name="backup_create"),
    path("backups/<int:pk>/", backup_views.backup_detail, name="backup_detail"),
    path("backups/<int:pk>/restore/", backup_views.backup_restore, name="backup_restore"),
    path("api-tokens/", api_token_views.token_list, name="api_tokens"),
    path("api-tokens/new/", api_token_views.token_create, name="api_token_create"),
    path("api-tokens/<int:pk>/", api_token_views.token_detail, name="api_token_detail"),
    path("api-tokens/<int:pk>/revoke/", api_token_views.token_revoke, name="api_token_revoke"),
    path("webhooks/", webhook_views.endpoint_list, name="webhooks"),
    path("webhooks/new/", webhook_views.endpoint_create, name="webhook_create"),
    path("webhooks/<int:pk>/", webhook_views.endpoint_detail, name="webhook_detail"),
    path("webhooks/<int:pk>/edit/", webhook_views.endpoint_edit, name="webhook_edit"),
    path("webhooks/<int:pk>/ping/", webhook_views.endpoint_ping, name="webhook_ping"),
    path("webhooks/deliveries/<int:pk>/", webhook_views.delivery_detail, name="webhook_delivery"),
    path("webhooks/deliveries/<int:pk>/resend/", webhook_views.delivery_resend, name="webhook_resend"),
]
