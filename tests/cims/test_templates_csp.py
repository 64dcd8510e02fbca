"""The Content-Security-Policy forbids inline code, so no template may hold any: no <script>
without src (except JSON data blocks from json_script), no on<event>= handlers, no style="…"
attributes and no <style> elements. E-mail templates are exempt: they are never served by the
web server (no CSP applies) and mail clients need inline styles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.template.loaders.app_directories import get_app_template_dirs
from django.urls import reverse

from tests.customers.factories import CustomerFactory

SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[a-zA-Z][^>]*?\son[a-z]+\s*=", re.IGNORECASE | re.DOTALL)
STYLE_ATTRIBUTE = re.compile(r"<[a-zA-Z][^>]*?\sstyle\s*=", re.IGNORECASE | re.DOTALL)
STYLE_ELEMENT = re.compile(r"<style\b", re.IGNORECASE)


def _template_files() -> list[Path]:
    roots = [Path(root) for root in settings.TEMPLATES[0]["DIRS"]]
    base = Path(settings.BASE_DIR)
    # App templates (ours only, not Django's or third parties' in .venv).
    roots += [
        Path(root)
        for root in get_app_template_dirs("templates")
        if base in Path(root).parents and "site-packages" not in Path(root).parts
    ]
    found = []
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix in {".html", ".htm", ".svg", ".js"} and "email" not in path.parts:
                found.append(path)
    return found


TEMPLATES = _template_files()


def inline_code(text: str) -> list[str]:
    problems = []
    for match in SCRIPT_TAG.finditer(text):
        attributes = match.group(1)
        if "src=" not in attributes and not re.search(r"type=[\"']application/json[\"']", attributes):
            problems.append(f"inline <script{attributes}>")
    problems += [f"event handler {m.group(0)[-40:]!r}" for m in EVENT_HANDLER.finditer(text)]
    problems += [f"style attribute {m.group(0)[-40:]!r}" for m in STYLE_ATTRIBUTE.finditer(text)]
    problems += ["<style> element" for _ in STYLE_ELEMENT.finditer(text)]
    return problems


def test_it_finds_templates_to_check():
    names = {path.name for path in TEMPLATES}
    assert {"base.html", "403.html", "429.html"} <= names
    assert len(TEMPLATES) > 50


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: str(path.relative_to(settings.BASE_DIR)))
def test_no_template_holds_inline_code(path):
    assert inline_code(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "snippet",
    [
        "<script>alert(1)</script>",
        '<script type="text/javascript">x()</script>',
        '<button class="btn" onclick="go()">',
        '<img src="a.png"\n     onerror="x()">',
        '<div class="x" style="color: red">',
        "<style>body {}</style>",
    ],
)
def test_the_check_catches_inline_code(snippet):
    assert inline_code(snippet)


@pytest.mark.parametrize(
    "snippet",
    [
        '<script src="/static/cims/cims.js"></script>',
        '<script id="show-data" type="application/json">{"a": 1}</script>',
        '<a href="#" data-onclick="x" class="online">',
        '<input name="style" data-bs-toggle="tab">',
    ],
)
def test_the_check_allows_scripts_from_files_and_data(snippet):
    assert inline_code(snippet) == []


def _script_src(csp: str) -> str:
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";") if " " in part.strip())
    return directives["script-src"]


def test_a_staff_page_forbids_inline_script_and_has_none(client_for, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    response = client_for(sales_rep).get(reverse("customers:detail", args=[customer.pk]))
    assert response.status_code == 200
    script_src = _script_src(response["Content-Security-Policy"])
    assert "'self'" in script_src
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert inline_code(response.content.decode()) == []


def test_a_portal_page_forbids_inline_script_and_has_none(client_for, portal_customer, portal_customer_record):
    response = client_for(portal_customer).get(reverse("portal:privacy"))
    assert response.status_code == 200
    script_src = _script_src(response["Content-Security-Policy"])
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert inline_code(response.content.decode()) == []
