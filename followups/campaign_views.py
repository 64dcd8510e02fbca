"""Marketing campaigns (市场营销活动): the list, create/edit, the campaign page, targets, member marks.

Campaigns are company-wide: whoever holds ``followups.view_campaign`` reads every one (through
``get_campaign_for``, 404 for a missing id); members resolve through ``get_member_for``, which
answers 404 for a customer outside the user's scope. Writes go through followups.campaigns. The
mark and remove buttons post with htmx and get the member's row back with the refreshed numbers
(an out-of-band swap); without script the same forms post and redirect.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import staff_permission_required
from customers.forms_list import ListChoices
from customers.models import Customer, CustomField
from customers.views import filter_customers
from followups import campaigns as services
from followups.forms_campaign import (
    CampaignFilterForm,
    CampaignForm,
    MemberFilterForm,
    MemberMarkForm,
    TargetFilterForm,
)
from followups.models import Campaign, CampaignMember

LIST_PAGE = 25
MEMBER_PAGE = 50


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true" and not request.headers.get("HX-History-Restore-Request")


def _error_messages(error: ValidationError) -> list[str]:
    if hasattr(error, "error_dict"):
        return [message for messages_ in error.message_dict.values() for message in messages_]
    return list(error.messages)


def get_campaign_for(user, pk: int) -> Campaign:
    """The campaign ``pk`` (404 if there is none): campaigns are company-wide, the view's permission decides."""
    return get_object_or_404(Campaign.objects.select_related("owner", "created_by"), pk=pk)


def get_member_for(user, pk: int) -> CampaignMember:
    """The member ``pk`` if ``user`` may see its customer, else 404 (another rep's customer stays unseen)."""
    members = CampaignMember.objects.filter(customer__in=Customer.objects.visible_to(user))
    return get_object_or_404(members.select_related("campaign", "customer", "customer__owner"), pk=pk)


def _may(user) -> dict[str, bool]:
    return {
        "may_edit": user.has_perm("followups.change_campaign"),
        "may_add_targets": user.has_perm("followups.add_campaignmember"),
        "may_mark": user.has_perm("followups.change_campaignmember"),
        "may_remove": user.has_perm("followups.delete_campaignmember"),
    }


# --- The list ------------------------------------------------------------------------------------


@staff_permission_required("followups.view_campaign")
@require_GET
def campaign_list(request: HttpRequest) -> HttpResponse:
    form = CampaignFilterForm(request.GET or None)
    queryset = Campaign.objects.select_related("owner")
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        if data["q"].strip():
            queryset = queryset.filter(name__icontains=data["q"].strip())
        if data["status"]:
            queryset = queryset.filter(status=data["status"])
        if data["kind"]:
            queryset = queryset.filter(kind=data["kind"])
    page = Paginator(queryset.order_by("-start_date", "-id"), LIST_PAGE).get_page(request.GET.get("page"))
    # The numbers of every campaign on the page: one grouped query (Count with filter=).
    page.object_list = services.attach_stats(list(page.object_list))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "may_add": request.user.has_perm("followups.add_campaign"),
    }
    return render(request, "followups/campaign_list.html", context)


# --- Create and edit -----------------------------------------------------------------------------


@staff_permission_required("followups.add_campaign")
@require_http_methods(["GET", "POST"])
def campaign_create(request: HttpRequest) -> HttpResponse:
    form = CampaignForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            campaign = services.campaign_create(by=request.user, **form.values())
        except ValidationError as error:
            form.add_error(None, _error_messages(error))
        else:
            messages.success(request, _("The campaign “%(name)s” was created.") % {"name": campaign.name})
            return redirect("followups:campaign_detail", pk=campaign.pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "followups/campaign_form.html", {"form": form}, status=status)


