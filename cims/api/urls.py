"""/api/v1/: each app's endpoints (``<app>.api.register``), the schema and its browsable docs."""

from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from accounts.access import staff_required
from complaints import api as complaints_api
from customers import api as customers_api
from customers import api_records as records_api
from followups import api as followups_api

app_name = "api"


class Router(DefaultRouter):
    include_root_view = False


router = Router()
for module in (customers_api, records_api, followups_api, complaints_api):
    module.register(router)

urlpatterns = [
    path("v1/", include(router.urls)),
    path("v1/schema/", SpectacularJSONAPIView.as_view(), name="schema"),
    # The docs are a page for people in a browser: signed-in staff, others sent to log in.
    path("v1/docs/", staff_required(SpectacularSwaggerSplitView.as_view(url_name="api:schema")), name="docs"),
]
