"""Duplicates already in the archive, and merging two customers into one.

Finding: one set-based query groups the alive customers the user may see by each key they can
share — the blind index of a phone number (the phone of one equal to the mobile of another counts),
of an e-mail, of an ID card number, or the same (already normalised) name at the same company —
``GROUP BY key HAVING COUNT(*) > 1``. Key groups with the same members (the same lowest
and highest id and size) are shown as one group with several reasons. A page of groups then fetches
its members with one windowed query per kind of key, at most ``MEMBERS_PER_GROUP`` per key.

Merging: ``customer_merge`` applies the chosen values to the survivor, moves every row that points
at the merged-away customer (found generically through ``Customer._meta.related_objects``, so
follow-ups, tickets and whatever comes later move too), unites the tags and soft-deletes the merged
record with ``merged_into`` set: its history stays, and so does the trace of the merge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import EmptyResultSet
from django.db import connection, models, transaction
from django.db.models import Exists, F, OuterRef, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase
from simple_history.models import HistoricalChanges
from simple_history.utils import NotHistoricalModelError, get_history_manager_for_model

from cims import webhooks
from cims.normalize import format_phone
from customers.access import personal_fields_for
from customers.models import Customer

GROUPS_PER_PAGE = 25
MEMBERS_PER_GROUP = 20
# Beyond this many members a group offers "merge with the oldest" instead of every pair.
PAIRS_UP_TO = 5

PHONE, EMAIL, ID_NUMBER, NAME = "phone", "email", "id_number", "name"
REASONS = {
    PHONE: gettext_lazy("Same phone number"),
    EMAIL: gettext_lazy("Same email"),
    ID_NUMBER: gettext_lazy("Same ID card number"),
    NAME: gettext_lazy("Same name and company"),
}


class MergeError(Exception):
    """A merge refused; the message is translated and meant for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# --- Finding duplicates ---------------------------------------------------------------------------


@dataclass
class DuplicateReason:
    kind: str
    label: str
    shown: str = ""  # the shared value as the user may see it (masked or clear); "" if not shown


@dataclass
class DuplicateGroup:
    number: int
    size: int
    reasons: list[DuplicateReason] = field(default_factory=list)
    members: list[Customer] = field(default_factory=list)
    pairs: list[tuple[Customer, Customer]] = field(default_factory=list)

    @property
    def more(self) -> int:
        return max(self.size - len(self.members), 0)


@dataclass
class DuplicatePage:
    number: int
    num_pages: int
    count: int  # groups in all
    groups: list[DuplicateGroup]

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.num_pages

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1


def _sql(queryset) -> tuple[str, tuple]:
    return queryset.query.sql_with_params()


def _key_groups_sql(user) -> tuple[str, list]:
    """SQL of every key group: (kind, k1, k2, n, lo, hi) — k2 is the company for names, else ''."""
    base = Customer.objects.visible_to(user).order_by()
    branches: list[str] = []
    params: list = []
    empty = "CAST('' AS VARCHAR(128))"

    # Phone and mobile share one key space: a phone of one customer equal to the mobile of another.
    # A customer whose mobile equals its own phone contributes the key once (the mobile is skipped),
    # so COUNT(*) counts customers and PostgreSQL can hash the groups instead of sorting them.
    phone_sql, phone_params = _sql(base.filter(phone_bidx__gt="").values(k1=F("phone_bidx"), cid=F("id")))
    mobile_sql, mobile_params = _sql(
        base.filter(mobile_bidx__gt="").exclude(mobile_bidx=F("phone_bidx")).values(k1=F("mobile_bidx"), cid=F("id"))
    )
    branches.append(
        f"SELECT '{PHONE}' AS kind, p.k1 AS k1, {empty} AS k2, COUNT(*) AS n, "  # noqa: S608 - compiled querysets
        f"MIN(p.cid) AS lo, MAX(p.cid) AS hi FROM ({phone_sql} UNION ALL {mobile_sql}) p "
        "GROUP BY p.k1 HAVING COUNT(*) > 1"
    )
    params += [*phone_params, *mobile_params]

    aggregates = {"n": models.Count("id"), "lo": models.Min("id"), "hi": models.Max("id")}
    for kind, column in ((EMAIL, "email_bidx"), (ID_NUMBER, "id_number_bidx")):
        grouped = base.filter(**{f"{column}__gt": ""}).values(k1=F(column)).annotate(**aggregates).filter(n__gt=1)
        sql, group_params = _sql(grouped)
        branches.append(f"SELECT '{kind}' AS kind, g.k1 AS k1, {empty} AS k2, g.n, g.lo, g.hi FROM ({sql}) g")  # noqa: S608
        params += list(group_params)

    # Names are stored as the form normalises them (fold_width, trimmed), so equal means equal.
    grouped = (
        base.filter(name__gt="", company__gt="")
        .values(k1=F("name"), k2=F("company"))
        .annotate(**aggregates)
        .filter(n__gt=1)
    )
    sql, group_params = _sql(grouped)
    branches.append(f"SELECT '{NAME}' AS kind, g.k1, g.k2, g.n, g.lo, g.hi FROM ({sql}) g")  # noqa: S608
    params += list(group_params)
    return " UNION ALL ".join(branches), params


