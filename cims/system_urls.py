"""The administrator's system pages: 运行环境 (system status) and backups."""

from django.urls import path

from cims import backup_views, system_views

app_name = "system"

urlpatterns = [
    path("", system_views.status, name="status"),
    path("backups/", backup_views.backup_list, name="backups"),
    path("backups/new/", backup_views.backup_create, name="backup_create"),
    path("backups/<int:pk>/", backup_views.backup_detail, name="backup_detail"),
    path("backups/<int:pk>/restore/", backup_views.backup_restore, name="backup_restore"),
]
