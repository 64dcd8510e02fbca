"""帮助: the user guide in the app (pages, search), the per-page help links and the guided tour."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import roles
from cims import help
from tests.accounts.test_url_matrix import ALLOW, PUBLIC, STAFF
from tests.urlwalk import walk_urls

GUIDE = Path(settings.BASE_DIR) / "docs" / "user-guide"
INDEX = "/help/"


def english(client: Client) -> Client:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


# --- Who may open the guide -----------------------------------------------------------------------


@pytest.mark.parametrize("path", [INDEX, "/help/customers/"])
def test_it_sends_anonymous_visitors_to_log_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("path", [INDEX, "/help/customers/"])
def test_it_refuses_portal_customers_and_roleless_users(client_for, portal_customer, roleless_user, path):
    assert client_for(portal_customer).get(path).status_code == 403
    assert client_for(roleless_user).get(path).status_code == 403


def test_it_lists_every_page_of_the_guide_for_each_staff_role(client_for, cast):
    for role in roles.STAFF_ROLES:
        response = client_for(cast[role]).get(INDEX)
        assert response.status_code == 200, role
        for slug in help.PAGE_ORDER:
            assert f'href="/help/{slug}/"' in response.content.decode(), (role, slug)


def test_it_only_answers_get_on_the_guide(client_for, sales_rep):
    assert client_for(sales_rep).post(INDEX).status_code == 405


# --- The pages ------------------------------------------------------------------------------------


def test_it_renders_a_page_with_its_table_of_contents(client_for, sales_rep):
    response = client_for(sales_rep).get("/help/customers/")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<h1 class="h4 mb-0">客户管理</h1>' in html
    assert '<h2 id="pool">公海客户</h2>' in html
    toc = re.search(r'data-testid="help-toc">(.*?)</nav>', html, re.S).group(1)
    assert '<a href="#pool">公海客户</a>' in toc
    assert '<a href="#recycle-bin">回收站</a>' in toc
    # Screenshots are served from the static files, never as a relative path.
    assert 'src="/static/help/customers-list.png"' in html


def test_it_serves_the_english_page_when_the_interface_is_english(client_for, sales_rep):
    html = english(client_for(sales_rep)).get("/help/customers/").content.decode()
    assert '<h2 id="pool">The customer pool</h2>' in html
    assert "公海客户</h2>" not in html


def test_it_falls_back_to_chinese_when_a_page_has_no_english_version(settings, tmp_path):
    (tmp_path / "docs" / "user-guide" / "zh").mkdir(parents=True)
    (tmp_path / "docs" / "user-guide" / "en").mkdir(parents=True)
    (tmp_path / "docs" / "user-guide" / "zh" / "only-zh.md").write_text("# 只有中文\n\n## 一节 {#one}\n\n正文", "utf-8")
    settings.BASE_DIR = tmp_path
    page = help.load_page("only-zh", "en")
    assert page is not None and page.language == "zh" and page.title == "只有中文"
    assert page.anchors() == {"one"}


def test_it_answers_404_for_a_page_that_does_not_exist(client_for, sales_rep):
    client = client_for(sales_rep)
    assert client.get("/help/no-such-page/").status_code == 404
    # README.md sits next to the language folders: it is not a page of the guide.
    assert client.get("/help/README/").status_code == 404


@pytest.mark.parametrize("path", ["/help/..%2F..%2Fcims%2Fsettings/", "/help/%2e%2e/", "/help/..%5Csettings/"])
def test_it_answers_404_to_path_traversal_in_the_url(client_for, sales_rep, path):
    assert client_for(sales_rep).get(path).status_code == 404


@pytest.mark.parametrize(
    "slug", ["../../cims/settings", "..", "zh/customers", "/etc/passwd", "customers.md", "", "Customers"]
)
def test_it_never_opens_a_path_named_by_the_slug(slug):
    assert help.load_page(slug) is None


def test_it_escapes_raw_html_in_the_markdown():
    _, _, html, _ = help.render_markdown(
        '# T\n\n<script>alert(1)</script>\n\nx <img src=x onerror="y"> [a](javascript:alert(1))'
    )
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img src=x" not in html and "&lt;img" in html
    assert 'href="javascript:' not in html


def test_it_writes_table_alignment_as_classes_not_inline_styles():
    _, _, html, _ = help.render_markdown("| a | b |\n| :-: | --: |\n| 1 | 2 |\n")
    assert "style=" not in html
    assert '<td class="text-center">1</td>' in html and '<td class="text-end">2</td>' in html


def test_it_links_guide_pages_to_each_other_inside_the_app():
    _, _, html, _ = help.render_markdown("See [the pool](customers.md#pool).")
    assert 'href="/help/customers/#pool"' in html


def test_it_gives_both_languages_the_same_pages_and_section_anchors():
    for slug in help.PAGE_ORDER:
        zh, en = help.load_page(slug, "zh"), help.load_page(slug, "en")
        assert zh is not None and zh.language == "zh", slug
        assert en is not None and en.language == "en", slug
        assert zh.anchors() == en.anchors(), slug
        assert "who" in zh.anchors(), f"{slug}: every page says who can use it"


def test_it_shows_only_screenshots_that_exist():
    for path in sorted(GUIDE.glob("*/*.md")):
        for name in re.findall(r"!\[[^\]]*\]\(img/([^)]+)\)", path.read_text("utf-8")):
            image = GUIDE / "img" / name
            assert image.is_file(), f"{path.name} shows img/{name}, which is missing"
            assert image.stat().st_size < 400_000, f"img/{name} is too heavy for a help page"


# --- Search ---------------------------------------------------------------------------------------


def test_it_finds_a_known_phrase_in_chinese(client_for, sales_rep):
    response = client_for(sales_rep).get(INDEX, {"q": "公海"})
    html = response.content.decode()
    results = re.findall(r'data-testid="help-result">(.*?)</li>', html, re.S)
    assert response.status_code == 200 and results
    assert any('href="/help/customers/#pool"' in result for result in results)
    assert "<mark>公海</mark>" in html


def test_it_finds_a_known_phrase_in_english_ignoring_case(client_for, sales_rep):
    html = english(client_for(sales_rep)).get(INDEX, {"q": "CUSTOMER POOL"}).content.decode()
    assert 'href="/help/customers/#pool"' in html
    assert re.search(r"<mark>customer pool</mark>", html, re.I)
    assert "<mark>公海" not in html


def test_it_says_so_when_nothing_matches(client_for, sales_rep):
    response = client_for(sales_rep).get(INDEX, {"q": "zzqqxx-不存在的词"})
    assert b'data-testid="help-no-results"' in response.content
    assert b'data-testid="help-result"' not in response.content


def test_it_escapes_the_query_and_the_snippet(client_for, sales_rep):
    html = client_for(sales_rep).get(INDEX, {"q": "<script>alert(1)</script>"}).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_it_marks_the_match_in_a_snippet_whose_text_needs_escaping():
    results = help.search('"pool"', "en")
    assert results
    snippet = str(results[0].snippet)
    assert "<mark>&quot;pool&quot;</mark>" in snippet
    assert snippet.count("<mark>") == 1


@pytest.mark.parametrize(
    "query", ["", "   ", "x" * 5000, "(", "[a-", "\\", ".*", "%", "😀 客户", "\u202e", "İstanbul", "a\x00b"]
)
def test_it_answers_any_query_without_an_error(client_for, sales_rep, query):
    response = client_for(sales_rep).get(INDEX, {"q": query})
    assert response.status_code == 200


def test_it_searches_only_the_first_hundred_characters_and_says_so(client_for, sales_rep):
    response = client_for(sales_rep).get(INDEX, {"q": "公海" + "x" * 500})
    assert b'data-testid="help-query-truncated"' in response.content
    assert len(help.clean_query("x" * 500)) == help.MAX_QUERY_LENGTH


# --- Per-page help links --------------------------------------------------------------------------


def _staff_url_names() -> list[str]:
    names = []
    for url in walk_urls():
        if url.path.startswith("/api/") or url.path.startswith("/" + settings.ADMIN_URL):
            continue
        rule = ALLOW.get(url.name)
        if rule and rule != PUBLIC and rule & STAFF:
            names.append(url.name)
    return names


def test_it_maps_every_staff_page_to_an_existing_help_section():
    names = _staff_url_names()
    assert len(names) > 150
    for language in help.GUIDE_LANGUAGES:
        for name in names:
            target = help.help_target(name)
            assert target is not None, f"{name} has no help section"
            slug, anchor = target
            page = help.load_page(slug, language)
            assert page is not None, f"{name} → {slug}: no such page"
            assert anchor in page.anchors(), f"{name} → {slug}#{anchor}: no such section in {language}"


def test_it_prefers_a_url_names_own_entry_over_its_namespace():
    assert help.help_target("followups:pipeline") == ("opportunities", "pipeline")
    assert help.help_target("customers:pool_claim") == ("customers", "pool")
    assert help.help_target("customers:list") == ("customers", "list")
    assert help.help_target("nowhere:page") is None


def test_it_shows_the_help_link_of_the_page_in_its_header(client_for, sales_rep):
    html = client_for(sales_rep).get(reverse("customers:list")).content.decode()
    assert re.search(r'<a [^>]*href="/help/customers/#list"[^>]*data-testid="help-link"', html)
    html = client_for(sales_rep).get(reverse("followups:pipeline")).content.decode()
    assert re.search(r'<a [^>]*href="/help/opportunities/#pipeline"[^>]*data-testid="help-link"', html)


# --- The guided tour ------------------------------------------------------------------------------


def test_it_offers_the_tour_to_a_new_staff_member_with_their_roles_pages(client_for, sales_rep):
    html = client_for(sales_rep).get(reverse("reports:dashboard")).content.decode()
    card = re.search(r'<aside [^>]*data-testid="tour".*?</aside>', html, re.S).group(0)
    links = re.findall(r'href="([^"]+)" data-tour-go', card)
    assert links == ["/customers/", "/followups/", "/followups/pipeline/", "/followups/tasks/", "/help/"]
    # One step shown, the others waiting for the script; the script is a file, not inline code.
    assert card.count('data-testid="tour-step" hidden') == len(links) - 1
    assert 'src="/static/cims/tour.js"' in html


def test_it_tailors_the_tour_to_the_role(client_for, service_agent, administrator, analyst):
    def links(user):
        html = client_for(user).get(reverse("reports:dashboard")).content.decode()
        return re.findall(r'href="([^"]+)" data-tour-go', html)

    assert links(service_agent)[0] == reverse("complaints:list")
    assert links(administrator)[0] == reverse("accounts:employee_list")
    assert reverse("system:status") in links(administrator)
    assert reverse("customers:list") not in links(analyst)
    for user in (service_agent, administrator, analyst):
        assert 3 <= len(links(user)) <= 6


def test_it_does_not_offer_the_tour_once_done(client_for, sales_rep):
    sales_rep.tour_done_at = timezone.now()
    sales_rep.save(update_fields=["tour_done_at"])
    html = client_for(sales_rep).get(reverse("reports:dashboard")).content.decode()
    assert 'data-testid="tour"' not in html
    assert "tour.js" not in html


def test_it_never_shows_the_tour_to_a_portal_customer(client_for, portal_customer, portal_customer_record):
    response = client_for(portal_customer).get(reverse("accounts:portal_home"))
    assert response.status_code == 200
    assert b'data-testid="tour"' not in response.content


def test_it_adds_no_query_to_a_staff_page(client_for, sales_rep):
    client = client_for(sales_rep)
    client.get(reverse("customers:list"))  # warm up (sessions, content types)
    with CaptureQueriesContext(connection) as with_tour:
        assert b'data-testid="tour"' in client.get(reverse("customers:list")).content
    sales_rep.tour_done_at = timezone.now()
    sales_rep.save(update_fields=["tour_done_at"])
    with CaptureQueriesContext(connection) as without_tour:
        assert b'data-testid="tour"' not in client.get(reverse("customers:list")).content
    assert len(with_tour) == len(without_tour)


@pytest.mark.parametrize("name", ["help:tour_done", "help:tour_restart"])
def test_it_takes_only_post_on_the_tour_switches(client_for, sales_rep, name):
    assert client_for(sales_rep).get(reverse(name)).status_code == 405


@pytest.mark.parametrize("name", ["help:tour_done", "help:tour_restart"])
def test_it_refuses_the_tour_switches_to_anonymous_and_portal_users(client, client_for, portal_customer, name):
    response = client.post(reverse(name))
    assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))
    assert client_for(portal_customer).post(reverse(name)).status_code == 403


def test_it_refuses_a_tour_switch_without_the_csrf_token(sales_rep):
    client = Client(enforce_csrf_checks=True)
    client.force_login(sales_rep, backend="django.contrib.auth.backends.ModelBackend")
    assert client.post(reverse("help:tour_done")).status_code == 403
    sales_rep.refresh_from_db()
    assert sales_rep.tour_done_at is None


def test_it_records_the_tour_as_done_and_goes_back(client_for, sales_rep):
    response = client_for(sales_rep).post(reverse("help:tour_done"), {"next": "/customers/?page=2"})
    assert response.status_code == 302 and response["Location"] == "/customers/?page=2"
    sales_rep.refresh_from_db()
    assert sales_rep.tour_done_at is not None


def test_it_answers_the_cards_script_with_no_content(client_for, sales_rep):
    response = client_for(sales_rep).post(reverse("help:tour_done"), headers={"X-Requested-With": "fetch"})
    assert response.status_code == 204
    sales_rep.refresh_from_db()
    assert sales_rep.tour_done_at is not None


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)"])
def test_it_never_follows_a_next_address_elsewhere(client_for, sales_rep, next_url):
    response = client_for(sales_rep).post(reverse("help:tour_restart"), {"next": next_url})
    assert response.status_code == 302
    assert response["Location"] == reverse("reports:dashboard")


def test_it_restarts_the_tour(client_for, sales_rep):
    sales_rep.tour_done_at = timezone.now()
    sales_rep.save(update_fields=["tour_done_at"])
    client = client_for(sales_rep)
    response = client.post(reverse("help:tour_restart"), {"next": "/help/"})
    assert response.status_code == 302 and response["Location"] == "/help/"
    sales_rep.refresh_from_db()
    assert sales_rep.tour_done_at is None
    # The page the restart lands on opens the tour at once; later pages leave it to the script.
    assert b'data-restarted="true"' in client.get("/help/").content
    html = client.get("/help/").content.decode()
    assert 'data-testid="tour"' in html and 'data-restarted="true"' not in html


def test_it_offers_help_and_the_restart_in_the_user_menu(client_for, sales_rep):
    html = client_for(sales_rep).get(reverse("reports:dashboard")).content.decode()
    assert re.search(r'<form method="post" action="/help/tour/restart/">', html)
    assert 'data-testid="tour-restart"' in html and 'data-testid="user-menu-help"' in html
