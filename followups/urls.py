from django.urls import path

from followups import agenda_views, campaign_views, opportunity_views, views

app_name = "followups"

urlpatterns = [
    # Follow-up records, lifecycle status, the 360 timeline (followups/views.py)
    path("", views.followup_list, name="list"),
    path("customer/<int:pk>/new/", views.followup_create, name="create"),
    path("<int:pk>/edit/", views.followup_edit, name="edit"),
    path("customer/<int:pk>/status/", views.status_change, name="status"),
    path("customer/<int:pk>/timeline/", views.timeline, name="timeline"),
    path("return-visits/", views.return_visits, name="return_visits"),
    # Tasks, reminders, notifications, calendar and notes (followups/agenda_views.py)
    path("tasks/", agenda_views.task_list, name="tasks"),
    path("tasks/new/", agenda_views.task_create, name="task_create"),
    path("tasks/<int:pk>/edit/", agenda_views.task_edit, name="task_edit"),
    path("tasks/<int:pk>/done/", agenda_views.task_done, name="task_done"),
    path("notifications/", agenda_views.notification_list, name="notifications"),
    path("notifications/bell/", agenda_views.notification_bell, name="bell"),
    path("notifications/<int:pk>/read/", agenda_views.notification_read, name="notification_read"),
    path("notifications/read-all/", agenda_views.notifications_read_all, name="notifications_read_all"),
    path("calendar/", agenda_views.calendar, name="calendar"),
    path("calendar/history/", agenda_views.history, name="history"),
    path("notes/new/", agenda_views.note_create, name="note_create"),
    path("notes/<int:pk>/edit/", agenda_views.note_edit, name="note_edit"),
    path("notes/<int:pk>/delete/", agenda_views.note_delete, name="note_delete"),
    # Sales opportunities and the pipeline board (followups/opportunity_views.py)
    path("pipeline/", opportunity_views.pipeline, name="pipeline"),
    path("opportunities/", opportunity_views.opportunity_list, name="opportunities"),
    path("customer/<int:pk>/opportunities/new/", opportunity_views.opportunity_create, name="opportunity_create"),
    path("opportunities/<int:pk>/edit/", opportunity_views.opportunity_edit, name="opportunity_edit"),
    path("opportunities/<int:pk>/move/", opportunity_views.opportunity_move, name="opportunity_move"),
    path("opportunities/<int:pk>/win/", opportunity_views.opportunity_win, name="opportunity_win"),
    path("opportunities/<int:pk>/lose/", opportunity_views.opportunity_lose, name="opportunity_lose"),
    # Marketing campaigns (followups/campaign_views.py, services in followups/campaigns.py)
    path("campaigns/", campaign_views.campaign_list, name="campaigns"),
    path("campaigns/new/", campaign_views.campaign_create, name="campaign_create"),
    path("campaigns/<int:pk>/", campaign_views.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:pk>/edit/", campaign_views.campaign_edit, name="campaign_edit"),
    path("campaigns/<int:pk>/targets/", campaign_views.campaign_add_targets, name="campaign_add_targets"),
    path("campaigns/members/<int:pk>/", campaign_views.campaign_member_update, name="campaign_member_update"),
    path("campaigns/members/<int:pk>/remove/", campaign_views.campaign_member_remove, name="campaign_member_remove"),
]
