"""Staff pages of the year-end lottery: the events, a draft's rules and prizes, the steps that move an
event along 草稿 → 已公示 → 已开奖 → 已公布, and the winners (masked unless the user may see details).

Every write goes through lottery.services; a step the event's state no longer allows comes back as
LotteryRefused (already logged by the service) and is shown as an error message.
"""

from __future__ import annotations

import io

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db.models import Count, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from openpyxl import Workbook
from openpyxl.styles import Font

from accounts.access import staff_permission_required
from cims.models import PersonalDataAccess, log_personal_data_access
from customers.attachments import download_response
from customers.exporting import XML_ILLEGAL, neutralise
from customers.models import Customer
from lottery import display, eligibility, services
from lottery.algorithm import ALGORITHM
from lottery.forms import EventForm, PublicValueForm, tier_formset
from lottery.models import LotteryEvent, LotteryLog

S = LotteryEvent.Status
LOG_SHOWN = 50
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Who did what on the detail page, read with the event.
_PEOPLE = ("published_by", "public_value_by", "drawn_by", "announced_by", "created_by")


def _may_manage(user) -> bool:
    return user.has_perm("lottery.change_lotteryevent") or user.has_perm("lottery.publish_lotteryevent")


# --- The list -------------------------------------------------------------------------------------


@staff_permission_required("lottery.view_lotteryevent")
@require_GET
def event_list(request: HttpRequest) -> HttpResponse:
    events = LotteryEvent.objects.annotate(prize_count=Sum("tiers__quantity"), tier_count=Count("tiers")).order_by(
        "-year", "-id"
    )
    return render(request, "lottery/list.html", {"events": list(events)})


# --- Create and edit a draft ----------------------------------------------------------------------


def _save(request: HttpRequest, event: LotteryEvent, form: EventForm, formset) -> LotteryEvent | None:
    """Save a valid form through the service: the event, or None with the problem put on the form."""
    try:
        return services.event_save(
            event=event,
            by=request.user,
            fields=form.fields_dict(),
            levels=form.levels_chosen(),
            weights=form.weights(),
            tiers=formset.tiers(),
        )
    except ValidationError as exc:
        # What the form could not see: the model's own checks (or a rival saving the same name).
        for message in exc.messages:
            form.add_error(None, message)
    except IntegrityError:
        form.add_error("name", _("There is already a lottery of this name in that year."))
    return None


def _form_page(request: HttpRequest, event: LotteryEvent | None, form: EventForm, formset) -> HttpResponse:
    return render(request, "lottery/form.html", {"event": event, "form": form, "formset": formset})


@staff_permission_required("lottery.add_lotteryevent")
@require_http_methods(["GET", "POST"])
def event_create(request: HttpRequest) -> HttpResponse:
    data = request.POST if request.method == "POST" else None
    form = EventForm(data)
    formset = tier_formset(data)
    if data is not None and form.is_valid() and formset.is_valid():
        event = _save(request, LotteryEvent(), form, formset)
        if event is not None:
            messages.success(request, _("The lottery “%(event)s” was created as a draft.") % {"event": event})
            return redirect("lottery:detail", pk=event.pk)
    return _form_page(request, None, form, formset)


@staff_permission_required("lottery.change_lotteryevent")
@require_http_methods(["GET", "POST"])
def event_edit(request: HttpRequest, pk: int) -> HttpResponse:
    event = get_object_or_404(LotteryEvent, pk=pk)
    if not event.is_draft:
        refused = services.refuse_change(event=event, by=request.user, what=_("edit page"))
        messages.error(request, str(refused))
        return redirect("lottery:detail", pk=event.pk)
    data = request.POST if request.method == "POST" else None
    form = EventForm(data, event=event)
    formset = tier_formset(data, event=event)
    if data is not None and form.is_valid() and formset.is_valid():
        try:
            saved = _save(request, event, form, formset)
        except services.LotteryRefused as exc:  # published while this form was open
            messages.error(request, str(exc))
            return redirect("lottery:detail", pk=event.pk)
        if saved is not None:
            messages.success(request, _("The lottery was saved."))
            return redirect("lottery:detail", pk=event.pk)
    return _form_page(request, event, form, formset)


# --- The detail page ------------------------------------------------------------------------------


def _steps(event: LotteryEvent) -> list[dict]:
    order = [S.DRAFT, S.PUBLISHED, S.DRAWN, S.ANNOUNCED]
    current = order.index(event.status)
    return [
        {
            "value": status.value,
            "label": status.label,
            "state": "done" if i < current else "current" if i == current else "todo",
            "number": i + 1,
        }
        for i, status in enumerate(order)
    ]


