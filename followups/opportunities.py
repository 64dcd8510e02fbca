"""Sales opportunities (商机): writes, the stage rules and the pipeline board.

An opportunity is written only by someone who may edit its customer (customers.access.can_edit).
Its stage moves freely among the open stages (初步接触 → 需求确认 → 方案报价 → 商务谈判, and back);
it closes only through ``opportunity_win`` or ``opportunity_lose`` (a loss says why), and a closed
one never moves again. Winning moves a prospect or intent customer to 成交客户 and may create the
contract and the transaction of the deal, all in one transaction: all of it happens or none.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, DecimalField, Exists, F, OuterRef, Q, Sum, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from django.utils.translation import gettext as _

from cims import webhooks
from customers import lifecycle
from customers.access import can_edit
from customers.models import Contract, Customer, StatusChange, Transaction
from followups.models import Opportunity, OpportunityLine

Stage = Opportunity.Stage
OPEN_STAGES = [stage for stage in Stage if stage not in Opportunity.CLOSED_STAGES]
EDITABLE_FIELDS = ("title", "amount", "probability", "expected_close_date", "description", "owner")
CENT = Decimal("0.01")
# Cards per column on the board; the rest are on the list page.
BOARD_LIMIT = 20  # cards per column; the rest are one click away in the filtered list
WINDOW_MAX = 5000  # a set of opportunities this small gets its first cards by one window query


def default_probability(stage: str) -> int:
    """The probability (percent) an opportunity has when it enters ``stage`` (the one table)."""
    return Opportunity.DEFAULT_PROBABILITY[Stage(stage)]


def sees_everyones(user) -> bool:
    """Managers see every rep's opportunities (and filter by rep); a rep sees their customers'."""
    return user.has_perm("customers.view_all_customers")


def may_edit_opportunity(user, opportunity: Opportunity) -> bool:
    return user.has_perm("followups.change_opportunity") and can_edit(user, opportunity.customer)


def validate_opportunity(values: Mapping[str, Any], *, by) -> None:
    """The rules of an opportunity's fields, as a ValidationError by field (the form shows them)."""
    errors: dict[str, str] = {}
    if not (values.get("title") or "").strip():
        errors["title"] = _("Give the opportunity a title.")
    amount = values.get("amount")
    if amount is None or amount < 0:
        errors["amount"] = _("The amount cannot be negative.")
    else:
        # The sum of product lines can outgrow the column (14 digits): the field's own rule says so.
        try:
            Opportunity._meta.get_field("amount").run_validators(Decimal(amount))
        except ValidationError as error:
            errors["amount"] = " ".join(error.messages)
    probability = values.get("probability")
    if probability is None or not 0 <= probability <= 100:
        errors["probability"] = _("The probability is a percentage from 0 to 100.")
    owner = values.get("owner")
    if owner is not None:
        if not owner.is_active or not owner.has_perm("followups.change_opportunity"):
            errors["owner"] = _("The owner must be an active user who works on opportunities.")
        elif owner.pk != by.pk and not by.has_perm("customers.change_all_customers"):
            errors["owner"] = _("Only a manager may give an opportunity to someone else.")
    if errors:
        raise ValidationError(errors)


def _check_writable(opportunity: Opportunity, *, by) -> None:
    if not may_edit_opportunity(by, opportunity):
        raise PermissionDenied("followups.change_opportunity")


def _lock(opportunity: Opportunity) -> Opportunity:
    """The row locked, so that two moves (or a win and a loss) at once apply one after the other."""
    locked = Opportunity.objects.select_for_update().get(pk=opportunity.pk)
    if locked.is_closed:
        raise ValidationError(_("This opportunity is closed (%(stage)s).") % {"stage": locked.get_stage_display()})
    return locked


def _checked_lines(lines, *, keep: set[int] = frozenset()):
    """Product lines as customers.products takes them, checked: positive quantities, prices not
    negative, products on sale (or already on the opportunity, ``keep``)."""
    from customers.products import as_lines, validate_lines

    lines = as_lines(lines)
    validate_lines(lines)
    closed = [line.product for line in lines if not line.product.is_active and line.product.pk not in keep]
    if closed:
        raise ValidationError(
            [_("%(product)s is not on sale.") % {"product": product} for product in dict.fromkeys(closed)]
        )
    return lines


