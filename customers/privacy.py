"""Personal data (PIPL arts. 44–47; GDPR arts. 15–20): consents, a customer's copy of their data,
correction and erasure requests with their decisions, and erasure itself.

- Consents are only added (``consent_record``); the newest entry per purpose is the current state
  (``current_consents``). Sensitive data (ID card number, bank account) has a consent of its own.
  Campaign targeting leaves out customers whose current marketing consent is withdrawn
  (``marketing_excluded``, used by followups.campaigns).
- A customer asks from the portal (``data_request_file``): correction (with details) or erasure
  (one pending at a time). A manager with ``customers.decide_datarequest`` approves or refuses
  (a refusal needs a reason, shown to the customer); an approved erasure runs ``customer_erase``
  in the same transaction; a correction is marked done after the record was fixed, with a note.
- ``customer_export`` is the customer's copy of their data (JSON or XLSX), logged twice: as a
  DataRequest of kind export and in the personal-data access log.
- ``customer_erase`` anonymizes the customer everywhere personal data lives and keeps only what
  accounting must keep (amounts, dates, numbers, codes) under the pseudonymous record
  "已删除客户 <code>". What it touches, and what it cannot, is listed on the function.
"""

from __future__ import annotations

import datetime
import io
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from cims.models import PersonalDataAccess, log_personal_data_access
from customers.models import (
    Attachment,
    AttachmentContent,
    Consent,
    Contact,
    Contract,
    Customer,
    DataRequest,
    StatusChange,
    Transaction,
    name_grams,
)

Purpose = Consent.Purpose
Kind = DataRequest.Kind
Status = DataRequest.Status

DECIDE_PERMISSION = "customers.decide_datarequest"
# The pseudonymous name an erased customer keeps (with its code, so accounting can still tell
# records apart); stored data, in the product's language.
PSEUDONYM = "已删除客户 {code}"
# What replaces erased free text in columns that may not be empty in forms (a follow-up's content,
# a transaction's description): a dash, so that lists and the timeline still read.
ERASED_TEXT = "—"
ERASED_REASON = "erased"
DETAILS_MAX = 2000
REASON_MAX = 2000
# Ids per statement when erasing (well under SQLite's bound variables), and text patterns per
# LIKE scan of the bell's or the logs' table.
CHUNK = 500
TEXT_CHUNK = 100


class PrivacyError(Exception):
    """A request or decision the rules refuse; the message is for the user."""


# --- Consents ------------------------------------------------------------------------------------


def consent_record(*, customer: Customer, purpose: str, granted: bool, channel: str, by, version=None) -> Consent:
    """Add a consent entry (granted or withdrawn) for ``purpose``; it becomes the current one.

    ``version`` is the privacy notice's (settings.PRIVACY_NOTICE_VERSION by default). ``by`` is the
    member of staff who recorded it, or the portal user who gave it. Refused for an erased customer.
    """
    if purpose not in Purpose.values:
        raise ValidationError({"purpose": _("Choose what the consent is for.")})
    if channel not in Consent.Channel.values:
        raise ValidationError({"channel": _("Choose how the consent was given.")})
    version = (version or settings.PRIVACY_NOTICE_VERSION or "").strip()[:32]
    with transaction.atomic():
        locked = Customer.all_objects.select_for_update().only("pk", "erased_at").get(pk=customer.pk)
        if locked.erased_at is not None:
            raise ValidationError(_("This customer's personal data was erased: no consent is recorded any more."))
        consent = Consent.objects.create(
            customer_id=locked.pk,
            purpose=purpose,
            granted=bool(granted),
            version=version,
            channel=channel,
            recorded_at=timezone.now(),
            recorded_by=by if getattr(by, "is_authenticated", False) else None,
        )
        if purpose == Purpose.MARKETING and not granted:
            _leave_marketing(locked.pk)
        return consent


def _leave_marketing(customer_id: int) -> None:
    """A withdrawal counts at once: the customer leaves the campaigns still to run or running in
    which they were only targeted (a response or a conversion already recorded stays, as history)."""
    from followups.models import Campaign, CampaignMember

    CampaignMember.objects.filter(
        customer_id=customer_id,
        status=CampaignMember.Status.TARGETED,
        campaign__status__in=[Campaign.Status.PLANNED, Campaign.Status.RUNNING],
    ).delete()


def current_consents(customer: Customer) -> dict[str, Consent | None]:
    """The newest entry per purpose (None where nothing was ever recorded): one query.

    A customer has a handful of entries (one per decision they ever made), so reading them all
    and keeping the first per purpose costs less than a query per purpose.
    """
    current: dict[str, Consent | None] = dict.fromkeys(Purpose.values)
    for consent in Consent.objects.filter(customer_id=customer.pk).order_by("-recorded_at", "-id"):
        if current.get(consent.purpose) is None:
            current[consent.purpose] = consent
    return current


def has_consent(customer: Customer, purpose: str) -> bool:
    """Whether the current entry for ``purpose`` grants it (no entry at all: no consent)."""
    latest = Consent.objects.filter(customer_id=customer.pk, purpose=purpose).order_by("-recorded_at", "-id").first()
    return bool(latest and latest.granted)


def needs_sensitive_consent(customer: Customer, consents: dict[str, Consent | None] | None = None) -> bool:
    """A customer with an ID card number or a bank account on record but no current consent to
    sensitive data (PIPL art. 29: a separate consent)."""
    if not (customer.id_number or customer.bank_account):
        return False
    if consents is None:
        return not has_consent(customer, Purpose.SENSITIVE)
    current = consents.get(Purpose.SENSITIVE)
    return not (current and current.granted)


def _latest_entries(purpose: str):
    """Consent entries of ``purpose`` with no newer entry of the same customer and purpose."""
    newer = Consent.objects.filter(customer_id=OuterRef("customer_id"), purpose=purpose).filter(
        Q(recorded_at__gt=OuterRef("recorded_at")) | Q(recorded_at=OuterRef("recorded_at"), pk__gt=OuterRef("pk"))
    )
    return Consent.objects.filter(purpose=purpose).exclude(Exists(newer))


