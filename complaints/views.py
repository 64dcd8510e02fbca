"""The complaint desk: my tickets, the team queue, a ticket's page and its actions (staff).

Every ticket number is resolved through ``_ticket_for``: 404 unless the ticket is among
``Ticket.objects.visible_to(user)`` (the tickets of the customers the user may see), so a sales rep
never reaches another rep's customer's ticket, whatever the URL. Writes go to complaints.services.
"""

from __future__ import annotations

import datetime
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import staff_permission_required
from cims.models import PersonalDataAccess, log_personal_data_access
from cims.pagination import COUNT_CAP, KeysetPaginator, capped_count, page_links
from complaints import forms, services
from complaints.models import Ticket, TicketEvent
from customers.access import get_customer_for
from customers.attachments import download_response

S = Ticket.Status
PER_PAGE = 30
CUSTOMER_TAB_ROWS = 20
SLA_BADGES = {
    "ok": ("text-bg-light border", "clock"),
    "due_soon": ("text-bg-warning", "hourglass-split"),
    "breached": ("text-bg-danger", "exclamation-octagon"),
}


def _ticket_for(user, number: str, *, queryset=None) -> Ticket:
    queryset = queryset if queryset is not None else Ticket.objects.all()
    return get_object_or_404(queryset.visible_to(user), number=(number or "").upper())


def _detail(ticket: Ticket) -> str:
    return reverse("complaints:detail", args=[ticket.number])


def _sla(ticket: Ticket, now: datetime.datetime) -> None:
    ticket.sla = services.sla_state(ticket, now)
    ticket.sla_css, ticket.sla_icon = SLA_BADGES.get(ticket.sla, ("", ""))


# --- The queue -----------------------------------------------------------------------------------


def _search(queryset, text: str):
    """A ticket number (exact), a customer code (exact) or the start of a customer's name."""
    from customers.models import Customer

    if not text:
        return queryset
    if forms.NUMBER_RE.match(text):
        return queryset.filter(number=text.upper())
    if forms.CUSTOMER_CODE_RE.match(text):
        return queryset.filter(customer__in=Customer.all_objects.filter(code=text.upper()).values("pk"))
    return queryset.filter(customer__in=Customer.all_objects.all().search_name(text).values("pk"))


def filter_tickets(user, data: dict, *, now: datetime.datetime, base=None):
    """The tickets of the queue for ``data`` (a TicketFilterForm's valid values), and how they are
    paged: open tickets by due time (the partial ``ticket_open_sla`` index serves the order and the
    SLA filters), every other choice newest first (by id: the primary key, or ``ticket_status``)."""
    queryset = Ticket.objects.visible_to(user) if base is None else base
    if data.get("tab", forms.MINE) == forms.MINE:
        queryset = queryset.filter(assignee=user)
    status = data.get("status") or forms.OPEN
    sla = data.get("sla")
    if sla:
        status = status if status in Ticket.OPEN_STATUSES else forms.OPEN
    if status == forms.OPEN:
        queryset = queryset.filter(status__in=Ticket.OPEN_STATUSES)
    elif status != forms.ALL:
        queryset = queryset.filter(status=status)
    warning = datetime.timedelta(hours=settings.SLA_WARNING_HOURS)
    if sla == forms.BREACHED:
        queryset = queryset.filter(sla_due_at__lte=now)
    elif sla == forms.DUE_SOON:
        queryset = queryset.filter(sla_due_at__gt=now, sla_due_at__lte=now + warning)
    for name in ("category", "severity", "kind", "channel"):
        if data.get(name):
            queryset = queryset.filter(**{name: data[name]})
    if data.get("customer"):
        queryset = queryset.filter(customer_id=data["customer"])
    queryset = _search(queryset, data.get("q") or "")
    by_due = status == forms.OPEN or status in Ticket.OPEN_STATUSES
    return queryset, ("sla_due_at", False) if by_due else ("pk", True)


def _count(user, data: dict, queryset, *, now: datetime.datetime):
    """The queue's capped count; for a rep, over a UNION ALL of the disjoint parts of their scope
    (TicketQuerySet.visible_parts) — the page query itself stays as it is, it stops early."""
    parts = Ticket.objects.visible_parts(user)
    if parts is None:
        return capped_count(queryset, COUNT_CAP)
    branches = [filter_tickets(user, data, now=now, base=part)[0].order_by().values("pk") for part in parts]
    return capped_count(branches[0].union(*branches[1:], all=True), COUNT_CAP)


