"""Follow-up pages (being built in this change)."""

from django.http import Http404


def followup_list(request, *args, **kwargs):
    raise Http404


def followup_create(request, *args, **kwargs):
    raise Http404


def followup_edit(request, *args, **kwargs):
    raise Http404


def status_change(request, *args, **kwargs):
    raise Http404


def timeline(request, *args, **kwargs):
    raise Http404
