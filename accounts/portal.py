"""The portal's one rule: a portal user reaches only their own customer's data.

Every portal view is wrapped in ``portal_view``: it refuses staff and anonymous users as
``portal_required`` does and sets ``request.portal_customer`` from the logged-in user's
PortalAccount. Views look everything up through that customer (``ticket = customer.tickets.get(
number=...)``) — never from a customer id in the URL or a form — so another customer's ticket
number, file or record is a 404.
"""

from __future__ import annotations

import logging
from functools import wraps

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django.utils.translation import gettext as _

from accounts import roles
from accounts.access import View, portal_required

logger = logging.getLogger(__name__)


def customer_for(user):
    """The live customer whose portal account ``user`` is, or None (no account, or the customer was
    deleted or erased)."""
    from customers.models import Customer

    if not getattr(user, "is_authenticated", False):
        return None
    return Customer.objects.filter(portal_account__user=user, erased_at__isnull=True).first()


def portal_view(view: View) -> View:
    @portal_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        customer = customer_for(request.user)
        if customer is None:
            raise Http404("no customer for this portal account")
        request.portal_customer = customer
        return view(request, *args, **kwargs)

    return wrapper


# --- Portal accounts and their invitation ------------------------------------------------------
#
# The invitation is Django's password-reset token (default_token_generator): it hashes the user's
# password and last login, so it stops working the moment a first password is set — one-time by
# construction — and expires after PASSWORD_RESET_TIMEOUT. Sending it again makes a new link; an
# older link stays valid only until a password is set.

# Profile fields a portal customer may ever be allowed to correct. settings.PORTAL_EDITABLE_FIELDS
# picks among them; a name outside this list (name, id_number, owner, level, status …) is ignored.
PORTAL_CORRECTABLE_FIELDS = ("phone", "mobile", "fax", "email", "province", "city", "address")
PORTAL_CHANGE_REASON = "portal correction"


class PortalAccountError(Exception):
    """str(e) is a message for the staff user, translated."""


def editable_profile_fields() -> list[str]:
    wanted = set(settings.PORTAL_EDITABLE_FIELDS)
    return [name for name in PORTAL_CORRECTABLE_FIELDS if name in wanted]


def invitation_path(user) -> str:
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("portal:invitation", args=[uidb64, default_token_generator.make_token(user)])


def invitation_link(user, request=None) -> str:
    """The absolute invitation link: SITE_URL when set, else the address the staff user is on."""
    path = invitation_path(user)
    base = settings.SITE_URL.rstrip("/")
    if base:
        return base + path
    return request.build_absolute_uri(path) if request is not None else path


def _refuse_gone(customer) -> None:
    if customer.erased_at is not None:
        raise PortalAccountError(_("This customer's personal data was erased; they cannot have a portal account."))
    if customer.deleted_at is not None:
        raise PortalAccountError(_("This customer is in the recycle bin; restore them first."))


def portal_account_create(*, customer, username: str, email: str, by):
    """An active portal user (group "customer", no usable password yet) and its PortalAccount, all
    or nothing. PortalAccountError when the customer is gone, already has one, or the name is taken."""
    from accounts.models import PortalAccount, User
    from customers.models import Customer

    try:
        with transaction.atomic():
            # Locked: two staff members pressing "create" at once make one account, not two users.
            customer = Customer.all_objects.select_for_update().get(pk=customer.pk)
            _refuse_gone(customer)
            if PortalAccount.objects.filter(customer=customer).exists():
                raise PortalAccountError(_("This customer already has a portal account."))
            if User.objects.filter(username__iexact=username).exists():
                raise PortalAccountError(_("The username “%(name)s” is taken.") % {"name": username})
            user = User(username=username, email=email, name=customer.name[:64], is_active=True)
            user.set_unusable_password()
            user._history_user = by
            user.save()
            user.groups.add(Group.objects.get(name=roles.CUSTOMER))
            account = PortalAccount(user=user, customer=customer, created_by=by)
            account._history_user = by
            account.save()
    except IntegrityError:  # the same username created at the same moment by someone else
        raise PortalAccountError(_("The username “%(name)s” is taken.") % {"name": username}) from None
    return account


