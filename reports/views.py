from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.access import staff_required
from accounts.roles import ROLE_LABELS
from cims.models import Heartbeat, PersonalDataAccess, log_personal_data_access
from cims.navigation import visible_items
from customers.models import Product
from followups.models import Task
from followups.renewals import expiring_contracts_for
from reports import dashboard as key_figures
from reports import facts
from reports.filters import ReportFilterForm
from reports.forms import SubscriptionForm
from reports.models import ReportSubscription
from reports.registry import REPORTS, Report, reports_for, to_csv, to_xlsx

OVERDUE_SHOWN = 5
EXPIRING_SHOWN = 5
LOW_STOCK_SHOWN = 5
EXPORT_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}


@staff_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """The staff home page: the user's roles and modules, their overdue tasks, expiring contracts
    and low stock, and — for those who may open reports — the key figures of their role."""
    context = {
        "roles": [ROLE_LABELS.get(name, name) for name in request.user.groups.values_list("name", flat=True)],
        "modules": [item for item in visible_items(request.user) if item["url"] != request.path],
        "heartbeat": Heartbeat.objects.filter(name="celery").first(),
    }
    if request.user.has_perm("followups.view_task"):
        overdue = Task.objects.open().filter(assignee=request.user, due_at__lt=timezone.now())
        context["overdue_count"] = overdue.count()
        if context["overdue_count"]:
            context["overdue_tasks"] = list(overdue.select_related("customer").order_by("due_at", "pk")[:OVERDUE_SHOWN])
    if request.user.has_perm("customers.view_contract"):
        expiring = expiring_contracts_for(request.user)
        context["expiring_count"] = expiring.count()
        if context["expiring_count"]:
            context["expiring_contracts"] = list(
                expiring.select_related("customer")
                .only("id", "number", "title", "end_date", "customer__id", "customer__code", "customer__name")
                .order_by("end_date", "pk")[:EXPIRING_SHOWN]
            )
            context["renewal_days"] = settings.CONTRACT_RENEWAL_DAYS
    if request.user.has_perm("customers.view_product"):
        low_stock = Product.objects.low_stock()
        context["low_stock_count"] = low_stock.count()
        if context["low_stock_count"]:
            context["low_stock_products"] = list(
                low_stock.only("id", "code", "name", "unit", "stock_quantity", "low_stock_threshold").order_by(
                    "stock_quantity", "code"
                )[:LOW_STOCK_SHOWN]
            )
    if request.user.has_perm("reports.view_report"):
        context.update(key_figures.context_for(request))
    return render(request, "reports/dashboard.html", context)


@staff_required
@require_GET
def dashboard_figures(request: HttpRequest) -> HttpResponse:
    """The dashboard's key figures and charts for ``?period=`` (the period switch swaps them in)."""
    if not request.user.has_perm("reports.view_report"):
        raise PermissionDenied
    return render(
        request, "reports/_partials/dashboard_figures.html", key_figures.context_for(request, freshness=False)
    )


def _report_class(request: HttpRequest, key: str) -> type[Report]:
    cls = REPORTS.get(key)
    if cls is None:
        raise Http404
    if not cls.allowed(request.user):
        raise PermissionDenied
    return cls


def _filter_query(request: HttpRequest) -> str:
    """The report's filters as a query string (no export format, no empty values)."""
    data = QueryDict(mutable=True)
    for name, values in request.GET.lists():
        if name != "format":
            data.setlist(name, [value for value in values if value])
    return data.urlencode()


@staff_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("reports.view_report"):
        raise PermissionDenied
    freshness = facts.freshness()
    subscriptions = list(ReportSubscription.objects.filter(user=request.user).order_by("report", "pk"))
    for subscription in subscriptions:
        cls = REPORTS.get(subscription.report)
        subscription.title = cls.title if cls else subscription.report
    return render(
        request,
        "reports/index.html",
        {
            "reports": reports_for(request.user),
            "subscriptions": subscriptions,
            "freshness": freshness,
            "freshness_pending": freshness is None,
            "refresh_minutes": settings.REPORT_REFRESH_MINUTES,
        },
    )