def _replace_lines(opportunity: Opportunity, lines) -> None:
    OpportunityLine.objects.filter(opportunity=opportunity).delete()
    OpportunityLine.objects.bulk_create(
        OpportunityLine(
            opportunity=opportunity, product=line.product, quantity=line.quantity, unit_price=line.unit_price
        )
        for line in lines
    )


def _save(opportunity: Opportunity, *, by, target: Opportunity | None = None) -> Opportunity:
    opportunity._history_user = by
    opportunity.save()
    if target is not None and target is not opportunity:  # keep the caller's object up to date
        for f in opportunity._meta.concrete_fields:
            setattr(target, f.attname, getattr(opportunity, f.attname))
    return opportunity


@transaction.atomic
def opportunity_create(
    *,
    customer: Customer,
    by,
    title: str,
    amount: Decimal = Decimal(0),
    stage: str = Stage.INITIAL,
    probability: int | None = None,
    expected_close_date: datetime.date | None = None,
    owner=None,
    description: str = "",
    lines=(),
) -> Opportunity:
    """Open an opportunity of ``customer`` (PermissionDenied unless ``by`` may edit the customer).

    With product ``lines`` (customers.products.Line or mappings), the amount is their sum.
    """
    if not by.has_perm("followups.add_opportunity") or not can_edit(by, customer):
        raise PermissionDenied("followups.add_opportunity")
    if stage not in OPEN_STAGES:
        raise ValidationError({"stage": _("A new opportunity starts in an open stage.")})
    if owner is None:
        owner = by
    lines = _checked_lines(lines)
    if lines:
        from customers.products import lines_total

        amount = lines_total(lines)
    values = {
        "title": (title or "").strip(),
        "amount": amount,
        "probability": default_probability(stage) if probability is None else probability,
        "expected_close_date": expected_close_date,
        "description": description or "",
        "owner": owner,
    }
    validate_opportunity(values, by=by)
    opportunity = Opportunity(customer=customer, stage=stage, created_by=by, **values)
    _save(opportunity, by=by)
    _replace_lines(opportunity, lines)
    return opportunity


@transaction.atomic
def opportunity_update(*, opportunity: Opportunity, by, lines=None, **changes) -> Opportunity:
    """Change an open opportunity's fields (not its stage: that is ``opportunity_move``).

    ``lines``: None leaves the product lines as they are; a list replaces them (empty: none), and
    when there are lines the amount is their sum.
    """
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"not editable: {', '.join(sorted(unknown))}")
    _check_writable(opportunity, by=by)
    locked = _lock(opportunity)
    if lines is not None:
        kept = set(OpportunityLine.objects.filter(opportunity=locked).values_list("product_id", flat=True))
        lines = _checked_lines(lines, keep=kept)
        if lines:
            from customers.products import lines_total

            changes["amount"] = lines_total(lines)
    values = {name: getattr(locked, name) for name in EDITABLE_FIELDS} | changes
    if "owner" not in changes or values["owner"] == locked.owner:
        values.pop("owner")  # an unchanged owner is not re-checked (a manager's pick stays valid)
    validate_opportunity(values, by=by)
    for name, value in values.items():
        setattr(locked, name, value)
    saved = _save(locked, by=by, target=opportunity)
    if lines is not None:
        _replace_lines(saved, lines)
    return saved


@transaction.atomic
def opportunity_move(*, opportunity: Opportunity, stage: str, by, probability: int | None = None) -> Opportunity:
    """Move an open opportunity to another open stage; its probability becomes the stage's default."""
    _check_writable(opportunity, by=by)
    if stage in Opportunity.CLOSED_STAGES:
        raise ValidationError(_("An opportunity is won or lost through “Won” or “Lost”, not moved there."))
    if stage not in OPEN_STAGES:
        raise ValidationError(_("“%(stage)s” is not a stage.") % {"stage": stage})
    locked = _lock(opportunity)
    if locked.stage == stage:
        raise ValidationError(_("The opportunity is already at “%(stage)s”.") % {"stage": locked.get_stage_display()})
    locked.stage = stage
    locked.probability = default_probability(stage) if probability is None else probability
    validate_opportunity({**{n: getattr(locked, n) for n in EDITABLE_FIELDS}, "owner": None}, by=by)
    return _save(locked, by=by, target=opportunity)


