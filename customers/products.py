"""Products and stock (产品维护, 库存预警): the one place where stock changes.

Every change of a product's stock is a StockMovement written in the same transaction as the new
balance, with the product row locked (``SELECT … FOR UPDATE``, in primary-key order when several
are involved, so that two sales of the same products never deadlock). A sale of a stocked product
beyond what is in stock is refused, naming the product and both quantities, unless the seller holds
``customers.backorder_product``; then the stock goes negative and the movement says backorder.

When a product's stock falls from above its low-stock threshold to at or below it, the active
administrators and the product's manager are notified, once per crossing (the key names the
movement that crossed), in the same transaction: a refused or rolled-back sale warns nobody.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.models import User
from customers.access import can_edit
from customers.models import Customer, Product, StockMovement, Transaction, TransactionLine

CENT = Decimal("0.01")
Reason = StockMovement.Reason


@dataclass(frozen=True)
class Line:
    """One product line as the services take it: the product, how many, at what price each."""

    product: Product
    quantity: Decimal
    unit_price: Decimal

    @property
    def total(self) -> Decimal:
        return (self.quantity * self.unit_price).quantize(CENT)


def as_lines(lines: Iterable[Line | Mapping[str, Any] | Any]) -> list[Line]:
    """Lines from Line objects, mappings or model rows (TransactionLine, OpportunityLine)."""
    result = []
    for line in lines or []:
        if isinstance(line, Mapping):
            product, quantity, price = line["product"], line["quantity"], line["unit_price"]
        else:
            product, quantity, price = line.product, line.quantity, line.unit_price
        # Numbers as Decimal; what is not a number stays as it is, for validate_lines to refuse.
        result.append(Line(product, _number(quantity) or quantity, _number(price) or price))
    return result


def _number(value) -> Decimal | None:
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return number if number.is_finite() else None


def validate_lines(lines: list[Line]) -> None:
    """Quantities above zero, prices not negative, at most two decimals: ValidationError otherwise."""
    errors = []
    for line in lines:
        quantity, price = _number(line.quantity), _number(line.unit_price)
        if quantity is None or quantity <= 0 or quantity != quantity.quantize(CENT):
            errors.append(
                _("%(product)s: the quantity must be more than zero, with at most two decimals.")
                % {"product": line.product}
            )
        if price is None or price < 0 or price != price.quantize(CENT):
            errors.append(
                _("%(product)s: the price cannot be negative and has at most two decimals.") % {"product": line.product}
            )
    if errors:
        raise ValidationError(errors)


def lines_total(lines: list[Line]) -> Decimal:
    return sum((line.total for line in lines), Decimal("0.00"))


def lines_summary(lines: list[Line], limit: int = 200) -> str:
    """What Transaction.product says of its lines: "打印纸 × 2, 墨盒 × 1", cut to ``limit``."""
    parts = [f"{line.product.name} × {quantity_text(line.quantity)}" for line in lines]
    text = ", ".join(parts)
    if len(text) <= limit:
        return text
    for shown in range(len(parts) - 1, 0, -1):
        more = _(" and %(count)d more") % {"count": len(parts) - shown}
        text = ", ".join(parts[:shown]) + more
        if len(text) <= limit:
            return text
    return text[: limit - 1] + "…"


def quantity_text(quantity: Decimal) -> str:
    """2 rather than 2.00; 1.5 stays 1.5."""
    quantity = Decimal(quantity)
    return f"{quantity.normalize():f}" if quantity == quantity.to_integral_value() else f"{quantity:f}".rstrip("0")


# --- The catalogue -------------------------------------------------------------------------------


@transaction.atomic
def product_save(*, product: Product, by, opening_stock: Decimal | None = None) -> Product:
    """Create or update a catalogue entry (not its stock: that moves through the stock services).

    A new product's opening stock is booked as a receipt, so that its movements add up to its stock.
    """
    creating = product.pk is None
    if not by.has_perm("customers.add_product" if creating else "customers.change_product"):
        raise PermissionDenied("customers.add_product" if creating else "customers.change_product")
    if creating:
        opening = Decimal(opening_stock or 0)
        if opening < 0:
            raise ValidationError({"stock_quantity": _("The opening stock cannot be negative.")})
        if opening and not product.is_stocked:
            raise ValidationError({"stock_quantity": _("A product without stock tracking has no opening stock.")})
        product.stock_quantity = Decimal(0)
    else:
        # The stock is what the movements made it, whatever the form held.
        product.stock_quantity = (
            Product.objects.select_for_update().values_list("stock_quantity", flat=True).get(pk=product.pk)
        )
    product.full_clean()
    product._history_user = by
    product.save()
    if creating and opening_stock:
        # Part of creating (add_product was checked above), not a later receipt needing change_product.
        locked = _lock_products([product.pk])[product.pk]
        _move(locked, Decimal(opening_stock), reason=Reason.RECEIPT, note=_("Opening stock"), by=by)
        product.stock_quantity = locked.stock_quantity
    return product


# --- Stock ---------------------------------------------------------------------------------------


def _lock_products(ids: Iterable[int]) -> dict[int, Product]:
    """The products ``ids`` locked in primary-key order (two transactions never wait on each other crosswise)."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    locked = {p.pk: p for p in Product.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
    if len(locked) != len(ids):
        raise ValidationError(_("A product of this transaction no longer exists."))
    return locked


