"""The audit views (审计): the change history of every record, and the personal-data access log.

Both are read-only searches for managers and administrators. Filters are parsed by
``cims.audit_forms``; a filter with an error shows the error and no rows (never every row, which
an auditor could mistake for the filtered answer). The access log's export is itself logged.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from accounts.access import staff_permission_required
from cims.audit_forms import AccessLogFilterForm, HistoryFilterForm
from cims.audit_history import history_count, history_page, iter_history
from cims.models import PersonalDataAccess, log_personal_data_access
from cims.pagination import COUNT_CAP, KeysetPage, KeysetPaginator, capped_count, page_links
from customers import exporting
from customers.attachments import streaming_download_response
from customers.export_views import bad_filter, bad_format, export_format
from customers.forms_list import CursorForm

ACCESS_LOG_PER_PAGE = 50


def _empty_links() -> dict:
    return {"next_query": "", "previous_query": "", "first_query": "", "show_first": False}


@staff_permission_required("cims.view_change_history")
@require_http_methods(["GET", "HEAD"])
def history(request: HttpRequest) -> HttpResponse:
    form = HistoryFilterForm(request.GET)
    context: dict = {"form": form, "page": KeysetPage([]), **_empty_links()}
    if form.is_valid():
        after, before = CursorForm(request.GET).cursors()
        page = history_page(user=request.user, query=form.query(), after=after, before=before)[0]
        context.update(page=page, export_query=_export_query(request), **page_links(request, page))
    return render(request, "audit/history.html", context)


def _export_query(request: HttpRequest) -> str:
    """The page's filters without its cursor: what the export links carry."""
    query = request.GET.copy()
    for key in ("after", "before", "format"):
        query.pop(key, None)
    return query.urlencode()


def _access_log_rows(form: AccessLogFilterForm):
    return form.filter(PersonalDataAccess.objects.all())


@staff_permission_required("cims.view_personaldataaccess")
@require_http_methods(["GET", "HEAD"])
def access_log(request: HttpRequest) -> HttpResponse:
    form = AccessLogFilterForm(request.GET)
    context: dict = {"form": form, "page": KeysetPage([]), "count": None, **_empty_links()}
    if form.is_valid():
        queryset = _access_log_rows(form)
        after, before = CursorForm(request.GET).cursors()
        paginator = KeysetPaginator(
            queryset.select_related("user"), key="created_at", descending=True, per_page=ACCESS_LOG_PER_PAGE
        )
        page = paginator.page(after=after, before=before)
        context.update(page=page, count=capped_count(queryset, COUNT_CAP), **page_links(request, page))
        context["export_query"] = _export_query(request)
    return render(request, "audit/access_log.html", context)


EXPORT_HEADERS = [
    (gettext_lazy("Time"), lambda row: timezone.localtime(row.created_at).strftime("%Y-%m-%d %H:%M:%S")),
    (gettext_lazy("User"), lambda row: row.user.username if row.user else ""),
    (gettext_lazy("Action"), lambda row: row.action),
    (gettext_lazy("Object type"), lambda row: row.object_type),
    (gettext_lazy("Object ID"), lambda row: row.object_id),
    (gettext_lazy("Object"), lambda row: row.object_label),
    (gettext_lazy("Field"), lambda row: row.field),
    (gettext_lazy("Rows"), lambda row: row.rows),
    (gettext_lazy("Details"), lambda row: row.detail),
    (gettext_lazy("Masked"), lambda row: "" if row.masked is None else ("yes" if row.masked else "no")),
    (gettext_lazy("IP address"), lambda row: row.ip_address or ""),
    (gettext_lazy("Sequence"), lambda row: "" if row.seq is None else row.seq),
]


def _download(filename: str, content_type: str, content) -> StreamingHttpResponse:
    return streaming_download_response(content, filename=filename, content_type=content_type)


@staff_permission_required("cims.export_personaldataaccess")
@require_http_methods(["GET"])
def access_log_export(request: HttpRequest) -> HttpResponse:
    """The filtered access log as CSV or XLSX, streamed; the export leaves its own row in the log."""
    fmt = export_format(request)
    if fmt is None:
        return bad_format(request)
    form = AccessLogFilterForm(request.GET)
    if not form.is_valid():
        return bad_filter(request, form)
    queryset = _access_log_rows(form)
    count = queryset.count()
    entry = log_personal_data_access(
        user=request.user,
        action=PersonalDataAccess.Action.EXPORT,
        object_type="cims.personaldataaccess",
        rows=count,
        detail=form.describe(),
        request=request,
    )
    # The rows counted, not the export's own row nor any written while the file streams.
    rows = (
        queryset.filter(pk__lt=entry.pk).select_related("user").order_by("-created_at", "-pk").iterator(chunk_size=2000)
    )
    headers = [str(title) for title, _value in EXPORT_HEADERS]
    content = exporting.stream(fmt, headers, ([value(row) for _title, value in EXPORT_HEADERS] for row in rows))
    filename = f"access-log-{timezone.localtime():%Y%m%d-%H%M}.{fmt}"
    return _download(filename, exporting.CONTENT_TYPES[fmt], content)


HISTORY_EXPORT_HEADERS = [
    (gettext_lazy("Time"), lambda entry: timezone.localtime(entry.when).strftime("%Y-%m-%d %H:%M:%S")),
    (gettext_lazy("Changed by"), lambda entry: entry.who.username if entry.who else ""),
    (gettext_lazy("Record type"), lambda entry: entry.model_label),
    (gettext_lazy("Object ID"), lambda entry: entry.object_id),
    (gettext_lazy("Record"), lambda entry: entry.label),
    (gettext_lazy("Change"), lambda entry: entry.action),
    (gettext_lazy("Reason"), lambda entry: entry.reason),
    (
        gettext_lazy("Changes"),
        lambda entry: "; ".join(f"{change['field']}: {change['old']} → {change['new']}" for change in entry.changes),
    ),
]


@staff_permission_required("cims.view_change_history")
@require_http_methods(["GET"])
def history_export(request: HttpRequest) -> HttpResponse:
    """The filtered change history as CSV or XLSX, masked as on the page, streamed; logged as an export."""
    fmt = export_format(request)
    if fmt is None:
        return bad_format(request)
    form = HistoryFilterForm(request.GET)
    if not form.is_valid():
        return bad_filter(request, form)
    query = form.query()
    log_personal_data_access(
        user=request.user,
        action=PersonalDataAccess.Action.EXPORT,
        object_type="history",
        rows=history_count(query),
        detail=form.describe(),
        masked=True,
        request=request,
    )
    user = request.user
    entries = iter_history(user=user, query=query)
    headers = [str(title) for title, _value in HISTORY_EXPORT_HEADERS]
    content = exporting.stream(fmt, headers, ([value(e) for _title, value in HISTORY_EXPORT_HEADERS] for e in entries))
    filename = f"change-history-{timezone.localtime():%Y%m%d-%H%M}.{fmt}"
    return _download(filename, exporting.CONTENT_TYPES[fmt], content)