def consent_withdrawn(purpose: str = Purpose.MARKETING) -> Exists:
    """Whether the customer of the outer query (``pk``) currently withdraws ``purpose``: an
    EXISTS probe on the (customer, purpose, -recorded_at) index per customer."""
    return Exists(_latest_entries(purpose).filter(customer_id=OuterRef("pk"), granted=False))


def marketing_excluded() -> Q:
    """Customers no campaign may target: marketing consent withdrawn (at once, with the entry
    that withdraws it), or personal data erased. For ``Customer`` querysets: ``.exclude(...)``."""
    return Q(erased_at__isnull=False) | Q(consent_withdrawn(Purpose.MARKETING))


# --- Requests and decisions ---------------------------------------------------------------------


def _deciders():
    """Active staff who may decide personal-data requests (a manager or two, an administrator):
    one query, whether the permissions come from a group, the user or superuser status."""
    from accounts.models import User

    backend = "django.contrib.auth.backends.ModelBackend"
    staff = User.objects.with_perm("accounts.access_staff_ui", is_active=True, backend=backend)
    deciders = User.objects.with_perm(DECIDE_PERMISSION, is_active=True, backend=backend)
    return list(deciders.filter(pk__in=staff.values("pk")).order_by("pk")[:50])


def _notify_deciders(data_request: DataRequest, customer: Customer) -> None:
    from followups.reminders import notify

    # Staff read the bell in the product's language, whatever language the customer used.
    with translation.override(settings.LANGUAGE_CODE):
        title = _("Personal-data request: %(kind)s") % {"kind": data_request.get_kind_display()}
        # The code, never the name: the bell and its e-mail carry no personal data.
        body = _("Customer %(code)s asks for it in the portal.") % {"code": customer.code}
    url = reverse("customers:data_request", args=[data_request.pk])
    for user in _deciders():
        notify(user=user, key=f"datarequest:{data_request.pk}", title=title, body=body, url=url)


def data_request_file(*, customer: Customer, kind: str, by, details: str = "") -> DataRequest:
    """A customer's request from the portal: correction (``details`` required) or erasure.

    One erasure request waits at a time (a second one is refused with a message); the customer row
    is locked while checking, so two clicks at once make one request. The deciders are notified.
    """
    details = (details or "").strip()
    if kind == Kind.CORRECTION:
        if not details:
            raise PrivacyError(_("Say what should be corrected."))
        if len(details) > DETAILS_MAX:
            raise PrivacyError(_("Please keep it under %(limit)d characters.") % {"limit": DETAILS_MAX})
    elif kind == Kind.ERASURE:
        details = ""
    else:
        raise PrivacyError(_("This kind of request is not made here."))
    with transaction.atomic():
        locked = Customer.all_objects.select_for_update().get(pk=customer.pk)
        if locked.erased_at is not None:
            raise PrivacyError(_("Your personal data has been erased already."))
        if (
            kind == Kind.ERASURE
            and DataRequest.objects.filter(
                customer=locked, kind=Kind.ERASURE, status__in=[Status.PENDING, Status.APPROVED]
            ).exists()
        ):
            raise PrivacyError(_("Your erasure request is already waiting for a decision."))
        data_request = DataRequest.objects.create(
            customer=locked,
            kind=kind,
            status=Status.PENDING,
            details=details,
            requested_by=by if getattr(by, "is_authenticated", False) else None,
            requested_at=timezone.now(),
        )
        _notify_deciders(data_request, locked)
    return data_request


def _require_decider(by) -> None:
    if by is None or not by.has_perm(DECIDE_PERMISSION):
        raise PermissionDenied(DECIDE_PERMISSION)


def _locked_request(data_request: DataRequest) -> DataRequest:
    return DataRequest.objects.select_for_update().select_related("customer").get(pk=data_request.pk)


def _keep_in_step(target: DataRequest, source: DataRequest) -> DataRequest:
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    return target


def data_request_approve(*, data_request: DataRequest, by) -> DataRequest:
    """Approve a pending request. An erasure is carried out at once (``customer_erase``, in the same
    transaction: all or nothing) and ends done; a correction is approved and marked done later,
    once the record was fixed (``data_request_complete``)."""
    _require_decider(by)
    with transaction.atomic():
        locked = _locked_request(data_request)
        if locked.status != Status.PENDING:
            raise PrivacyError(_("This request was decided already."))
        if locked.kind == Kind.EXPORT:
            raise PrivacyError(_("A copy of the data needs no approval."))
        now = timezone.now()
        locked.status = Status.APPROVED
        locked.decided_by = by
        locked.decided_at = now
        locked.save(update_fields=["status", "decided_by", "decided_at"])
        if locked.kind == Kind.ERASURE:
            customer_erase(customer=locked.customer, by=by, request=locked)
            locked.refresh_from_db()
    return _keep_in_step(data_request, locked)


def _clean_text(text: str, *, missing: str) -> str:
    text = (text or "").strip()
    if not text:
        raise PrivacyError(missing)
    if len(text) > REASON_MAX:
        raise PrivacyError(_("Please keep it under %(limit)d characters.") % {"limit": REASON_MAX})
    return text


def data_request_refuse(*, data_request: DataRequest, by, reason: str) -> DataRequest:
    """Refuse a pending request; the reason is required and shown to the customer."""
    _require_decider(by)
    reason = _clean_text(reason, missing=_("Give the reason for the refusal: the customer will see it."))
    with transaction.atomic():
        locked = _locked_request(data_request)
        if locked.status != Status.PENDING:
            raise PrivacyError(_("This request was decided already."))
        locked.status = Status.REFUSED
        locked.decided_by = by
        locked.decided_at = timezone.now()
        locked.decision_reason = reason
        locked.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
    return _keep_in_step(data_request, locked)


