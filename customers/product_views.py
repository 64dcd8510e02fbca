"""The product catalogue (产品维护) and its stock (库存): list, detail with movements, create, edit,
goods received and stock count corrections. Writes go through customers.products."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from accounts.access import staff_permission_required
from cims.pagination import COUNT_CAP, KeysetPaginator, capped_count, page_links
from customers import products as services
from customers.forms_list import CursorForm
from customers.forms_product import ProductFilterForm, ProductForm, StockAdjustForm, StockReceiveForm
from customers.models import Product, StockMovement

PER_PAGE = 30
MOVEMENTS_PER_PAGE = 20


def _add_errors(form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for name, field_errors in error.message_dict.items():
            form.add_error(name if name in form.fields else None, field_errors)
    else:
        form.add_error(None, error.messages)


@staff_permission_required("customers.view_product")
@require_GET
def product_list(request: HttpRequest) -> HttpResponse:
    form = ProductFilterForm(request.GET or None)
    queryset = Product.objects.all()
    show_inactive = False
    if form.is_valid():
        data = form.cleaned_data
        text = data["q"].strip()
        if text:
            queryset = queryset.filter(Q(code__icontains=text) | Q(name__icontains=text))
        if data["category"]:
            queryset = queryset.filter(category=data["category"])
        if data["low"]:
            queryset = queryset.low_stock()
        show_inactive = data["inactive"]
    elif form.is_bound:
        queryset = queryset.none()
    if not show_inactive:
        queryset = queryset.active()
    rows = queryset.select_related("category")
    after, before = CursorForm(request.GET).cursors()
    page = KeysetPaginator(rows, key="code", descending=False, per_page=PER_PAGE).page(after=after, before=before)
    context = {
        "form": form,
        "page": page,
        "count": capped_count(queryset, COUNT_CAP),
        "low_count": Product.objects.low_stock().count(),
        **page_links(request, page),
    }
    return render(request, "customers/product_list.html", context)


def _product(pk: int) -> Product:
    return get_object_or_404(Product.objects.select_related("category", "manager"), pk=pk)


@staff_permission_required("customers.view_product")
@require_GET
def product_detail(request: HttpRequest, pk: int) -> HttpResponse:
    product = _product(pk)
    context = {"product": product, "movements": None}
    if request.user.has_perm("customers.view_stockmovement"):
        movements = StockMovement.objects.filter(product=product).select_related("created_by", "transaction")
        after, before = CursorForm(request.GET).cursors()
        page = KeysetPaginator(movements, key="pk", descending=True, per_page=MOVEMENTS_PER_PAGE).page(
            after=after, before=before
        )
        context.update({"movements": page, "page": page, **page_links(request, page)})
    return render(request, "customers/product_detail.html", context)


def _product_form_view(request: HttpRequest, product: Product) -> HttpResponse:
    creating = product.pk is None
    form = ProductForm(request.POST or None, instance=product)
    if request.method == "POST" and form.is_valid():
        try:
            product = services.product_save(
                product=form.save(commit=False),
                by=request.user,
                opening_stock=form.cleaned_data.get("stock_quantity") if creating else None,
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            if creating:
                messages.success(request, _("Product %(code)s was created.") % {"code": product.code})
            else:
                messages.success(request, _("Product %(code)s was saved.") % {"code": product.code})
            return redirect("customers:product_detail", pk=product.pk)
    status = 422 if request.method == "POST" else 200
    return render(
        request, "customers/product_form.html", {"form": form, "product": None if creating else product}, status=status
    )


@staff_permission_required("customers.add_product")
@require_http_methods(["GET", "POST"])
def product_create(request: HttpRequest) -> HttpResponse:
    return _product_form_view(request, Product())


@staff_permission_required("customers.change_product")
@require_http_methods(["GET", "POST"])
def product_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _product_form_view(request, _product(pk))


@staff_permission_required("customers.change_product")
@require_http_methods(["GET", "POST"])
def product_stock(request: HttpRequest, pk: int) -> HttpResponse:
    """Goods received (入库) or a stock count correction (盘点), each a form of its own."""
    product = _product(pk)
    action = request.POST.get("action") if request.method == "POST" else None
    receive = StockReceiveForm(request.POST if action == "receive" else None, prefix="receive")
    adjust = StockAdjustForm(
        request.POST if action == "adjust" else None, prefix="adjust", initial={"new_count": product.stock_quantity}
    )
    if request.method == "POST":
        form = {"receive": receive, "adjust": adjust}.get(action)
        if form is not None and form.is_valid():
            try:
                if action == "receive":
                    services.stock_receive(
                        product=product,
                        quantity=form.cleaned_data["quantity"],
                        note=form.cleaned_data["note"],
                        by=request.user,
                    )
                else:
                    services.stock_adjust(
                        product=product,
                        new_count=form.cleaned_data["new_count"],
                        note=form.cleaned_data["note"],
                        by=request.user,
                    )
            except ValidationError as error:
                _add_errors(form, error)
            else:
                messages.success(
                    request,
                    _("The stock of %(code)s is now %(stock)s %(unit)s.")
                    % {
                        "code": product.code,
                        "stock": services.quantity_text(product.stock_quantity),
                        "unit": product.unit,
                    },
                )
                return redirect("customers:product_detail", pk=product.pk)
        elif form is None:
            messages.error(request, _("Choose whether goods were received or the stock was counted."))
    status = 422 if request.method == "POST" else 200
    context = {"product": product, "receive_form": receive, "adjust_form": adjust}
    return render(request, "customers/product_stock.html", context, status=status)
