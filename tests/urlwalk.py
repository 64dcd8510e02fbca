"""Every URL pattern of the project, with sample arguments, so access tests cover new URLs automatically."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RoutePattern

SAMPLE_BY_CONVERTER = {
    "int": "1",
    "str": "sample",
    "slug": "sample",
    "uuid": "00000000-0000-0000-0000-000000000001",
    "path": "sample",
}

# URLs whose argument selects a kind of page rather than a record: a made-up value only reaches
# the "no such kind" 404, which answers before the permission check. These samples reach the check.
SAMPLE_KWARGS_BY_NAME = {
    "reports:report": {"key": "campaigns"},
    "reports:subscribe": {"key": "campaigns"},
    "customers:lookup_list": {"kind": "levels"},
    "customers:lookup_create": {"kind": "levels"},
    "customers:lookup_edit": {"kind": "levels", "pk": 1},
}


@dataclass
class WalkedUrl:
    name: str
    path: str


def _sample_route(route: str) -> str:
    import re

    def repl(match):
        converter = match.group(1) or "str"
        return SAMPLE_BY_CONVERTER.get(converter, "1")

    return re.sub(r"<(?:(\w+):)?\w+>", repl, route)


def walk_urls(resolver=None, prefix: str = "/", namespace: str = "") -> list[WalkedUrl]:
    resolver = resolver or get_resolver()
    found: list[WalkedUrl] = []
    for entry in resolver.url_patterns:
        pattern = entry.pattern
        if isinstance(pattern, RoutePattern):
            part = _sample_route(str(pattern))
        else:
            # A regex pattern (the Django admin's): take the literal form of simple ones.
            raw = str(pattern).lstrip("^").rstrip("$").replace("\\", "")
            if any(ch in raw for ch in "()[]?*+|"):
                continue
            part = raw
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            found.extend(walk_urls(entry, prefix + part, ns))
        elif isinstance(entry, URLPattern):
            name = f"{namespace}{entry.name or ''}"
            path = reverse(name, kwargs=SAMPLE_KWARGS_BY_NAME[name]) if name in SAMPLE_KWARGS_BY_NAME else prefix + part
            found.append(WalkedUrl(name=name, path=path))
    return found