def data_request_complete(*, data_request: DataRequest, by, note: str) -> DataRequest:
    """Mark a correction done (pending or approved) once the record was fixed, with a note for
    the customer saying what was changed."""
    _require_decider(by)
    note = _clean_text(note, missing=_("Say what was corrected: the customer will see the note."))
    with transaction.atomic():
        locked = _locked_request(data_request)
        if locked.kind != Kind.CORRECTION:
            raise PrivacyError(_("Only a correction is marked done by hand."))
        if locked.status not in (Status.PENDING, Status.APPROVED):
            raise PrivacyError(_("This request was decided already."))
        now = timezone.now()
        locked.status = Status.DONE
        locked.decided_by = locked.decided_by or by
        locked.decided_at = locked.decided_at or now
        locked.completed_at = now
        locked.decision_reason = note
        locked.save(update_fields=["status", "decided_by", "decided_at", "completed_at", "decision_reason"])
    return _keep_in_step(data_request, locked)


# --- The customer's copy of their data ------------------------------------------------------------

JSON, XLSX = "json", "xlsx"
EXPORT_FORMATS = {
    JSON: "application/json; charset=utf-8",
    XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).isoformat(timespec="seconds")
    return value.isoformat()


def customer_data(customer: Customer) -> dict:
    """Everything the company holds about ``customer`` that is theirs to have, unmasked.

    Follow-ups are the company's notes about them (date, type, content); tickets carry only the
    events the customer may see (never internal notes); staff are named by role, not by name (their
    names are someone else's personal data). Codes in the values, so the file can be read by
    another system; the XLSX has the readable labels.
    """
    from complaints.models import Ticket, TicketEvent
    from followups.models import FollowUp
    from lottery.display import customer_entries, win_of

    custom_labels = {}
    from customers.models import CustomField

    for custom in CustomField.objects.all():
        custom_labels[custom.key] = custom.label
    tickets = list(Ticket.objects.filter(customer=customer).select_related("category").order_by("-created_at", "-id"))
    events: dict[int, list] = {}
    for event in TicketEvent.objects.filter(ticket__customer=customer, internal=False).order_by("created_at", "id"):
        events.setdefault(event.ticket_id, []).append(event)
    lottery_entries = customer_entries(customer)
    # A win is the customer's to be told once the event is announced, as in the portal (lottery.portal_views).
    lottery_wins = [(e, win_of(e)) for e in lottery_entries if e.event.is_announced and win_of(e) is not None]
    return {
        "generated_at": _iso(timezone.now()),
        "profile": {
            "code": customer.code,
            "kind": customer.kind,
            "name": customer.name,
            "company": customer.company,
            "gender": customer.gender,
            "birth_date": _iso(customer.birth_date),
            "phone": customer.phone,
            "mobile": customer.mobile,
            "fax": customer.fax,
            "email": customer.email,
            "province": customer.province.name if customer.province_id else "",
            "city": customer.city,
            "address": customer.address,
            "id_number": customer.id_number,
            "bank_account": customer.bank_account,
            "status": customer.status,
            "level": customer.level.name if customer.level_id else "",
            "industry": customer.industry.name if customer.industry_id else "",
            "tags": [tag.name for tag in customer.tags.all()],
            "notes": customer.notes,
            "custom_fields": {
                custom_labels.get(key, key): value for key, value in sorted((customer.custom_data or {}).items())
            },
            "created_at": _iso(customer.created_at),
        },
        "contacts": [
            {"name": c.name, "title": c.title, "phone": c.phone, "email": c.email, "primary": c.is_primary}
            for c in customer.contacts.order_by("id")
        ],
        "follow_ups": [
            {"date": _iso(f.happened_at), "type": f.kind, "content": f.content}
            for f in FollowUp.objects.filter(customer=customer).order_by("-happened_at", "-id")
        ],
        "tickets": [
            {
                "number": t.number,
                "kind": t.kind,
                "category": t.category.name,
                "severity": t.severity,
                "channel": t.channel,
                "status": t.status,
                "subject": t.subject,
                "description": t.description,
                "filed_at": _iso(t.created_at),
                "resolved_at": _iso(t.resolved_at),
                "closed_at": _iso(t.closed_at),
                "rating": t.rating,
                "rating_comment": t.rating_comment,
                "events": [
                    {
                        "at": _iso(e.created_at),
                        "kind": e.kind,
                        "from_status": e.from_status,
                        "to_status": e.to_status,
                        "by": "customer" if e.by_customer else ("staff" if e.actor_id else "system"),
                        "comment": e.body,
                    }
                    for e in events.get(t.pk, [])
                ],
            }
            for t in tickets
        ],
        "transactions": [
            {
                "date": _iso(t.date),
                "amount": str(t.amount),
                "description": t.product,
                "channel": t.channel,
                "lines": [
                    {
                        "product": line.product.name,
                        "quantity": str(line.quantity),
                        "unit_price": str(line.unit_price),
                    }
                    for line in t.lines.all()
                ],
            }
            for t in Transaction.objects.filter(customer=customer)
            .prefetch_related("lines__product")
            .order_by("-date", "-id")
        ],
        "contracts": [
            {
                "number": c.number,
                "title": c.title,
                "amount": str(c.amount),
                "start_date": _iso(c.start_date),
                "end_date": _iso(c.end_date),
                "status": c.status,
            }
            for c in Contract.objects.filter(customer=customer).order_by("-start_date", "-id")
        ],
        "consents": [
            {
                "purpose": c.purpose,
                "granted": c.granted,
                "version": c.version,
                "channel": c.channel,
                "recorded_at": _iso(c.recorded_at),
            }
            for c in Consent.objects.filter(customer=customer).order_by("-recorded_at", "-id")
        ],
        "requests": [
            {
                "kind": r.kind,
                "status": r.status,
                "details": r.details,
                "requested_at": _iso(r.requested_at),
                "decided_at": _iso(r.decided_at),
                "reason": r.decision_reason,
                "completed_at": _iso(r.completed_at),
            }
            for r in DataRequest.objects.filter(customer=customer).order_by("-requested_at", "-id")
        ],
        # The year-end lottery: every published event they were entered in, under their pseudonymous
        # entry id (what the public list shows), and their wins.
        "lottery_entries": [
            {
                "event": e.event.name,
                "year": e.event.year,
                "entry_id": e.entry_id,
                "weight": e.weight,
                "status": e.event.status,
            }
            for e in lottery_entries
        ],
        "lottery_wins": [
            {
                "event": e.event.name,
                "year": e.event.year,
                "tier": win.tier.name,
                "prize": win.tier.prize,
                "drawn_at": _iso(e.event.drawn_at),
            }
            for e, win in lottery_wins
        ],
    }


