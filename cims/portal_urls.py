"""The customer portal (/portal/): every view here resolves the customer from the logged-in user
(accounts.portal.customer_for), never from an id in the URL or a form."""

from django.urls import path

from accounts import portal_views as accounts_portal
from complaints import portal_views as tickets
from customers import privacy_views as privacy
from lottery import portal_views as lottery_portal

app_name = "portal"

urlpatterns = [
    path("welcome/<str:uidb64>/<str:token>/", accounts_portal.invitation_accept, name="invitation"),
    path("profile/", accounts_portal.profile, name="profile"),
    path("tickets/", tickets.ticket_list, name="tickets"),
    path("tickets/new/", tickets.ticket_create, name="ticket_create"),
    path("tickets/<str:number>/", tickets.ticket_detail, name="ticket_detail"),
    path("tickets/<str:number>/reply/", tickets.ticket_reply, name="ticket_reply"),
    path("tickets/<str:number>/rate/", tickets.ticket_rate, name="ticket_rate"),
    path("tickets/<str:number>/reopen/", tickets.ticket_reopen, name="ticket_reopen"),
    path("tickets/<str:number>/files/<int:pk>/", tickets.ticket_attachment, name="ticket_attachment"),
    path("rate/<str:token>/", tickets.rate_link, name="rate_link"),
    path("privacy/", privacy.portal_privacy, name="privacy"),
    path("privacy/export/<str:fmt>/", privacy.portal_export, name="privacy_export"),
    path("privacy/request/", privacy.portal_request, name="privacy_request"),
    path("privacy/consents/withdraw/", privacy.portal_consent_withdraw, name="consent_withdraw"),
    path("lottery/", lottery_portal.lottery_list, name="lottery"),
]
