from django.urls import path

from lottery import public_views, show_views, views

app_name = "lottery"

urlpatterns = [
    path("", views.event_list, name="list"),
    path("new/", views.event_create, name="create"),
    path("<int:pk>/", views.event_detail, name="detail"),
    path("<int:pk>/edit/", views.event_edit, name="edit"),
    path("<int:pk>/delete/", views.event_delete, name="delete"),
    path("<int:pk>/publish/", views.event_publish, name="publish"),
    path("<int:pk>/public-value/", views.event_public_value, name="public_value"),
    path("<int:pk>/announce/", views.event_announce, name="announce"),
    path("<int:pk>/winners/", views.winner_list, name="winners"),
    path("<int:pk>/winners/export/", views.winner_export, name="winners_export"),
    # The big screen (大屏) for the annual party, and its one write: the draw.
    path("<int:pk>/show/", show_views.show, name="show"),
    path("<int:pk>/show/draw/", show_views.show_draw, name="show_draw"),
    # Public, no login: what anyone needs to check the draw.
    path("<int:pk>/public/", public_views.public_page, name="public"),
    path("<int:pk>/public/published.json", public_views.public_document, name="public_document"),
    path("<int:pk>/public/entries.tsv", public_views.public_entries, name="public_entries"),
    path("verify_lottery.py", public_views.verifier_script, name="verifier_script"),
]
