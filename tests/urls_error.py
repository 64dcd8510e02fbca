"""The project's URLs plus one view that fails, to check what a 500 shows."""

from django.urls import path

from cims.urls import handler500  # noqa: F401
from cims.urls import urlpatterns as project_urlpatterns


def boom(request):
    raise RuntimeError("secret-internal-detail 13800138000")


urlpatterns = [path("boom/", boom), *project_urlpatterns]
