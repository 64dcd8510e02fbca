"""The Django admin's history pages (django-simple-history), shared by every audited model's admin."""

from __future__ import annotations

from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.http import Http404
from simple_history.admin import SimpleHistoryAdmin as _SimpleHistoryAdmin


class SimpleHistoryAdmin(_SimpleHistoryAdmin):
    """simple_history's admin with the ids of the URL checked first: ``/admin/<model>/abc/history/``
    looked ``abc`` up as an integer id and answered 500 (ValueError); now it is a 404, as an id
    that does not exist is. Found by the URL walk (tests/accounts/test_url_matrix.py)."""

    def _require_id(self, object_id: str) -> None:
        try:
            self.model._meta.pk.to_python(unquote(object_id))
        except ValidationError:
            raise Http404 from None

    def history_view(self, request, object_id, extra_context=None):
        self._require_id(object_id)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        self._require_id(object_id)
        if not str(version_id).isascii() or not str(version_id).isdigit():
            raise Http404
        return super().history_form_view(request, object_id, version_id, extra_context)
