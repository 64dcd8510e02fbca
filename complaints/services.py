"""Writes of the complaints module: filing a ticket, automatic assignment, the status flow, replies
and internal notes, ratings, files, the SLA job and the 售后中 (after-sales) round trip.

Views (the desk and the portal) only call these. Each write runs in one transaction: a refusal
(TicketError, whose text is a message for the user in their language) leaves nothing half-written.

Locks, always taken in this order so that two writers never wait on each other in a circle:
the eligible agents' user rows (automatic assignment), the ticket row (every change of an existing
ticket), the customer row (the 售后中 round trip, through customers.services.customer_change_status).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import CharField, Count, Exists, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Cast, Coalesce, Concat, Greatest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cims import webhooks
from cims.crypto import decrypt_bytes, encrypt_bytes
from complaints.models import Ticket, TicketAttachment, TicketAttachmentContent, TicketCategory, TicketEvent
from customers.attachments import Inspected

logger = logging.getLogger(__name__)

S = Ticket.Status
E = TicketEvent.Kind

# --- The status flow (the one table) -------------------------------------------------------------

# from → the statuses it may change to. 已关闭 is final.
FLOW: dict[str, frozenset[str]] = {
    S.NEW: frozenset({S.ASSIGNED, S.IN_PROGRESS}),
    S.ASSIGNED: frozenset({S.IN_PROGRESS}),
    S.IN_PROGRESS: frozenset({S.RESOLVED}),
    S.RESOLVED: frozenset({S.CLOSED, S.IN_PROGRESS}),  # → 处理中 is 重新打开 (reopen)
    S.CLOSED: frozenset(),
}
# The steps a customer may take themselves (portal or rating link): reopen, or confirm and close.
CUSTOMER_STEPS: frozenset[tuple[str, str]] = frozenset({(S.RESOLVED, S.IN_PROGRESS), (S.RESOLVED, S.CLOSED)})
# Reopening must say why.
COMMENT_REQUIRED: frozenset[tuple[str, str]] = frozenset({(S.RESOLVED, S.IN_PROGRESS)})
# What the buttons say for each step.
STEP_LABELS: dict[tuple[str, str], str] = {
    (S.NEW, S.ASSIGNED): gettext_lazy("Mark assigned"),
    (S.NEW, S.IN_PROGRESS): gettext_lazy("Start work"),
    (S.ASSIGNED, S.IN_PROGRESS): gettext_lazy("Start work"),
    (S.IN_PROGRESS, S.RESOLVED): gettext_lazy("Resolve"),
    (S.RESOLVED, S.CLOSED): gettext_lazy("Close"),
    (S.RESOLVED, S.IN_PROGRESS): gettext_lazy("Reopen"),
}

BODY_MAX = 10_000  # characters of a reply, note or status comment
RATING_COMMENT_MAX = 2_000
FILES_MAX = 5  # files per filing or reply
RATING_SALT = "complaints.rating-link"
RATING_MAX_AGE = datetime.timedelta(days=30)
# The SLA job handles at most this many tickets of each kind per run (every 5 minutes); the rest
# follow in the next runs, so a backlog never makes one run take minutes.
SLA_BATCH = 2_000
FOLLOW_UP_TIME = datetime.time(10, 0)  # the owner's 回访 task falls due at 10:00 the next day


class TicketError(Exception):
    """A refused ticket write; ``str(error)`` is a message for the user, in their language."""


def _labels(choices) -> dict[str, str]:
    return dict(choices)


def _check_text(value: str, *, field: str, limit: int, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise TicketError(_("Fill in the %(field)s.") % {"field": field})
    if len(value) > limit:
        raise TicketError(_("The %(field)s may be at most %(limit)d characters.") % {"field": field, "limit": limit})
    return value


def _actor(by, by_customer: bool):
    # Events name staff; the customer is by_customer with no actor (portal user or rating link).
    return None if by_customer else by


def _site_link(path: str) -> str:
    base = settings.SITE_URL.rstrip("/")
    return f"{base}{path}" if base else path


# --- Files ---------------------------------------------------------------------------------------


def _aad(attachment_id: int) -> str:
    # Bound to the row, and distinct from the customer archive's "attachment:<id>": bytes copied
    # between the two tables, or onto another ticket file, do not decrypt.
    return f"ticket-attachment:{attachment_id}"


def _inspect(filename: str, data: bytes):
    from customers.attachments import inspect_file

    try:
        return inspect_file(bytes(data), filename)
    except ValidationError as error:
        raise TicketError(" ".join(error.messages)) from None


def _inspect_all(files: Iterable[tuple[str, bytes]]) -> list[tuple[Inspected, bytes]]:
    """Every file checked before anything is written (one bad file refuses the whole step)."""
    files = list(files or ())
    if len(files) > FILES_MAX:
        raise TicketError(_("At most %(limit)d files can be attached at once.") % {"limit": FILES_MAX})
    return [(_inspect(filename, data), data) for filename, data in files]


def ticket_attachment_add(
    *, ticket: Ticket, filename: str, data: bytes, by, event: TicketEvent | None = None, internal: bool = False
) -> TicketAttachment:
    """Keep ``data`` with ``ticket``: checked like the customer archive's files, stored encrypted."""
    return _store(ticket, _inspect(filename, data), data, by=by, event=event, internal=internal)