@transaction.atomic
def opportunity_lose(*, opportunity: Opportunity, by, reason: str) -> Opportunity:
    """Close an opportunity as lost (输单); the reason is required."""
    _check_writable(opportunity, by=by)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the opportunity was lost.")})
    limit = Opportunity._meta.get_field("lost_reason").max_length
    if len(reason) > limit:
        raise ValidationError({"reason": _("The reason may be at most %(limit)d characters.") % {"limit": limit}})
    locked = _lock(opportunity)
    locked.stage = Stage.LOST
    locked.probability = default_probability(Stage.LOST)
    locked.lost_reason = reason
    locked.closed_at = timezone.now()
    locked._change_reason = f"lost: {reason}"[:100]
    webhooks.emit("opportunity.lost", payload_for=lambda: webhooks.opportunity_data(locked))
    return _save(locked, by=by, target=opportunity)


@dataclass
class WinResult:
    opportunity: Opportunity
    status_change: StatusChange | None = None
    contract: Contract | None = None
    transaction: Transaction | None = None


def contract_initial(opportunity: Opportunity) -> dict[str, Any]:
    """What the contract of a won opportunity says unless the user changes it."""
    today = timezone.localdate()
    try:
        end = today.replace(year=today.year + 1) - datetime.timedelta(days=1)
    except ValueError:  # 29 February
        end = today.replace(year=today.year + 1, day=28)
    return {
        "title": opportunity.title,
        "amount": opportunity.amount,
        "start_date": today,
        "end_date": end,
        "status": Contract.Status.ACTIVE,
    }


def transaction_initial(opportunity: Opportunity) -> dict[str, Any]:
    return {
        "date": timezone.localdate(),
        "amount": opportunity.amount,
        "product": (opportunity.description.strip().splitlines() or [opportunity.title])[0][:200],
        "channel": Transaction.Channel.OFFLINE,
    }


def _valid_form(form_class, data: Mapping[str, Any], label: str, errors: dict, **form_kwargs):
    """The customers app's own form decides what a valid contract or transaction is."""
    form = form_class(data=dict(data), **form_kwargs)
    if form.is_valid():
        return form
    messages = []
    for name, field_errors in form.errors.items():
        prefix = f"{form.fields[name].label}: " if name in form.fields else ""
        messages += [f"{prefix}{error}" for error in field_errors]
    errors[label] = messages
    return None


