"""帮助: the user guide (docs/user-guide/) inside the app, and the guided tour's state."""

from django.urls import path

from cims import help_views

app_name = "help"

urlpatterns = [
    path("", help_views.index, name="index"),
    path("<slug:slug>/", help_views.page, name="page"),
    path("tour/done/", help_views.tour_done, name="tour_done"),
    path("tour/restart/", help_views.tour_restart, name="tour_restart"),
]
