"""Writes of the lottery module: saving a draft, publishing (freezing the entry list), the public
value, the draw, the announcement — each once, in one transaction, by whom and when.

Every step is a compare-and-set on the event row (an UPDATE … WHERE status = the expected one): of two
requests at once, one wins and the other changes nothing and is refused, on PostgreSQL (row lock) and
on SQLite (one writer at a time) alike. A refusal (LotteryRefused, whose text is a message for the
user in their language) is written to the event's log after the transaction rolled back, so the
attempt stays on record even though nothing else does.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import re
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat

from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import Customer, CustomerLevel
from lottery import algorithm
from lottery.algorithm import Entry, LotteryError, Tier
from lottery.eligibility import eligible_with_weights
from lottery.models import LotteryEntry, LotteryEvent, LotteryLevelWeight, LotteryLog, LotteryTier, LotteryWinner

logger = logging.getLogger(__name__)

S = LotteryEvent.Status
A = LotteryLog.Action

COPY_BATCH = 50_000
BULK_BATCH = 5_000


class LotteryRefused(Exception):
    """A step the event's state does not allow; the text is shown to the user."""


def log(*, event: LotteryEvent, action: str, by=None, detail: str = "") -> LotteryLog:
    return LotteryLog.objects.create(
        event=event, action=action, user=by if getattr(by, "is_authenticated", False) else None, detail=detail[:500]
    )


def _refused(event: LotteryEvent, by, message: str) -> LotteryRefused:
    """Record a refused attempt (outside any rolled-back transaction) and return the error to raise."""
    log(event=event, action=A.REFUSED, by=by, detail=message)
    logger.warning("lottery %s: refused for user %s: %s", event.pk, getattr(by, "pk", None), message)
    return LotteryRefused(message)


def _frozen_message(event: LotteryEvent) -> str:
    return _("This lottery is published: its rules, prizes and entry list can no longer change.")


# --- Drafts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TierData:
    name: str
    prize: str
    quantity: int
    draw_order: int


RULE_FIELDS = (
    "name",
    "year",
    "description",
    "statuses",
    "min_amount",
    "require_active_contract",
    "created_before",
    "exclude_employees",
)


def event_save(
    *,
    event: LotteryEvent,
    by,
    fields: dict,
    levels: Iterable[CustomerLevel],
    weights: dict[int, int],
    tiers: Iterable[TierData],
) -> LotteryEvent:
    """Create or change a draft with its levels, weights (level id → entries; 1 is not stored) and
    prize tiers (replaced as a whole). A published event is refused: nothing it published changes."""
    creating = event.pk is None
    try:
        with transaction.atomic():
            if not creating:
                # Claim the row: a publication running at the same time holds it (or has set
                # published_at) and this edit waits, then is refused.
                still_draft = LotteryEvent.objects.filter(
                    pk=event.pk, status=S.DRAFT, published_at__isnull=True
                ).update(status=S.DRAFT)
                if not still_draft:
                    raise LotteryRefused(_frozen_message(event))
            for name in RULE_FIELDS:
                if name in fields:
                    setattr(event, name, fields[name])
            if creating:
                event.created_by = by if getattr(by, "is_authenticated", False) else None
            event.full_clean(exclude=["levels"])
            event.save()
            event.levels.set(list(levels))
            event.weights.all().delete()
            LotteryLevelWeight.objects.bulk_create(
                LotteryLevelWeight(event=event, level_id=level_id, weight=weight)
                for level_id, weight in sorted(weights.items())
                if weight and weight != 1
            )
            event.tiers.all().delete()
            LotteryTier.objects.bulk_create(
                LotteryTier(event=event, name=t.name, prize=t.prize, quantity=t.quantity, draw_order=t.draw_order)
                for t in tiers
            )
            if creating:
                log(event=event, action=A.CREATED, by=by)
    except LotteryRefused as exc:
        raise _refused(event, by, str(exc)) from None
    return event


