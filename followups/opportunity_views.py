"""Sales opportunities (商机): the pipeline board, the list, and create/edit/move/win/lose.

Every opportunity id goes through ``get_opportunity_for`` (404 outside the user's customer scope,
403 where the user may only read the customer); writes go through followups.opportunities. The
board's move buttons post with htmx and get the refreshed board (cards and column totals) back;
without script the same forms post and redirect.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import staff_permission_required
from customers.access import can_edit, get_customer_for
from customers.forms_product import add_line_row, line_formset
from followups import opportunities as services
from followups.forms_opportunity import LoseForm, MoveForm, OpportunityFilterForm, OpportunityForm, win_forms
from followups.models import Opportunity

LIST_PAGE = 25
LINES_PREFIX = "lines"


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _error_messages(error: ValidationError) -> list[str]:
    if hasattr(error, "error_dict"):
        return [message for messages_ in error.message_dict.values() for message in messages_]
    return list(error.messages)


def get_opportunity_for(user, pk: int, *, edit: bool = False) -> Opportunity:
    """The opportunity ``pk`` if ``user`` may see its customer (else 404); with ``edit``, 403 if read-only."""
    opportunity = get_object_or_404(Opportunity.objects.visible_to(user).select_related("customer", "owner"), pk=pk)
    if edit and not can_edit(user, opportunity.customer):
        raise PermissionDenied("read-only customer")
    return opportunity


def _rep_filter(request: HttpRequest, *, with_dates: bool = False) -> tuple[OpportunityFilterForm, object]:
    everyone = services.sees_everyones(request.user)
    form = OpportunityFilterForm(request.GET or None, show_rep=everyone, with_dates=with_dates)
    rep = None
    if form.is_bound and form.is_valid() and everyone:
        rep = form.cleaned_data.get("rep")
    return form, rep


# --- The board and the list ----------------------------------------------------------------------


def _pk_url(name: str):
    """``pk -> reverse(name, args=[pk])`` with the reversal done once: a board renders five links
    on each of up to 120 cards, and reversing each one was a fifth of its rendering time."""
    marker = 987654321
    prefix, suffix = reverse(name, args=[marker]).split(str(marker))
    return lambda pk: f"{prefix}{pk}{suffix}"


def _board_context(request: HttpRequest, rep) -> dict:
    columns = services.pipeline_board(user=request.user, rep=rep)
    links = {
        "edit": _pk_url("followups:opportunity_edit"),
        "move": _pk_url("followups:opportunity_move"),
        "win": _pk_url("followups:opportunity_win"),
        "lose": _pk_url("followups:opportunity_lose"),
    }
    customer_url = _pk_url("customers:detail")
    for column in columns:
        for card in column.cards:
            card.links = {key: make(card.pk) for key, make in links.items()}
            card.links["customer"] = customer_url(card.customer_id)
    return {
        "columns": columns,
        "totals": services.pipeline_totals(columns),
        "rep": rep,
        # The stage buttons of every card, their labels translated once for the whole board.
        "open_stages": [{"value": stage.value, "label": str(stage.label)} for stage in services.OPEN_STAGES],
        # Translated once for the whole board rather than once per card.
        "move_to": _("Move to"),
        "won_label": _("Won"),
        "lost_label": pgettext("opportunity stage", "Lost"),
        "limit": services.BOARD_LIMIT,
    }


@staff_permission_required("followups.view_opportunity")
@require_GET
def pipeline(request: HttpRequest) -> HttpResponse:
    form, rep = _rep_filter(request)
    context = _board_context(request, rep) | {"form": form, "everyone": services.sees_everyones(request.user)}
    template = "followups/_partials/pipeline_board.html" if _is_htmx(request) else "followups/pipeline.html"
    return render(request, template, context)


@staff_permission_required("followups.view_opportunity")
@require_GET
def opportunity_list(request: HttpRequest) -> HttpResponse:
    everyone = services.sees_everyones(request.user)
    form = OpportunityFilterForm(request.GET or None, show_rep=everyone)
    queryset = Opportunity.objects.visible_to(request.user).select_related("customer", "owner")
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        if data["stage"]:
            queryset = queryset.filter(stage=data["stage"])
        if data["close_from"]:
            queryset = queryset.filter(expected_close_date__gte=data["close_from"])
        if data["close_to"]:
            queryset = queryset.filter(expected_close_date__lte=data["close_to"])
        if data.get("rep"):
            queryset = queryset.filter(owner=data["rep"])
    page = Paginator(queryset.order_by("-created_at", "-id"), LIST_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "everyone": everyone, "query": query.urlencode()}
    return render(request, "followups/opportunity_list.html", context)


# --- Create and edit -----------------------------------------------------------------------------


def _forms_with_lines(request: HttpRequest, opportunity: Opportunity | None):
    """The opportunity form and its product lines; ``adding_row`` when "add a row" was pressed."""
    saved_lines = list(opportunity.lines.select_related("product")) if opportunity is not None else []
    data = None
    adding_row = False
    if request.method == "POST":
        adding_row = "add_line" in request.POST
        data = add_line_row(request.POST, LINES_PREFIX) if adding_row else request.POST
    formset = line_formset(data, prefix=LINES_PREFIX, lines=saved_lines, extra=1 if saved_lines else 3)
    form = OpportunityForm(data, instance=opportunity, user=request.user, with_lines=formset.has_lines())
    return form, formset, adding_row


@staff_permission_required("followups.add_opportunity")
@require_http_methods(["GET", "POST"])
def opportunity_create(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_customer_for(request.user, pk, edit=True)
    form, formset, adding_row = _forms_with_lines(request, None)
    if request.method == "POST" and not adding_row and form.is_valid() and formset.is_valid():
        try:
            opportunity = services.opportunity_create(
                customer=customer, by=request.user, lines=formset.lines(), **form.values()
            )
        except ValidationError as error:
            form.add_error(None, _error_messages(error))
        else:
            messages.success(request, _("The opportunity “%(title)s” was opened.") % {"title": opportunity.title})
            return redirect("followups:pipeline")
    status = 422 if request.method == "POST" and not adding_row else 200
    context = {"customer": customer, "form": form, "formset": formset}
    return render(request, "followups/opportunity_form.html", context, status=status)


@staff_permission_required("followups.change_opportunity")
@require_http_methods(["GET", "POST"])
def opportunity_edit(request: HttpRequest, pk: int) -> HttpResponse:
    opportunity = get_opportunity_for(request.user, pk, edit=True)
    form, formset, adding_row = _forms_with_lines(request, opportunity)
    if opportunity.is_closed:
        form.add_error(None, _("A closed opportunity cannot be changed."))
    elif request.method == "POST" and not adding_row and form.is_valid() and formset.is_valid():
        try:
            services.opportunity_update(
                opportunity=opportunity, by=request.user, lines=formset.lines(), **form.values()
            )
        except ValidationError as error:
            form.add_error(None, _error_messages(error))
        else:
            messages.success(request, _("The opportunity was saved."))
            return redirect("followups:pipeline")
    status = 422 if request.method == "POST" and not adding_row else 200
    context = {"customer": opportunity.customer, "form": form, "formset": formset, "opportunity": opportunity}
    return render(request, "followups/opportunity_form.html", context, status=status)


# --- Move, win, lose -----------------------------------------------------------------------------


@staff_permission_required("followups.change_opportunity")
@require_POST
def opportunity_move(request: HttpRequest, pk: int) -> HttpResponse:
    """A move button: to another open stage. htmx gets the refreshed board (with the same rep filter)."""
    opportunity = get_opportunity_for(request.user, pk, edit=True)
    form = MoveForm(request.POST)
    if not form.is_valid():
        error_text = _("Choose a stage to move the opportunity to.")
    else:
        try:
            services.opportunity_move(opportunity=opportunity, stage=form.cleaned_data["stage"], by=request.user)
        except ValidationError as error:
            error_text = " ".join(_error_messages(error))
        else:
            error_text = ""
    if _is_htmx(request):
        rep = None
        if services.sees_everyones(request.user):
            filter_form = OpportunityFilterForm(request.POST, show_rep=True, with_dates=False)
            rep = filter_form.cleaned_data.get("rep") if filter_form.is_valid() else None
        context = _board_context(request, rep) | {"board_error": error_text}
        return render(request, "followups/_partials/pipeline_board.html", context)
    if error_text:
        messages.error(request, error_text)
    else:
        messages.success(
            request, _("The opportunity is now at “%(stage)s”.") % {"stage": opportunity.get_stage_display()}
        )
    return redirect("followups:pipeline")


@staff_permission_required("followups.change_opportunity")
@require_http_methods(["GET", "POST"])
def opportunity_win(request: HttpRequest, pk: int) -> HttpResponse:
    opportunity = get_opportunity_for(request.user, pk, edit=True)
    data = request.POST if request.method == "POST" else None
    lines = list(opportunity.lines.select_related("product"))
    win_form, contract_form, transaction_form = win_forms(
        data,
        opportunity,
        contract_initial=services.contract_initial(opportunity),
        transaction_initial=services.transaction_initial(opportunity),
        with_lines=bool(lines),
    )
    errors: list[str] = []
    if opportunity.is_closed:
        errors.append(_("This opportunity is closed (%(stage)s).") % {"stage": opportunity.get_stage_display()})
    elif request.method == "POST" and win_form.is_valid():
        create_contract = win_form.cleaned_data["create_contract"]
        create_transaction = win_form.cleaned_data["create_transaction"]
        # Only the forms the user ticked must be valid; an unticked one is ignored.
        ready = (not create_contract or contract_form.is_valid()) and (
            not create_transaction or transaction_form.is_valid()
        )
        if ready:
            try:
                result = services.opportunity_win(
                    opportunity=opportunity,
                    by=request.user,
                    create_contract=create_contract,
                    contract=contract_form.cleaned_data if create_contract else None,
                    create_transaction=create_transaction,
                    transaction_data=transaction_form.cleaned_data if create_transaction else None,
                )
            except ValidationError as error:
                errors += _error_messages(error)
            else:
                text = _("The opportunity “%(title)s” was won.") % {"title": opportunity.title}
                if result.status_change is not None:
                    text += " " + _("The customer is now “%(status)s”.") % {
                        "status": opportunity.customer.get_status_display()
                    }
                messages.success(request, text)
                return redirect("customers:detail", pk=opportunity.customer_id)
        else:
            errors.append(_("Correct the contract or transaction below."))
    context = {
        "opportunity": opportunity,
        "customer": opportunity.customer,
        "win_form": win_form,
        "contract_form": contract_form,
        "transaction_form": transaction_form,
        "errors": errors,
        "may_add_contract": request.user.has_perm("customers.add_contract"),
        "may_add_transaction": request.user.has_perm("customers.add_transaction"),
        "lines": lines,
    }
    status = 422 if request.method == "POST" else 200
    return render(request, "followups/opportunity_win.html", context, status=status)


@staff_permission_required("followups.change_opportunity")
@require_http_methods(["GET", "POST"])
def opportunity_lose(request: HttpRequest, pk: int) -> HttpResponse:
    opportunity = get_opportunity_for(request.user, pk, edit=True)
    form = LoseForm(request.POST or None)
    if opportunity.is_closed:
        form.add_error(None, _("This opportunity is closed (%(stage)s).") % {"stage": opportunity.get_stage_display()})
    elif request.method == "POST" and form.is_valid():
        try:
            services.opportunity_lose(opportunity=opportunity, by=request.user, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            form.add_error(None, _error_messages(error))
        else:
            messages.success(request, _("The opportunity “%(title)s” was marked lost.") % {"title": opportunity.title})
            return redirect(reverse("followups:pipeline"))
    status = 422 if request.method == "POST" else 200
    context = {"opportunity": opportunity, "customer": opportunity.customer, "form": form}
    return render(request, "followups/opportunity_lose.html", context, status=status)
