"""Scheduled reports: a subscription e-mails its report, with the subscriber's filters, as an HTML
summary (key figures and the top rows of each table) with the full XLSX attached.

Celery beat runs ``subscriptions_send_due`` every morning. A subscription is due once per period
(a day; an ISO week from Monday; a month from the 1st) counted from when it was made or last
sent, so a weekly one made on a Wednesday first goes out the next Monday, and a run missed (the
server was down at 07:00) is made up by the next. Each e-mail holds the report as its page would
have shown it at the end of yesterday: the range ends yesterday and has the default length for
the subscription's period. The report is computed as the subscriber — their permissions and scope
today, not when they subscribed — and the e-mail is logged like an export.
"""

from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.http import QueryDict
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from cims.models import PersonalDataAccess, log_personal_data_access
from reports import facts, periods
from reports.filters import ReportFilterForm
from reports.models import ReportSubscription
from reports.registry import REPORTS, to_xlsx

logger = logging.getLogger(__name__)

EMAIL_ROWS = 15  # rows of each table in the e-mail's body; the attachment has them all
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def period_start(day: datetime.date, frequency: str) -> datetime.date:
    """The first day of the subscription period ``day`` is in."""
    if frequency == ReportSubscription.Frequency.DAILY:
        return day
    if frequency == ReportSubscription.Frequency.WEEKLY:
        return periods.bucket_start(day, periods.WEEK)
    return periods.bucket_start(day, periods.MONTH)


def is_due(subscription: ReportSubscription, today: datetime.date) -> bool:
    """Not yet sent in the current period, counting its creation as a sending."""
    last = subscription.last_sent_at or subscription.created_at
    last_day = timezone.localtime(last, periods.zone()).date()
    return last_day < period_start(today, subscription.frequency)


def _filters(subscription: ReportSubscription, today: datetime.date):
    cls = REPORTS.get(subscription.report)
    data = QueryDict(subscription.query, mutable=True)
    for name in ("start", "end", "format"):
        data.pop(name, None)
    data["end"] = (today - datetime.timedelta(days=1)).isoformat()
    form = ReportFilterForm(data, user=subscription.user, default_period=cls.default_period)
    if not form.is_valid():
        return None
    return form.filters(subscription.query)


def subscription_send(subscription: ReportSubscription, *, today: datetime.date) -> str:
    """Compute and e-mail one subscription's report; "" when sent, else why not (stored on it)."""
    user = subscription.user
    cls = REPORTS.get(subscription.report)
    if cls is None:
        return _("This report no longer exists.")
    if not user.is_active or not cls.allowed(user):
        return _("You may no longer open this report.")
    if not user.email:
        return _("Your account has no e-mail address.")
    filters = _filters(subscription, today)
    if filters is None:
        return _("The saved filters are no longer valid; subscribe again.")
    report = cls()
    result = report.compute(filters)
    freshness = facts.freshness(cls.summaries) if cls.summaries else timezone.now()
    base = settings.SITE_URL.rstrip("/")
    link = f"{base}{reverse('reports:report', args=[report.key])}"
    if subscription.query:
        link += f"?{subscription.query}"
    context = {
        "report": report,
        "filters": filters,
        "result": result,
        "tables": [(table, table.rows[:EMAIL_ROWS], len(table.rows) > EMAIL_ROWS) for table in result.tables],
        "freshness": freshness,
        "link": link,
        "subscription": subscription,
        "site_name": settings.CIMS_SITE_NAME,
    }
    subject = _("%(report)s, %(start)s – %(end)s") % {
        "report": report.title,
        "start": filters.start.isoformat(),
        "end": filters.end.isoformat(),
    }
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("reports/email/subscription.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
    )
    message.attach_alternative(render_to_string("reports/email/subscription.html", context), "text/html")
    message.attach(
        f"report-{report.key}-{filters.end:%Y%m%d}.xlsx", to_xlsx(report, filters, result, freshness), XLSX_TYPE
    )
    # Logged first: if sending fails the caller's transaction takes the entry back with it.
    log_personal_data_access(
        user=user,
        action=PersonalDataAccess.Action.EXPORT,
        object_type="report",
        object_id=report.key,
        object_label=str(report.title),
        rows=result.row_count,
        detail=f"subscription={subscription.pk}&{subscription.query}"[:500],
        masked=True,
    )
    message.send(fail_silently=False)
    return ""


def subscriptions_send_due(now: datetime.datetime | None = None) -> int:
    """Send every due subscription once (a row lock keeps two runs from both sending); returns
    how many went. A failure is kept on the subscription (shown on the reports page) and tried
    again by the next run."""
    now = now or timezone.now()
    today = timezone.localtime(now, periods.zone()).date()
    candidates = list(
        ReportSubscription.objects.filter(is_active=True, user__is_active=True).values_list("pk", flat=True)
    )
    sent = 0
    for pk in candidates:
        with transaction.atomic():
            rows = ReportSubscription.objects.filter(pk=pk, is_active=True).select_related("user")
            if connection.features.has_select_for_update_skip_locked:
                rows = rows.select_for_update(skip_locked=True, of=("self",))
            subscription = rows.first()
            if subscription is None or not is_due(subscription, today):
                continue
            with translation.override(settings.LANGUAGE_CODE):
                try:
                    with transaction.atomic():  # a database error here leaves the lock's transaction usable
                        error = subscription_send(subscription, today=today)
                except Exception as exc:  # noqa: BLE001 - one failing report must not stop the others
                    # No traceback: an SMTP refusal quotes the recipient's address.
                    logger.error("report subscription %s failed: %s", subscription.pk, type(exc).__name__)
                    error = _("Sending failed (%(error)s); it will be tried again.") % {"error": type(exc).__name__}
            subscription.last_error = error[:300]
            fields = ["last_error"]
            if not error:
                subscription.last_sent_at = now
                fields.append("last_sent_at")
                sent += 1
            subscription.save(update_fields=fields)
    return sent