def event_delete(*, event: LotteryEvent, by) -> None:
    try:
        with transaction.atomic():
            if not LotteryEvent.objects.filter(pk=event.pk, status=S.DRAFT, published_at__isnull=True).exists():
                raise LotteryRefused(_("A published lottery cannot be deleted."))
            event.delete()
    except LotteryRefused as exc:
        raise _refused(event, by, str(exc)) from None


def refuse_change(*, event: LotteryEvent, by, what: str = "") -> LotteryRefused:
    """For views and the admin: an attempt to change a published event, logged and refused."""
    message = _frozen_message(event)
    if what:
        message = f"{message} ({what})"
    return _refused(event, by, message)


# --- Publishing -----------------------------------------------------------------------------------


def published_rules(event: LotteryEvent) -> dict:
    """The rules and weights in words, as they stand at publishing (the public page shows these)."""
    status_labels = dict(Customer.Status.choices)
    return {
        "statuses": [str(status_labels.get(s, s)) for s in event.statuses],
        "levels": sorted(str(level) for level in event.levels.all()),
        "min_amount": str(event.min_amount) if event.min_amount is not None else None,
        "require_active_contract": event.require_active_contract,
        "created_before": event.created_before.isoformat() if event.created_before else None,
        "exclude_employees": event.exclude_employees,
        "weights": [
            {"level": str(w.level), "entries": w.weight}
            for w in event.weights.select_related("level").order_by("level__sort_order", "level__name")
        ],
        "tiers": [
            {"name": t.name, "prize": t.prize, "quantity": t.quantity, "order": t.draw_order}
            for t in sorted(event.tiers.all(), key=lambda t: (t.draw_order, t.name))
        ],
    }


def _pseudonymous_entries(rows: list[tuple[int, int]]) -> tuple[bytes, list[tuple[str, int, int]]]:
    """A fresh salt and the entries sorted by entry id: (entry id, weight, customer id). Two customers
    sharing an entry id (16 hex digits: about one chance in 10^7 at a million entries) means a new salt.

    The entry ids are algorithm.pseudonym's HMAC-SHA256 computed with its two SHA-256 states prepared
    once per salt (RFC 2104) and copied per customer: the same bytes (tests/lottery checks it), about
    1.5 times as fast as a new HMAC per customer at a million entries."""
    if not all(type(customer_id) is int and customer_id >= 0 for customer_id, _w in rows):
        salt = algorithm.new_secret()
        for customer_id, _w in rows:
            algorithm.pseudonym(salt, customer_id)  # raises its LotteryError for the bad id
    for _attempt in range(5):
        salt = algorithm.new_secret()
        key = (salt if len(salt) <= 64 else hashlib.sha256(salt).digest()).ljust(64, b"\0")
        inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + algorithm.PSEUDONYM_PREFIX).copy
        outer = hashlib.sha256(bytes(b ^ 0x5C for b in key)).copy
        entries = []
        append = entries.append
        for customer_id, weight in rows:
            mac = inner()
            mac.update(str(customer_id).encode("ascii"))
            digest = outer()
            digest.update(mac.digest())
            append(("E" + digest.hexdigest()[:16], weight, customer_id))
        entries.sort()
        if all(entries[i][0] != entries[i + 1][0] for i in range(len(entries) - 1)):
            return salt, entries
    raise LotteryError("entry ids kept colliding")  # practically impossible: five in a row


def _canonical_list(entries: list[tuple[str, int, int]]) -> bytes:
    """algorithm.canonical_list of the (sorted, unique) entries without building a million Entry
    objects; anything it would not take as it is goes through it, so that it refuses with its reason."""
    weights_ok = all(type(weight) is int and weight >= 1 for _e, weight, _c in entries)
    canonical = "".join([f"{entry_id}\t{weight}\n" for entry_id, weight, _c in entries]).encode("utf-8")
    if (
        weights_ok
        and sum(weight for _e, weight, _c in entries) <= algorithm.MAX_TOTAL_WEIGHT
        and _CANONICAL_LINES.fullmatch(canonical)
    ):
        return canonical  # valid ids and weights, sorted and unique (checked above): what canonical_list gives
    return algorithm.canonical_list(Entry(entry_id, weight) for entry_id, weight, _c in entries)