def _store(ticket: Ticket, inspected: Inspected, data: bytes, *, by, event=None, internal=False) -> TicketAttachment:
    """Store a file already checked (``inspected``): its row and its encrypted bytes."""
    with transaction.atomic():
        attachment = TicketAttachment.objects.create(
            ticket=ticket,
            event=event,
            internal=internal,
            filename=inspected.filename,
            content_type=inspected.file_type.content_type,
            size=inspected.size,
            sha256=inspected.sha256,
            uploaded_by=by,
        )
        TicketAttachmentContent.objects.create(
            attachment=attachment, data=encrypt_bytes(bytes(data), aad=_aad(attachment.pk))
        )
    return attachment


def ticket_attachment_bytes(attachment: TicketAttachment) -> bytes:
    sealed = TicketAttachmentContent.objects.values_list("data", flat=True).get(attachment_id=attachment.pk)
    return decrypt_bytes(bytes(sealed), aad=_aad(attachment.pk))


def ticket_attachment_contents_rotate(*, batch_size: int = 20, dry_run: bool = False) -> int:
    """Re-encrypt ticket files still under an older key of FIELD_ENCRYPTION_KEYS (for
    ``manage.py rotate_field_keys``), as the customer archive's files are."""
    from customers.attachments import blobs_rotate

    return blobs_rotate(TicketAttachmentContent, aad=_aad, batch_size=batch_size, dry_run=dry_run)


# --- Automatic assignment ------------------------------------------------------------------------


def _desk_staff() -> QuerySet:
    """Active users who work the whole desk: they may change tickets and see the team's queue
    (service staff, managers). A sales rep also changes tickets, but only their customers' — a
    ticket handed to one would vanish from their view."""
    from accounts.models import User

    backend = "django.contrib.auth.backends.ModelBackend"
    workers = User.objects.with_perm("complaints.change_ticket", is_active=True, backend=backend)
    return workers.filter(
        pk__in=User.objects.with_perm("complaints.view_all_tickets", is_active=True, backend=backend).values("pk")
    )


def eligible_agents(category: TicketCategory) -> QuerySet:
    """The category's agents who may work tickets: active desk staff (``_desk_staff``)."""
    return category.agents.filter(is_active=True, pk__in=_desk_staff().values("pk"))


def assignees() -> QuerySet:
    """Everyone a ticket may be assigned to by hand (the assign form's choices)."""
    return _desk_staff().order_by("name", "username")