def duplicate_groups_page(*, user, page: int = 1, per_page: int = GROUPS_PER_PAGE) -> DuplicatePage:
    """One page of probable duplicate groups among the alive customers ``user`` may see.

    One query finds the page's key groups and the total; then one query per kind of key fetches
    the members. Groups are ordered newest first (by their most recent member), so duplicates a
    recent import brought in come up first.
    """
    page = max(int(page), 1)
    try:
        groups_sql, params = _key_groups_sql(user)
    except EmptyResultSet:  # a user who may see no customer at all
        return _empty(per_page)
    sql = (
        f"WITH kg AS ({groups_sql}), "  # noqa: S608 - composed from our own compiled querysets
        "ranked AS (SELECT kind, k1, k2, n, lo, hi, "
        "DENSE_RANK() OVER (ORDER BY hi DESC, lo DESC, n DESC) AS set_no FROM kg), "
        "counted AS (SELECT kind, k1, k2, n, lo, hi, set_no, MAX(set_no) OVER () AS total FROM ranked) "
        "SELECT kind, k1, k2, n, set_no, total FROM counted WHERE set_no > %s AND set_no <= %s "
        "ORDER BY set_no, kind"
    )
    start = (page - 1) * per_page
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, start, start + per_page])
        rows = cursor.fetchall()
    if not rows and page > 1:
        # Past the last page (the groups changed since the link was made): show the last one.
        total = _count_groups(groups_sql, params)
        last = max((total + per_page - 1) // per_page, 1)
        return duplicate_groups_page(user=user, page=last, per_page=per_page) if total else _empty(per_page)
    if not rows:
        return _empty(per_page)
    total = rows[0][5]
    groups: dict[int, DuplicateGroup] = {}
    keys: dict[str, set] = {PHONE: set(), EMAIL: set(), ID_NUMBER: set(), NAME: set()}
    group_keys: dict[int, list[tuple[str, tuple]]] = {}
    for kind, k1, k2, n, set_no, _total in rows:
        group = groups.setdefault(set_no, DuplicateGroup(number=set_no, size=n))
        group.size = max(group.size, n)
        key = (k1, k2) if kind == NAME else (k1,)
        keys[kind].add(key)
        group_keys.setdefault(set_no, []).append((kind, key))
    members = _members(user, keys)
    for set_no, group in groups.items():
        seen: dict[int, Customer] = {}
        for kind, key in group_keys[set_no]:
            found = members.get((kind, key), [])
            group.reasons.append(_reason(user, kind, key, found))
            for customer in found:
                seen.setdefault(customer.pk, customer)
        group.members = sorted(seen.values(), key=lambda c: (c.created_at, c.pk))[:MEMBERS_PER_GROUP]
        group.pairs = _pairs(group.members)
    return DuplicatePage(
        number=page,
        num_pages=max((total + per_page - 1) // per_page, 1),
        count=total,
        groups=[groups[n] for n in sorted(groups)],
    )


def _empty(per_page: int) -> DuplicatePage:
    return DuplicatePage(number=1, num_pages=1, count=0, groups=[])


def _count_groups(groups_sql: str, params: list) -> int:
    sql = f"SELECT COUNT(*) FROM (SELECT 1 AS one FROM ({groups_sql}) kg GROUP BY hi, lo, n) s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


_MEMBER_ONLY = [
    "id",
    "code",
    "kind",
    "name",
    "company",
    "status",
    "created_at",
    "deleted_at",
    "phone_bidx",
    "mobile_bidx",
    "email_bidx",
    "id_number_bidx",
    "owner__id",
    "owner__username",
    "owner__name",
    "owner__first_name",
    "owner__last_name",
]


def _members(user, keys: dict[str, set]) -> dict[tuple[str, tuple], list[Customer]]:
    """The members of the page's key groups, at most MEMBERS_PER_GROUP per key, oldest first.

    One query per column searched (phone, mobile, email, ID number, name + company), each an
    indexed ``IN`` with a row number per key so that a key shared by thousands stays bounded.
    """
    base = Customer.objects.visible_to(user).select_related("owner")
    found: dict[tuple[str, tuple], list[Customer]] = {}
    searches = []
    phones = [k for (k,) in keys[PHONE]]
    if phones:
        searches.append((PHONE, "phone_bidx", base.filter(phone_bidx__in=phones), ["phone"]))
        searches.append((PHONE, "mobile_bidx", base.filter(mobile_bidx__in=phones), ["mobile"]))
    if keys[EMAIL]:
        searches.append((EMAIL, "email_bidx", base.filter(email_bidx__in=[k for (k,) in keys[EMAIL]]), ["email"]))
    if keys[ID_NUMBER]:
        ids = [k for (k,) in keys[ID_NUMBER]]
        searches.append((ID_NUMBER, "id_number_bidx", base.filter(id_number_bidx__in=ids), ["id_number"]))
    if keys[NAME]:
        q = Q()
        for name, company in keys[NAME]:
            q |= Q(name=name, company=company)
        searches.append((NAME, None, base.filter(q), []))
    for kind, column, queryset, personal in searches:
        partition = [F(column)] if column else [F("name"), F("company")]
        rows = (
            queryset.only(*_MEMBER_ONLY, *personal)
            .annotate(row_number=Window(RowNumber(), partition_by=partition, order_by=[F("created_at"), F("id")]))
            .filter(row_number__lte=MEMBERS_PER_GROUP)
            .order_by("created_at", "id")
        )
        for customer in rows:
            key = (getattr(customer, column),) if column else (customer.name, customer.company)
            bucket = found.setdefault((kind, key), [])
            if all(c.pk != customer.pk for c in bucket):
                bucket.append(customer)
    return found


_PERSONAL_KEYS = (
    ("phone", "phone_bidx"),
    ("mobile", "mobile_bidx"),
    ("email", "email_bidx"),
    ("id_number", "id_number_bidx"),
)


def _reason(user, kind: str, key: tuple, members: list[Customer]) -> DuplicateReason:
    reason = DuplicateReason(kind=kind, label=str(REASONS[kind]))
    if kind == NAME:
        reason.shown = f"{key[0]} · {key[1]}"
        return reason
    for customer in members:
        # The first member holding the key in a loaded personal column shows it, masked by role.
        for name, column in _PERSONAL_KEYS:
            if getattr(customer, column) == key[0] and name in customer.__dict__:
                entry = personal_fields_for(user, customer, [name]).get(name)
                if entry and entry["value"]:
                    reason.shown = entry["value"]
                    if name in ("phone", "mobile") and not entry["masked"]:
                        reason.shown = format_phone(entry["value"])
                    return reason
    return reason


def _pairs(members: list[Customer]) -> list[tuple[Customer, Customer]]:
    if len(members) <= PAIRS_UP_TO:
        return [(a, b) for i, a in enumerate(members) for b in members[i + 1 :]]
    oldest = members[0]
    return [(oldest, other) for other in members[1:]]


# --- Merging --------------------------------------------------------------------------------------

SURVIVOR, MERGED, BOTH = "survivor", "merged", "both"
# Fields whose value the user picks, in the order the merge page shows them.
MERGE_FIELDS = (
    "kind",
    "name",
    "company",
    "gender",
    "birth_date",
    "phone",
    "mobile",
    "fax",
    "email",
    "id_number",
    "bank_account",
    "province",
    "city",
    "address",
    "level",
    "source",
    "customer_type",
    "industry",
    "status",
    "owner",
    "enterprise_type",
    "enterprise_nature",
    "scale",
    "notes",
)
CUSTOM_PREFIX = "custom:"
# Models that point at a customer but record something about it as it was: they stay with it.
KEEPS_ITS_CUSTOMER = {"customers.importjob", "customers.importchunk"}
# Conditional unique constraints the merge knows how to satisfy: name -> rows to demote.
_RESOLVERS = {"contact_one_primary_per_customer": {"is_primary": False}}


def _attname(name: str) -> str:
    return Customer._meta.get_field(name).attname


def differing_fields(first: Customer, second: Customer) -> list[str]:
    """The choosable fields (and ``custom:<key>`` entries) whose stored values differ."""
    names = [n for n in MERGE_FIELDS if getattr(first, _attname(n)) != getattr(second, _attname(n))]
    a, b = first.custom_data or {}, second.custom_data or {}
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            names.append(CUSTOM_PREFIX + key)
    return names


def merge_choices_allowed(by) -> set[str]:
    """Fields a user may take from the merged-away record (the owner only with transfer permission)."""
    allowed = set(MERGE_FIELDS)
    if not by.has_perm("customers.transfer_customer"):
        allowed.discard("owner")
    return allowed


def _check_choices(choices: dict[str, str], survivor: Customer, merged: Customer, by) -> None:
    allowed = merge_choices_allowed(by)
    for name, choice in choices.items():
        custom = name.startswith(CUSTOM_PREFIX)
        if not custom and name not in MERGE_FIELDS:
            raise MergeError(_("“%(name)s” is not a field that can be merged.") % {"name": name})
        valid = {SURVIVOR, MERGED, BOTH} if name == "notes" else {SURVIVOR, MERGED}
        if choice not in valid:
            raise MergeError(_("“%(choice)s” is not a valid choice.") % {"choice": choice})
        if choice == MERGED and not custom and name not in allowed:
            raise MergeError(_("Only users who may transfer customers can take the owner of the other record."))


def _apply_choices(survivor: Customer, merged: Customer, choices: dict[str, str]) -> None:
    custom = dict(survivor.custom_data or {})
    for name, choice in choices.items():
        if name.startswith(CUSTOM_PREFIX):
            key = name[len(CUSTOM_PREFIX) :]
            if choice == MERGED:
                if key in (merged.custom_data or {}):
                    custom[key] = merged.custom_data[key]
                else:
                    custom.pop(key, None)
            continue
        if name == "notes" and choice == BOTH:
            survivor.notes = "\n\n".join(n for n in (survivor.notes.strip(), merged.notes.strip()) if n)
        elif choice == MERGED:
            attname = _attname(name)
            setattr(survivor, attname, getattr(merged, attname))
    survivor.custom_data = custom


def _is_history_model(model) -> bool:
    return issubclass(model, HistoricalChanges)


def _relations():
    """(model, foreign key to Customer, unique field sets) for every row that follows a merge."""
    for rel in Customer._meta.related_objects:
        if rel.many_to_many:
            through = rel.through
            fk = next(f for f in through._meta.fields if f.is_relation and f.related_model is Customer)
            other = next(f for f in through._meta.fields if f.is_relation and f is not fk)
            yield through, fk, [((other.name,), None, None)]
            continue
        model = rel.related_model
        if model is Customer or _is_history_model(model) or model._meta.label_lower in KEEPS_ITS_CUSTOMER:
            continue
        if getattr(model, "merge_keeps_customer", False):
            continue
        yield model, rel.field, _unique_sets(model, rel.field)


def _unique_sets(model, fk) -> list[tuple[tuple[str, ...], Q | None, str | None]]:
    """The unique constraints of ``model`` that include ``fk``: (other fields, condition, name)."""
    sets = []
    if fk.unique:
        sets.append(((), None, None))
    for fields in model._meta.unique_together:
        if fk.name in fields:
            sets.append((tuple(f for f in fields if f != fk.name), None, None))
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint) and fk.name in (constraint.fields or ()):
            others = tuple(f for f in constraint.fields if f != fk.name)
            sets.append((others, constraint.condition, constraint.name))
    return sets


def _move_related(*, survivor: Customer, merged: Customer, by, reason: str) -> None:
    for model, fk, unique_sets in _relations():
        manager = model._base_manager
        rows = manager.filter(**{fk.name: merged})
        for others, condition, name in unique_sets:
            clashing = rows
            match = manager.filter(**{fk.name: survivor}, **{o: OuterRef(o) for o in others})
            if condition is not None:
                clashing = clashing.filter(condition)
                match = match.filter(condition)
            clashing = clashing.filter(Exists(match))
            if not clashing.exists():
                continue
            if issubclass(model, (UserObjectPermissionBase, GroupObjectPermissionBase)) or model._meta.auto_created:
                # The survivor already has this grant (or link): the merged record's copy is redundant.
                clashing.delete()
            elif name in _RESOLVERS:
                clashing.update(**_RESOLVERS[name])
            else:
                raise MergeError(
                    _("Both customers have %(what)s that cannot belong to one customer twice; resolve it first.")
                    % {"what": model._meta.verbose_name_plural}
                )
        moved = list(rows.values_list("pk", flat=True))
        if not moved:
            continue
        manager.filter(pk__in=moved).update(**{fk.attname: survivor.pk})
        _record_moved(model, moved, by=by, reason=reason)


def _record_moved(model, pks: list, *, by, reason: str) -> None:
    """A history row per moved row (for models with history), so the survivor's history shows them."""
    try:
        history = get_history_manager_for_model(model)
    except NotHistoricalModelError:
        return
    for start in range(0, len(pks), 1000):
        objs = list(model._base_manager.filter(pk__in=pks[start : start + 1000]))
        history.bulk_history_create(objs, update=True, default_user=by, default_change_reason=reason[:100])


def related_counts(customers: list[Customer]) -> dict[int, list[tuple[str, int]]]:
    """For the merge page: how many rows of each related kind each customer holds (what will move)."""
    pks = [c.pk for c in customers]
    counts: dict[int, list[tuple[str, int]]] = {pk: [] for pk in pks}
    for model, fk, _sets in _relations():
        if model._meta.auto_created or issubclass(model, (UserObjectPermissionBase, GroupObjectPermissionBase)):
            continue
        found = dict(
            model._base_manager.filter(**{f"{fk.attname}__in": pks})
            .order_by()
            .values_list(fk.attname)
            .annotate(n=models.Count("pk"))
        )
        for pk in pks:
            if found.get(pk):
                counts[pk].append((str(model._meta.verbose_name_plural), found[pk]))
    return counts


def _unite_tags(survivor: Customer, merged: Customer) -> None:
    through = Customer.tags.through
    have = set(through.objects.filter(customer_id=survivor.pk).values_list("tag_id", flat=True))
    extra = through.objects.filter(customer_id=merged.pk).exclude(tag_id__in=have).values_list("tag_id", flat=True)
    # Written directly (no m2m signal): survivor.save() below records the tags in its history row.
    through.objects.bulk_create([through(customer_id=survivor.pk, tag_id=tag_id) for tag_id in extra])


def customer_merge(*, survivor: Customer, merged: Customer, choices: dict[str, str], by) -> Customer:
    """Merge ``merged`` into ``survivor``, all or nothing; returns the survivor as it now is.

    ``choices`` maps a field of MERGE_FIELDS (or ``custom:<key>``) to "survivor" or "merged" (and
    "notes" also to "both"); a field not named keeps the survivor's value. Raises MergeError.
    """
    if not by.has_perm("customers.merge_customers"):
        raise MergeError(_("You do not have permission to merge customers."))
    if survivor.pk == merged.pk:
        raise MergeError(_("A customer cannot be merged with itself."))
    with transaction.atomic():
        # Locked in id order, so two merges of the same pair wait for each other instead of deadlocking.
        locked = {
            c.pk: c
            for c in Customer.all_objects.select_for_update().filter(pk__in=[survivor.pk, merged.pk]).order_by("pk")
        }
        if len(locked) != 2:
            raise MergeError(_("One of these customers no longer exists."))
        survivor, merged = locked[survivor.pk], locked[merged.pk]
        for customer in (survivor, merged):
            if customer.deleted_at is not None or customer.merged_into_id is not None:
                raise MergeError(
                    _("%(code)s has already been merged or is in the recycle bin.") % {"code": customer.code}
                )
        pks = [survivor.pk, merged.pk]
        if Customer.objects.visible_to(by).filter(pk__in=pks).count() != 2:
            raise MergeError(_("One of these customers is outside your reach."))
        if Customer.objects.editable_by(by).filter(pk__in=pks).count() != 2:
            raise MergeError(_("You may not edit one of these customers."))
        _check_choices(choices, survivor, merged, by)

        reason = f"merged {merged.code} into {survivor.code}"
        _apply_choices(survivor, merged, choices)
        _move_related(survivor=survivor, merged=merged, by=by, reason=reason)
        _unite_tags(survivor, merged)
        survivor._history_user = by
        survivor._change_reason = reason[:100]
        survivor.save()

        merged.deleted_at = timezone.now()
        merged.deleted_by = by
        merged.merged_into = survivor
        merged._history_user = by
        merged._change_reason = f"merged into {survivor.code}"[:100]
        merged.save(update_fields=["deleted_at", "deleted_by", "merged_into", "updated_at"])
        webhooks.emit("customer.merged", payload_for=lambda: webhooks.merge_data(survivor, merged))
    return survivor


__all__ = [
    "BOTH",
    "CUSTOM_PREFIX",
    "MERGED",
    "MERGE_FIELDS",
    "SURVIVOR",
    "DuplicateGroup",
    "DuplicatePage",
    "MergeError",
    "customer_merge",
    "differing_fields",
    "duplicate_groups_page",
    "merge_choices_allowed",
    "related_counts",
]