_CANONICAL_LINES = re.compile(rb"(?:[A-Za-z0-9._:-]{1,64}\t[1-9][0-9]*\n)*")


def _write_entries(event: LotteryEvent, entries: list[tuple[str, int, int]]) -> None:
    if connection.vendor == "postgresql":
        import io

        table = LotteryEntry._meta.db_table
        # Rows go in customer order (each with its position in the list): the foreign-key checks
        # PostgreSQL runs at commit then read the customer table in order instead of at random
        # (measured: 9 s instead of 18–22 s at a million entries), and the (customer, event)
        # index grows at its end.
        customers = [customer_id for _e, _w, customer_id in entries]
        order = sorted(range(len(entries)), key=customers.__getitem__)
        del customers
        pk = event.pk
        with connection.cursor() as cursor:
            for start in range(0, len(order), COPY_BATCH):
                lines = []
                for position in order[start : start + COPY_BATCH]:
                    entry_id, weight, customer_id = entries[position]
                    lines.append(f"{pk}\t{position}\t{entry_id}\t{weight}\t{customer_id}\n")
                cursor.cursor.copy_expert(
                    f'COPY "{table}" (event_id, position, entry_id, weight, customer_id) FROM STDIN',
                    io.StringIO("".join(lines)),
                )
        return
    for start in range(0, len(entries), BULK_BATCH):
        LotteryEntry.objects.bulk_create(
            LotteryEntry(event=event, position=position, entry_id=entry_id, weight=weight, customer_id=customer_id)
            for position, (entry_id, weight, customer_id) in enumerate(entries[start : start + BULK_BATCH], start=start)
        )


def event_publish(*, event: LotteryEvent, by) -> LotteryEvent:
    """已公示: freeze the eligible customers as the entry list and publish its hash, the prize table
    and the commitment to a new server secret."""
    now = timezone.now()
    try:
        with transaction.atomic():
            claimed = LotteryEvent.objects.filter(pk=event.pk, status=S.DRAFT, published_at__isnull=True).update(
                published_at=now, published_by=by
            )
            if not claimed:
                raise LotteryRefused(_("This lottery has already been published."))
            event.refresh_from_db()
            tiers = list(event.tiers.all())
            if not tiers:
                raise LotteryRefused(_("Add at least one prize tier before publishing."))
            if not event.statuses:
                raise LotteryRefused(_("Choose at least one lifecycle status before publishing."))
            with _gc_paused():  # a million rows, entries and lines, none of them garbage
                rows = list(eligible_with_weights(event))
                if not rows:
                    raise LotteryRefused(_("No customer meets the rules; there is nothing to publish."))
                try:
                    salt, entries = _pseudonymous_entries(rows)
                    del rows
                    canonical = _canonical_list(entries)
                    secret = algorithm.new_secret()
                    event.list_hash = algorithm.list_hash(canonical)
                    event.commitment = algorithm.commitment(secret)
                except LotteryError as exc:
                    raise LotteryRefused(_("The entry list cannot be published: %(reason)s") % {"reason": exc}) from exc
                del canonical
                _write_entries(event, entries)
            event.salt = salt.hex()
            event.secret = secret.hex()
            event.entry_count = len(entries)
            event.total_weight = sum(weight for _e, weight, _c in entries)
            event.published_rules = published_rules(event)
            event.status = S.PUBLISHED
            event.save(
                update_fields=[
                    "salt",
                    "secret",
                    "list_hash",
                    "commitment",
                    "entry_count",
                    "total_weight",
                    "published_rules",
                    "status",
                ]
            )
            log(
                event=event,
                action=A.PUBLISHED,
                by=by,
                detail=f"entries={event.entry_count} list_hash={event.list_hash} commitment={event.commitment}",
            )
    except LotteryRefused as exc:
        event.refresh_from_db()
        raise _refused(event, by, str(exc)) from None
    return event


