"""Campaign views (stub: being built)."""

from django.http import Http404

from accounts.access import staff_required


@staff_required
def campaign_list(request):
    raise Http404


@staff_required
def campaign_create(request):
    raise Http404


@staff_required
def campaign_detail(request, pk):
    raise Http404


@staff_required
def campaign_edit(request, pk):
    raise Http404


@staff_required
def campaign_add_targets(request, pk):
    raise Http404


@staff_required
def campaign_member_update(request, pk):
    raise Http404


@staff_required
def campaign_member_remove(request, pk):
    raise Http404