@transaction.atomic
def opportunity_win(
    *,
    opportunity: Opportunity,
    by,
    create_contract: bool = False,
    contract: Mapping[str, Any] | None = None,
    create_transaction: bool = False,
    transaction_data: Mapping[str, Any] | None = None,
) -> WinResult:
    """Close ``opportunity`` as won (赢单), in one transaction with its consequences.

    A prospect or intent customer becomes 成交客户 (a StatusChange, the timeline event); with
    ``create_contract`` / ``create_transaction`` the contract and the transaction of the deal are
    recorded too, from ``contract`` / ``transaction_data`` (field values as customers.forms'
    ContractForm / TransactionForm take them; missing ones default from the opportunity). The
    transaction of an opportunity with product lines sells those lines, through
    customers.products.transaction_record: its amount is theirs and their stock goes, and a sale
    beyond stock is refused. If any of it is refused, nothing is written: ValidationError with the
    messages under "contract" or "transaction".
    """
    from customers.forms import ContractForm, TransactionForm
    from customers.products import transaction_record
    from customers.services import StatusChangeError, customer_change_status

    _check_writable(opportunity, by=by)
    errors: dict[str, list[str]] = {}
    contract_form = transaction_form = None
    if create_contract:
        if not by.has_perm("customers.add_contract"):
            raise PermissionDenied("customers.add_contract")
        contract_form = _valid_form(
            ContractForm, contract_initial(opportunity) | dict(contract or {}), "contract", errors
        )
    if create_transaction:
        if not by.has_perm("customers.add_transaction"):
            raise PermissionDenied("customers.add_transaction")
        transaction_form = _valid_form(
            TransactionForm,
            transaction_initial(opportunity) | dict(transaction_data or {}),
            "transaction",
            errors,
            with_lines=OpportunityLine.objects.filter(opportunity=opportunity).exists(),
        )
    if errors:
        raise ValidationError(errors)

    locked = _lock(opportunity)
    customer = locked.customer
    locked.stage = Stage.WON
    locked.probability = default_probability(Stage.WON)
    locked.closed_at = timezone.now()
    locked._change_reason = "won"
    _save(locked, by=by, target=opportunity)
    webhooks.emit("opportunity.won", payload_for=lambda: webhooks.opportunity_data(locked))
    result = WinResult(opportunity=opportunity)

    if customer.status in lifecycle.WON_BY_OPPORTUNITY:
        limit = StatusChange._meta.get_field("reason").max_length
        reason = (_("Opportunity won: %(title)s") % {"title": locked.title})[:limit]
        try:
            result.status_change = customer_change_status(
                customer=customer, to=Customer.Status.WON, by=by, reason=reason
            )
        except StatusChangeError as error:  # changed by someone else meanwhile: refuse all of it
            raise ValidationError(str(error)) from error
        opportunity.customer.status = customer.status

    if contract_form is not None:
        record = contract_form.save(commit=False)
        record.customer = customer
        record.created_by = by
        record._history_user = by
        record.save()
        result.contract = record
    if transaction_form is not None:
        data = transaction_form.cleaned_data
        lines = list(OpportunityLine.objects.filter(opportunity=locked).select_related("product"))
        try:
            result.transaction = transaction_record(
                customer=customer,
                by=by,
                date=data["date"],
                channel=data["channel"],
                lines=lines,
                product_text=data.get("product") or "",
                amount=data.get("amount"),
            )
        except ValidationError as error:  # not enough stock, a product no longer on sale: refuse all of it
            raise ValidationError({"transaction": error.messages}) from error
    return result


# --- The pipeline board --------------------------------------------------------------------------


@dataclass
class Column:
    stage: str
    label: str
    count: int = 0
    amount: Decimal = Decimal("0.00")
    weighted: Decimal = Decimal("0.00")
    cards: list[Opportunity] = field(default_factory=list)

    @property
    def more(self) -> int:
        return self.count - len(self.cards)


def board_queryset(user, *, rep=None):
    """The opportunities on ``user``'s board: their customers' (a rep), everyone's or one rep's (a manager)."""
    queryset = Opportunity.objects.visible_to(user)
    if rep is not None:
        queryset = queryset.filter(owner=rep)
    return queryset


def _board_parts(user, *, rep=None) -> list:
    """The same opportunities as ``board_queryset``, as disjoint parts (whose sums add up) in the
    shapes the board's totals and first cards are fastest in (docs/performance.md):

    - a user who sees every customer: "whose customer is not in the recycle bin" (NOT EXISTS: an
      anti-join against the few deleted customers) instead of "whose customer is among the million
      live ones";
    - a rep: the opportunities of the customers they own (an index-only scan the planner estimates
      right, so a parallel hash join), plus those of the others in their scope that they do not own
      (customers.access.scope_split), instead of one OR of every source.
    """
    from customers.access import scope_split

    parts = scope_split(user, "view")
    if parts is None:
        deleted = Customer.all_objects.filter(pk=OuterRef("customer_id"), deleted_at__isnull=False)
        querysets = [Opportunity.objects.exclude(Exists(deleted))]
    else:
        querysets = [
            Opportunity.objects.filter(customer_id__in=Customer.objects.filter(part).values("pk"))
            for part in parts
            if part is not None
        ]
    if rep is not None:
        querysets = [queryset.filter(owner=rep) for queryset in querysets]
    return querysets