@staff_permission_required("complaints.view_ticket")
@require_GET
def ticket_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    params = request.GET.copy()
    form = forms.TicketFilterForm(params)
    data = form.valid_data()
    if not data.get("tab"):
        # Service staff who take a category's tickets start on their own; everyone else (managers,
        # sales reps) on the queue they may see.
        data["tab"] = forms.MINE if user.ticket_categories.exists() else forms.TEAM
    now = timezone.now()
    queryset, (key, descending) = filter_tickets(user, data, now=now)
    rows = queryset.select_related("customer", "category", "assignee")
    page = KeysetPaginator(rows, key=key, descending=descending, per_page=PER_PAGE, salt=data["tab"]).page(
        after=request.GET.get("after"), before=request.GET.get("before")
    )
    for ticket in page.object_list:
        _sla(ticket, now)
    tab_params = {k: v for k, v in params.items() if k not in ("tab", "after", "before")}
    context = {
        "form": form,
        "page": page,
        "count": _count(user, data, queryset, now=now),
        "tab": data["tab"],
        "tabs": [
            (forms.MINE, _("My tickets"), urlencode({**tab_params, "tab": forms.MINE})),
            (
                forms.TEAM,
                _("Team queue") if user.has_perm("complaints.view_all_tickets") else _("My customers' tickets"),
                urlencode({**tab_params, "tab": forms.TEAM}),
            ),
        ],
        "ordered_by_due": key == "sla_due_at",
        **page_links(request, page),
    }
    return render(request, "complaints/list.html", context)


# --- Filing --------------------------------------------------------------------------------------


def _parse_pk(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None


@staff_permission_required("complaints.add_ticket")
@require_http_methods(["GET", "POST"])
def ticket_create(request: HttpRequest) -> HttpResponse:
    from customers.models import Customer

    customer_pk = _parse_pk(request.GET.get("customer"))
    if customer_pk is None:
        # First the customer, by code: no list of a million customers to choose from.
        lookup = forms.CustomerLookupForm(request.GET if "code" in request.GET else None)
        if lookup.is_valid():
            found = Customer.objects.visible_to(request.user).filter(code=lookup.cleaned_data["code"]).first()
            if found is not None:
                return redirect(f"{reverse('complaints:create')}?customer={found.pk}")
            lookup.add_error("code", _("No customer you may see has this code."))
        return render(request, "complaints/create_pick.html", {"lookup": lookup})

    customer = get_customer_for(request.user, customer_pk)
    if request.method == "POST":
        form = forms.TicketForm(request.POST, request.FILES, customer=customer)
        if form.is_valid():
            try:
                ticket = services.ticket_file(customer=customer, by=request.user, **form.values())
            except services.TicketError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, _("Ticket %(number)s was filed.") % {"number": ticket.number})
                return redirect(_detail(ticket))
    else:
        form = forms.TicketForm(customer=customer)
    return render(request, "complaints/create.html", {"form": form, "customer": customer})


# --- A ticket's page -----------------------------------------------------------------------------


def _detail_context(request: HttpRequest, ticket: Ticket, **forms_given) -> dict:
    user = request.user
    events = list(ticket.events.select_related("actor").order_by("created_at", "id"))
    files = list(ticket.attachments.select_related("uploaded_by").order_by("uploaded_at", "id"))
    by_event: dict[int | None, list] = {}
    for attachment in files:
        by_event.setdefault(attachment.event_id, []).append(attachment)
    for event in events:
        event.files = by_event.pop(event.pk, [])
    _sla(ticket, timezone.now())
    may_change = user.has_perm("complaints.change_ticket")
    may_assign = user.has_perm("complaints.assign_ticket") and ticket.status != S.CLOSED
    return {
        "ticket": ticket,
        "events": events,
        "files": files,
        "orphan_files": [f for files_left in by_event.values() for f in files_left],
        "may_change": may_change,
        "may_comment": user.has_perm("complaints.add_ticketevent"),
        "steps": services.steps_for(ticket) if may_change else [],
        "reopen_status": S.IN_PROGRESS if ticket.status == S.RESOLVED else "",
        "comment_form": forms_given.get("comment_form") or forms.CommentForm(),
        "assign_form": (forms_given.get("assign_form") or forms.AssignForm()) if may_assign else None,
        "EventKind": TicketEvent.Kind,
    }


def _ticket_rows():
    return Ticket.objects.select_related("customer", "category", "assignee", "created_by", "contact", "opportunity")


@staff_permission_required("complaints.view_ticket")
@require_GET
def ticket_detail(request: HttpRequest, number: str) -> HttpResponse:
    ticket = _ticket_for(request.user, number, queryset=_ticket_rows())
    return render(request, "complaints/detail.html", _detail_context(request, ticket))