def _pick_agent(category: TicketCategory):
    """The eligible agent with the fewest open tickets; on a tie, the one whose newest ticket is
    the oldest (never assigned first), then the lowest id: round robin, deterministic.

    The agents' rows are locked first (in id order), and only then counted in a second statement
    with a fresh snapshot: two tickets filed at once queue here, and the second counts the first.
    """
    from accounts.models import User

    ids = list(
        User.objects.select_for_update()
        .filter(pk__in=eligible_agents(category).values("pk"))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not ids:
        return None
    open_count = (
        Ticket.objects.filter(assignee=OuterRef("pk"), status__in=Ticket.OPEN_STATUSES)
        .order_by()
        .values("assignee")
        .annotate(n=Count("pk"))
        .values("n")
    )
    # The newest ticket each agent holds: one probe of the (assignee, status, -id) index per status.
    newest = [
        Coalesce(
            Subquery(Ticket.objects.filter(assignee=OuterRef("pk"), status=status).order_by("-id").values("id")[:1]),
            Value(0),
        )
        for status in S.values
    ]
    ranked = (
        User.objects.filter(pk__in=ids)
        .annotate(open_tickets=Coalesce(Subquery(open_count), Value(0)), newest_ticket=Greatest(*newest))
        .order_by("open_tickets", "newest_ticket", "pk")
    )
    return ranked.first()


def _notify_assignee(ticket: Ticket, user, *, key: str) -> None:
    from followups.reminders import notify

    if user is None or not user.is_active:
        return
    with translation.override(settings.LANGUAGE_CODE):
        notify(
            user=user,
            key=key,
            title=_("Ticket %(number)s assigned to you") % {"number": ticket.number},
            body=f"{ticket.get_severity_display()} · {ticket.subject}",
            url=reverse("complaints:detail", args=[ticket.number]),
        )


# --- 售后中: while a complaint is open ------------------------------------------------------------


def _lock_customer(ticket: Ticket):
    from customers.models import Customer

    return Customer.all_objects.select_for_update().get(pk=ticket.customer_id)


def _after_sales_enter(ticket: Ticket) -> None:
    """An open complaint: the customer is 售后中 (from whatever status they were in)."""
    from customers.models import Customer
    from customers.services import customer_change_status

    customer = _lock_customer(ticket)
    if customer.status == Customer.Status.AFTER_SALES:
        return
    with translation.override(settings.LANGUAGE_CODE):
        reason = _("Complaint %(number)s") % {"number": ticket.number}
    customer_change_status(customer=customer, to=Customer.Status.AFTER_SALES, by=None, reason=reason, system=True)


def _after_sales_leave(ticket: Ticket, *, by) -> None:
    """The customer's last open complaint is settled: back to the status before 售后中 (unless a
    person moved them elsewhere meanwhile), and a 回访 task for the owner (售后 → 销售)."""
    from customers.models import Customer, StatusChange
    from customers.services import customer_change_status
    from followups.reminders import task_create

    customer = _lock_customer(ticket)
    still_open = Ticket.objects.open().filter(customer_id=customer.pk, kind=Ticket.Kind.COMPLAINT).exclude(pk=ticket.pk)
    if still_open.exists():
        return
    with translation.override(settings.LANGUAGE_CODE):
        reason = _("Complaint %(number)s resolved") % {"number": ticket.number}
        title = _("Follow-up: complaint %(number)s resolved") % {"number": ticket.number}
    if customer.status == Customer.Status.AFTER_SALES:
        before = (
            StatusChange.objects.filter(customer_id=customer.pk, to_status=Customer.Status.AFTER_SALES)
            .order_by("-changed_at", "-id")
            .values_list("from_status", flat=True)
            .first()
        )
        if before and before != Customer.Status.AFTER_SALES:
            customer_change_status(customer=customer, to=before, by=None, reason=reason, system=True)
    owner = customer.owner
    if owner is not None and owner.is_active:
        from followups.services import _zone  # the app's one Asia/Shanghai day rule

        zone = _zone()
        tomorrow = timezone.localdate(timezone.now(), zone) + datetime.timedelta(days=1)
        task_create(
            title=title[:200],
            due_at=datetime.datetime.combine(tomorrow, FOLLOW_UP_TIME, tzinfo=zone),
            assignee=owner,
            by=by,
            customer=customer,
        )


# --- Filing --------------------------------------------------------------------------------------


def _sla_due(created_at: datetime.datetime, severity: str) -> datetime.datetime:
    return created_at + datetime.timedelta(hours=settings.SLA_HOURS[severity])


def ticket_file(
    *,
    customer,
    by,
    kind: str,
    category: TicketCategory,
    severity: str,
    channel: str,
    subject: str,
    description: str,
    contact=None,
    opportunity=None,
    by_customer: bool = False,
    files: Iterable[tuple[str, bytes]] = (),
) -> Ticket:
    """File a ticket for ``customer``: numbered, due by its severity's SLA, assigned automatically
    to the category's agent with the fewest open tickets (or left 新建 in the queue when the category
    has none), with its files; a complaint moves the customer to 售后中."""
    if kind not in Ticket.Kind.values:
        raise TicketError(_("Choose the kind of ticket."))
    if severity not in Ticket.Severity.values:
        raise TicketError(_("Choose a severity."))
    if channel not in Ticket.Channel.values:
        raise TicketError(_("Choose how the ticket came in."))
    if category is None or not category.is_active:
        raise TicketError(_("Choose a category."))
    subject = _check_text(subject, field=_("subject"), limit=Ticket._meta.get_field("subject").max_length)
    description = _check_text(description, field=_("description"), limit=BODY_MAX)
    if getattr(customer, "deleted_at", None) or getattr(customer, "erased_at", None):
        raise TicketError(_("Tickets cannot be filed for a deleted or erased customer."))
    if contact is not None and contact.customer_id != customer.pk:
        raise TicketError(_("The contact belongs to another customer."))
    if opportunity is not None and opportunity.customer_id != customer.pk:
        raise TicketError(_("The opportunity belongs to another customer."))
    files = _inspect_all(files)

    with transaction.atomic():
        agent = _pick_agent(category)
        now = timezone.now()
        ticket = Ticket(
            customer=customer,
            kind=kind,
            category=category,
            severity=severity,
            channel=channel,
            subject=subject,
            description=description,
            contact=contact,
            opportunity=opportunity,
            created_by=by,
            created_at=now,
            sla_due_at=_sla_due(now, severity),
        )
        ticket._history_user = by
        ticket.save()
        created = TicketEvent.objects.create(
            ticket=ticket, kind=E.CREATED, to_status=S.NEW, actor=_actor(by, by_customer), by_customer=by_customer
        )
        for inspected, data in files:
            _store(ticket, inspected, data, by=by, event=created)
        if agent is not None:
            ticket.assignee = agent
            ticket.status = S.ASSIGNED
            ticket._history_user = None
            ticket.save(update_fields=["assignee", "status", "updated_at"])
            TicketEvent.objects.create(
                ticket=ticket,
                kind=E.ASSIGNED,
                from_status=S.NEW,
                to_status=S.ASSIGNED,
                internal=True,
                body=agent.display_name,
            )
            _notify_assignee(ticket, agent, key=f"ticket:{ticket.pk}:assigned:{agent.pk}")
        if kind == Ticket.Kind.COMPLAINT:
            _after_sales_enter(ticket)
        webhooks.emit("complaint.created", payload_for=lambda: webhooks.ticket_data(ticket))
    return ticket


# --- Assignment by hand --------------------------------------------------------------------------


def _lock(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_for_update().select_related("customer").get(pk=ticket.pk)


def ticket_assign(*, ticket: Ticket, to, by, comment: str = "") -> Ticket:
    """A service lead hands ``ticket`` to ``to`` (any active service staff member)."""
    if not by.has_perm("complaints.assign_ticket"):
        raise TicketError(_("You may not reassign tickets."))
    if to is None or not _desk_staff().filter(pk=to.pk).exists():
        raise TicketError(_("Tickets can only be assigned to active service staff."))
    comment = _check_text(comment, field=_("comment"), limit=BODY_MAX, required=False)
    with transaction.atomic():
        locked = _lock(ticket)
        if locked.status == S.CLOSED:
            raise TicketError(_("A closed ticket cannot be reassigned."))
        if locked.assignee_id == to.pk:
            raise TicketError(_("The ticket is already assigned to %(name)s.") % {"name": to.display_name})
        before = locked.status
        locked.assignee = to
        fields = ["assignee", "updated_at"]
        if before == S.NEW:
            locked.status = S.ASSIGNED
            fields.append("status")
        locked._history_user = by
        locked.save(update_fields=fields)
        body = to.display_name + (f"\n{comment}" if comment else "")
        event = TicketEvent.objects.create(
            ticket=locked,
            kind=E.ASSIGNED,
            from_status=before if before != locked.status else "",
            to_status=locked.status if before != locked.status else "",
            actor=by,
            internal=True,
            body=body,
        )
        _notify_assignee(locked, to, key=f"ticket:{locked.pk}:assigned:{to.pk}:{event.pk}")
    return locked


# --- The status flow -----------------------------------------------------------------------------


def steps_for(ticket: Ticket, *, by_customer: bool = False) -> list[tuple[str, str]]:
    """(target status, button label) of the steps allowed now, in the flow's order."""
    targets = FLOW.get(ticket.status, frozenset())
    steps = []
    for value in S.values:
        if value not in targets:
            continue
        if by_customer and (ticket.status, value) not in CUSTOMER_STEPS:
            continue
        if value == S.ASSIGNED and not ticket.assignee_id:
            continue
        steps.append((value, str(STEP_LABELS[(ticket.status, value)])))
    return steps


def ticket_transition(*, ticket: Ticket, to: str, by=None, by_customer: bool = False, comment: str = "") -> Ticket:
    """Move ``ticket`` along the flow (FLOW): a STATUS event with the comment; timestamps; the
    customer told on resolution (with a rating link); 售后中 left when the last open complaint is
    resolved and entered again when one is reopened."""
    labels = _labels(S.choices)
    if to not in labels:
        raise TicketError(_("“%(status)s” is not a ticket status.") % {"status": to})
    if not by_customer and (by is None or not by.has_perm("complaints.change_ticket")):
        raise TicketError(_("You may not change this ticket."))
    comment = _check_text(comment, field=_("comment"), limit=BODY_MAX, required=False)
    with transaction.atomic():
        locked = _lock(ticket)
        current = locked.status
        step = (current, to)
        if to == current:
            raise TicketError(_("The ticket is already “%(status)s”.") % {"status": labels[to]})
        if current == S.CLOSED:
            raise TicketError(_("The ticket is closed; a closed ticket cannot change any more."))
        if to not in FLOW[current] or (by_customer and step not in CUSTOMER_STEPS):
            raise TicketError(
                _("A ticket cannot go from “%(from)s” to “%(to)s”.") % {"from": labels[current], "to": labels[to]}
            )
        if step in COMMENT_REQUIRED and not comment:
            raise TicketError(_("Say why the ticket is reopened."))
        if to == S.ASSIGNED and not locked.assignee_id:
            raise TicketError(_("Assign the ticket to someone first."))

        now = timezone.now()
        fields = ["status", "updated_at"]
        if current == S.NEW and to == S.IN_PROGRESS and not locked.assignee_id and not by_customer:
            locked.assignee = by  # whoever starts an unassigned ticket takes it
            fields.append("assignee")
        if to == S.RESOLVED:
            locked.resolved_at = now
            fields.append("resolved_at")
        elif to == S.CLOSED:
            locked.closed_at = now
            fields.append("closed_at")
        elif current == S.RESOLVED:  # reopened
            locked.resolved_at = None
            fields.append("resolved_at")
        locked.status = to
        locked._history_user = by
        locked.save(update_fields=fields)
        event = TicketEvent.objects.create(
            ticket=locked,
            kind=E.STATUS,
            from_status=current,
            to_status=to,
            actor=_actor(by, by_customer),
            by_customer=by_customer,
            body=comment,
            created_at=now,
        )
        if locked.kind == Ticket.Kind.COMPLAINT:
            was_open, is_open = current in Ticket.OPEN_STATUSES, to in Ticket.OPEN_STATUSES
            if was_open and not is_open:
                _after_sales_leave(locked, by=None if by_customer else by)
            elif is_open and not was_open:
                _after_sales_enter(locked)
        if to == S.RESOLVED:
            transaction.on_commit(lambda: _tell_customer_resolved(locked))
            webhooks.emit("complaint.resolved", payload_for=lambda: webhooks.ticket_data(locked))
        if by_customer and locked.assignee_id:
            from followups.reminders import notify

            with translation.override(settings.LANGUAGE_CODE):
                notify(
                    user=locked.assignee,
                    key=f"ticket:{locked.pk}:customer-status:{event.pk}",
                    title=_("The customer changed ticket %(number)s to “%(status)s”")
                    % {"number": locked.number, "status": labels[to]},
                    body=comment[:500],
                    url=reverse("complaints:detail", args=[locked.number]),
                )
    return locked


def _customer_address(ticket: Ticket) -> str:
    from accounts.models import PortalAccount

    email = ticket.customer.email or ""
    if not email:
        account = PortalAccount.objects.filter(customer_id=ticket.customer_id).select_related("user").first()
        email = account.user.email if account and account.user.is_active else ""
    return email


def _tell_customer_resolved(ticket: Ticket) -> bool:
    """E-mail the customer that ``ticket`` is resolved, with a link to rate it. After the commit;
    a mail server failure is logged, never the user's problem."""
    try:
        email = _customer_address(ticket)
        if not email:
            return False
        link = _site_link(reverse("portal:rate_link", args=[rating_token(ticket)]))
        values = {"name": ticket.customer.name, "number": ticket.number, "subject": ticket.subject, "link": link}
        with translation.override(settings.LANGUAGE_CODE):
            subject = _("Your ticket %(number)s is resolved") % values
            body = (
                _(
                    "Hello %(name)s,\n\n"
                    "your ticket %(number)s “%(subject)s” has been resolved.\n"
                    "Please tell us how satisfied you are (1–5), here:\n\n%(link)s\n\n"
                    "If the problem is not solved, you can reopen the ticket in the customer portal.\n"
                )
                % values
            )
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [email], fail_silently=False)
    except Exception as exc:  # noqa: BLE001 - the resolution stands; the portal shows the rating form too
        # No traceback: an SMTP refusal quotes the recipient, personal data kept encrypted at rest.
        logger.error("resolution e-mail for ticket %s failed: %s", ticket.pk, type(exc).__name__)
        return False
    return True


# --- Replies and internal notes ------------------------------------------------------------------


def ticket_comment(
    *,
    ticket: Ticket,
    body: str,
    by=None,
    by_customer: bool = False,
    internal: bool = False,
    files: Iterable[tuple[str, bytes]] = (),
) -> TicketEvent:
    """A reply the customer sees, or (``internal``) a note they never see, with files."""
    if by_customer and internal:
        raise TicketError(_("Customers cannot write internal notes."))
    if not by_customer and (by is None or not by.has_perm("complaints.add_ticketevent")):
        raise TicketError(_("You may not write on this ticket."))
    body = _check_text(body, field=_("message"), limit=BODY_MAX)
    files = _inspect_all(files)
    with transaction.atomic():
        locked = _lock(ticket)
        if locked.status == S.CLOSED and not internal:
            raise TicketError(_("The ticket is closed; replies are no longer possible."))
        now = timezone.now()
        event = TicketEvent.objects.create(
            ticket=locked,
            kind=E.NOTE if internal else E.REPLY,
            actor=_actor(by, by_customer),
            by_customer=by_customer,
            internal=internal,
            body=body,
            created_at=now,
        )
        for inspected, data in files:
            _store(locked, inspected, data, by=by, event=event, internal=internal)
        if not by_customer and not internal and locked.first_response_at is None:
            locked.first_response_at = now
            locked._history_user = by
            locked.save(update_fields=["first_response_at", "updated_at"])
        if by_customer and locked.assignee_id:
            from followups.reminders import notify

            with translation.override(settings.LANGUAGE_CODE):
                notify(
                    user=locked.assignee,
                    key=f"ticket:{locked.pk}:reply:{event.pk}",
                    title=_("The customer replied on ticket %(number)s") % {"number": locked.number},
                    body=body[:500],
                    url=reverse("complaints:detail", args=[locked.number]),
                )
    return event


def customer_events(ticket: Ticket) -> QuerySet:
    """The timeline the customer may see: everything but internal notes and system events."""
    return ticket.events.filter(internal=False).order_by("created_at", "id")


def customer_attachments(ticket: Ticket) -> QuerySet:
    """The files the customer may see and download (not those of internal notes)."""
    return ticket.attachments.filter(internal=False).order_by("uploaded_at", "id")


# --- Ratings -------------------------------------------------------------------------------------


def ticket_rate(*, ticket: Ticket, rating, comment: str = "", by=None, by_customer: bool = True) -> Ticket:
    """The customer's satisfaction (1–5 and a comment) with a resolved or closed ticket, once."""
    try:
        value = int(rating)
    except (TypeError, ValueError):
        value = 0
    if isinstance(rating, bool) or not 1 <= value <= 5 or str(rating).strip() not in {str(value), f"{value}.0"}:
        raise TicketError(_("Give a rating from 1 to 5."))
    comment = _check_text(comment, field=_("comment"), limit=RATING_COMMENT_MAX, required=False)
    with transaction.atomic():
        locked = _lock(ticket)
        if locked.status not in (S.RESOLVED, S.CLOSED):
            raise TicketError(_("A ticket can be rated once it is resolved."))
        if locked.rating is not None:
            raise TicketError(_("This ticket has already been rated."))
        now = timezone.now()
        locked.rating, locked.rating_comment, locked.rated_at = value, comment, now
        locked._history_user = by
        locked.save(update_fields=["rating", "rating_comment", "rated_at", "updated_at"])
        TicketEvent.objects.create(
            ticket=locked,
            kind=E.RATED,
            actor=_actor(by, by_customer),
            by_customer=by_customer,
            body=f"{value}/5" + (f"\n{comment}" if comment else ""),
            created_at=now,
        )
    return locked


def rating_token(ticket: Ticket) -> str:
    """A link token that rates ``ticket`` without logging in (e-mailed on resolution), 30 days."""
    return signing.dumps({"t": ticket.pk, "n": ticket.number}, salt=RATING_SALT, compress=True)


def ticket_for_rating_token(token: str) -> Ticket | None:
    """The ticket of a rating token, or None when it is damaged, forged or older than 30 days."""
    try:
        payload = signing.loads(token or "", salt=RATING_SALT, max_age=RATING_MAX_AGE)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("t"), int):
        return None
    return Ticket.objects.filter(pk=payload["t"], number=payload.get("n")).select_related("customer").first()