# --- The public value -----------------------------------------------------------------------------


def check_public_value(value: str) -> str | None:
    """Why a public value cannot be used, or None. It is used byte for byte, so nothing is trimmed."""
    if not value:
        return _("Enter the public value.")
    if value != value.strip():
        return _("The public value must not begin or end with spaces: it is used exactly as entered.")
    if len(value.encode("utf-8")) > algorithm.MAX_PUBLIC_VALUE_BYTES:
        return _("The public value is too long (at most %(max)d bytes).") % {"max": algorithm.MAX_PUBLIC_VALUE_BYTES}
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return _("The public value cannot hold line breaks or control characters.")
    return None


def event_set_public_value(*, event: LotteryEvent, by, value: str) -> LotteryEvent:
    """The value announced after publishing (a lottery's numbers, a beacon's output): once, before the draw."""
    problem = check_public_value(value)
    if problem:
        raise LotteryRefused(problem)
    try:
        with transaction.atomic():
            done = LotteryEvent.objects.filter(pk=event.pk, status=S.PUBLISHED, public_value_at__isnull=True).update(
                public_value=value, public_value_at=timezone.now(), public_value_by=by
            )
            if not done:
                raise LotteryRefused(_("The public value can be entered once, after publishing and before the draw."))
            event.refresh_from_db()
            log(event=event, action=A.PUBLIC_VALUE, by=by, detail=value[:400])
    except LotteryRefused as exc:
        event.refresh_from_db()
        raise _refused(event, by, str(exc)) from None
    return event


# --- The draw -------------------------------------------------------------------------------------


def load_entries(event: LotteryEvent) -> tuple[list[Entry], list[int], list[int]]:
    """The frozen entry list in canonical order, read straight through the cursor: the entries, their
    row ids and their customers' ids. A million rows in about a second: the garbage collector is
    paused (none of these objects can be garbage; left on, it walks them again and again while they
    are made), and the Entry objects are made without running the frozen dataclass's __init__ a
    million times (object.__new__ and the slots' own setters, in C loops: the same objects)."""
    table = LotteryEntry._meta.db_table
    with _gc_paused():
        with connection.cursor() as cursor:
            cursor.execute(
                f'SELECT entry_id, weight, id, customer_id FROM "{table}" WHERE event_id = %s ORDER BY position',  # noqa: S608 - our table name; the id is a parameter  # nosec B608  # our own table names, values are parameters
                [event.pk],
            )
            rows = cursor.fetchall()
        entry_ids, weights, pks, customer_ids = list(zip(*rows, strict=True)) or [()] * 4
        del rows
        entries = list(map(object.__new__, repeat(Entry, len(entry_ids))))
        deque(map(_ENTRY_ID.__set__, entries, entry_ids), maxlen=0)
        deque(map(_ENTRY_WEIGHT.__set__, entries, weights), maxlen=0)
        return entries, list(pks), list(customer_ids)


_ENTRY_ID, _ENTRY_WEIGHT = Entry.__dict__["entry_id"], Entry.__dict__["weight"]  # the slots of a frozen dataclass