@dataclass(frozen=True)
class ExportedCopy:
    filename: str
    content_type: str
    content: bytes
    data_request: DataRequest


def customer_export(*, customer: Customer, fmt: str, by, request=None) -> ExportedCopy:
    """The customer's copy of their data as a file, recorded as a DataRequest (export, done) and in
    the personal-data access log, in one transaction with reading it."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    with transaction.atomic():
        if customer.erased_at is not None:
            raise PrivacyError(_("Your personal data has been erased already."))
        now = timezone.now()
        user = by if getattr(by, "is_authenticated", False) else None
        data_request = DataRequest.objects.create(
            customer=customer,
            kind=Kind.EXPORT,
            status=Status.DONE,
            requested_by=user,
            requested_at=now,
            completed_at=now,
        )
        log_personal_data_access(
            user=user,
            action=PersonalDataAccess.Action.EXPORT,
            object_type="customers.customer",
            object_id=customer.pk,
            object_label=customer.code,
            rows=1,
            detail=f"copy of their own data ({fmt})",
            masked=False,
            request=request,
        )
        # Read after recording: the copy lists this request too.
        data = customer_data(customer)
    stem = f"my-data-{customer.code}-{timezone.localdate(now):%Y%m%d}"
    if fmt == JSON:
        content = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
    else:
        content = _xlsx(data)
    return ExportedCopy(f"{stem}.{fmt}", EXPORT_FORMATS[fmt], content, data_request)


def _cell(value):
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    from customers.exporting import neutralise

    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, (list, dict)):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    return neutralise(value)


def _labels(choices) -> dict:
    return {str(value): str(label) for value, label in choices}


def _xlsx(data: dict) -> bytes:
    """The same copy as the JSON, readable: a sheet per section, labels in the user's language,
    no cell a spreadsheet could run as a formula."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    from complaints.models import Ticket, TicketEvent
    from followups.models import FollowUp
    from lottery.models import LotteryEvent

    workbook = Workbook()
    workbook.remove(workbook.active)
    bold = Font(bold=True)

    def sheet(title: str, headers: list[str], rows: Iterable[list]) -> None:
        ws = workbook.create_sheet(title[:31])
        ws.append([_cell(h) for h in headers])
        for cell in ws[1]:
            cell.font = bold
        for row in rows:
            ws.append([_cell(v) for v in row])
        for index, _header in enumerate(headers):
            ws.column_dimensions[chr(ord("A") + index)].width = 22 if index else 26

    profile = data["profile"]
    field_labels = {
        "code": _("Customer code"),
        "kind": _("Kind"),
        "name": _("Name"),
        "company": _("Company"),
        "gender": _("Gender"),
        "birth_date": _("Birth date"),
        "phone": _("Phone"),
        "mobile": _("Mobile"),
        "fax": _("Fax"),
        "email": _("Email"),
        "province": _("Province"),
        "city": _("City"),
        "address": _("Address"),
        "id_number": _("ID card number"),
        "bank_account": _("Bank account"),
        "status": _("Lifecycle status"),
        "level": _("Level"),
        "industry": _("Industry"),
        "tags": _("Tags"),
        "notes": _("Notes"),
        "custom_fields": _("Other fields"),
        "created_at": _("Customer since"),
    }
    shown = dict(profile)
    shown["kind"] = _labels(Customer.KINDS).get(profile["kind"], profile["kind"])
    shown["gender"] = _labels(Customer.Gender.choices).get(profile["gender"], profile["gender"])
    shown["status"] = _labels(Customer.Status.choices).get(profile["status"], profile["status"])
    shown["tags"] = ", ".join(profile["tags"])
    sheet(_("Profile"), [_("Field"), _("Value")], [[field_labels[k], shown[k]] for k in field_labels])
    sheet(
        _("Contacts"),
        [_("Name"), _("Title"), _("Phone"), _("Email"), _("Primary contact")],
        [[c["name"], c["title"], c["phone"], c["email"], c["primary"]] for c in data["contacts"]],
    )
    followup_kinds = _labels(FollowUp.Kind.choices)
    sheet(
        _("Follow-ups"),
        [_("Time"), _("Type"), _("Content")],
        [[f["date"], followup_kinds.get(f["type"], f["type"]), f["content"]] for f in data["follow_ups"]],
    )
    ticket_status = _labels(Ticket.Status.choices)
    ticket_kinds = _labels(Ticket.Kind.choices)
    sheet(
        _("Service requests"),
        [
            _("Number"),
            _("Kind"),
            _("Category"),
            _("Status"),
            _("Subject"),
            _("Description"),
            _("Filed at"),
            _("Resolved at"),
            _("Satisfaction"),
            _("Rating comment"),
        ],  # fmt: skip
        [
            [
                t["number"],
                ticket_kinds.get(t["kind"], t["kind"]),
                t["category"],
                ticket_status.get(t["status"]),
                t["subject"],
                t["description"],
                t["filed_at"],
                t["resolved_at"],
                t["rating"],
                t["rating_comment"],
            ]  # fmt: skip
            for t in data["tickets"]
        ],
    )
    event_kinds = _labels(TicketEvent.Kind.choices)
    by_labels = {"customer": _("You"), "staff": _("Our staff"), "system": _("System")}
    sheet(
        _("Replies"),
        [_("Number"), _("Time"), _("Step"), _("By"), _("Comment")],
        [
            [t["number"], e["at"], event_kinds.get(e["kind"], e["kind"]), by_labels.get(e["by"], e["by"]), e["comment"]]
            for t in data["tickets"]
            for e in t["events"]
        ],
    )
    channels = _labels(Transaction.Channel.choices)
    sheet(
        _("Transactions"),
        [_("Date"), _("Amount (CNY)"), _("Product or description"), _("Channel"), _("Products")],
        [
            [
                t["date"],
                t["amount"],
                t["description"],
                channels.get(t["channel"], t["channel"]),
                "; ".join(f"{line['product']} × {line['quantity']} @ {line['unit_price']}" for line in t["lines"]),
            ]  # fmt: skip
            for t in data["transactions"]
        ],
    )
    contract_status = _labels(Contract.Status.choices)
    sheet(
        _("Contracts"),
        [_("Contract number"), _("Contract title"), _("Amount (CNY)"), _("Start date"), _("End date"), _("Status")],
        [
            [c["number"], c["title"], c["amount"], c["start_date"], c["end_date"], contract_status.get(c["status"])]
            for c in data["contracts"]
        ],
    )
    purposes = _labels(Purpose.choices)
    consent_channels = _labels(Consent.Channel.choices)
    sheet(
        _("Consents"),
        [_("Purpose"), _("Decision"), _("Notice version"), _("Channel"), _("Time")],
        [
            [
                purposes.get(c["purpose"]),
                _("Granted") if c["granted"] else _("Withdrawn"),
                c["version"],
                consent_channels.get(c["channel"]),
                c["recorded_at"],
            ]  # fmt: skip
            for c in data["consents"]
        ],
    )
    kinds = _labels(Kind.choices)
    statuses = _labels(Status.choices)
    sheet(
        _("Requests"),
        [_("Request"), _("Status"), _("Details"), _("Requested at"), _("Decided at"), _("Reason or note")],
        [
            [
                kinds.get(r["kind"]),
                statuses.get(r["status"]),
                r["details"],
                r["requested_at"],
                r["decided_at"],
                r["reason"],
            ]  # fmt: skip
            for r in data["requests"]
        ],
    )
    lottery_status = _labels(LotteryEvent.Status.choices)
    sheet(
        _("Lottery entries"),
        [_("Lottery"), _("Year"), _("Entry id"), _("Entries (weight)"), _("Status")],
        [
            [e["event"], e["year"], e["entry_id"], e["weight"], lottery_status.get(e["status"], e["status"])]
            for e in data["lottery_entries"]
        ],
    )
    sheet(
        _("Lottery wins"),
        [_("Lottery"), _("Year"), _("Tier"), _("Prize"), _("Drawn at")],
        [[w["event"], w["year"], w["tier"], w["prize"], w["drawn_at"]] for w in data["lottery_wins"]],
    )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# --- Erasure ---------------------------------------------------------------------------------------

