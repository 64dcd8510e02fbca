"""Placeholder: the webhook pages (being written)."""

from django.http import Http404


def endpoint_list(request):
    raise Http404


endpoint_create = endpoint_detail = endpoint_edit = endpoint_ping = delivery_detail = delivery_resend = endpoint_list
