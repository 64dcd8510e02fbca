from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

urlpatterns = [
    path("", include("reports.urls")),
    path("accounts/", include("accounts.urls")),
    path("customers/", include("customers.urls")),
    path("followups/", include("followups.urls")),
    path("complaints/", include("complaints.urls")),
    path("lottery/", include("lottery.urls")),
    path("portal/", include("cims.portal_urls")),
    path("system/", include("cims.system_urls")),
    path("audit/", include("cims.audit_urls")),
    path("api/", include("cims.api.urls")),
    path("help/", include("cims.help_urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path(settings.ADMIN_URL, admin.site.urls),
]

handler400 = "cims.views.bad_request"
handler403 = "cims.views.permission_denied"
handler404 = "cims.views.page_not_found"
handler500 = "cims.views.server_error"
