"""Access requests (数据访问权限审批): time-limited grants beyond a user's usual reach.

- ``access_request_file``: a member of staff asks, with a reason, for access to a customer outside
  their scope (read, optionally edit) or for unmasked exports. One pending request per (requester,
  kind, customer); a customer already in reach is refused. The deciders are notified.
- ``access_request_approve`` / ``access_request_refuse``: a holder of ``customers.decide_accessrequest``
  decides, never on their own request, once (the row is locked and its status compared). Approval
  of a customer request assigns the django-guardian object permissions the requester does not hold
  yet and records which (``granted_view``/``granted_change``); an unmasked-export grant changes no
  permission (``customers.exporting.exports_masked`` reads the active grant). The requester is notified.
- ``access_request_revoke``: a decider ends a grant early; the requester may withdraw a pending
  request or give up a grant.
- ``expire_due_grants`` (the Celery job ``customers.tasks.expire_access_grants``): approved grants
  past ``expires_at`` end; idempotent.

Every request, decision and end writes an access-log row (``cims.models.log_personal_data_access``)
naming the customer by id and code, never a personal value, and never the free-text reason.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from guardian.shortcuts import assign_perm, remove_perm

from cims.models import PersonalDataAccess, log_personal_data_access
from customers.models import AccessRequest, Customer, CustomerUserObjectPermission

Kind = AccessRequest.Kind
Status = AccessRequest.Status

ASK_PERMISSION = "customers.add_accessrequest"
DECIDE_PERMISSION = "customers.decide_accessrequest"
EXPORT_PERMISSION = "customers.export_customers"
UNMASKED_PERMISSION = "customers.export_unmasked_customers"
REASON_MIN = 8
REASON_MAX = 2000
NOTE_MAX = 2000
VIEW, CHANGE = "view_customer", "change_customer"


class AccessRequestError(Exception):
    """A request or decision the rules refuse; the message is for the user."""


def max_days() -> int:
    return settings.ACCESS_GRANT_MAX_DAYS


def default_days() -> int:
    return min(settings.ACCESS_GRANT_DEFAULT_DAYS, settings.ACCESS_GRANT_MAX_DAYS)


def _check_days(days) -> int:
    if not isinstance(days, int) or not 1 <= days <= max_days():
        raise AccessRequestError(_("Choose between 1 and %(max)d days.") % {"max": max_days()})
    return days


def _log(*, request_row: AccessRequest, user, action: str, detail: str, request=None) -> None:
    if request_row.kind == Kind.CUSTOMER:
        target = {
            "object_type": "customers.customer",
            "object_id": request_row.customer_id,
            "object_label": request_row.customer.code,
        }
    else:
        target = {"object_type": "customers.export", "object_id": "", "object_label": ""}
    log_personal_data_access(
        user=user, action=action, detail=f"access request #{request_row.pk}: {detail}", request=request, **target
    )


def _what(request_row: AccessRequest) -> str:
    if request_row.kind == Kind.EXPORT:
        return "unmasked export"
    return "view+edit" if request_row.with_edit else "view"


def _deciders(exclude=None) -> list:
    """Active staff who may decide access requests: one query, whichever way they hold the permission."""
    from accounts.models import User

    backend = "django.contrib.auth.backends.ModelBackend"
    staff = User.objects.with_perm("accounts.access_staff_ui", is_active=True, backend=backend)
    deciders = User.objects.with_perm(DECIDE_PERMISSION, is_active=True, backend=backend).filter(
        pk__in=staff.values("pk")
    )
    if exclude is not None:
        deciders = deciders.exclude(pk=exclude.pk)
    return list(deciders.order_by("pk")[:50])


def _subject(request_row: AccessRequest) -> str:
    """What is asked, for notifications: the customer's code, never its name."""
    if request_row.kind == Kind.EXPORT:
        return _("unmasked exports")
    return _("customer %(code)s") % {"code": request_row.customer.code}


