"""The change history of every audited record (审计 · 变更历史): search, page, diff and mask.

Every model with a django-simple-history ``history`` is searched; the list is found at run time
(``audited_models``), so a model that gains a history later is searched without a change here.

A page is bounded whatever the size of the history tables: each model's table gives at most one
page plus one of its newest rows past the cursor (an index on ``history_date`` serves it), the
rows are merged in Python in the order (time, model, history id) newest first, and only the rows
of the page and their predecessors are then read whole — one more query per model on the page.
Each row's predecessor (the previous history row of the same object, what a change is diffed
against) is found by a correlated subquery in the first query, not by a query per row.

What a change shows goes through the customer history page's display (``customers.views``):
the same diff, labels and formatting, with two differences that suit an audit page read by
people who need not see anyone's data: personal and sensitive fields are always masked, whatever
the viewer's role, and secret fields (hashes, keys, salts, tokens, blind indexes, encrypted fields
we have no mask for) are never shown at all.
"""

from __future__ import annotations

import datetime
import functools
import re
from dataclasses import dataclass, field

from django.apps import apps
from django.core import signing
from django.db import models
from django.db.models import OuterRef, Q, Subquery
from django.urls import NoReverseMatch, reverse

from cims import masking
from cims.crypto import BlindIndexField, EncryptedTextField
from cims.pagination import KeysetPage
from customers.access import REVEALABLE_FIELDS
from customers.views import _HistoryDisplay

PER_PAGE = 50
CURSOR_SALT = "cims.audit.history"
ACTIONS = ("+", "~", "-")

# A field whose name says it holds a secret is never shown, even if a model forgot to exclude it
# from its history (accounts.User and lottery.LotteryEvent do exclude theirs).
_SECRET_NAME = re.compile(r"password|secret|salt|token|api_?key|private_?key|_bidx$", re.IGNORECASE)


def audited_models() -> list[type[models.Model]]:
    """Every model that keeps a simple-history ``history``, by label."""
    found = [model for model in apps.get_models() if getattr(model._meta, "simple_history_manager_attribute", None)]
    return sorted(found, key=lambda model: model._meta.label_lower)


def audited_model(label: str) -> type[models.Model] | None:
    for model in audited_models():
        if model._meta.label_lower == label:
            return model
    return None


def is_secret_field(model_field: models.Field) -> bool:
    """Whether a history column must never reach the page: secrets, and encrypted values we cannot mask."""
    if isinstance(model_field, BlindIndexField) or _SECRET_NAME.search(model_field.name):
        return True
    return isinstance(model_field, EncryptedTextField) and model_field.name not in REVEALABLE_FIELDS


@functools.cache
def hidden_fields(model: type[models.Model]) -> frozenset[str]:
    """Names of ``model``'s fields a change list leaves out: secrets and many-to-many fields."""
    names = {f.name for f in model.history.model._meta.concrete_fields if is_secret_field(f)}
    names.update(f.name for f in model._meta.many_to_many)
    return frozenset(names)


def object_key(model: type[models.Model]) -> str:
    """The history column naming the object (``id``, or ``user_id`` for a one-to-one primary key)."""
    return model._meta.pk.attname


# --- Labels and links ------------------------------------------------------------------------------


def _customer_url(record) -> str:
    return reverse("customers:detail", args=[record.customer_id])


RECORD_URLS = {
    "customers.customer": lambda record: reverse("customers:detail", args=[record.id]),
    "customers.product": lambda record: reverse("customers:product_detail", args=[record.id]),
    "followups.campaign": lambda record: reverse("followups:campaign_detail", args=[record.id]),
    "complaints.ticket": lambda record: reverse("complaints:detail", args=[record.number]),
    "lottery.lotteryevent": lambda record: reverse("lottery:detail", args=[record.id]),
    "accounts.employee": lambda record: reverse("accounts:employee_edit", args=[record.id]),
    "accounts.department": lambda record: reverse("accounts:department_edit", args=[record.id]),
}


def record_url(model: type[models.Model], record) -> str:
    """Where the record can be opened: its own page, else its customer's 360 page, else nowhere."""
    if record.history_type == "-":
        return ""
    make = RECORD_URLS.get(model._meta.label_lower)
    if make is None and getattr(record, "customer_id", None):
        make = _customer_url
    if make is None:
        return ""
    try:
        return make(record)
    except (NoReverseMatch, AttributeError, TypeError):
        return ""


# Models whose ``name`` is a private person's: masked in labels and changes alike (张**).
MASKED_NAMES = {"customers.contact"}


def record_label(model: type[models.Model], record) -> str:
    """How people name the record: its code or number, else its name (a contact's masked)."""
    for name in ("code", "number", "username", "title", "name"):
        value = getattr(record, name, None)
        if value:
            if name == "name" and model._meta.label_lower in MASKED_NAMES:
                return masking.mask_name(str(value))
            return str(value)
    return ""