@contextmanager
def _gc_paused():
    """Pause Python's cyclic garbage collector while a million objects are made that all stay alive."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def integrity_problems(event: LotteryEvent, entries: list[Entry], secret: bytes) -> list[str]:
    """What no longer matches what was published (a database edited behind our back)."""
    found = []
    if len(entries) != event.entry_count:
        found.append(
            _("The entry list holds %(count)d entries; %(published)d were published.")
            % {"count": len(entries), "published": event.entry_count}
        )
    try:
        # As many entries as published, hashing as they stand to the published hash: they are the
        # published canonical list (validated when it was published), one line each, byte for byte.
        # Otherwise canonical_list says why not.
        as_they_stand = "".join([f"{e.entry_id}\t{e.weight}\n" for e in entries]).encode("utf-8")
        if (
            not (len(entries) == event.entry_count and algorithm.list_hash(as_they_stand) == event.list_hash)
            and algorithm.list_hash(algorithm.canonical_list(entries)) != event.list_hash
        ):
            found.append(_("The entry list no longer matches its published hash."))
        if algorithm.commitment(secret) != event.commitment:
            found.append(_("The server secret no longer matches its published commitment."))
    except LotteryError as exc:
        found.append(str(exc))
    return found


def event_draw(*, event: LotteryEvent, by) -> list[LotteryWinner]:
    """已开奖: reveal the secret and draw every tier, once. A second attempt is refused."""
    try:
        with transaction.atomic():
            claimed = LotteryEvent.objects.filter(pk=event.pk, status=S.PUBLISHED, drawn_at__isnull=True).update(
                status=S.DRAWN, drawn_at=timezone.now(), drawn_by=by
            )
            if not claimed:
                raise LotteryRefused(_("This lottery has already been drawn, or is not published yet."))
            event.refresh_from_db()
            secret = bytes.fromhex(event.secret)
            entries, entry_pks, customer_ids = load_entries(event)
            problems = integrity_problems(event, entries, secret)
            if problems:
                raise LotteryRefused(_("The draw was stopped: %(problems)s") % {"problems": " ".join(problems)})
            tiers = {t.name: t for t in event.tiers.all()}
            seed = algorithm.seed(secret, event.list_hash, event.public_value)
            drawn = algorithm.draw(entries, [Tier(t.name, t.quantity, t.draw_order) for t in tiers.values()], seed)
            ids = [e.entry_id for e in entries]
            winners = []
            for rank, (tier_name, position, entry_id) in enumerate(drawn, start=1):
                index = bisect_left(ids, entry_id)
                winners.append(
                    LotteryWinner(
                        event=event,
                        rank=rank,
                        tier=tiers[tier_name],
                        position=position,
                        entry_id=entry_pks[index],
                        customer_id=customer_ids[index],
                    )
                )
            LotteryWinner.objects.bulk_create(winners, batch_size=BULK_BATCH)
            log(event=event, action=A.DRAWN, by=by, detail=f"winners={len(winners)} secret={event.secret}")
    except LotteryRefused as exc:
        event.refresh_from_db()
        raise _refused(event, by, str(exc)) from None
    return winners


# --- The announcement -----------------------------------------------------------------------------


def event_announce(*, event: LotteryEvent, by) -> LotteryEvent:
    """已公布: the winners appear in the portal and each winner's sales rep is told (a Celery job)."""
    from lottery.tasks import notify_winners

    try:
        with transaction.atomic():
            done = LotteryEvent.objects.filter(pk=event.pk, status=S.DRAWN).update(
                status=S.ANNOUNCED, announced_at=timezone.now(), announced_by=by
            )
            if not done:
                raise LotteryRefused(_("Only a drawn lottery can be announced, and only once."))
            event.refresh_from_db()
            log(event=event, action=A.ANNOUNCED, by=by)
            transaction.on_commit(lambda: notify_winners.delay(event.pk))
    except LotteryRefused as exc:
        event.refresh_from_db()
        raise _refused(event, by, str(exc)) from None
    return event


def winners_notify(*, event: LotteryEvent) -> int:
    """Tell each winner's owning rep, once per win (the notification's unique key decides)."""
    from followups.models import Notification

    if not event.is_announced:
        return 0
    pending = list(
        LotteryWinner.objects.filter(event=event, notified_at__isnull=True)
        .select_related("tier", "customer")
        .order_by("rank")
    )
    notes = []
    for winner in pending:
        owner_id = winner.customer.owner_id
        if owner_id is None:
            continue
        notes.append(
            Notification(
                user_id=owner_id,
                key=f"lottery-win:{winner.pk}",
                title=(
                    _("Your customer %(code)s won %(tier)s in %(event)s")
                    % {"code": winner.customer.code, "tier": winner.tier.name, "event": event}
                )[:200],
                body=_("Prize: %(prize)s. Congratulate them and arrange the hand-over.") % {"prize": winner.tier.prize},
                url=reverse("customers:detail", args=[winner.customer_id]),
            )
        )
    with transaction.atomic():
        Notification.objects.bulk_create(notes, ignore_conflicts=True, batch_size=BULK_BATCH)
        LotteryWinner.objects.filter(pk__in=[w.pk for w in pending]).update(notified_at=timezone.now())
    return len(notes)


