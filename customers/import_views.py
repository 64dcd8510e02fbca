"""Import pages (being built in this change)."""

from django.http import Http404


def import_start(request, *args, **kwargs):
    raise Http404


def import_template(request, *args, **kwargs):
    raise Http404


def import_jobs(request, *args, **kwargs):
    raise Http404


def import_job(request, *args, **kwargs):
    raise Http404


def import_job_status(request, *args, **kwargs):
    raise Http404


def import_confirm(request, *args, **kwargs):
    raise Http404


def import_cancel(request, *args, **kwargs):
    raise Http404


def import_errors(request, *args, **kwargs):
    raise Http404