def _notify(user, request_row: AccessRequest, event: str, title: str, body: str = "") -> None:
    from followups.reminders import notify

    url = reverse("customers:access_request_detail", args=[request_row.pk])
    notify(user=user, key=f"accessrequest:{request_row.pk}:{event}", title=title, body=body, url=url)


# --- Filing -----------------------------------------------------------------------------------------


def _clean_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if len(reason) < REASON_MIN:
        raise AccessRequestError(
            _("Explain why you need this access (at least %(min)d characters).") % {"min": REASON_MIN}
        )
    if len(reason) > REASON_MAX:
        raise AccessRequestError(_("Please keep it under %(limit)d characters.") % {"limit": REASON_MAX})
    return reason


def access_request_file(
    *, by, kind: str, reason: str, days: int, customer: Customer | None = None, with_edit: bool = False, request=None
) -> AccessRequest:
    """File a request for ``by``; AccessRequestError says why one is refused."""
    if not by.has_perm(ASK_PERMISSION):
        raise PermissionDenied(ASK_PERMISSION)
    reason = _clean_reason(reason)
    days = _check_days(days)
    if kind == Kind.CUSTOMER:
        if customer is None:
            raise AccessRequestError(_("Enter the code of the customer."))
        if with_edit and not by.has_perm("customers.change_customer"):
            raise AccessRequestError(_("Your role does not edit customers: ask for read access only."))
        in_reach = (Customer.objects.editable_by(by) if with_edit else Customer.objects.visible_to(by)).filter(
            pk=customer.pk
        )
        if in_reach.exists():
            raise AccessRequestError(
                _("You can already edit this customer.") if with_edit else _("You can already see this customer.")
            )
    elif kind == Kind.EXPORT:
        customer, with_edit = None, False
        if not by.has_perm(EXPORT_PERMISSION):
            raise AccessRequestError(_("Your role does not export customers."))
        if by.has_perm(UNMASKED_PERMISSION):
            raise AccessRequestError(_("Your exports are unmasked already."))
        if AccessRequest.objects.active().filter(requester=by, kind=Kind.EXPORT).exists():
            raise AccessRequestError(_("You hold an unmasked-export grant already."))
    else:
        raise AccessRequestError(_("Choose what you ask for."))
    with transaction.atomic():
        # The constraint is the final word on "one pending request"; this check gives the message.
        if AccessRequest.objects.filter(requester=by, kind=kind, customer=customer, status=Status.PENDING).exists():
            raise AccessRequestError(_("You have asked for this already; the request is waiting for a decision."))
        request_row = AccessRequest.objects.create(
            requester=by, kind=kind, customer=customer, with_edit=with_edit, reason=reason, days=days
        )
        _log(
            request_row=request_row,
            user=by,
            action=PersonalDataAccess.Action.REQUEST,
            detail=f"{_what(request_row)}, {days} days",
            request=request,
        )
        with translation.override(settings.LANGUAGE_CODE):
            title = _("Access request: %(subject)s") % {"subject": _subject(request_row)}
            body = _("%(user)s asks for %(days)d days.") % {"user": by.get_username(), "days": days}
            for user in _deciders(exclude=by):
                _notify(user, request_row, "filed", title, body)
    return request_row


# --- Deciding -----------------------------------------------------------------------------------------


def _locked(request_row: AccessRequest) -> AccessRequest:
    # of=("self",): an export request has no customer, and PostgreSQL locks no nullable outer join.
    return (
        AccessRequest.objects.select_for_update(of=("self",))
        .select_related("customer", "requester")
        .get(pk=request_row.pk)
    )


def _keep_in_step(target: AccessRequest, source: AccessRequest) -> AccessRequest:
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    return target


def _require_decider(locked: AccessRequest, by) -> None:
    if by is None or not by.has_perm(DECIDE_PERMISSION):
        raise PermissionDenied(DECIDE_PERMISSION)
    if locked.requester_id == by.pk:
        raise AccessRequestError(_("You cannot decide your own request; another manager must."))
    if locked.status != Status.PENDING:
        raise AccessRequestError(_("This request was decided already."))