def _rules(event: LotteryEvent, levels: list) -> list[tuple[str, str]]:
    """The eligibility rules in words, as a list of (rule, value)."""
    status_labels = dict(Customer.Status.choices)
    statuses = "、".join(str(status_labels.get(s, s)) for s in event.statuses) or _("none chosen")
    rules = [
        (_("Lifecycle statuses"), statuses),
        (_("Customer levels"), "、".join(str(level) for level in levels) or _("Any level")),
        (
            _("Minimum purchases in the year"),
            _("¥%(amount)s net (refunds deducted), dated in %(year)s")
            % {"amount": event.min_amount, "year": event.year}
            if event.min_amount
            else _("No minimum"),
        ),
        (
            _("Contract in force in the year"),
            _("Required: a contract in force at some time in %(year)s") % {"year": event.year}
            if event.require_active_contract
            else _("Not required"),
        ),
        (
            _("Customer since before"),
            event.created_before.strftime("%Y-%m-%d") if event.created_before else _("No limit"),
        ),
        (_("Our own staff"), _("Left out") if event.exclude_employees else _("May enter")),
        (_("Always left out"), _("Erased customers and customers in the recycle bin (deleted or merged)")),
        (_("Wins"), _("At most one prize per customer")),
    ]
    return rules


def _live_entries(event: LotteryEvent) -> dict:
    """What publishing now would freeze: eligible customers and their total weight (one query)."""
    weights = eligibility.level_weights(event)
    by_level = eligibility.eligible_customers(event).values("level_id").annotate(n=Count("id")).order_by()
    count = total = 0
    for row in by_level:
        count += row["n"]
        total += row["n"] * weights.get(row["level_id"], 1)
    return {"count": count, "total_weight": total}


def _detail(request: HttpRequest, event: LotteryEvent, *, public_value_form=None, status: int = 200) -> HttpResponse:
    user = request.user
    levels = list(event.levels.order_by("sort_order", "name"))
    weights = list(event.weights.select_related("level").order_by("level__sort_order", "level__name"))
    tiers = sorted(event.tiers.all(), key=lambda t: (t.draw_order, t.name))
    context = {
        "event": event,
        "steps": _steps(event),
        "rules": _rules(event, levels),
        "weights": weights,
        "tiers": tiers,
        "prize_count": sum(t.quantity for t in tiers),
        "algorithm": ALGORITHM,
        "log_shown": LOG_SHOWN,
        "may_manage": _may_manage(user),
        "may_edit": event.is_draft and user.has_perm("lottery.change_lotteryevent"),
        "may_delete": event.is_draft and user.has_perm("lottery.delete_lotteryevent"),
        "may_publish": event.is_draft and user.has_perm("lottery.publish_lotteryevent"),
        "may_enter_public_value": (
            event.status == S.PUBLISHED and not event.public_value_at and user.has_perm("lottery.draw_lotteryevent")
        ),
        "may_draw": event.status == S.PUBLISHED and user.has_perm("lottery.draw_lotteryevent"),
        "may_show": not event.is_draft and user.has_perm("lottery.draw_lotteryevent"),
        "may_announce": event.status == S.DRAWN and user.has_perm("lottery.announce_lotteryevent"),
    }
    if event.is_draft:
        context["live"] = _live_entries(event)
    if context["may_enter_public_value"]:
        context["public_value_form"] = public_value_form or PublicValueForm()
    if context["may_manage"]:
        context["log"] = list(LotteryLog.objects.filter(event=event).select_related("user")[:LOG_SHOWN])
    if event.is_drawn:
        context["winner_count"] = event.winners.count()
    return render(request, "lottery/detail.html", context, status=status)


@staff_permission_required("lottery.view_lotteryevent")
@require_GET
def event_detail(request: HttpRequest, pk: int) -> HttpResponse:
    event = get_object_or_404(LotteryEvent.objects.select_related(*_PEOPLE), pk=pk)
    return _detail(request, event)


# --- The steps ------------------------------------------------------------------------------------


@staff_permission_required("lottery.delete_lotteryevent")
@require_POST
def event_delete(request: HttpRequest, pk: int) -> HttpResponse:
    event = get_object_or_404(LotteryEvent, pk=pk)
    label = str(event)
    try:
        services.event_delete(event=event, by=request.user)
    except services.LotteryRefused as exc:
        messages.error(request, str(exc))
        return redirect("lottery:detail", pk=pk)
    messages.success(request, _("The draft “%(event)s” was deleted.") % {"event": label})
    return redirect("lottery:list")


@staff_permission_required("lottery.publish_lotteryevent")
@require_POST
def event_publish(request: HttpRequest, pk: int) -> HttpResponse:
    event = get_object_or_404(LotteryEvent, pk=pk)
    try:
        services.event_publish(event=event, by=request.user)
    except services.LotteryRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("Published: %(count)s entries are frozen, and the list hash and commitment are public.")
            % {"count": event.entry_count},
        )
    return redirect("lottery:detail", pk=pk)