@staff_required
@require_GET
def report(request: HttpRequest, key: str) -> HttpResponse:
    """A report's page: filters, key figures, charts above their tables; ``?format=xlsx|csv``
    downloads the same figures (logged as an export)."""
    cls = _report_class(request, key)
    instance = cls()
    query = _filter_query(request)
    # Always bound: no filters at all is valid and means the report's defaults.
    form = ReportFilterForm(request.GET, user=request.user, default_period=cls.default_period)
    fmt = request.GET.get("format", "")
    if fmt and fmt not in EXPORT_TYPES:
        messages.error(request, _("Unknown export format."))
        fmt = ""
    result = filters = None
    freshness = facts.freshness(cls.summaries) if cls.summaries else timezone.now()
    if form.is_valid():
        filters = form.filters(query)
        result = instance.compute(filters)
        if fmt:
            return _export(request, instance, filters, result, fmt, freshness)
    elif fmt:
        messages.error(request, _("Correct the filters before exporting."))
    return render(
        request,
        "reports/report.html",
        {
            "report": instance,
            "form": form,
            "filters": filters,
            "result": result,
            "query": query,
            "freshness": freshness,
            "freshness_pending": bool(cls.summaries) and freshness is None,
            "refresh_minutes": settings.REPORT_REFRESH_MINUTES,
            "subscription_form": SubscriptionForm(),
            "may_subscribe": request.user.has_perm("reports.add_reportsubscription"),
        },
    )


def _export(request, instance: Report, filters, result, fmt: str, freshness) -> HttpResponse:
    content = (to_xlsx if fmt == "xlsx" else to_csv)(instance, filters, result, freshness)
    log_personal_data_access(
        user=request.user,
        action=PersonalDataAccess.Action.EXPORT,
        object_type="report",
        object_id=instance.key,
        object_label=str(instance.title),
        rows=result.row_count,
        # The filters as validated and re-encoded (never raw input: a NUL would fail the insert).
        detail=f"format={fmt}&{filters.query}"[:500],
        masked=True,
        request=request,
    )
    response = HttpResponse(content, content_type=EXPORT_TYPES[fmt])
    filename = f"report-{instance.key}-{timezone.localtime():%Y%m%d-%H%M}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@staff_required
@require_POST
def refresh(request: HttpRequest) -> HttpResponse:
    """Queue a refresh of the summary tables now (managers), rather than wait for the schedule."""
    if not may_refresh(request.user):
        raise PermissionDenied
    from reports.tasks import refresh_facts

    latest = facts.freshness()
    if latest is not None and (timezone.now() - latest).total_seconds() < REFRESH_GAP_SECONDS:
        messages.info(request, _("The figures were refreshed less than a minute ago."))
    else:
        refresh_facts.delay()
        messages.success(request, _("The figures are being refreshed; reload the page in a minute."))
    return redirect(safe_next(request, "reports:index"))


REFRESH_GAP_SECONDS = 60


def may_refresh(user) -> bool:
    """Managers and administrators (every report and every customer), not analysts: a refresh
    rebuilds the summary tables, a minute of database work at a million customers."""
    return user.has_perm("reports.view_all_reports") and user.has_perm("customers.view_all_customers")


def safe_next(request: HttpRequest, default: str) -> str:
    """The POSTed ``next`` when it stays on this site, else the URL named ``default``."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return target
    return reverse(default)


@staff_required
@require_POST
def subscribe(request: HttpRequest, key: str) -> HttpResponse:
    """Subscribe to a report with the filters on screen (dates become relative: the last N days)."""
    cls = _report_class(request, key)
    if not request.user.has_perm("reports.add_reportsubscription"):
        raise PermissionDenied
    form = SubscriptionForm(request.POST)
    query = request.POST.get("query", "")
    check = ReportFilterForm(QueryDict(query), user=request.user, default_period=cls.default_period)
    if not form.is_valid() or not check.is_valid() or len(query) > 500:
        messages.error(request, _("The subscription could not be saved: check the filters and the frequency."))
        return redirect(f"{_report_url(key)}?{query}")
    if not request.user.email:
        messages.error(request, _("Your account has no e-mail address to send the report to."))
        return redirect(f"{_report_url(key)}?{query}")
    ReportSubscription.objects.create(
        user=request.user, report=key, query=_relative_query(query), frequency=form.cleaned_data["frequency"]
    )
    messages.success(
        request, _("Subscribed: the report will be e-mailed to %(email)s.") % {"email": request.user.email}
    )
    return redirect("reports:index")


def _relative_query(query: str) -> str:
    """A subscription keeps the filters but not fixed dates: each e-mail covers its own latest range."""
    data = QueryDict(query, mutable=True)
    data.pop("start", None)
    data.pop("end", None)
    return urlencode(sorted((k, v) for k, values in data.lists() for v in values if v))


def _report_url(key: str) -> str:
    return reverse("reports:report", args=[key])


@staff_required
@require_POST
def subscription_delete(request: HttpRequest, pk: int) -> HttpResponse:
    # Only one's own subscriptions: another user's id is simply not found.
    subscription = get_object_or_404(ReportSubscription, pk=pk, user=request.user)
    subscription.delete()
    messages.success(request, _("Unsubscribed."))
    return redirect("reports:index")
