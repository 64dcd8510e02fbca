from django.urls import path

from reports import profile_views, views

app_name = "reports"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("dashboard/figures/", views.dashboard_figures, name="dashboard_figures"),
    path("reports/", views.index, name="index"),
    path("reports/refresh/", views.refresh, name="refresh"),
    path("reports/profiles/", profile_views.profiles, name="profiles"),
    path("reports/profiles/<int:pk>/", profile_views.profile_tag, name="profile_tag"),
    path("reports/profiles/<int:pk>/tasks/", profile_views.profile_tasks, name="profile_tasks"),
    path("reports/subscriptions/<int:pk>/delete/", views.subscription_delete, name="subscription_delete"),
    path("reports/<slug:key>/", views.report, name="report"),
    path("reports/<slug:key>/subscribe/", views.subscribe, name="subscribe"),
]