# Change reasons in history rows that are ours (never a user's free text): they stay; any other
# reason may quote a name ("transfer: 王伟 moved to Shenzhen") and is blanked.
_SAFE_REASONS = {
    "deleted",
    "restored",
    "transfer",
    "edit",
    "won",
    "lost",
    "claimed from pool",
    "released to pool",
    "expired automatically",
    ERASED_REASON,
}
_SAFE_REASON_RE = re.compile(
    r"^(status: [a-z_]+ → [a-z_]+|merged into C\d{4}-\d{6}|returned to pool: no follow-up for \d+ days)$"
)
_REASON_PREFIX_RE = re.compile(r"^(import #\d+|lost)\b")


def _safe_reason(reason: str | None) -> str | None:
    if not reason or reason in _SAFE_REASONS or _SAFE_REASON_RE.match(reason):
        return reason
    prefix = _REASON_PREFIX_RE.match(reason)
    return prefix.group(1) if prefix else ""


def _scrub_reasons(rows) -> None:
    """Blank the change reasons of ``rows`` (history rows) that are not ours: one UPDATE per
    distinct reason (a record has a few)."""
    reasons = set(
        rows.exclude(history_change_reason__isnull=True)
        .order_by()
        .values_list("history_change_reason", flat=True)
        .distinct()
    )
    for reason in reasons:
        safe = _safe_reason(reason)
        if safe != reason:
            rows.filter(history_change_reason=reason).update(history_change_reason=safe)


def _merged_family(customer: Customer) -> list[int]:
    """The customer and every record merged into it (and into those): a merged-away record stays
    in the recycle bin with the person's data as it was, so it is erased too."""
    ids = [customer.pk]
    frontier = [customer.pk]
    while frontier:
        frontier = list(
            Customer.all_objects.filter(merged_into_id__in=frontier).exclude(pk__in=ids).values_list("pk", flat=True)
        )
        ids.extend(frontier)
    return ids


def _phone_needles(value: str) -> set[str]:
    """How a stored phone number appears in text: E.164 and the national digits."""
    if not value:
        return set()
    digits = re.sub(r"\D", "", value)
    found = {value, digits}
    if value.startswith("+86") and len(digits) > 2:
        found.add(digits[2:])
    return {n for n in found if len(n) >= 5}


def _known_values(customers: list[Customer], contacts: list[Contact]) -> set[str]:
    """The personal values to look for in free text that cannot be found by key (the bell's texts,
    the access log, the admin's log): identifiers (phone numbers, e-mail, ID card number, bank
    account) and names long enough to be this person's. A two- or three-character name (王伟) is
    left out: it would rename notifications about namesakes; those texts carry the customer's code
    or a ticket number, which are searched instead."""
    values: set[str] = set()
    names: set[str] = set()
    for customer in customers:
        values |= {customer.email, customer.id_number, customer.bank_account}
        values |= _phone_needles(customer.phone) | _phone_needles(customer.mobile)
        names |= {customer.name, customer.address}
        if customer.kind == Customer.INDIVIDUAL:
            names.add(customer.company)
    for contact in contacts:
        values |= {contact.email} | _phone_needles(contact.phone)
        names.add(contact.name)
    values = {v.strip() for v in values if v and len(v.strip()) >= 5}
    return values | {n.strip() for n in names if n and len(n.strip()) >= 4}