def _holds_directly(user, customer_id: int, codename: str) -> bool:
    return CustomerUserObjectPermission.objects.filter(
        user=user, content_object_id=customer_id, permission__codename=codename
    ).exists()


def access_request_approve(*, request_row: AccessRequest, by, days: int, note: str = "", request=None) -> AccessRequest:
    """Approve a pending request for ``days`` (at most ACCESS_GRANT_MAX_DAYS) and grant it."""
    days = _check_days(days)
    note = (note or "").strip()[:NOTE_MAX]
    with transaction.atomic():
        locked = _locked(request_row)
        _require_decider(locked, by)
        now = timezone.now()
        locked.status = Status.APPROVED
        locked.decided_by, locked.decided_at, locked.decision_note = by, now, note
        locked.granted_days = days
        locked.expires_at = now + datetime.timedelta(days=days)
        if locked.kind == Kind.CUSTOMER:
            requester, customer = locked.requester, locked.customer
            # Only what the requester does not hold yet: the end of the grant removes exactly that.
            if not _holds_directly(requester, customer.pk, VIEW):
                assign_perm(f"customers.{VIEW}", requester, customer)
                locked.granted_view = True
            if (
                locked.with_edit
                and requester.has_perm("customers.change_customer")
                and not _holds_directly(requester, customer.pk, CHANGE)
            ):
                assign_perm(f"customers.{CHANGE}", requester, customer)
                locked.granted_change = True
        locked.save()
        _log(
            request_row=locked,
            user=by,
            action=PersonalDataAccess.Action.DECISION,
            detail=f"approved, {days} days",
            request=request,
        )
        with translation.override(settings.LANGUAGE_CODE):
            title = _("Access granted: %(subject)s") % {"subject": _subject(locked)}
            body = _("Until %(end)s.") % {"end": timezone.localtime(locked.expires_at).strftime("%Y-%m-%d %H:%M")}
            _notify(locked.requester, locked, "decided", title, body)
    return _keep_in_step(request_row, locked)


def access_request_refuse(*, request_row: AccessRequest, by, note: str, request=None) -> AccessRequest:
    """Refuse a pending request; the note (required) tells the requester why."""
    note = (note or "").strip()
    if not note:
        raise AccessRequestError(_("Say why the request is refused: the requester will see it."))
    if len(note) > NOTE_MAX:
        raise AccessRequestError(_("Please keep it under %(limit)d characters.") % {"limit": NOTE_MAX})
    with transaction.atomic():
        locked = _locked(request_row)
        _require_decider(locked, by)
        locked.status = Status.REFUSED
        locked.decided_by, locked.decided_at, locked.decision_note = by, timezone.now(), note
        locked.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        _log(request_row=locked, user=by, action=PersonalDataAccess.Action.DECISION, detail="refused", request=request)
        with translation.override(settings.LANGUAGE_CODE):
            title = _("Access refused: %(subject)s") % {"subject": _subject(locked)}
            _notify(locked.requester, locked, "decided", title, note[:200])
    return _keep_in_step(request_row, locked)


# --- Ending -------------------------------------------------------------------------------------------


def _take_back(locked: AccessRequest, now) -> None:
    """Remove the permission rows this grant created. Another active grant of the same user on the
    same customer takes over a row instead (it would otherwise end without it, or keep it forever)."""
    if locked.kind != Kind.CUSTOMER:
        return
    requester, customer = locked.requester, locked.customer
    for flag, codename in (("granted_view", VIEW), ("granted_change", CHANGE)):
        if not getattr(locked, flag):
            continue
        heir = (
            AccessRequest.objects.active(now)
            .filter(requester=requester, kind=Kind.CUSTOMER, customer=customer, **{flag: False})
            .exclude(pk=locked.pk)
            .order_by("-expires_at")
            .first()
        )
        if heir is not None:
            AccessRequest.objects.filter(pk=heir.pk).update(**{flag: True})
        else:
            remove_perm(f"customers.{codename}", requester, customer)