def _errors_to_messages(request: HttpRequest, form) -> None:
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)


@staff_permission_required("complaints.change_ticket")
@require_POST
def ticket_transition(request: HttpRequest, number: str) -> HttpResponse:
    ticket = _ticket_for(request.user, number)
    form = forms.TransitionForm(request.POST, ticket=ticket)
    if not form.is_valid():
        _errors_to_messages(request, form)
        return redirect(_detail(ticket))
    try:
        ticket = services.ticket_transition(
            ticket=ticket, to=form.cleaned_data["to"], by=request.user, comment=form.cleaned_data["comment"]
        )
    except services.TicketError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            _("Ticket %(number)s is now “%(status)s”.")
            % {"number": ticket.number, "status": ticket.get_status_display()},
        )
    return redirect(_detail(ticket))


@staff_permission_required("complaints.assign_ticket")
@require_POST
def ticket_assign(request: HttpRequest, number: str) -> HttpResponse:
    ticket = _ticket_for(request.user, number)
    form = forms.AssignForm(request.POST)
    if not form.is_valid():
        _errors_to_messages(request, form)
        return redirect(_detail(ticket))
    try:
        ticket = services.ticket_assign(
            ticket=ticket, to=form.cleaned_data["to"], by=request.user, comment=form.cleaned_data["comment"]
        )
    except services.TicketError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            _("Ticket %(number)s is assigned to %(name)s.")
            % {"number": ticket.number, "name": ticket.assignee.display_name},
        )
    return redirect(_detail(ticket))


@staff_permission_required("complaints.add_ticketevent")
@require_POST
def ticket_comment(request: HttpRequest, number: str) -> HttpResponse:
    ticket = _ticket_for(request.user, number, queryset=_ticket_rows())
    form = forms.CommentForm(request.POST, request.FILES)
    if form.is_valid():
        internal = form.cleaned_data["internal"]
        try:
            services.ticket_comment(
                ticket=ticket,
                body=form.cleaned_data["body"],
                by=request.user,
                internal=internal,
                files=form.cleaned_data["files"],
            )
        except services.TicketError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("The note was added.") if internal else _("The reply was sent."))
            return redirect(_detail(ticket) + "#timeline")
    # Shown again with what was typed and why it was refused (400: nothing was written).
    context = _detail_context(request, ticket, comment_form=form)
    return render(request, "complaints/detail.html", context, status=400)


@staff_permission_required("complaints.view_ticketattachment")
@require_GET
def ticket_attachment(request: HttpRequest, number: str, pk: int) -> HttpResponse:
    ticket = _ticket_for(request.user, number, queryset=Ticket.objects.select_related("customer"))
    attachment = get_object_or_404(ticket.attachments, pk=pk)
    data = services.ticket_attachment_bytes(attachment)
    log_personal_data_access(
        user=request.user,
        action=PersonalDataAccess.Action.EXPORT,
        object_type="complaints.ticketattachment",
        object_id=attachment.pk,
        object_label=f"{ticket.number} {ticket.customer.code}",
        # The file name is left out: it may carry a person's name.
        detail=f"{attachment.content_type}, {attachment.size} B, SHA-256 {attachment.sha256[:16]}",
        request=request,
    )
    return download_response(data, filename=attachment.filename, content_type=attachment.content_type)


# --- The 360 page's Tickets tab ------------------------------------------------------------------


@staff_permission_required("complaints.view_ticket")
@require_GET
def customer_tickets(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_customer_for(request.user, pk)
    rows = list(
        Ticket.objects.visible_to(request.user)
        .filter(customer=customer)
        .select_related("category", "assignee")
        .order_by("-id")[: CUSTOMER_TAB_ROWS + 1]
    )
    now = timezone.now()
    for ticket in rows:
        _sla(ticket, now)
    query = urlencode({"tab": forms.TEAM, "status": forms.ALL, "customer": customer.pk})
    context = {
        "customer": customer,
        "tickets": rows[:CUSTOMER_TAB_ROWS],
        "more": len(rows) > CUSTOMER_TAB_ROWS,
        "desk_url": f"{reverse('complaints:list')}?{query}",
        "may_file": request.user.has_perm("complaints.add_ticket"),
    }
    return render(request, "complaints/_partials/customer_tickets.html", context)


__all__ = [
    "customer_tickets",
    "filter_tickets",
    "ticket_assign",
    "ticket_attachment",
    "ticket_comment",
    "ticket_create",
    "ticket_detail",
    "ticket_list",
    "ticket_transition",
]