def _any_contains(fields: Iterable[str], needles: Iterable[str]) -> Q:
    q = Q(pk__in=[])
    for needle in needles:
        for field in fields:
            q |= Q(**{f"{field}__contains": needle})
    return q


@dataclass
class ErasureScope:
    """What one erasure reached (counts), for the manager's message and the tests."""

    customers: int = 0
    contacts: int = 0
    attachments: int = 0
    tickets: int = 0
    history_rows: int = 0
    notifications: int = 0
    access_log: int = 0


def customer_erase(*, customer: Customer, by, request: DataRequest | None = None) -> DataRequest:
    """Anonymize ``customer`` everywhere personal data lives, in one transaction; return the
    DataRequest that records it (``request`` marked done, or a new erasure record done).

    Kept, under the pseudonymous record "已删除客户 <code>" (the code, kind, lifecycle status, level,
    source, industry, owner and dates): amounts, dates and numbers of transactions, contracts,
    opportunities and tickets; consent entries (purpose, decision, version, time, channel: the proof
    of what was consented to); the requests and who decided them. The owner stays, so that the
    sales a rep made still count as theirs and the record is nobody's pool customer to claim.

    Erased: the customer row's personal columns (name, company, gender, birth date, phone, mobile,
    fax, e-mail, address, ID card number, bank account, province, city, notes, custom fields, tags;
    blind indexes and name grams follow); contacts (deleted); files kept with the customer and with
    its tickets (deleted, bytes too); the free text of follow-ups, tasks, opportunities, transactions,
    contracts, status changes, tickets and their events, campaign memberships and data requests;
    the history rows (django-simple-history) of all of these, change reasons included; the bell's
    notifications about the customer; the access log's and the admin log's texts about them; the
    portal login (deactivated, renamed at random, no name or e-mail, unusable password; its login
    attempts in django-axes deleted). Records merged into this one are erased with it.

    Not reachable: personal notes (记事本) of staff are free text of their own, with no link to a
    customer, so a note naming the customer cannot be found reliably; import files (ImportJob /
    ImportChunk) are encrypted per import, not per customer, and expire with their job; backups
    age out on their own schedule (docs/operations.md).
    """
    if by is not None and not by.has_perm(DECIDE_PERMISSION):
        raise PermissionDenied(DECIDE_PERMISSION)
    with transaction.atomic():
        main = Customer.all_objects.select_for_update().get(pk=customer.pk)
        ids = _merged_family(main)
        people = list(Customer.all_objects.select_for_update().filter(pk__in=ids).order_by("pk"))
        codes = {c.pk: c.code for c in people}
        now = timezone.now()
        scope = ErasureScope(customers=len(people))

        # Read what is about to go, for the searches below (decrypted here, never written anywhere).
        contacts = list(Contact.objects.filter(customer_id__in=ids))
        portal_users = _portal_users(ids)
        usernames = [user.username for user in portal_users]
        needles = _known_values(people, contacts) | {u for u in usernames if len(u) >= 5}
        needles |= set(codes.values())
        related = _related_ids(ids)

        _erase_customer_rows(people, now=now)
        scope.contacts = len(contacts)
        scope.attachments, scope.tickets = _erase_related(ids, related)
        _erase_portal_accounts(portal_users, usernames)

        erasure = _record_erasure(main, by=by, request=request, now=now)
        # One history row per erased record: who erased it, when (copied from the blanked rows).
        from customers.services import record_history_bulk

        record_history_bulk(ids, history_type="~", by=by, reason=ERASED_REASON, when=now)

        scope.history_rows = _erase_history(ids, related, portal_users, codes)
        scope.notifications = _erase_notifications(ids, related, needles, pseudonym=PSEUDONYM.format(code=main.code))
        scope.access_log = _erase_logs(ids, related, portal_users, needles, codes)
        _erase_data_requests(ids)
    customer.erased_at = main.erased_at or now
    customer._erasure_scope = scope
    return erasure


def _portal_users(ids: list[int]) -> list:
    from accounts.models import User

    return list(User.objects.filter(portal_account__customer_id__in=ids).order_by("pk"))


@dataclass
class _Related:
    contacts: list[int]
    followups: list[int]
    tasks: list[int]
    opportunities: list[int]
    transactions: list[int]
    contracts: list[int]
    tickets: list[int]
    ticket_numbers: list[str]
    attachments: list[int]


def _related_ids(ids: list[int]) -> _Related:
    from complaints.models import Ticket
    from followups.models import FollowUp, Opportunity, Task

    def pks(model) -> list[int]:
        return list(model.objects.filter(customer_id__in=ids).order_by().values_list("pk", flat=True))

    tickets = list(Ticket.objects.filter(customer_id__in=ids).order_by().values_list("pk", "number"))
    return _Related(
        contacts=pks(Contact),
        followups=pks(FollowUp),
        tasks=pks(Task),
        opportunities=pks(Opportunity),
        transactions=pks(Transaction),
        contracts=pks(Contract),
        tickets=[pk for pk, _n in tickets],
        ticket_numbers=[number for _pk, number in tickets],
        attachments=pks(Attachment),
    )


def _erase_customer_rows(people: list[Customer], *, now) -> None:
    for person in people:
        pseudonym = PSEUDONYM.format(code=person.code)
        Customer.all_objects.filter(pk=person.pk).update(
            **_blank_customer(pseudonym), name_grams=name_grams(pseudonym), erased_at=person.erased_at or now
        )
        person.erased_at = person.erased_at or now
    # The tags are a profile of the person: the links go (without m2m signals, which would write a
    # history row from the in-memory values).
    Customer.tags.through.objects.filter(customer_id__in=[p.pk for p in people]).delete()