def low_stock_recipients(product: Product) -> list[User]:
    """Who hears of low stock: every active administrator (group admin, superusers) and the product's manager."""
    from followups.reminders import administrators

    users = list(administrators())
    manager = product.manager
    if manager is not None and manager.is_active and manager.pk not in {user.pk for user in users}:
        users.append(manager)
    return users


def _warn_low_stock(product: Product, movement: StockMovement, *, before: Decimal, backorder: bool) -> int:
    """Notify when ``movement`` took the stock from above the threshold to at or below it."""
    from followups.reminders import notify

    threshold = product.low_stock_threshold
    if not (product.is_active and product.is_stocked and before > threshold >= movement.balance):
        return 0
    values = {
        "code": product.code,
        "name": product.name,
        "stock": quantity_text(movement.balance),
        "unit": product.unit,
        "threshold": quantity_text(threshold),
    }
    title = _("Low stock: %(code)s %(name)s") % values
    body = _("%(stock)s %(unit)s left (threshold %(threshold)s %(unit)s).") % values
    if backorder:
        body += " " + _("Sold beyond stock (backorder).")
    sent = 0
    for user in low_stock_recipients(product):
        sent += (
            notify(
                user=user,
                key=f"low-stock:{product.pk}:{movement.pk}",
                title=title,
                body=body,
                url=reverse("customers:product_detail", args=[product.pk]),
            )
            is not None
        )
    return sent


def _move(
    product: Product,
    change: Decimal,
    *,
    reason: str,
    by,
    note: str = "",
    record: Transaction | None = None,
) -> StockMovement:
    """Book ``change`` on the locked ``product``: the new balance and its movement."""
    balance = product.stock_quantity + change
    # A queryset update skips the field's rules: a balance or change beyond the column's 14 digits
    # is refused here rather than failing in the database.
    try:
        Product._meta.get_field("stock_quantity").run_validators(Decimal(balance))
        StockMovement._meta.get_field("change").run_validators(Decimal(change))
    except ValidationError:
        raise ValidationError(
            _("The stock of %(product)s would go beyond what can be recorded.") % {"product": product}
        ) from None
    product.stock_quantity = balance
    # A queryset update, not save(): the movement is the record of a stock change, and a history
    # row of the whole product for every sale would only repeat it.
    Product.objects.filter(pk=product.pk).update(stock_quantity=product.stock_quantity)
    return StockMovement.objects.create(
        product=product,
        change=change,
        balance=product.stock_quantity,
        reason=reason,
        transaction=record,
        note=note[: StockMovement._meta.get_field("note").max_length],
        created_by=by,
    )


def _check_stock_product(product: Product) -> None:
    if not product.is_stocked:
        raise ValidationError(_("The stock of %(product)s is not tracked.") % {"product": product})


@transaction.atomic
def stock_receive(*, product: Product, quantity: Decimal, note: str = "", by) -> StockMovement:
    """Goods received (入库): the stock grows by ``quantity``."""
    if not by.has_perm("customers.change_product"):
        raise PermissionDenied("customers.change_product")
    quantity = _number(quantity)
    if quantity is None or quantity <= 0:
        raise ValidationError({"quantity": _("The quantity received must be more than zero.")})
    locked = _lock_products([product.pk])[product.pk]
    _check_stock_product(locked)
    movement = _move(locked, quantity, reason=Reason.RECEIPT, note=note, by=by)
    product.stock_quantity = locked.stock_quantity
    return movement


@transaction.atomic
def stock_adjust(*, product: Product, new_count: Decimal, note: str, by) -> StockMovement:
    """A stock count correction (盘点): the stock becomes ``new_count``; the reason is required."""
    if not by.has_perm("customers.change_product"):
        raise PermissionDenied("customers.change_product")
    new_count = _number(new_count)
    if new_count is None or new_count < 0:
        raise ValidationError({"new_count": _("The counted stock cannot be negative.")})
    if not (note or "").strip():
        raise ValidationError({"note": _("Say why the stock is corrected.")})
    locked = _lock_products([product.pk])[product.pk]
    _check_stock_product(locked)
    before = locked.stock_quantity
    if new_count == before:
        raise ValidationError({"new_count": _("The stock is already %(count)s.") % {"count": quantity_text(before)}})
    movement = _move(locked, new_count - before, reason=Reason.ADJUSTMENT, note=note.strip(), by=by)
    _warn_low_stock(locked, movement, before=before, backorder=False)
    product.stock_quantity = locked.stock_quantity
    return movement


# --- Transactions with product lines --------------------------------------------------------------


def _per_product(lines: Iterable[Line]) -> dict[int, Decimal]:
    totals: dict[int, Decimal] = {}
    for line in lines:
        totals[line.product.pk] = totals.get(line.product.pk, Decimal(0)) + Decimal(line.quantity)
    return totals