# --- Verification ---------------------------------------------------------------------------------


def event_problems(event: LotteryEvent) -> list[str]:
    """Recompute from the database what was published: empty when everything checks out (MATCH).

    Before the draw the secret is not revealed, so only the entry list is checked against its hash."""
    if event.is_draft:
        return [_("This lottery is not published yet.")]
    entries, _pks, _customers = load_entries(event)
    if not event.is_drawn:
        found = []
        if len(entries) != event.entry_count:
            found.append(f"entry count wrong: {len(entries)} in the list, published {event.entry_count}")
        try:
            actual = algorithm.list_hash(algorithm.canonical_list(entries))
        except LotteryError as exc:
            return [f"invalid input: {exc}"]
        if actual != event.list_hash:
            found.append(f"list hash wrong: the entries hash to {actual}, published {event.list_hash}")
        return found
    published = [(w.tier.name, w.position, w.entry.entry_id) for w in winners_in_order(event)]
    found = []
    if len(entries) != event.entry_count:
        found.append(f"entry count wrong: {len(entries)} in the list, published {event.entry_count}")
    return found + algorithm.problems(
        entries,
        [Tier(t.name, t.quantity, t.draw_order) for t in event.tiers.all()],
        entry_list_hash=event.list_hash,
        commitment_hex=event.commitment,
        secret=bytes.fromhex(event.secret),
        public_value=event.public_value,
        winners=published,
    )


def winners_in_order(event: LotteryEvent):
    return LotteryWinner.objects.filter(event=event).select_related("tier", "entry").order_by("rank")


def publication(event: LotteryEvent) -> dict:
    """The published JSON document (docs/lottery.md §4) with the entry list as entries.tsv beside it;
    the secret and the winners once drawn. Adds the event and its rules in words under "event"."""
    tiers = [Tier(t.name, t.quantity, t.draw_order) for t in event.tiers.all()]
    document = {
        "algorithm": algorithm.ALGORITHM,
        "entry_count": event.entry_count,
        "list_hash": event.list_hash,
        "tiers": [{"name": t.name, "quantity": t.quantity, "order": t.order} for t in algorithm.ordered_tiers(tiers)],
        "commitment": event.commitment,
        "secret": event.secret if event.is_drawn else None,
        "public_value": event.public_value,
        "winners": (
            [
                {"tier": w.tier.name, "position": w.position, "entry_id": w.entry.entry_id}
                for w in winners_in_order(event)
            ]
            if event.is_drawn
            else None
        ),
        "entries_file": "entries.tsv",
        "event": {
            "name": event.name,
            "year": event.year,
            "published_at": event.published_at.isoformat() if event.published_at else None,
            "drawn_at": event.drawn_at.isoformat() if event.drawn_at else None,
            "rules": event.published_rules,
        },
    }
    return document


def entry_list_chunks(event: LotteryEvent, *, chunk_size: int = 20_000):
    """The canonical entry list (entries.tsv), streamed in order, byte for byte what was hashed."""
    last = -1
    while True:
        rows = list(
            LotteryEntry.objects.filter(event=event, position__gt=last)
            .order_by("position")
            .values_list("position", "entry_id", "weight")[:chunk_size]
        )
        if not rows:
            return
        yield "".join(f"{entry_id}\t{weight}\n" for _p, entry_id, weight in rows).encode("ascii")
        last = rows[-1][0]


def total_prizes(event: LotteryEvent) -> int:
    return sum(t.quantity for t in event.tiers.all())