def portal_invitation_send(*, account, by, request=None) -> tuple[str, bool]:
    """A fresh invitation link for ``account``, recorded (invited_at) and e-mailed to the user's
    address. Returns (link to show the staff user, e-mailed).

    The link logs in as the customer, so staff see it only when it could not be e-mailed and only
    before the customer has set a password (a first invitation to pass on by hand; the showing is
    written to the access log). After activation the link sets a new password — the way back for a
    customer who forgot it — and goes to the customer's address only, never to the staff user:
    otherwise a rep could take over the account and read the customer's data unmasked and unlogged.
    The e-mail is in the site's language (Chinese by default) whatever language the staff user
    works in."""
    _refuse_gone(account.customer)
    if not account.user.is_active:
        raise PortalAccountError(_("This portal account is deactivated; reactivate it first."))
    activated = account.activated_at is not None
    email = account.user.email
    if activated and not email:
        raise PortalAccountError(
            _("The account has no e-mail address: a link to set a new password is only ever sent by e-mail.")
        )
    link = invitation_link(account.user, request)
    account.invited_at = timezone.now()
    account._history_user = by
    account.save(update_fields=["invited_at"])
    if not email:
        return _shown(link, account=account, by=by, request=request), False
    days = settings.PASSWORD_RESET_TIMEOUT // (24 * 3600)
    values = {"name": account.customer.name, "username": account.user.username, "days": days, "link": link}
    with translation.override(settings.LANGUAGE_CODE):
        if account.activated_at is not None:
            subject = _("Set a new password for the customer portal")
            body = (
                _(
                    "Hello %(name)s,\n\n"
                    "open this link to set a new password for your customer portal account %(username)s "
                    "(it works once, for %(days)s days):\n\n%(link)s\n\n"
                    "If you did not ask for this, you can ignore this message: your password stays as it is.\n"
                )
                % values
            )
        else:
            subject = _("Your customer portal account")
            body = (
                _(
                    "Hello %(name)s,\n\n"
                    "an account in our customer portal has been created for you. Your username is %(username)s.\n"
                    "Open this link to set your password (it works once, for %(days)s days):\n\n%(link)s\n\n"
                    "In the portal you can see and correct your details, file and follow service requests and "
                    "complaints, and manage your personal data.\n"
                )
                % values
            )
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [email], fail_silently=False)
    except Exception as exc:  # noqa: BLE001 - a first invitation is shown to the staff user instead
        # No traceback: an SMTP refusal quotes the recipient's address.
        logger.error("invitation e-mail for portal user %s failed: %s", account.user_id, type(exc).__name__)
        if activated:
            raise PortalAccountError(_("The e-mail could not be sent; try again later.")) from None
        return _shown(link, account=account, by=by, request=request), False
    return "", True


def _shown(link: str, *, account, by, request) -> str:
    """A first invitation link handed to the staff user: written to the personal-data access log."""
    from cims.models import PersonalDataAccess, log_personal_data_access

    log_personal_data_access(
        user=by,
        action=PersonalDataAccess.Action.REVEAL,
        object_type="accounts.portalaccount",
        object_id=account.pk,
        object_label=account.customer.code,
        field="invitation_link",
        request=request,
    )
    return link


def portal_account_set_active(*, account, active: bool, by) -> None:
    """Deactivate (the customer can no longer log in; open sessions end: an inactive user's session
    is not loaded) or reactivate."""
    if active:
        _refuse_gone(account.customer)
    user = account.user
    user.is_active = active
    user._history_user = by
    user.save(update_fields=["is_active"])


def invitation_user(uidb64: str, token: str):
    """The portal user an invitation link is for, if the link is valid: a well-formed uid of an
    active user with a portal account of a live customer, never a staff member, and a token that
    is still good (not used, not expired). None otherwise."""
    from accounts.models import User

    try:
        pk = int(urlsafe_base64_decode(uidb64).decode())
    except (TypeError, ValueError, OverflowError, UnicodeDecodeError):
        return None
    if not 0 < pk < 2**63:  # a forged uid beyond the id column's range is no one
        return None
    user = User.objects.filter(pk=pk, is_active=True, portal_account__isnull=False).first()
    if user is None or not user.is_portal_customer or customer_for(user) is None:
        return None
    if not default_token_generator.check_token(user, token):
        return None
    return user


def portal_account_activate(*, user, password: str) -> None:
    """The first password, from the invitation: sets it and records when (the link dies with it)."""
    from accounts.models import PortalAccount

    with transaction.atomic():
        account = PortalAccount.objects.select_for_update().get(user=user)
        user.set_password(password)
        user._history_user = user
        user.save(update_fields=["password"])
        if account.activated_at is None:
            account.activated_at = timezone.now()
            account._history_user = user
            account.save(update_fields=["activated_at"])


def portal_profile_save(*, customer, changes: dict, by):
    """The customer's own corrections: only the fields allowed (others are dropped here too), on the
    row as it is now (locked, so a staff edit in between is not overwritten), through
    customers.services.customer_save with the reason "portal correction". Returns the names changed."""
    from customers.models import Customer
    from customers.services import customer_save

    allowed = set(editable_profile_fields())
    with transaction.atomic():
        current = Customer.objects.select_for_update().get(pk=customer.pk, erased_at__isnull=True)
        changed = []
        for name, value in changes.items():
            if name not in allowed:
                continue
            field = Customer._meta.get_field(name)
            old = getattr(current, field.attname if field.is_relation else name)
            new = value.pk if field.is_relation and value is not None else value
            if (old or None) != (new or None):
                setattr(current, name, value)
                changed.append(name)
        if changed:
            current._change_reason = PORTAL_CHANGE_REASON
            customer_save(customer=current, by=by)
        if "email" in changed and getattr(by, "pk", None) is not None:
            # The login's address is where a link to set a new password goes: not the old one.
            from accounts.models import PortalAccount

            login = PortalAccount.objects.select_related("user").get(customer=current, user=by).user
            login.email = current.email or ""
            login._history_user = by
            login.save(update_fields=["email"])
    return changed
