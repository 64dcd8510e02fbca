"""Writes of the customer archive that touch several rows or have side effects."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from cims import webhooks
from cims.crypto import blind_index
from cims.models import PersonalDataAccess, log_personal_data_access
from cims.normalize import normalize_email, normalize_id_number, normalize_phone
from customers.access import REVEALABLE_FIELDS, can_edit, get_customer_for
from customers.models import Contact, Customer, CustomerUserObjectPermission


class TransferError(Exception):
    pass


class RestoreError(Exception):
    pass


@transaction.atomic
def customer_save(
    *, customer: Customer, contacts: Iterable[Contact] = (), removed_contacts: Iterable[Contact] = (), by
) -> Customer:
    """Create or update a customer with its contacts, all or nothing."""
    webhooks.emit(
        "customer.created" if customer.pk is None else "customer.updated",
        payload_for=lambda: webhooks.customer_data(customer),
    )
    if customer.pk is None:
        customer.created_by = by
        if customer.owner_id is None:
            customer.owner = by
    customer._history_user = by
    customer.save()
    for contact in removed_contacts:
        # Only this customer's own contacts: a posted id of another customer's contact deletes nothing.
        if contact.pk and contact.customer_id == customer.pk:
            contact._history_user = by
            contact.delete()
    # The one-primary constraint must hold after every row: a primary contact not in the list is
    # demoted first, and the listed contacts are saved non-primary first (a primary demoted in the
    # form is saved before its successor). Saved one by one so that the history shows each change.
    contacts = sorted(contacts, key=lambda c: c.is_primary)
    if any(c.is_primary for c in contacts):
        listed = [c.pk for c in contacts if c.pk]
        for previous in Contact.objects.filter(customer=customer, is_primary=True).exclude(pk__in=listed):
            previous.is_primary = False
            previous._history_user = by
            previous.save(update_fields=["is_primary"])
    for contact in contacts:
        contact.customer = customer
        contact._history_user = by
        contact.save()
    return customer


@transaction.atomic
def contact_save(*, contact: Contact, by) -> Contact:
    """Create or update one contact of its customer, keeping one primary contact per customer.

    The customer row is locked (concurrent saves of two primaries queue behind each other) but not
    written: a contact saved on its own does not touch the customer, its history or its webhooks.
    """
    Customer.objects.select_for_update().filter(pk=contact.customer_id).values_list("pk", flat=True).first()
    if contact.is_primary:
        others = Contact.objects.filter(customer_id=contact.customer_id, is_primary=True)
        for previous in others.exclude(pk=contact.pk) if contact.pk else others:
            previous.is_primary = False
            previous._history_user = by
            previous.save(update_fields=["is_primary"])
    contact._history_user = by
    contact.save()
    return contact


def find_duplicates(*, name="", company="", phone="", mobile="", email="", id_number="", exclude_pk=None):
    """Existing customers (in the whole archive, not just the user's scope) that look like the same one.

    Matches on the blind index of each normalised phone, mobile, email or ID number, and on the
    same name at the same company. The caller decides what the user may learn about them.
    """
    q = Q()
    for value in {phone, mobile} - {""}:
        digest = blind_index("phone", value)
        q |= Q(phone_bidx=digest) | Q(mobile_bidx=digest)
    if email:
        q |= Q(email_bidx=blind_index("email", email))
    if id_number:
        q |= Q(id_number_bidx=blind_index("id_number", id_number))
    if name and company:
        q |= Q(name=name, company=company)
    if not q:
        return Customer.objects.none()
    queryset = Customer.objects.filter(q)
    if exclude_pk:
        queryset = queryset.exclude(pk=exclude_pk)
    return queryset


def exact_search(queryset, text: str):
    """Exact phone, email or ID number through the blind indexes (never by decrypting)."""
    text = text.strip()
    q = Q()
    for normalize, kinds in (
        (normalize_phone, [("phone", "phone_bidx"), ("phone", "mobile_bidx")]),
        (normalize_email, [("email", "email_bidx")]),
        (normalize_id_number, [("id_number", "id_number_bidx")]),
    ):
        try:
            value = normalize(text)
        except Exception:  # noqa: BLE001, S112 - not this kind of value; try the next
            continue
        if not value:
            continue  # an empty blind index would match every customer without that field
        for kind, column in kinds:
            q |= Q(**{column: blind_index(kind, value)})
    if not q:
        return None
    return queryset.filter(q)


@transaction.atomic
def customer_soft_delete(*, customer: Customer, by) -> None:
    customer.deleted_at = timezone.now()
    customer.deleted_by = by
    customer._history_user = by
    customer._change_reason = "deleted"
    customer.save(update_fields=["deleted_at", "deleted_by", "updated_at"])


@transaction.atomic
def customer_restore(*, customer: Customer, by) -> None:
    if customer.merged_into_id:
        # Its contacts, transactions and the rest moved to the survivor: restoring would bring back
        # an empty shell that still claims to be merged.
        raise RestoreError("A merged-away customer cannot be restored.")
    customer.deleted_at = None
    customer.deleted_by = None
    customer._history_user = by
    customer._change_reason = "restored"
    customer.save(update_fields=["deleted_at", "deleted_by", "updated_at"])


def _history_columns() -> list[str]:
    history_model = Customer.history.model
    skip = {"history_id", "history_date", "history_type", "history_user", "history_change_reason", "history_relation"}
    return [
        f.column
        for f in history_model._meta.concrete_fields
        if f.name not in skip and not f.name.startswith("history_")
    ]


@transaction.atomic
def customer_transfer(*, customer_ids: Iterable[int], to, by, reason: str = "") -> int:
    """Give customers to another owner: one set-based UPDATE, however many customers.

    In the same transaction: the object permissions the old owners held on these customers are
    removed (they no longer own them), and a history row per customer records the change with who
    and why, copied in SQL from the updated rows (ciphertext stays ciphertext).
    """
    if not by.has_perm("customers.transfer_customer"):
        raise TransferError("Only users with the transfer permission may change a customer's owner.")
    if not to.is_active or not to.has_perm("customers.change_customer"):
        raise TransferError("The new owner must be an active user who may edit customers.")
    ids = list(dict.fromkeys(int(pk) for pk in customer_ids))
    if not ids:
        return 0
    now = timezone.now()
    total = 0
    for start in range(0, len(ids), 5000):
        batch = ids[start : start + 5000]
        # Only customers within the actor's own reach move, whoever calls the service; a refusal in
        # any batch rolls back the earlier ones (the function is atomic).
        if Customer.objects.visible_to(by).filter(pk__in=batch).count() != len(batch):
            raise TransferError("Some of these customers are outside your reach; nothing was transferred.")
        old_owners = Customer.objects.filter(pk__in=batch).exclude(owner=to).values("pk", "owner_id")
        pairs = [(row["pk"], row["owner_id"]) for row in old_owners]
        moving = [pk for pk, _ in pairs]
        if not moving:
            continue
        for owner_id in {owner for _, owner in pairs if owner}:
            CustomerUserObjectPermission.objects.filter(
                user_id=owner_id, content_object_id__in=[pk for pk, owner in pairs if owner == owner_id]
            ).delete()
        total += Customer.objects.filter(pk__in=moving).update(owner=to, owner_since=now, updated_at=now)
        record_history_bulk(moving, history_type="~", by=by, reason=reason or "transfer", when=now)
    return total


def record_history_bulk(customer_ids: list[int], *, history_type: str, by, reason: str, when=None) -> None:
    """One django-simple-history row per customer, copied in SQL from the rows as they now are.

    For set-based writes (transfers, imports, merges) that bypass ``save()``: the history table
    gets what ``save()`` would have written, ciphertext staying ciphertext, tags included.
    ``history_type`` is "+" (created), "~" (changed) or "-" (deleted).
    """
    if not customer_ids:
        return
    from cims.api.history import with_token

    reason = with_token(reason) or ""  # a transfer made through the API names its token, as save() does
    history = Customer.history.model
    stamp = connection.ops.adapt_datetimefield_value(when or timezone.now())
    columns = _history_columns()
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    for start in range(0, len(customer_ids), 5000):
        batch = list(customer_ids[start : start + 5000])
        placeholders = ", ".join(["%s"] * len(batch))
        sql = (
            f"INSERT INTO {connection.ops.quote_name(history._meta.db_table)} "  # noqa: S608 - names from our models
            f"({quoted}, history_date, history_type, history_user_id, history_change_reason) "
            f"SELECT {quoted}, %s, %s, %s, %s FROM {connection.ops.quote_name(Customer._meta.db_table)} "
            f"WHERE id IN ({placeholders})"
        )
        # The stamp is adapted like the ORM does, so these rows sort and compare with the others
        # (SQLite stores text; a raw aware datetime would be written with an offset the ORM never writes).
        with connection.cursor() as cursor:
            cursor.execute(sql, [stamp, history_type, getattr(by, "pk", None), reason[:100], *batch])
            cursor.execute(*_tags_history_sql(batch, stamp, history_type))


def _tags_history_sql(customer_ids: list[int], stamp, history_type: str = "~") -> tuple[str, list]:
    """Copy each moved customer's tags into the m2m history of the rows just inserted.

    simple-history keeps the tags of every history row in a table of its own; a history row
    without them reads as "all tags removed" in the change history.
    """
    from django.apps import apps

    history = Customer.history.model
    tags_history = apps.get_model(history._meta.app_label, f"{history.__name__}_tags")
    through = Customer.tags.through
    q = connection.ops.quote_name
    placeholders = ", ".join(["%s"] * len(customer_ids))
    sql = (
        f"INSERT INTO {q(tags_history._meta.db_table)} (id, customer_id, tag_id, history_id) "  # noqa: S608 - names from our models
        f"SELECT t.id, t.customer_id, t.tag_id, h.history_id FROM {q(through._meta.db_table)} t "
        f"JOIN {q(history._meta.db_table)} h ON h.id = t.customer_id "
        f"WHERE h.history_date = %s AND h.history_type = %s AND h.id IN ({placeholders})"
    )
    return sql, [stamp, history_type, *customer_ids]


def customer_share(*, customer: Customer, user=None, group=None, can_edit_too: bool = False, by) -> None:
    """Share a customer read-only or editable with a colleague or a group (django-guardian grants)."""
    target = user or group
    if target is None:
        raise ValueError("share with a user or a group")
    with transaction.atomic():
        assign_perm("customers.view_customer", target, customer)
        if can_edit_too:
            assign_perm("customers.change_customer", target, customer)
        else:
            remove_perm("customers.change_customer", target, customer)
        if user is not None:
            # The share now owns the permission rows an access grant may have added: the grant's
            # end must not take them away with it.
            from customers.access_requests import grants_yield_to_share

            grants_yield_to_share(user=user, customer=customer, view=True, change=can_edit_too)


def customer_unshare(*, customer: Customer, user=None, group=None, by) -> None:
    target = user or group
    with transaction.atomic():
        remove_perm("customers.view_customer", target, customer)
        remove_perm("customers.change_customer", target, customer)


def customer_reveal_field(*, user, customer_pk: int, field: str, request=None) -> str:
    """The plaintext of one masked field of one customer, logged. Raises PermissionDenied/Http404."""
    from django.core.exceptions import PermissionDenied

    if field not in REVEALABLE_FIELDS:
        raise PermissionDenied("not a revealable field")
    if not user.has_perm("customers.reveal_sensitive_data"):
        raise PermissionDenied("no reveal permission")
    customer = get_customer_for(user, customer_pk)
    value = getattr(customer, field) or ""
    log_personal_data_access(
        user=user,
        action=PersonalDataAccess.Action.REVEAL,
        object_type="customers.customer",
        object_id=customer.pk,
        object_label=customer.code,
        field=field,
        request=request,
    )
    return value


@transaction.atomic
def customer_bulk_tag(*, customer_ids: Iterable[int], tag, by) -> int:
    """Add ``tag`` to several customers (a page's selection, bounded by the caller), all or nothing.

    Through ``tags.add`` one customer at a time so that each gets its history row with the tags
    as they now are; customers that already carry the tag are left alone (no empty history rows).
    """
    changed = 0
    for customer in Customer.objects.filter(pk__in=list(customer_ids)).exclude(tags=tag):
        customer._history_user = by
        customer.tags.add(tag)
        changed += 1
    return changed


@transaction.atomic
def customer_bulk_soft_delete(*, customer_ids: Iterable[int], by) -> int:
    """Move several customers (a page's selection, bounded by the caller) to the recycle bin."""
    customers = list(Customer.objects.filter(pk__in=list(customer_ids)))
    for customer in customers:
        customer_soft_delete(customer=customer, by=by)
    return len(customers)


__all__ = [
    "RestoreError",
    "TransferError",
    "can_edit",
    "customer_bulk_soft_delete",
    "customer_bulk_tag",
    "customer_reveal_field",
    "customer_restore",
    "customer_save",
    "customer_share",
    "customer_soft_delete",
    "customer_transfer",
    "customer_unshare",
    "exact_search",
    "find_duplicates",
    "record_history_bulk",
]


# --- Lifecycle status (客户状态) ----------------------------------------------------------------


class StatusChangeError(Exception):
    """A lifecycle change the flow (customers.lifecycle) refuses; the message is for the user."""


@transaction.atomic
def customer_change_status(*, customer: Customer, to: str, by, reason: str = "", system: bool = False):
    """Move ``customer`` to lifecycle status ``to``, as ``by``, for ``reason``.

    The customer row is locked first, so two changes at once are applied one after the other, each
    checked against the status the other left. The table in customers.lifecycle decides what is
    allowed; statuses in SYSTEM_ONLY (售后中) are set only by modules that pass ``system=True``.
    Returns the StatusChange row (a timeline event); ``customer.status`` is updated in place.
    """
    from django.utils.translation import gettext as _

    from customers import lifecycle
    from customers.models import StatusChange

    reason = (reason or "").strip()
    locked = Customer.all_objects.select_for_update().get(pk=customer.pk)
    current = locked.status
    labels = dict(Customer.Status.choices)
    if to not in labels:
        raise StatusChangeError(_("“%(status)s” is not a customer status.") % {"status": to})
    if to == current:
        raise StatusChangeError(_("The customer is already “%(status)s”.") % {"status": labels[to]})
    if to in lifecycle.SYSTEM_ONLY and not system:
        raise StatusChangeError(
            _("“%(status)s” is set and cleared by the complaints module, not by hand.") % {"status": labels[to]}
        )
    if not lifecycle.allowed(current, to, system=system):
        raise StatusChangeError(
            _("A customer cannot go from “%(from)s” to “%(to)s”.") % {"from": labels[current], "to": labels[to]}
        )
    if to in lifecycle.REASON_REQUIRED and not reason:
        raise StatusChangeError(_("Say why the customer becomes “%(status)s”.") % {"status": labels[to]})
    limit = StatusChange._meta.get_field("reason").max_length
    if len(reason) > limit:
        raise StatusChangeError(_("The reason may be at most %(limit)d characters.") % {"limit": limit})

    locked.status = to
    locked._history_user = by
    locked._change_reason = (reason or f"status: {current} → {to}")[:100]
    locked.save(update_fields=["status", "updated_at"])
    customer.status = to
    return StatusChange.objects.create(
        customer=locked, from_status=current, to_status=to, reason=reason, changed_by=by, changed_at=timezone.now()
    )


__all__ += ["StatusChangeError", "customer_change_status"]
