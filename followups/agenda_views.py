"""Tasks, notifications, calendar and notes (being built in this change)."""

from django.http import Http404


def task_list(request, *args, **kwargs):
    raise Http404


def task_create(request, *args, **kwargs):
    raise Http404


def task_edit(request, *args, **kwargs):
    raise Http404


def task_done(request, *args, **kwargs):
    raise Http404


def notification_list(request, *args, **kwargs):
    raise Http404


def notification_bell(request, *args, **kwargs):
    raise Http404


def notification_read(request, *args, **kwargs):
    raise Http404


def notifications_read_all(request, *args, **kwargs):
    raise Http404


def calendar(request, *args, **kwargs):
    raise Http404


def history(request, *args, **kwargs):
    raise Http404


def note_create(request, *args, **kwargs):
    raise Http404


def note_edit(request, *args, **kwargs):
    raise Http404


def note_delete(request, *args, **kwargs):
    raise Http404
