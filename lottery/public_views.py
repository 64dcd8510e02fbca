"""Public verification pages (being built: helper H3)."""

from django.http import Http404


def _todo(*args, **kwargs):
    raise Http404("not built yet")


public_page = public_document = public_entries = verifier_script = _todo