@staff_permission_required("lottery.draw_lotteryevent")
@require_POST
def event_public_value(request: HttpRequest, pk: int) -> HttpResponse:
    event = get_object_or_404(LotteryEvent.objects.select_related(*_PEOPLE), pk=pk)
    form = PublicValueForm(request.POST)
    if not form.is_valid():
        if event.status != S.PUBLISHED or event.public_value_at:
            # Nothing to correct on this page: the step is no longer open.
            messages.error(request, _("The public value can be entered once, after publishing and before the draw."))
            return redirect("lottery:detail", pk=pk)
        messages.error(request, _("The public value was not saved. Please correct it below."))
        return _detail(request, event, public_value_form=form, status=400)
    try:
        services.event_set_public_value(event=event, by=request.user, value=form.cleaned_data["value"])
    except services.LotteryRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("The public value was recorded. It goes into the draw's seed."))
    return redirect("lottery:detail", pk=pk)


@staff_permission_required("lottery.announce_lotteryevent")
@require_POST
def event_announce(request: HttpRequest, pk: int) -> HttpResponse:
    event = get_object_or_404(LotteryEvent, pk=pk)
    try:
        services.event_announce(event=event, by=request.user)
    except services.LotteryRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, _("Announced: the winners see their prizes in the portal, and their sales reps are told.")
        )
    return redirect("lottery:detail", pk=pk)


# --- The winners ----------------------------------------------------------------------------------


def _drawn_event(pk: int) -> LotteryEvent:
    event = get_object_or_404(LotteryEvent, pk=pk)
    if not event.is_drawn:
        raise Http404("not drawn yet")
    return event


@staff_permission_required("lottery.view_lotteryevent")
@require_GET
def winner_list(request: HttpRequest, pk: int) -> HttpResponse:
    event = _drawn_event(pk)
    full = display.sees_winner_details(request.user)
    rows = display.winner_rows(event, full=full)
    ids = {row["customer_id"] for row in rows}
    visible = set(Customer.objects.visible_to(request.user).filter(pk__in=ids).values_list("pk", flat=True))
    for row in rows:
        row["linked"] = row["customer_id"] in visible
    return render(
        request,
        "lottery/winners.html",
        {"event": event, "rows": rows, "full": full, "may_export": request.user.has_perm("lottery.export_winners")},
    )


def _cell(value) -> object:
    if value is None:
        return ""
    if isinstance(value, int):
        return value
    return neutralise(XML_ILLEGAL.sub("", str(value)))


def winners_xlsx(event: LotteryEvent, rows: list[dict]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = _("Winners")[:31]
    sheet.append([_cell(str(event))])
    sheet.append([_cell(_("Exported at")), _cell(timezone.localtime().strftime("%Y-%m-%d %H:%M"))])
    sheet.append([])
    headers = [
        _("Draw number"),
        _("Tier"),
        _("Prize"),
        _("Position in tier"),
        _("Entry id"),
        _("Customer code"),
        _("Name"),
        _("Phone"),
        _("Owner"),
        _("Owner notified at"),
    ]
    sheet.append([_cell(h) for h in headers])
    for cell in sheet[4]:
        cell.font = Font(bold=True)
    sheet["A1"].font = Font(bold=True, size=14)
    for row in rows:
        notified = timezone.localtime(row["notified_at"]).strftime("%Y-%m-%d %H:%M") if row["notified_at"] else ""
        sheet.append(
            [
                _cell(row[key])
                for key in ("rank", "tier", "prize", "position", "entry_id", "code", "name", "phone", "owner")
            ]
            + [_cell(notified)]
        )
    sheet.freeze_panes = "A5"
    for letter, width in zip("ABCDEFGHIJ", (8, 12, 24, 8, 20, 16, 14, 18, 12, 18), strict=True):
        sheet.column_dimensions[letter].width = width
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@staff_permission_required("lottery.export_winners")
@require_GET
def winner_export(request: HttpRequest, pk: int) -> HttpResponse:
    event = _drawn_event(pk)
    rows = display.winner_rows(event, full=True)
    content = winners_xlsx(event, rows)
    log_personal_data_access(
        user=request.user,
        action=PersonalDataAccess.Action.EXPORT,
        object_type="lottery.event",
        object_id=event.pk,
        object_label=str(event)[:64],
        rows=len(rows),
        masked=False,
        request=request,
    )
    services.log(event=event, action=LotteryLog.Action.EXPORTED, by=request.user, detail=f"rows={len(rows)}")
    # Personal data in full: the one download response (no-store, nosniff), as for customer files.
    filename = f"lottery-{event.pk}-winners-{timezone.localtime():%Y%m%d-%H%M}.xlsx"
    return download_response(content, filename=filename, content_type=XLSX_TYPE)