@transaction.atomic
def transaction_record(
    *,
    customer: Customer,
    by,
    date: datetime.date,
    channel: str,
    lines: Iterable[Line | Mapping[str, Any]] = (),
    product_text: str = "",
    amount: Decimal | None = None,
    instance: Transaction | None = None,
) -> Transaction:
    """Record (or, with ``instance``, change) a transaction of ``customer``, its lines and their stock.

    With lines, the amount is the sum of the lines and the description summarises them; without,
    ``product_text`` and ``amount`` are the transaction as before products existed. Editing puts
    the old lines' stock back (reason return) and takes the new lines' (reason sale); an edit that
    leaves every product's quantity as it was moves no stock. ValidationError, with nothing
    written, when a line is invalid, a product is not on sale or there is not enough stock.
    """
    creating = instance is None or instance.pk is None
    perm = "customers.add_transaction" if creating else "customers.change_transaction"
    if not by.has_perm(perm) or not can_edit(by, customer):
        raise PermissionDenied(perm)
    new_lines = as_lines(lines)
    validate_lines(new_lines)

    if creating:
        record = instance if instance is not None else Transaction()
        record.customer = customer
        record.created_by = by
        record.rep_id = customer.owner_id  # credited with the sale, whoever records it
        old_lines: list[TransactionLine] = []
    else:
        # Two edits of one transaction at once must not both put its old lines back.
        record = Transaction.objects.select_for_update().get(pk=instance.pk)
        if record.customer_id != customer.pk:
            raise ValidationError(_("This transaction belongs to another customer."))
        old_lines = list(TransactionLine.objects.filter(transaction=record).select_related("product"))

    old_quantities = _per_product(as_lines(old_lines))
    new_quantities = _per_product(new_lines)
    locked = _lock_products(set(old_quantities) | set(new_quantities))
    stock_moves = old_quantities != new_quantities

    errors = []
    for pk, requested in new_quantities.items():
        product = locked[pk]
        if not product.is_active and pk not in old_quantities:
            errors.append(_("%(product)s is not on sale.") % {"product": product})
            continue
        if not product.is_stocked or not stock_moves:
            continue
        available = product.stock_quantity + old_quantities.get(pk, Decimal(0))
        if requested > available and not by.has_perm("customers.backorder_product"):
            errors.append(
                _("Not enough stock of %(product)s: %(available)s %(unit)s available, %(requested)s requested.")
                % {
                    "product": product,
                    "available": quantity_text(available),
                    "requested": quantity_text(requested),
                    "unit": product.unit,
                }
            )
    if errors:
        raise ValidationError(errors)

    if new_lines:
        # Prices and names come from the locked rows the stock was checked against.
        new_lines = [Line(locked[line.product.pk], line.quantity, line.unit_price) for line in new_lines]
        amount = lines_total(new_lines)
        product_text = lines_summary(new_lines, Transaction._meta.get_field("product").max_length)
        if amount <= 0:
            raise ValidationError(_("The lines add up to nothing: a transaction must be worth more than zero."))
    else:
        product_text = (product_text or "").strip()
        errors = {}
        if not product_text:
            errors["product"] = _("Say what was bought, or add product lines.")
        if amount is None or amount == 0:
            # A refund (退款) is recorded as a negative amount without product lines.
            errors["amount"] = _("The amount cannot be zero (a refund is a negative amount).")
        if errors:
            raise ValidationError(errors)

    record.date = date
    record.channel = channel
    record.amount = amount
    record.product = product_text
    record._history_user = by
    record.full_clean(exclude=["customer", "created_by"])
    record.save()

    if not creating:
        TransactionLine.objects.filter(transaction=record).delete()
    TransactionLine.objects.bulk_create(
        TransactionLine(transaction=record, product=line.product, quantity=line.quantity, unit_price=line.unit_price)
        for line in new_lines
    )

    if stock_moves:
        before = {pk: product.stock_quantity for pk, product in locked.items()}
        last: dict[int, StockMovement] = {}
        backorders: set[int] = set()
        for pk, quantity in sorted(old_quantities.items()):
            if locked[pk].is_stocked:
                last[pk] = _move(locked[pk], quantity, reason=Reason.RETURN, by=by, record=record)
        for pk, quantity in sorted(new_quantities.items()):
            product = locked[pk]
            if not product.is_stocked:
                continue
            short = quantity - product.stock_quantity
            note = ""
            if short > 0:
                backorders.add(pk)
                note = _("Backorder: %(short)s %(unit)s beyond stock") % {
                    "short": quantity_text(short),
                    "unit": product.unit,
                }
            last[pk] = _move(product, -quantity, reason=Reason.SALE, by=by, record=record, note=note)
        # One warning per crossing of the whole change, not per movement: an edit that returns
        # and sells again the same goods does not warn again about a stock that was already low.
        for pk, movement in last.items():
            _warn_low_stock(locked[pk], movement, before=before[pk], backorder=pk in backorders)
    return record


def transaction_lines(record: Transaction) -> list[TransactionLine]:
    return list(record.lines.select_related("product"))
