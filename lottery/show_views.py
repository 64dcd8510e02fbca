"""The big screen (being built: helper H2)."""

from django.http import Http404


def _todo(*args, **kwargs):
    raise Http404("not built yet")


show = show_draw = _todo
