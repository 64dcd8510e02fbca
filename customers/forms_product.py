"""Forms of the product catalogue and stock, and the product lines of transactions and opportunities."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from cims.normalize import fold_width
from customers.models import Product, ProductCategory
from customers.products import Line

MONEY = {"step": "0.01", "min": "0"}
MAX_LINE_ROWS = 30


def product_manager_queryset():
    """Who may manage a product: active users whose role may change products."""
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(groups__permissions__codename="change_product") | Q(is_superuser=True))
        .distinct()
        .order_by("username")
    )


class ProductForm(forms.ModelForm):
    """A catalogue entry. The stock is entered once, as the opening stock of a new product; after
    that it changes only through receipts, corrections and sales (customers.products)."""

    class Meta:
        model = Product
        fields = [
            "code",
            "name",
            "category",
            "unit",
            "list_price",
            "is_stocked",
            "stock_quantity",
            "low_stock_threshold",
            "manager",
            "description",
            "is_active",
        ]
        widgets = {
            "list_price": forms.NumberInput(attrs=MONEY),
            "stock_quantity": forms.NumberInput(attrs=MONEY),
            "low_stock_threshold": forms.NumberInput(attrs=MONEY),
            "description": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        category = self.fields["category"]
        category.queryset = ProductCategory.objects.filter(
            Q(is_active=True) | Q(pk=self.instance.category_id or 0)
        ).order_by("sort_order", "name")
        manager = self.fields["manager"]
        manager.queryset = product_manager_queryset()
        manager.help_text = _("Hears of low stock, with the administrators.")
        self.fields["list_price"].help_text = _("In yuan (CNY); the price a line starts with.")
        self.fields["low_stock_threshold"].help_text = _("At or below this stock the product is low (库存预警).")
        if self.instance.pk:
            del self.fields["stock_quantity"]
        else:
            stock = self.fields["stock_quantity"]
            stock.label = _("Opening stock")
            stock.required = False
            stock.help_text = _("What is in stock now; later changes are receipts and corrections.")

    def clean_code(self) -> str:
        return fold_width(self.cleaned_data["code"]).strip().upper()

    def clean_name(self) -> str:
        return fold_width(self.cleaned_data["name"]).strip()

    def _not_negative(self, name: str, message) -> Decimal:
        value = self.cleaned_data.get(name)
        if value is not None and value < 0:
            raise forms.ValidationError(message, code="negative")
        return value

    def clean_list_price(self) -> Decimal:
        return self._not_negative("list_price", _("The price cannot be negative."))

    def clean_low_stock_threshold(self) -> Decimal:
        return self._not_negative("low_stock_threshold", _("The low-stock threshold cannot be negative."))

    def clean_stock_quantity(self) -> Decimal:
        value = self._not_negative("stock_quantity", _("The opening stock cannot be negative."))
        return value or Decimal(0)

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk and cleaned.get("stock_quantity") and not cleaned.get("is_stocked"):
            self.add_error("stock_quantity", _("A product without stock tracking has no opening stock."))
        return cleaned


class ProductFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    category = forms.ModelChoiceField(
        label=_("Category"), queryset=ProductCategory.objects.none(), required=False, empty_label=_("All categories")
    )
    low = forms.BooleanField(label=_("Low stock only"), required=False)
    inactive = forms.BooleanField(label=_("Include products not on sale"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = ProductCategory.objects.order_by("sort_order", "name")


class StockReceiveForm(forms.Form):
    quantity = forms.DecimalField(
        label=_("Quantity received"), max_digits=14, decimal_places=2, widget=forms.NumberInput(attrs=MONEY)
    )
    note = forms.CharField(label=_("Note"), required=False, max_length=200, help_text=_("Delivery note, supplier …"))

    def clean_quantity(self) -> Decimal:
        quantity = self.cleaned_data["quantity"]
        if quantity <= 0:
            raise forms.ValidationError(_("The quantity received must be more than zero."), code="not_positive")
        return quantity


class StockAdjustForm(forms.Form):
    new_count = forms.DecimalField(
        label=_("Counted stock"), max_digits=14, decimal_places=2, widget=forms.NumberInput(attrs=MONEY)
    )
    note = forms.CharField(label=_("Reason"), max_length=200, help_text=_("Stock count, damage, loss …"))

    def clean_new_count(self) -> Decimal:
        count = self.cleaned_data["new_count"]
        if count < 0:
            raise forms.ValidationError(_("The counted stock cannot be negative."), code="negative")
        return count


# --- Product lines (transactions and opportunities) ------------------------------------------------


class LineForm(forms.Form):
    """One product line: a product on sale, a quantity, a price (the list price when left empty)."""

    product = forms.TypedChoiceField(label=_("Product"), required=False, coerce=int, empty_value=None)
    quantity = forms.DecimalField(
        label=_("Quantity"),
        required=False,
        max_digits=14,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0.01"}),
    )
    unit_price = forms.DecimalField(
        label=_("Unit price (CNY)"),
        required=False,
        max_digits=14,
        decimal_places=2,
        widget=forms.NumberInput(attrs=MONEY),
        help_text=_("Empty: the list price."),
    )

    def __init__(self, *args, products: dict[int, Product], choices: list, **kwargs):
        super().__init__(*args, **kwargs)
        self.products = products
        self.fields["product"].choices = choices

    def clean(self):
        cleaned = super().clean()
        pk = cleaned.get("product")
        if pk is None:
            if cleaned.get("quantity") is not None or cleaned.get("unit_price") is not None:
                self.add_error("product", _("Choose a product for this line, or clear it."))
            return cleaned
        product = self.products.get(pk)
        if product is None:
            self.add_error("product", _("Choose a product on sale."))
            return cleaned
        quantity = cleaned.get("quantity")
        if quantity is None and "quantity" not in self.errors:
            self.add_error("quantity", _("How many?"))
        elif quantity is not None and quantity <= 0:
            self.add_error("quantity", _("The quantity must be more than zero."))
        price = cleaned.get("unit_price")
        if price is not None and price < 0:
            self.add_error("unit_price", _("The price cannot be negative."))
        elif price is None and "unit_price" not in self.errors:
            cleaned["unit_price"] = product.list_price
        cleaned["product_obj"] = product
        return cleaned

    def line(self) -> Line | None:
        data = getattr(self, "cleaned_data", {})
        if data.get("product_obj") is None:
            return None
        return Line(data["product_obj"], data["quantity"], data["unit_price"])


class BaseLineFormSet(forms.BaseFormSet):
    """Product lines; empty rows are ignored. The product list is read once for all the rows."""

    def __init__(self, *args, keep_products=(), **kwargs):
        queryset = Product.objects.filter(Q(is_active=True) | Q(pk__in=list(keep_products))).order_by("code")
        self.products = {product.pk: product for product in queryset}
        choices = [("", "—")] + [
            (pk, f"{p.code} {p.name} · ¥{p.list_price}/{p.unit}") for pk, p in self.products.items()
        ]
        kwargs.setdefault("form_kwargs", {}).update(products=self.products, choices=choices)
        super().__init__(*args, **kwargs)

    def has_lines(self) -> bool:
        """Whether any row names a product (as typed, valid or not): the form then needs no amount."""
        if not self.is_bound:
            return any(form.initial.get("product") for form in self.forms)
        return any(form["product"].value() not in (None, "") for form in self.forms)

    def lines(self) -> list[Line]:
        return [line for form in self.forms if (line := form.line()) is not None]


def line_formset_class(*, extra: int):
    return forms.formset_factory(
        LineForm,
        formset=BaseLineFormSet,
        extra=extra,
        max_num=MAX_LINE_ROWS,
        validate_max=True,
        # A forged TOTAL_FORMS builds at most this many rows (Django's default would be 1,030).
        absolute_max=MAX_LINE_ROWS,
    )


def line_initial(lines) -> list[dict]:
    """Initial rows from saved lines (TransactionLine or OpportunityLine)."""
    return [{"product": line.product_id, "quantity": line.quantity, "unit_price": line.unit_price} for line in lines]


def line_formset(data=None, *, prefix: str, lines=(), extra: int = 3):
    """The line rows of a form: the saved ``lines`` (their products stay choosable even when no
    longer on sale) and ``extra`` empty rows."""
    lines = list(lines)
    if data is not None and f"{prefix}-TOTAL_FORMS" not in data:
        # Posted without the rows (a client that knows nothing of products): no lines, not an error.
        data = data.copy()
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    formset_class = line_formset_class(extra=extra)
    return formset_class(
        data, prefix=prefix, initial=line_initial(lines), keep_products=[line.product_id for line in lines]
    )


def add_line_row(data, prefix: str):
    """POST data with one more empty row, when the user pressed "add a row" (works without script)."""
    data = data.copy()
    try:
        total = int(data.get(f"{prefix}-TOTAL_FORMS", "0"))
    except ValueError:
        return data
    data[f"{prefix}-TOTAL_FORMS"] = str(min(max(total, 0) + 1, MAX_LINE_ROWS))
    return data
