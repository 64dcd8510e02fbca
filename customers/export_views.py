"""Export downloads (being built in this change)."""

from django.http import Http404


def customer_export(request, *args, **kwargs):
    raise Http404


def transaction_export(request, *args, **kwargs):
    raise Http404


def contract_export(request, *args, **kwargs):
    raise Http404
