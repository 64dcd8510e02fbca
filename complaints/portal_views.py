"""The portal's ticket pages: a customer's own tickets only, resolved from the logged-in user.

Every ticket is looked up as ``request.portal_customer.tickets`` by number, so another customer's
number is a 404; files only through the customer-visible ones of that ticket. The rules (what may
be filed, reopened, rated, which events and files the customer sees) are complaints.services'.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.portal import portal_view
from complaints import services
from complaints.forms_portal import PortalTicketForm, RatingForm, ReopenForm, ReplyForm
from complaints.models import Ticket, TicketEvent
from complaints.services import (
    TicketError,
    customer_attachments,
    customer_events,
    ticket_attachment_bytes,
    ticket_comment,
    ticket_file,
    ticket_for_rating_token,
    ticket_transition,
)
from customers.attachments import download_response

PAGE_SIZE = 20
S = Ticket.Status


def _ticket(request: HttpRequest, number: str) -> Ticket:
    return get_object_or_404(request.portal_customer.tickets.select_related("category", "contact"), number=number)


@portal_view
@require_GET
def ticket_list(request: HttpRequest) -> HttpResponse:
    tickets = request.portal_customer.tickets.select_related("category").order_by("-id")
    page = Paginator(tickets, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "complaints/portal/list.html", {"page": page})


@portal_view
@require_http_methods(["GET", "POST"])
def ticket_create(request: HttpRequest) -> HttpResponse:
    customer = request.portal_customer
    form = PortalTicketForm(request.POST or None, request.FILES or None, customer=customer)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            ticket = ticket_file(
                customer=customer,
                by=request.user,
                kind=data["kind"],
                category=data["category"],
                # The customer does not choose how urgent it is: the service desk does.
                severity=Ticket.Severity.MEDIUM,
                channel=Ticket.Channel.PORTAL,
                subject=data["subject"],
                description=data["description"],
                contact=data.get("contact"),
                by_customer=True,
                files=data["files"],
            )
        except TicketError as error:
            form.add_error(None, str(error))
        else:
            messages.success(
                request, _("Your request %(number)s was received. We will get back to you.") % {"number": ticket.number}
            )
            return redirect("portal:ticket_detail", number=ticket.number)
    status = 422 if form.errors else 200
    return render(request, "complaints/portal/create.html", {"form": form}, status=status)


def _who(event: TicketEvent) -> str:
    if event.by_customer:
        return _("You")
    # Staff appear as the service desk, not by name (the portal is not a staff directory).
    return _("Customer service")


def _detail(request: HttpRequest, ticket: Ticket, *, status: int = 200, **forms) -> HttpResponse:
    events = list(customer_events(ticket))
    files = list(customer_attachments(ticket))
    files_by_event: dict[int | None, list] = {}
    for attachment in files:
        files_by_event.setdefault(attachment.event_id, []).append(attachment)
    timeline = [{"event": event, "who": _who(event), "files": files_by_event.pop(event.pk, [])} for event in events]
    loose_files = [attachment for group in files_by_event.values() for attachment in group]
    is_open = ticket.status in Ticket.OPEN_STATUSES
    context = {
        "ticket": ticket,
        "timeline": timeline,
        "loose_files": loose_files,
        "reply_form": forms.get("reply_form") or (ReplyForm() if ticket.status != S.CLOSED else None),
        "reopen_form": forms.get("reopen_form") or (ReopenForm() if ticket.status == S.RESOLVED else None),
        "rate_form": forms.get("rate_form")
        or (RatingForm() if ticket.status in (S.RESOLVED, S.CLOSED) and ticket.rating is None else None),
        "is_open": is_open,
    }
    return render(request, "complaints/portal/detail.html", context, status=status)


@portal_view
@require_GET
def ticket_detail(request: HttpRequest, number: str) -> HttpResponse:
    return _detail(request, _ticket(request, number))


@portal_view
@require_POST
def ticket_reply(request: HttpRequest, number: str) -> HttpResponse:
    ticket = _ticket(request, number)
    form = ReplyForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            ticket_comment(
                ticket=ticket,
                body=form.cleaned_data["body"],
                by=request.user,
                by_customer=True,
                files=form.cleaned_data["files"],
            )
        except TicketError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Your reply was sent."))
            return redirect("portal:ticket_detail", number=ticket.number)
    return _detail(request, ticket, reply_form=form, status=422)


@portal_view
@require_POST
def ticket_reopen(request: HttpRequest, number: str) -> HttpResponse:
    ticket = _ticket(request, number)
    form = ReopenForm(request.POST)
    if form.is_valid():
        try:
            ticket_transition(
                ticket=ticket, to=S.IN_PROGRESS, by=request.user, by_customer=True, comment=form.cleaned_data["comment"]
            )
        except TicketError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("The request was reopened; we are on it again."))
            return redirect("portal:ticket_detail", number=ticket.number)
    return _detail(request, ticket, reopen_form=form, status=422)


@portal_view
@require_POST
def ticket_rate(request: HttpRequest, number: str) -> HttpResponse:
    ticket = _ticket(request, number)
    form = RatingForm(request.POST)
    if form.is_valid():
        try:
            _rate(ticket, form, by=request.user)
        except TicketError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Thank you for your rating."))
            return redirect("portal:ticket_detail", number=ticket.number)
    return _detail(request, ticket, rate_form=form, status=422)


def _rate(ticket: Ticket, form: RatingForm, *, by) -> Ticket:
    # The service by its module: this module's ticket_rate is the view.
    return services.ticket_rate(
        ticket=ticket, rating=form.cleaned_data["rating"], comment=form.cleaned_data["comment"], by=by, by_customer=True
    )


@portal_view
@require_GET
def ticket_attachment(request: HttpRequest, number: str, pk: int) -> HttpResponse:
    ticket = _ticket(request, number)
    attachment = get_object_or_404(customer_attachments(ticket), pk=pk)
    data = ticket_attachment_bytes(attachment)
    return download_response(data, filename=attachment.filename, content_type=attachment.content_type)


@require_http_methods(["GET", "POST"])
def rate_link(request: HttpRequest, token: str) -> HttpResponse:
    """Public: the rating link e-mailed on resolution. Shows only the ticket's number and subject;
    rates once; a damaged, expired or used link gets a friendly page."""
    ticket = ticket_for_rating_token(token)
    if ticket is not None and (ticket.customer.erased_at is not None or ticket.customer.deleted_at is not None):
        ticket = None
    context = {"ticket": ticket, "token": token}
    if ticket is None:
        return render(request, "complaints/portal/rate_link.html", {**context, "state": "invalid"})
    if ticket.rating is not None:
        return render(request, "complaints/portal/rate_link.html", {**context, "state": "rated"})
    if ticket.status not in (S.RESOLVED, S.CLOSED):
        return render(request, "complaints/portal/rate_link.html", {**context, "state": "reopened"})
    form = RatingForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            _rate(ticket, form, by=None)
        except TicketError as error:
            form.add_error(None, str(error))
        else:
            return render(request, "complaints/portal/rate_link.html", {**context, "state": "thanks"})
    status = 422 if form.errors else 200
    return render(
        request, "complaints/portal/rate_link.html", {**context, "state": "form", "form": form}, status=status
    )
