"""Placeholder: the API token pages (being written)."""

from django.http import Http404


def token_list(request):
    raise Http404


token_create = token_detail = token_revoke = token_list