def pipeline_board(*, user, rep=None, limit: int | None = None) -> list[Column]:
    """The columns of the board: a fixed number of queries whatever the number of opportunities.

    An aggregate (one, or one per disjoint part of a rep's scope) gives each column's count, amount
    and weighted amount (Σ amount × probability / 100, exact in decimals); one query gives each
    column's first ``limit`` cards (soonest expected close first), with customer and owner.
    """
    limit = BOARD_LIMIT if limit is None else limit
    columns = {stage.value: Column(stage.value, stage.label) for stage in Stage}
    money = DecimalField(max_digits=20, decimal_places=2)
    # Grouped by stage and probability (a few hundred groups at most): the weighted amount is then
    # Σ (group total × probability) in Python, exact, instead of a numeric multiplication per row
    # in SQL — the larger part of the aggregate's time over 300,000 opportunities.
    rows = []
    parts = _board_parts(user, rep=rep)
    sizes = []
    for part in parts:
        part_rows = list(
            part.order_by()
            .values("stage", "probability")
            .annotate(n=Count("pk"), total=Sum("amount", output_field=money))
        )
        sizes.append(sum(row["n"] for row in part_rows))
        rows += part_rows
    weighted: dict[str, Decimal] = {}
    for row in rows:
        column = columns.get(row["stage"])
        if column is None:
            continue
        total = Decimal(row["total"] or 0)
        column.count += row["n"]
        column.amount += total
        weighted[column.stage] = weighted.get(column.stage, Decimal(0)) + total * row["probability"]
    for column in columns.values():
        column.amount = column.amount.quantize(CENT)
        column.weighted = (weighted.get(column.stage, Decimal(0)) / 100).quantize(CENT)
    # Each column's first cards. From a large board (everyone's opportunities, a rep's book of
    # thousands): the ids of a LIMITed subquery per stage, read in board order from the
    # opportunity_board index (migration 0007), so the cost does not grow with the column (a window
    # over 300,000 opportunities sorted every one of them: seconds); ``= ANY(ARRAY(…))`` keeps the
    # OR of the six indexable. From a small one (up to WINDOW_MAX opportunities, known from the
    # totals just read): a window query per part ranking them by stage — walking the index for a
    # small book probes a customer per opportunity of the whole company (2,000 customers: 220 ms).
    from customers.access import _InSubquery

    order = [F("expected_close_date").asc(nulls_last=True), F("pk").desc()]
    firsts = Q(pk__in=[])
    if sum(sizes) > WINDOW_MAX:
        queryset = board_queryset(user, rep=rep)
        for stage in columns:
            firsts |= Q(_InSubquery(F("pk"), queryset.filter(stage=stage).order_by(*order).values("pk")[:limit]))
    else:
        for part, size in zip(parts, sizes, strict=True):
            if size:
                ranked = part.annotate(rank=Window(RowNumber(), partition_by=[F("stage")], order_by=order))
                firsts |= Q(pk__in=[pk for pk, _rank in ranked.filter(rank__lte=limit).values_list("pk", "rank")])
    cards = Opportunity.objects.filter(firsts).select_related("customer", "owner")
    for card in sorted(cards, key=_board_position):
        column = columns.get(card.stage)
        if column is not None and len(column.cards) < limit:
            column.cards.append(card)
    return list(columns.values())


def _board_position(card: Opportunity) -> tuple:
    """A card's place in its column: soonest expected close first, undated last, newest first."""
    closes = card.expected_close_date
    return (closes is None, closes or datetime.date.min, -card.pk)


def pipeline_totals(columns: list[Column]) -> dict[str, Any]:
    """The open pipeline's totals (won and lost are history, not pipeline)."""
    open_columns = [c for c in columns if c.stage in OPEN_STAGES]
    return {
        "count": sum(c.count for c in open_columns),
        "amount": sum((c.amount for c in open_columns), Decimal("0.00")),
        "weighted": sum((c.weighted for c in open_columns), Decimal("0.00")),
    }
