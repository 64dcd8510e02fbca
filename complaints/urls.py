"""The complaint desk (staff). The portal's ticket pages are in cims/portal_urls.py."""

from django.urls import path

from complaints import views

app_name = "complaints"

urlpatterns = [
    path("", views.ticket_list, name="list"),
    path("new/", views.ticket_create, name="create"),
    path("customer/<int:pk>/", views.customer_tickets, name="customer_tickets"),
    path("<str:number>/", views.ticket_detail, name="detail"),
    path("<str:number>/status/", views.ticket_transition, name="transition"),
    path("<str:number>/assign/", views.ticket_assign, name="assign"),
    path("<str:number>/comment/", views.ticket_comment, name="comment"),
    path("<str:number>/files/<int:pk>/", views.ticket_attachment, name="attachment"),
]