# --- The query -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryQuery:
    """What the change history is searched for; every part optional."""

    models: tuple = ()
    user_id: int | None = None
    object_id: int | None = None
    action: str = ""
    start: datetime.datetime | None = None
    end: datetime.datetime | None = None  # exclusive


def _filtered(model: type[models.Model], query: HistoryQuery):
    rows = model.history.model.objects.all()
    if query.user_id is not None:
        rows = rows.filter(history_user_id=query.user_id)
    if query.object_id is not None:
        rows = rows.filter(**{object_key(model): query.object_id})
    if query.action:
        rows = rows.filter(history_type=query.action)
    if query.start is not None:
        rows = rows.filter(history_date__gte=query.start)
    if query.end is not None:
        rows = rows.filter(history_date__lt=query.end)
    return rows


def encode_cursor(when: datetime.datetime, label: str, history_id: int) -> str:
    return signing.dumps([when.isoformat(), label, history_id], salt=CURSOR_SALT, compress=True)


def decode_cursor(token: str | None) -> tuple | None:
    """``(time, model label, history id)`` of a cursor, or None when it is missing or not ours."""
    if not token:
        return None
    try:
        when, label, history_id = signing.loads(token, salt=CURSOR_SALT)
        when = datetime.datetime.fromisoformat(when)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(label, str) or not isinstance(history_id, int) or isinstance(history_id, bool):
        return None
    return when, label, history_id


def _beyond(label: str, cursor: tuple, *, older: bool) -> Q:
    """Rows of model ``label`` past ``cursor`` in the order (time, label, history id): older or newer."""
    when, cursor_label, history_id = cursor
    if older:
        outer, strict, id_op = Q(history_date__lte=when), Q(history_date__lt=when), "lt"
        label_passes = label < cursor_label
    else:
        outer, strict, id_op = Q(history_date__gte=when), Q(history_date__gt=when), "gt"
        label_passes = label > cursor_label
    if label == cursor_label:
        return outer & (strict | Q(history_date=when, **{f"history_id__{id_op}": history_id}))
    return outer if label_passes else strict


def _previous_id(history_model, key: str) -> Subquery:
    """The history id of the row before this one for the same object (None for its first row)."""
    earlier = Q(history_date__lt=OuterRef("history_date")) | Q(
        history_date=OuterRef("history_date"), history_id__lt=OuterRef("history_id")
    )
    return Subquery(
        history_model.objects.filter(earlier, **{key: OuterRef(key)})
        .order_by("-history_date", "-history_id")
        .values("history_id")[:1]
    )


@dataclass
class AuditEntry:
    when: datetime.datetime
    history_id: int
    who: object
    model_label: str
    model_name: str
    object_id: object
    label: str
    url: str
    action: str
    reason: str
    changes: list[dict] = field(default_factory=list)


HIDDEN = object()


class AuditHistoryDisplay(_HistoryDisplay):
    """The customer history page's display, masking for everyone and leaving secrets out.

    The parent looks up the names of every foreign key of every row; here only the foreign keys
    that changed are looked up (a page of fifty rows across twenty models would otherwise ask
    about twenty related tables), and custom-field labels only when a custom field changed.
    """

    def __init__(self, user, pairs: list[tuple]):  # replaces the parent's __init__ (see the docstring)
        self.user = user
        wanted: dict[type, set] = {}
        custom = False
        for model, new, old in pairs:
            excluded = sorted(hidden_fields(model))
            for change in new.diff_against(old, excluded_fields=excluded).changes:
                if change.field == "custom_data":
                    custom = True
                    continue
                model_field = model._meta.get_field(change.field)
                if model_field.is_relation:
                    wanted.setdefault(model_field.related_model, set()).update(
                        value for value in (change.old, change.new) if value is not None
                    )
        if custom:
            from customers.models import CustomField

            self.custom_labels = dict(CustomField.objects.values_list("key", "label"))
        else:
            self.custom_labels = {}
        self.related = {
            model: {obj.pk: obj for obj in model._base_manager.filter(pk__in=ids)} for model, ids in wanted.items()
        }

    def value(self, model, name: str, value):
        if name in hidden_fields(model):
            return HIDDEN
        mask = REVEALABLE_FIELDS.get(name)
        if name == "name" and model._meta.label_lower in MASKED_NAMES:
            mask = masking.mask_name
        if mask is not None:
            return mask(str(value)) if value else "—"
        return super().value(model, name, value)

    def changes(self, model, new, old, tag_names: dict, tag_rows: dict) -> list[dict]:
        return [
            change
            for change in super().changes(model, new, old, tag_names, tag_rows)
            if change["old"] is not HIDDEN and change["new"] is not HIDDEN
        ]