def grants_yield_to_share(*, user, customer, view: bool, change: bool) -> None:
    """A share (customers.services.customer_share) made while the user holds grants on the customer
    takes over the rows those grants created, so that their end leaves the share in place."""
    flags = {**({"granted_view": False} if view else {}), **({"granted_change": False} if change else {})}
    if flags:
        AccessRequest.objects.active().filter(requester=user, kind=Kind.CUSTOMER, customer=customer).update(**flags)


def access_request_revoke(*, request_row: AccessRequest, by, request=None) -> AccessRequest:
    """End a request early: a decider revokes a grant; the requester withdraws a pending request
    or gives up their grant. Anything else is refused."""
    with transaction.atomic():
        locked = _locked(request_row)
        own = locked.requester_id == by.pk
        now = timezone.now()
        if locked.status == Status.PENDING and own:
            locked.status = Status.CANCELLED
            detail = "withdrawn"
        elif locked.status == Status.APPROVED and (own or by.has_perm(DECIDE_PERMISSION)):
            _take_back(locked, now)
            locked.status = Status.REVOKED
            detail = "revoked"
        elif locked.status in (Status.PENDING, Status.APPROVED):
            raise PermissionDenied(DECIDE_PERMISSION)
        else:
            raise AccessRequestError(_("This request is closed already."))
        locked.ended_at, locked.ended_by = now, by
        locked.save(update_fields=["status", "ended_at", "ended_by", "granted_view", "granted_change"])
        _log(request_row=locked, user=by, action=PersonalDataAccess.Action.DECISION, detail=detail, request=request)
        if not own:
            with translation.override(settings.LANGUAGE_CODE):
                title = _("Access revoked: %(subject)s") % {"subject": _subject(locked)}
                _notify(locked.requester, locked, "ended", title)
    return _keep_in_step(request_row, locked)


def expire_due_grants(now: datetime.datetime | None = None) -> int:
    """End every approved grant past ``expires_at``: take back what it added, mark it expired, log
    it, tell the requester. Each grant in its own transaction, locked and re-checked, so a run that
    overlaps another (or a revocation) ends each grant once. Returns how many ended."""
    now = now or timezone.now()
    ended = 0
    for pk in list(AccessRequest.objects.due(now).order_by("expires_at").values_list("pk", flat=True)[:5000]):
        with transaction.atomic():
            locked = _locked(AccessRequest(pk=pk))
            if locked.status != Status.APPROVED or locked.expires_at > now:
                continue
            _take_back(locked, now)
            locked.status = Status.EXPIRED
            locked.ended_at = now
            locked.save(update_fields=["status", "ended_at", "granted_view", "granted_change"])
            _log(
                request_row=locked,
                user=locked.requester,
                action=PersonalDataAccess.Action.GRANT_EXPIRED,
                detail=f"expired after {locked.granted_days} days",
            )
            with translation.override(settings.LANGUAGE_CODE):
                title = _("Access ended: %(subject)s") % {"subject": _subject(locked)}
                _notify(locked.requester, locked, "ended", title)
            ended += 1
    return ended


def active_export_grant(user) -> AccessRequest | None:
    """The user's active unmasked-export grant, if any (it counts until ``expires_at`` exactly)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    return AccessRequest.objects.active().filter(requester=user, kind=Kind.EXPORT).order_by("-expires_at").first()


def active_customer_grant(user, customer_id: int) -> AccessRequest | None:
    """The user's active grant on one customer, if any: the 360 page's access-log row names it."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return (
        AccessRequest.objects.active()
        .filter(requester=user, kind=Kind.CUSTOMER, customer_id=customer_id)
        .order_by("-expires_at")
        .first()
    )
