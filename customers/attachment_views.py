"""Attachment views (stub: being built)."""

from django.http import Http404

from accounts.access import staff_required


@staff_required
def attachment_upload(request, pk):
    raise Http404


@staff_required
def attachment_download(request, pk):
    raise Http404


@staff_required
def attachment_delete(request, pk):
    raise Http404