# --- SLA -----------------------------------------------------------------------------------------


def sla_state(ticket: Ticket, now: datetime.datetime | None = None) -> str:
    """ "ok", "due_soon" (within SLA_WARNING_HOURS), "breached", or "" (not open, or no due time)."""
    if ticket.status not in Ticket.OPEN_STATUSES or ticket.sla_due_at is None:
        return ""
    now = now or timezone.now()
    if ticket.sla_due_at <= now:
        return "breached"
    if ticket.sla_due_at - now <= datetime.timedelta(hours=settings.SLA_WARNING_HOURS):
        return "due_soon"
    return "ok"


def sla_warning_key(ticket_id: int) -> str:
    return f"ticket:{ticket_id}:sla-warning"


def sla_escalation_key(ticket_id: int) -> str:
    return f"ticket:{ticket_id}:sla-breached"


def _managers():
    from accounts.models import User
    from accounts.roles import MANAGER

    return list(User.objects.filter(groups__name=MANAGER, is_active=True).distinct().order_by("pk"))


def check_sla(now: datetime.datetime | None = None) -> int:
    """Warn assignees of open tickets due within SLA_WARNING_HOURS (once per ticket and assignee),
    escalate breached ones once (escalated_at, an internal ESCALATED event, the managers and the
    assignee notified). Running twice, or two workers at once, acts once. Returns how many tickets
    this run acted on."""
    from followups.models import Notification
    from followups.reminders import notify

    now = now or timezone.now()
    acted = 0
    warned = Notification.objects.filter(
        user_id=OuterRef("assignee_id"), key=_key_expr("ticket:", OuterRef("pk"), ":sla-warning")
    )
    due_soon = (
        Ticket.objects.open()
        .filter(
            sla_due_at__gt=now,
            sla_due_at__lte=now + datetime.timedelta(hours=settings.SLA_WARNING_HOURS),
            assignee__isnull=False,
        )
        .exclude(Exists(warned))
        .select_related("assignee")
        .order_by("sla_due_at", "pk")[:SLA_BATCH]
    )
    with translation.override(settings.LANGUAGE_CODE):
        for ticket in due_soon:
            due = timezone.localtime(ticket.sla_due_at)
            created = notify(
                user=ticket.assignee,
                key=sla_warning_key(ticket.pk),
                title=_("Ticket %(number)s is due by %(when)s") % {"number": ticket.number, "when": f"{due:%H:%M}"},
                body=ticket.subject,
                url=reverse("complaints:detail", args=[ticket.number]),
            )
            acted += created is not None

        breached = list(
            Ticket.objects.open()
            .filter(sla_due_at__lte=now, escalated_at__isnull=True)
            .order_by("sla_due_at", "pk")
            .values_list("pk", flat=True)[:SLA_BATCH]
        )
        managers = _managers() if breached else []
        for pk in breached:
            acted += _escalate(pk, now=now, managers=managers, notify=notify)
    return acted


