"""Duplicates and merging (being built in this change)."""

from django.http import Http404


def duplicate_list(request, *args, **kwargs):
    raise Http404


def customer_merge(request, *args, **kwargs):
    raise Http404