@staff_permission_required("followups.change_campaign")
@require_http_methods(["GET", "POST"])
def campaign_edit(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_campaign_for(request.user, pk)
    form = CampaignForm(request.POST or None, instance=campaign, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            services.campaign_update(campaign=campaign, by=request.user, **form.values())
        except ValidationError as error:
            form.add_error(None, _error_messages(error))
        else:
            messages.success(request, _("The campaign was saved."))
            return redirect("followups:campaign_detail", pk=pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "followups/campaign_form.html", {"form": form, "campaign": campaign}, status=status)


# --- The campaign page ---------------------------------------------------------------------------


@staff_permission_required("followups.view_campaign")
@require_GET
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_campaign_for(request.user, pk)
    form = MemberFilterForm(request.GET or None)
    members = services.visible_members(campaign, request.user).select_related("customer", "customer__owner")
    if form.is_bound and form.is_valid() and form.cleaned_data["status"]:
        members = members.filter(status=form.cleaned_data["status"])
    page = Paginator(members.order_by("id"), MEMBER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "campaign": campaign,
        "stats": services.campaign_stats(campaign),
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "closed": campaign.status in services.CLOSED_STATUSES,
        "statuses": CampaignMember.Status,
        **_may(request.user),
    }
    return render(request, "followups/campaign_detail.html", context)


# --- Targets -------------------------------------------------------------------------------------


@staff_permission_required("followups.add_campaignmember")
@require_http_methods(["GET", "POST"])
def campaign_add_targets(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the filter form, and (htmx, as the filters change) how many customers it would add; POST: add them."""
    campaign = get_campaign_for(request.user, pk)
    data = request.POST if request.method == "POST" else (request.GET or None)
    custom_fields = list(CustomField.objects.filter(is_active=True))
    form = TargetFilterForm(data, user=request.user, custom_fields=custom_fields, choices=ListChoices())
    closed = campaign.status in services.CLOSED_STATUSES
    preview = None
    if form.is_bound and form.is_valid() and not closed:
        customers, _data = filter_customers(Customer.objects.all(), form)
        if request.method == "POST":
            try:
                added = services.campaign_add_targets(campaign=campaign, customers=customers, by=request.user)
            except ValidationError as error:
                form.add_error(None, _error_messages(error))
            else:
                text = ngettext(
                    "%(count)d customer was added to the campaign.",
                    "%(count)d customers were added to the campaign.",
                    added,
                ) % {"count": added}
                messages.success(request, text)
                return redirect("followups:campaign_detail", pk=campaign.pk)
        else:
            preview = services.target_preview(campaign=campaign, customers=customers, by=request.user)
    context = {"campaign": campaign, "form": form, "preview": preview, "closed": closed}
    if _is_htmx(request) and request.method == "GET":
        response = render(request, "followups/_partials/campaign_target_preview.html", context)
    else:
        status = 422 if request.method == "POST" else 200
        response = render(request, "followups/campaign_targets.html", context, status=status)
    patch_vary_headers(response, ["HX-Request"])  # one URL, a fragment or the page
    return response


# --- Members -------------------------------------------------------------------------------------


def _member_response(request: HttpRequest, campaign: Campaign, member: CampaignMember | None, error: str = ""):
    """htmx: the member's row (nothing once removed) and the campaign's numbers, swapped out of band."""
    context = {
        "campaign": campaign,
        "member": member,
        "row_error": error,
        "stats": services.campaign_stats(campaign),
        "closed": campaign.status in services.CLOSED_STATUSES,
        "statuses": CampaignMember.Status,
        **_may(request.user),
    }
    return render(request, "followups/_partials/campaign_member_response.html", context)


@staff_permission_required("followups.change_campaignmember")
@require_POST
def campaign_member_update(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_member_for(request.user, pk)
    form = MemberMarkForm(request.POST)
    error = ""
    if not form.is_valid():
        error = " ".join(str(message) for messages_ in form.errors.values() for message in messages_)
    else:
        try:
            services.member_mark(
                member=member, status=form.cleaned_data["status"], by=request.user, note=form.cleaned_data["note"]
            )
        except ValidationError as exc:
            error = " ".join(_error_messages(exc))
        except PermissionDenied:  # the customer went out of sight between the lookup and the write
            error = _("You may not change this member.")
    if _is_htmx(request):
        return _member_response(request, member.campaign, member, error)
    if error:
        messages.error(request, error)
    else:
        messages.success(
            request,
            _("%(customer)s is now “%(status)s”.")
            % {"customer": member.customer.name, "status": member.get_status_display()},
        )
    return redirect("followups:campaign_detail", pk=member.campaign_id)


@staff_permission_required("followups.delete_campaignmember")
@require_POST
def campaign_member_remove(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_member_for(request.user, pk)
    campaign = member.campaign
    services.member_remove(member=member, by=request.user)
    if _is_htmx(request):
        return _member_response(request, campaign, None)
    messages.success(request, _("%(customer)s was taken out of the campaign.") % {"customer": member.customer.name})
    return redirect("followups:campaign_detail", pk=campaign.pk)