def _blank_customer(pseudonym: str) -> dict:
    """The personal columns of a customer row (and of its history rows), erased."""
    return {
        "name": pseudonym,
        "company": "",
        "gender": "",
        "birth_date": None,
        "phone": "",
        "mobile": "",
        "email": "",
        "address": "",
        "id_number": "",
        "bank_account": "",
        "fax": "",
        "city": "",
        "province": None,
        "notes": "",
        "custom_data": {},
        "phone_bidx": "",
        "mobile_bidx": "",
        "email_bidx": "",
        "id_number_bidx": "",
    }


def _chunks(values: list, size: int = CHUNK) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _erase_related(ids: list[int], related: _Related) -> tuple[int, int]:
    """The live rows: by their customer (one statement each), whatever their number."""
    from cims.models import WebhookDelivery
    from complaints.models import Ticket, TicketAttachment, TicketAttachmentContent, TicketEvent
    from followups.models import CampaignMember, FollowUp, Opportunity, Task

    mine = {"customer_id__in": ids}
    # Contacts are people: deleted. Tickets and follow-ups naming them keep an empty link (SET_NULL).
    Contact.objects.filter(**mine).delete()
    FollowUp.objects.filter(**mine).update(content=ERASED_TEXT, result="")
    Task.objects.filter(**mine).update(title=ERASED_TEXT)
    Opportunity.objects.filter(**mine).update(title=ERASED_TEXT, description="", lost_reason="")
    Transaction.objects.filter(**mine).update(product=ERASED_TEXT)
    Contract.objects.filter(**mine).update(title=ERASED_TEXT)
    StatusChange.objects.filter(**mine).update(reason="")
    CampaignMember.objects.filter(**mine).update(note="")
    Ticket.objects.filter(**mine).update(subject=ERASED_TEXT, description=ERASED_TEXT, rating_comment="")
    tickets = Ticket.objects.filter(**mine).values("pk")
    TicketEvent.objects.filter(ticket_id__in=tickets).update(body="")
    ticket_files = TicketAttachment.objects.filter(ticket_id__in=tickets)
    files = ticket_files.count()
    TicketAttachmentContent.objects.filter(attachment_id__in=ticket_files.values("pk")).delete()
    ticket_files.delete()
    files += Attachment.objects.filter(**mine).count()
    AttachmentContent.objects.filter(attachment__customer_id__in=ids).delete()
    Attachment.objects.filter(**mine).delete()
    # Webhook deliveries about the customer hold its data as sent (plain for trusted endpoints):
    # forgotten, and so never resent. What the receivers keep is theirs to erase (docs/webhooks.md).
    WebhookDelivery.objects.filter(**mine).delete()
    return files, len(related.tickets)


def _erase_portal_accounts(users: list, usernames: list[str]) -> None:
    from accounts.models import User

    for user in users:
        User.objects.filter(pk=user.pk).update(
            username=f"erased-{uuid.uuid4().hex[:16]}",
            first_name="",
            last_name="",
            name="",
            email="",
            is_active=False,
            password=make_password(None),
        )
    if usernames:
        from axes.models import AccessAttempt, AccessFailureLog, AccessLog

        for model in (AccessAttempt, AccessLog, AccessFailureLog):
            model.objects.filter(username__in=usernames).delete()


def _record_erasure(main: Customer, *, by, request: DataRequest | None, now) -> DataRequest:
    user = by if getattr(by, "is_authenticated", False) else None
    if request is None:
        return DataRequest.objects.create(
            customer=main,
            kind=Kind.ERASURE,
            status=Status.DONE,
            requested_by=user,
            requested_at=now,
            decided_by=user,
            decided_at=now,
            completed_at=now,
        )
    request.status = Status.DONE
    request.decided_by = request.decided_by or user
    request.decided_at = request.decided_at or now
    request.completed_at = now
    DataRequest.objects.filter(pk=request.pk).update(
        status=Status.DONE, decided_by=request.decided_by, decided_at=request.decided_at, completed_at=now
    )
    return request


def _erase_history(ids: list[int], related: _Related, portal_users: list, codes: dict[int, str]) -> int:
    """Overwrite the personal columns of every history row of the erased records (bulk UPDATEs)."""
    from django.apps import apps

    from accounts.models import User
    from complaints.models import Ticket
    from followups.models import FollowUp, Opportunity, Task

    touched = 0
    customer_history = Customer.history.model
    for pk in ids:
        rows = customer_history.objects.filter(id=pk)
        touched += rows.update(**_blank_customer(PSEUDONYM.format(code=codes[pk])))
        _scrub_reasons(rows)
    tags_history = apps.get_model(customer_history._meta.app_label, f"{customer_history.__name__}_tags")
    tags_history.objects.filter(history__id__in=ids).delete()

    plans = [
        (
            Contact,
            related.contacts,
            {"name": "", "title": "", "phone": "", "email": "", "phone_bidx": "", "email_bidx": ""},
        ),
        (FollowUp, related.followups, {"content": ERASED_TEXT, "result": ""}),
        (Task, related.tasks, {"title": ERASED_TEXT}),
        (Opportunity, related.opportunities, {"title": ERASED_TEXT, "description": "", "lost_reason": ""}),
        (Transaction, related.transactions, {"product": ERASED_TEXT}),
        (Contract, related.contracts, {"title": ERASED_TEXT}),
        (Attachment, related.attachments, {"filename": "", "sha256": ""}),
        (Ticket, related.tickets, {"subject": ERASED_TEXT, "description": ERASED_TEXT, "rating_comment": ""}),
    ]
    for model, own, blank in plans:
        history = model.history.model
        # By the customer the row had then, and by the rows it had when erased (a task moved here
        # from another customer keeps its earlier rows under that one's id).
        rows = history.objects.filter(customer_id__in=ids)
        touched += rows.update(**blank)
        _scrub_reasons(rows)
        for chunk in _chunks(own):
            rows = history.objects.filter(id__in=chunk).exclude(customer_id__in=ids)
            touched += rows.update(**blank)
            _scrub_reasons(rows)

    user_history = User.history.model
    for user in portal_users:
        current = User.objects.filter(pk=user.pk).values_list("username", flat=True).get()
        rows = user_history.objects.filter(id=user.pk)
        touched += rows.update(username=current, first_name="", last_name="", name="", email="")
        _scrub_reasons(rows)
    return touched


