"""Product views (stub: being built)."""

from django.http import Http404

from accounts.access import staff_required


@staff_required
def product_list(request):
    raise Http404


@staff_required
def product_create(request):
    raise Http404


@staff_required
def product_detail(request, pk):
    raise Http404


@staff_required
def product_edit(request, pk):
    raise Http404


@staff_required
def product_stock(request, pk):
    raise Http404
