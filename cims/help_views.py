"""Placeholder: the help pages (being written)."""

from django.http import Http404


def index(request):
    raise Http404


page = tour_done = tour_restart = index