def _erase_notifications(ids: list[int], related: _Related, needles: set[str], *, pseudonym: str) -> int:
    """The bell's messages about the customer: found by their keys (tasks, renewals, the pool, the
    requests), by their links (the 360 page), and by the code, ticket numbers and personal values
    in their text. Their text is replaced; the key stays, so a reminder is not sent again."""
    from followups.models import Notification

    found = Q(pk__in=[])
    for pk in ids:
        found |= Q(url__startswith=reverse("customers:detail", args=[pk]))
        found |= Q(key__startswith=f"pool-return:{pk}:") | Q(key__startswith=f"pool-warning:{pk}:")
    conditions = [found]
    requests = DataRequest.objects.filter(customer_id__in=ids)
    for chunk in _chunks(list(requests.values_list("pk", flat=True))):
        conditions.append(Q(key__in=[f"datarequest:{pk}" for pk in chunk]))
    codes = list(Customer.all_objects.filter(pk__in=ids).values_list("code", flat=True))
    conditions += _contains_chunks(("title", "body", "url", "key"), set(codes) | needles)
    # The rows' own keys and numbers, a bounded statement at a time.
    for chunk in _chunks(related.tasks):
        conditions.append(Q(key__in=[f"task:{pk}:due" for pk in chunk]))
    for chunk in _chunks(related.contracts, TEXT_CHUNK):
        conditions.append(_any_prefix("key", [f"contract-renewal:{pk}:" for pk in chunk]))
    for chunk in _chunks(related.tickets, TEXT_CHUNK):
        conditions.append(_any_prefix("key", [f"ticket:{pk}:" for pk in chunk]))
    conditions += _contains_chunks(("title", "body", "url", "key"), related.ticket_numbers)
    changed = 0
    for condition in conditions:
        changed += Notification.objects.filter(condition).update(title=pseudonym[:200], body="")
    return changed


def _contains_chunks(fields: tuple[str, ...], values) -> list[Q]:
    """``_any_contains`` over ``values`` in pieces of at most TEXT_CHUNK terms each: one OR of a
    LIKE per value and field is one condition, and SQLite refuses one deeper than 1,000 terms (an
    enterprise customer with a hundred contacts has several hundred values)."""
    size = max(1, TEXT_CHUNK // len(fields))
    return [_any_contains(fields, chunk) for chunk in _chunks(sorted(values), size)]


def _any_prefix(field: str, prefixes: list[str]) -> Q:
    q = Q(pk__in=[])
    for prefix in prefixes:
        q |= Q(**{f"{field}__startswith": prefix})
    return q


def _erase_logs(ids: list[int], related: _Related, portal_users: list, needles: set[str], codes: dict) -> int:
    """The access log and the admin's log: rows about the erased records lose their free text; the
    portal user's own rows lose their IP address (theirs); rows quoting a personal value lose it."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    from accounts.models import PortalAccount, User
    from complaints.models import Ticket
    from followups.models import FollowUp, Opportunity, Task

    objects = {
        "customers.customer": ids,
        "customers.contact": related.contacts,
        "customers.attachment": related.attachments,
        "customers.transaction": related.transactions,
        "customers.contract": related.contracts,
        "followups.followup": related.followups,
        "followups.task": related.tasks,
        "followups.opportunity": related.opportunities,
        "complaints.ticket": related.tickets,
    }
    access = PersonalDataAccess.objects
    changed = access.filter(object_label__in=list(codes.values())).update(detail="")
    for chunk in _chunks(related.ticket_numbers):
        changed += access.filter(object_label__in=chunk).update(detail="")
    for object_type, pks in objects.items():
        for chunk in _chunks(pks):
            changed += access.filter(object_type=object_type, object_id__in=[str(pk) for pk in chunk]).update(detail="")
    for condition in _contains_chunks(("detail",), needles):
        changed += access.filter(condition).update(detail="")
    for condition in _contains_chunks(("object_label",), needles):
        changed += access.filter(condition).update(object_label="")
    if portal_users:
        access.filter(user__in=portal_users).update(ip_address=None)
        # Failed logins name the username typed; the erased accounts' usernames go with them.
        usernames = [user.username for user in portal_users]
        changed += access.filter(object_label__in=usernames).update(object_label="")

    models = {
        Customer: ids,
        Contact: related.contacts,
        Attachment: related.attachments,
        Transaction: related.transactions,
        Contract: related.contracts,
        FollowUp: related.followups,
        Task: related.tasks,
        Opportunity: related.opportunities,
        Ticket: related.tickets,
        User: [u.pk for u in portal_users],
        PortalAccount: [u.pk for u in portal_users],
    }
    for model, pks in models.items():
        content_type = ContentType.objects.get_for_model(model)
        for chunk in _chunks(pks):
            LogEntry.objects.filter(content_type=content_type, object_id__in=[str(pk) for pk in chunk]).update(
                object_repr=ERASED_TEXT, change_message=""
            )
    for condition in _contains_chunks(("object_repr", "change_message"), needles):
        LogEntry.objects.filter(condition).update(object_repr=ERASED_TEXT, change_message="")
    return changed


def _erase_data_requests(ids: list[int]) -> None:
    DataRequest.objects.filter(customer_id__in=ids).update(details="", decision_reason="")


__all__ = [
    "EXPORT_FORMATS",
    "PSEUDONYM",
    "ErasureScope",
    "ExportedCopy",
    "PrivacyError",
    "consent_record",
    "consent_withdrawn",
    "current_consents",
    "customer_data",
    "customer_erase",
    "customer_export",
    "data_request_approve",
    "data_request_complete",
    "data_request_file",
    "data_request_refuse",
    "has_consent",
    "marketing_excluded",
    "needs_sensitive_consent",
]
