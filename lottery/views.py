"""Staff pages of the lottery (being built: helper H1)."""

from django.http import Http404


def _todo(*args, **kwargs):
    raise Http404("not built yet")


event_list = event_create = event_detail = event_edit = event_delete = event_publish = _todo
event_public_value = event_announce = winner_list = winner_export = _todo
