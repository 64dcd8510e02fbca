"""The portal account: staff create it and send the invitation; the customer accepts it (first
password) and keeps their profile."""

from __future__ import annotations

import copy

from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from accounts.access import staff_permission_required
from accounts.forms_portal import InvitationPasswordForm, PortalAccountForm, PortalProfileForm
from accounts.models import PortalAccount
from accounts.portal import (
    PortalAccountError,
    editable_profile_fields,
    invitation_user,
    portal_account_activate,
    portal_account_create,
    portal_account_set_active,
    portal_invitation_send,
    portal_profile_save,
    portal_view,
)
from cims.normalize import format_phone
from customers.access import get_customer_for

ACCOUNT_TEMPLATE = "customers/portal_account.html"
# As Django's password reset: the token leaves the address bar (and any Referer header) at once;
# the page that asks for the password is on this placeholder and finds the token in the session.
INVITATION_SESSION_KEY = "_portal_invitation_token"
SET_PASSWORD_TOKEN = "set-password"  # noqa: S105 - a URL placeholder, not a secret


# --- Staff: the portal account of one customer ----------------------------------------------


def _account_page(request: HttpRequest, customer, account, *, form=None, link: str = "", emailed=None, status=200):
    context = {
        "customer": customer,
        "account": account,
        "form": form,
        "link": link,
        "emailed": emailed,
        "refused": customer.erased_at is not None,
    }
    return render(request, ACCOUNT_TEMPLATE, context, status=status)


@staff_permission_required("accounts.add_portalaccount")
@require_http_methods(["GET", "POST"])
def portal_account(request: HttpRequest, pk: int) -> HttpResponse:
    """Create a customer's portal account and invite them; later: its state, a new invitation
    link, deactivate / reactivate. Only for users who may edit the customer (404 / 403 as the
    archive)."""
    customer = get_customer_for(request.user, pk, edit=True)
    account = PortalAccount.objects.select_related("user", "created_by").filter(customer=customer).first()
    if request.method == "GET":
        form = None
        if account is None and customer.erased_at is None:
            form = PortalAccountForm(initial={"username": customer.code.lower(), "email": customer.email})
        return _account_page(request, customer, account, form=form)

    action = request.POST.get("action", "")
    try:
        if account is None:
            if action != "create":
                raise PortalAccountError(_("Unknown action."))
            form = PortalAccountForm(request.POST)
            if not form.is_valid():
                return _account_page(request, customer, None, form=form, status=422)
            account = portal_account_create(
                customer=customer,
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                by=request.user,
            )
            link, emailed = portal_invitation_send(account=account, by=request.user, request=request)
            messages.success(
                request, _("The portal account %(username)s was created.") % {"username": account.user.username}
            )
            return _account_page(request, customer, account, link=link, emailed=emailed)
        if not request.user.has_perm("accounts.change_portalaccount"):
            raise PermissionDenied("accounts.change_portalaccount")
        if action == "invite":
            link, emailed = portal_invitation_send(account=account, by=request.user, request=request)
            return _account_page(request, customer, account, link=link, emailed=emailed)
        if action in ("deactivate", "reactivate"):
            portal_account_set_active(account=account, active=action == "reactivate", by=request.user)
            if action == "deactivate":
                messages.success(request, _("The portal account was deactivated; the customer can no longer log in."))
            else:
                messages.success(request, _("The portal account was reactivated."))
            return redirect("customers:portal_account", pk=customer.pk)
        raise PortalAccountError(_("Unknown action."))
    except PortalAccountError as error:
        messages.error(request, str(error))
        form = PortalAccountForm(request.POST) if account is None and customer.erased_at is None else None
        return _account_page(request, customer, account, form=form, status=409)


# --- Public: the invitation link -------------------------------------------------------------


@sensitive_post_parameters()
@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """The customer's first password (or a new one, from a link staff sent again). An unknown,
    used, expired or staff member's link gets a friendly page saying so."""
    if token != SET_PASSWORD_TOKEN:
        if invitation_user(uidb64, token) is None:
            return render(request, "accounts/portal_invitation.html", {"valid": False})
        request.session[INVITATION_SESSION_KEY] = token
        return redirect("portal:invitation", uidb64=uidb64, token=SET_PASSWORD_TOKEN)
    user = invitation_user(uidb64, request.session.get(INVITATION_SESSION_KEY, ""))
    if user is None:
        return render(request, "accounts/portal_invitation.html", {"valid": False})
    form = InvitationPasswordForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        portal_account_activate(user=user, password=form.cleaned_data["new_password1"])
        del request.session[INVITATION_SESSION_KEY]
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("Your password is set. Welcome to the customer portal."))
        return redirect("accounts:portal_home")
    return render(request, "accounts/portal_invitation.html", {"valid": True, "form": form, "portal_user": user})


# --- Portal: the customer's profile -----------------------------------------------------------


def _profile_rows(customer) -> list[tuple[str, str]]:
    """What we hold about the customer, as they may read it: their own data, not masked."""
    rows = [
        (_("Customer code"), customer.code),
        (_("Name"), customer.name),
        (_("Kind"), customer.get_kind_display()),
    ]
    if customer.company:
        rows.append((_("Company"), customer.company))
    rows += [
        (_("Phone"), format_phone(customer.phone)),
        (_("Mobile"), format_phone(customer.mobile)),
        (_("Fax"), format_phone(customer.fax)),
        (_("E-mail"), customer.email),
        (_("Province"), customer.province.name if customer.province_id else ""),
        (_("City"), customer.city),
        (_("Address"), customer.address),
    ]
    return rows


@portal_view
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    customer = request.portal_customer
    # The form works on a copy: a rejected value must not show up in the "as we hold it" column.
    form = PortalProfileForm(request.POST or None, instance=copy.copy(customer))
    if request.method == "POST" and form.is_valid():
        changed = portal_profile_save(customer=customer, changes=form.changes(), by=request.user)
        if changed:
            messages.success(request, _("Your details were saved. Thank you for keeping them up to date."))
        else:
            messages.info(request, _("Nothing was changed."))
        return redirect("portal:profile")
    context = {
        "customer": customer,
        "rows": _profile_rows(customer),
        "form": form,
        "editable": editable_profile_fields(),
    }
    return render(request, "accounts/portal_profile.html", context, status=422 if form.errors else 200)