def _key_expr(prefix: str, pk, suffix: str):
    """sla_warning_key() in SQL, to skip the tickets already warned about in the same query."""
    return Concat(Value(prefix), Cast(pk, CharField()), Value(suffix), output_field=CharField())


def _escalate(pk: int, *, now, managers, notify) -> int:
    with transaction.atomic():
        ticket = (
            Ticket.objects.select_for_update(of=("self",))
            .select_related("assignee")
            .filter(pk=pk, escalated_at__isnull=True, status__in=Ticket.OPEN_STATUSES)
            .first()
        )
        if ticket is None:  # another run escalated it, or it was resolved meanwhile
            return 0
        ticket.escalated_at = now
        ticket._history_user = None
        ticket.save(update_fields=["escalated_at", "updated_at"])
        due = timezone.localtime(ticket.sla_due_at)
        TicketEvent.objects.create(
            ticket=ticket,
            kind=E.ESCALATED,
            internal=True,
            body=_("Past its due time (%(when)s).") % {"when": f"{due:%Y-%m-%d %H:%M}"},
            created_at=now,
        )
        title = _("Ticket %(number)s is overdue") % {"number": ticket.number}
        assignee = ticket.assignee.display_name if ticket.assignee else _("nobody")
        body = _("%(subject)s · assigned to %(assignee)s") % {"subject": ticket.subject, "assignee": assignee}
        url = reverse("complaints:detail", args=[ticket.number])
        recipients = {user.pk: user for user in managers}
        if ticket.assignee and ticket.assignee.is_active:
            recipients[ticket.assignee.pk] = ticket.assignee
        for user in recipients.values():
            notify(user=user, key=sla_escalation_key(ticket.pk), title=title, body=body, url=url)
    return 1


__all__ = [
    "COMMENT_REQUIRED",
    "CUSTOMER_STEPS",
    "FLOW",
    "TicketError",
    "assignees",
    "check_sla",
    "customer_attachments",
    "customer_events",
    "eligible_agents",
    "rating_token",
    "sla_state",
    "steps_for",
    "ticket_assign",
    "ticket_attachment_add",
    "ticket_attachment_bytes",
    "ticket_attachment_contents_rotate",
    "ticket_comment",
    "ticket_file",
    "ticket_for_rating_token",
    "ticket_rate",
    "ticket_transition",
]