def _customer_tags(history_ids: set) -> tuple[dict, dict]:
    """Tag ids of customer history rows and the tags' names (the tags change shows as one field)."""
    from customers.models import Customer, Tag

    through = Customer.history.model._meta.get_field("historicalcustomer_tags").related_model
    tag_rows: dict[int, set] = {}
    for history_id, tag_id in through.objects.filter(history_id__in=history_ids).values_list("history_id", "tag_id"):
        tag_rows.setdefault(history_id, set()).add(tag_id)
    tag_ids = set().union(*tag_rows.values()) if tag_rows else set()
    tag_names = dict(Tag.objects.filter(pk__in=tag_ids).values_list("pk", "name")) if tag_ids else {}
    return tag_names, tag_rows


def history_page(
    *, user, query: HistoryQuery, after: str = "", before: str = "", per_page: int = PER_PAGE
) -> tuple[KeysetPage, list[AuditEntry]]:
    """One page of the change history matching ``query``, newest first, and its entries."""
    after_cursor = decode_cursor(after)
    before_cursor = None if after_cursor else decode_cursor(before)
    cursor = after_cursor or before_cursor
    forward = before_cursor is None
    sign = "-" if forward else ""
    chosen = query.models or tuple(audited_models())

    light = []
    for model in chosen:
        label = model._meta.label_lower
        history_model = model.history.model
        rows = _filtered(model, query)
        if cursor is not None:
            rows = rows.filter(_beyond(label, cursor, older=forward))
        rows = (
            rows.annotate(previous_history_id=_previous_id(history_model, object_key(model)))
            .order_by(f"{sign}history_date", f"{sign}history_id")
            .values_list("history_date", "history_id", "history_type", "previous_history_id")[: per_page + 1]
        )
        light.extend((when, label, hid, kind, previous, model) for when, hid, kind, previous in rows)
    light.sort(key=lambda row: (row[0], row[1], row[2]), reverse=forward)
    more = len(light) > per_page
    light = light[:per_page]
    if not forward:
        light.reverse()

    if not light:
        return KeysetPage([], has_previous=bool(after_cursor), has_next=bool(before_cursor)), []

    # The whole rows of the page and of the rows each change is diffed against: one query a model.
    wanted: dict[type, set] = {}
    for _when, _label, hid, kind, previous, model in light:
        wanted.setdefault(model, set()).add(hid)
        if kind == "~" and previous is not None:
            wanted[model].add(previous)
    records: dict[tuple, object] = {}
    for model, ids in wanted.items():
        for record in model.history.model.objects.filter(history_id__in=ids).select_related("history_user"):
            records[(model, record.history_id)] = record

    from customers.models import Customer

    tag_names, tag_rows = {}, {}
    if Customer in wanted and any(row[5] is Customer and row[3] == "~" for row in light):
        tag_names, tag_rows = _customer_tags(wanted[Customer])

    pairs = []
    for _when, _label, hid, kind, previous, model in light:
        old = records.get((model, previous))
        if kind == "~" and old is not None:
            pairs.append((model, records[(model, hid)], old))
    display = AuditHistoryDisplay(user, pairs)

    entries = []
    for when, label, hid, kind, previous, model in light:
        record = records[(model, hid)]
        old = records.get((model, previous))
        changes = display.changes(model, record, old, tag_names, tag_rows) if kind == "~" and old else []
        entries.append(
            AuditEntry(
                when=when,
                history_id=hid,
                who=record.history_user,
                model_label=label,
                model_name=str(model._meta.verbose_name),
                object_id=getattr(record, object_key(model)),
                label=record_label(model, record),
                url=record_url(model, record),
                action=kind,
                reason=record.history_change_reason or "",
                changes=changes,
            )
        )

    has_next, has_previous = (more, after_cursor is not None) if forward else (True, more)
    first, last = light[0], light[-1]
    page = KeysetPage(
        entries,
        has_next=has_next,
        has_previous=has_previous,
        next_cursor=encode_cursor(last[0], last[1], last[2]) if has_next else "",
        previous_cursor=encode_cursor(first[0], first[1], first[2]) if has_previous else "",
    )
    return page, entries


EXPORT_BATCH = 500


def history_count(query: HistoryQuery) -> int:
    """How many history rows match ``query`` (for an export's access-log row): a count per model."""
    return sum(_filtered(model, query).count() for model in (query.models or tuple(audited_models())))


def iter_history(*, user, query: HistoryQuery, batch: int = EXPORT_BATCH):
    """Every entry matching ``query``, newest first, read a keyset page at a time (for exports)."""
    after = ""
    while True:
        page, entries = history_page(user=user, query=query, after=after, per_page=batch)
        yield from entries
        if not page.has_next:
            return
        after = page.next_cursor
