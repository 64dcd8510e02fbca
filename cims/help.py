"""The user guide (docs/user-guide/<lang>/<slug>.md) inside the app: loading, rendering, searching,
the map from each staff page to its help section, and the guided tour's steps.

The guide is Markdown written by us, but it is still rendered with raw HTML disabled: the pages are
served under a Content-Security-Policy that forbids inline code, and a stray tag in a doc must never
become markup. Only slugs of files that exist are ever opened, so no request names a path.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse
from django.utils.functional import SimpleLazyObject
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from markdown_it import MarkdownIt

GUIDE_LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
# The guide's reading order; a page added later without a place here comes after these.
PAGE_ORDER = (
    "getting-started",
    "customers",
    "followups",
    "opportunities",
    "complaints",
    "reports",
    "lottery",
    "privacy",
    "administration",
)
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# "## Search and filters {#search}": the anchor is written out so that it is the same in every
# language (a per-page help link names it) and stays put when a heading is reworded.
ANCHOR = re.compile(r"\s*\{#([a-z0-9]+(?:-[a-z0-9]+)*)\}\s*$")
PAGE_LINK = re.compile(r"^([a-z0-9]+(?:-[a-z0-9]+)*)\.md(#[a-z0-9-]+)?$")
MAX_QUERY_LENGTH = 100
MAX_RESULTS = 40
SNIPPET_RADIUS = 60


def guide_dir() -> Path:
    return Path(settings.BASE_DIR) / "docs" / "user-guide"


def guide_language(language: str | None = None) -> str:
    language = (language or get_language() or DEFAULT_LANGUAGE).lower()
    return "en" if language.startswith("en") else DEFAULT_LANGUAGE


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable("table")


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    texts: tuple[str, ...] = ()


@dataclass(frozen=True)
class GuidePage:
    slug: str
    language: str
    title: str
    intro: str
    html: SafeString
    sections: tuple[Section, ...] = field(default_factory=tuple)

    @property
    def toc(self) -> list[Section]:
        return [section for section in self.sections if section.anchor]

    def anchors(self) -> set[str]:
        return {section.anchor for section in self.sections if section.anchor}


def available_slugs(language: str | None = None) -> list[str]:
    """Slugs of the pages present in ``language`` plus those only the Chinese guide has (the fallback)."""
    found: set[str] = set()
    for lang in {DEFAULT_LANGUAGE, guide_language(language)}:
        folder = guide_dir() / lang
        if folder.is_dir():
            found.update(path.stem for path in folder.glob("*.md") if SLUG.match(path.stem))
    order = {slug: index for index, slug in enumerate(PAGE_ORDER)}
    return sorted(found, key=lambda slug: (order.get(slug, len(order)), slug))


def _plain(inline) -> str:
    """The reader-visible text of an inline token (no Markdown punctuation, link targets or image paths)."""
    parts = []
    for child in inline.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)
    return "".join(parts).strip()


def _static_image(name: str) -> str:
    try:
        return static(f"help/{name}")
    except ValueError:
        # The manifest storage refuses a file collectstatic did not see (a screenshot not taken
        # yet): a missing picture must not make the whole page fail.
        return f"{settings.STATIC_URL}help/{name}"


def _png_size(path: Path) -> tuple[int, int] | None:
    try:
        with path.open("rb") as file:
            head = file.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _rewrite_inline(inline) -> None:
    for child in inline.children or ():
        if child.type == "image":
            src = child.attrGet("src") or ""
            if src.startswith("img/") and "/" not in src[4:] and ".." not in src:
                child.attrSet("src", _static_image(src[4:]))
                size = _png_size(guide_dir() / "img" / src[4:])
                if size:
                    # The space is kept before the picture loads, so a link to a section further
                    # down lands on it rather than above it once the pictures have pushed it down.
                    child.attrSet("width", str(size[0]))
                    child.attrSet("height", str(size[1]))
            child.attrSet("loading", "lazy")
            child.attrSet("class", "img-fluid cims-help-shot")
        elif child.type == "link_open":
            match = PAGE_LINK.match(child.attrGet("href") or "")
            if match:
                try:
                    url = reverse("help:page", args=[match.group(1)])
                except NoReverseMatch:
                    continue
                child.attrSet("href", url + (match.group(2) or ""))


def render_markdown(text: str, *, title_fallback: str = "") -> tuple[str, str, SafeString, tuple[Section, ...]]:
    """(title, intro, html, sections) of a Markdown text. The first level-1 heading is the title and
    is left out of the body (the page shows it as its heading)."""
    md = _markdown()
    tokens = md.parse(text)
    title = ""
    intro = ""
    sections: list[dict] = [{"anchor": "", "title": "", "texts": []}]
    drop: set[int] = set()
    numbered = 0
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            inline = tokens[index + 1]
            match = ANCHOR.search(inline.content)
            if match:
                inline.content = inline.content[: match.start()]
                last = inline.children[-1] if inline.children else None
                if last is not None and last.type == "text":
                    last.content = ANCHOR.sub("", last.content)
            heading = _plain(inline)
            if token.tag == "h1" and not title:
                title = heading
                drop.update({index, index + 1, index + 2})
                continue
            if token.tag == "h2":
                numbered += 1
                anchor = match.group(1) if match else f"section-{numbered}"
                token.attrSet("id", anchor)
                sections.append({"anchor": anchor, "title": heading, "texts": []})
                continue
            if match:
                token.attrSet("id", match.group(1))
            sections[-1]["texts"].append(heading)
        elif token.type in ("th_open", "td_open") and token.attrGet("style"):
            # A column aligned with ":-:" comes as style="text-align:…", which the CSP refuses.
            align = token.attrGet("style").rsplit(":", 1)[-1].strip(" ;")
            token.attrs.pop("style", None)
            token.attrSet("class", f"text-{'end' if align == 'right' else 'center' if align == 'center' else 'start'}")
        elif token.type == "inline" and index - 1 not in drop:
            _rewrite_inline(token)
            plain = _plain(token)
            if tokens[index - 1].type != "heading_open" and plain:
                sections[-1]["texts"].append(plain)
                if not intro and tokens[index - 1].type == "paragraph_open":
                    intro = plain
    kept = [token for index, token in enumerate(tokens) if index not in drop]
    html = mark_safe(md.renderer.render(kept, md.options, {}))  # noqa: S308  # nosec B308 B703  # raw HTML is off: markdown-it escapes all text
    built = tuple(Section(anchor=s["anchor"], title=s["title"], texts=tuple(s["texts"])) for s in sections)
    return title or title_fallback, intro, html, built


@functools.lru_cache(maxsize=64)
def _load(path: str, mtime: float, slug: str, language: str) -> GuidePage:
    # mtime is part of the key so that an edited page is read again without a restart.
    text = Path(path).read_text(encoding="utf-8")
    title, intro, html, sections = render_markdown(text, title_fallback=slug)
    return GuidePage(slug=slug, language=language, title=title, intro=intro, html=html, sections=sections)


def load_page(slug: str, language: str | None = None) -> GuidePage | None:
    """The page ``slug`` in the active language (falling back to Chinese), or None for anything that
    is not the slug of a page present: the slug is checked against the folder's listing, never
    joined blindly into a path."""
    if not isinstance(slug, str) or not SLUG.match(slug) or slug not in available_slugs(language):
        return None
    for lang in dict.fromkeys((guide_language(language), DEFAULT_LANGUAGE)):
        path = guide_dir() / lang / f"{slug}.md"
        if path.is_file():
            return _load(str(path), path.stat().st_mtime, slug, lang)
    return None


def all_pages(language: str | None = None) -> list[GuidePage]:
    return [page for slug in available_slugs(language) if (page := load_page(slug, language))]


# --- Search ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchResult:
    page: GuidePage
    section: Section
    snippet: SafeString

    @property
    def url(self) -> str:
        url = reverse("help:page", args=[self.page.slug])
        return f"{url}#{self.section.anchor}" if self.section.anchor else url


def clean_query(raw: str | None) -> str:
    return " ".join((raw or "").split())[:MAX_QUERY_LENGTH]


def _snippet(text: str, match: re.Match) -> SafeString:
    start = max(match.start() - SNIPPET_RADIUS, 0)
    end = min(match.end() + SNIPPET_RADIUS, len(text))
    before = ("…" if start else "") + text[start : match.start()]
    after = text[match.end() : end] + ("…" if end < len(text) else "")
    return format_html("{}<mark>{}</mark>{}", before, match.group(0), after)


def search(query: str, language: str | None = None) -> list[SearchResult]:
    """Sections of the guide whose heading or text holds ``query`` (case-insensitive substring), one
    result per section, in the guide's order."""
    query = clean_query(query)
    if not query:
        return []
    # A regex of the escaped query keeps the match's position in the original text (lower() can
    # change a string's length, and the snippet must cut the text the reader sees).
    pattern = re.compile(re.escape(query), re.IGNORECASE)
    results: list[SearchResult] = []
    for page in all_pages(language):
        for section in page.sections:
            candidates = [section.title if section.anchor else page.title, *section.texts]
            for text in candidates:
                match = pattern.search(text)
                if match:
                    results.append(SearchResult(page=page, section=section, snippet=_snippet(text, match)))
                    break
            if len(results) >= MAX_RESULTS:
                return results
    return results


# --- Per-page help links --------------------------------------------------------------------------

# URL name → (page, section). Names not listed fall back to their namespace below.
HELP_LINKS: dict[str, tuple[str, str]] = {
    "accounts:home": ("getting-started", "navigation"),
    "accounts:password_change": ("getting-started", "password"),
    "reports:dashboard": ("reports", "dashboard"),
    "reports:dashboard_figures": ("reports", "dashboard"),
    "reports:profiles": ("reports", "profiles"),
    "reports:profile_tag": ("reports", "profiles"),
    "reports:profile_tasks": ("reports", "profiles"),
    "reports:subscribe": ("reports", "subscriptions"),
    "reports:subscription_delete": ("reports", "subscriptions"),
    "customers:recycle_bin": ("customers", "recycle-bin"),
    "customers:restore": ("customers", "recycle-bin"),
    "customers:delete": ("customers", "recycle-bin"),
    "customers:phonebook": ("customers", "phonebook"),
    "customers:access_log": ("privacy", "access-log"),
    "customers:detail": ("customers", "detail"),
    "customers:history": ("customers", "detail"),
    "customers:attachment_upload": ("customers", "detail"),
    "customers:attachment_download": ("customers", "detail"),
    "customers:attachment_delete": ("customers", "detail"),
    "customers:reveal": ("customers", "masking"),
    "customers:transfer": ("customers", "share-transfer"),
    "customers:share": ("customers", "share-transfer"),
    "customers:create": ("customers", "create"),
    "customers:edit": ("customers", "create"),
    "customers:duplicate_check": ("customers", "create"),
    "customers:transaction_create": ("opportunities", "transactions"),
    "customers:transaction_edit": ("opportunities", "transactions"),
    "customers:contract_create": ("opportunities", "contracts"),
    "customers:contract_edit": ("opportunities", "contracts"),
    "customers:settings": ("administration", "settings"),
    "customers:lookup_list": ("administration", "settings"),
    "customers:lookup_create": ("administration", "settings"),
    "customers:lookup_edit": ("administration", "settings"),
    "customers:duplicates": ("customers", "duplicates"),
    "customers:merge": ("customers", "duplicates"),
    "customers:consents": ("privacy", "consents"),
    "customers:data_requests": ("privacy", "data-requests"),
    "customers:data_request": ("privacy", "data-requests"),
    "customers:portal_account": ("complaints", "portal"),
    "followups:status": ("customers", "detail"),
    "followups:bell": ("followups", "notifications"),
    "followups:return_visits": ("followups", "return-visits"),
    "followups:calendar": ("followups", "calendar"),
    "followups:history": ("followups", "calendar"),
    "followups:note_create": ("followups", "calendar"),
    "followups:note_edit": ("followups", "calendar"),
    "followups:note_delete": ("followups", "calendar"),
    "followups:pipeline": ("opportunities", "pipeline"),
    "followups:opportunities": ("opportunities", "pipeline"),
    "followups:opportunity_create": ("opportunities", "pipeline"),
    "followups:opportunity_edit": ("opportunities", "pipeline"),
    "followups:opportunity_move": ("opportunities", "pipeline"),
    "followups:opportunity_win": ("opportunities", "win-lose"),
    "followups:opportunity_lose": ("opportunities", "win-lose"),
    "complaints:create": ("complaints", "new-ticket"),
    "complaints:detail": ("complaints", "handle"),
    "complaints:transition": ("complaints", "handle"),
    "complaints:comment": ("complaints", "handle"),
    "complaints:attachment": ("complaints", "handle"),
    "complaints:assign": ("complaints", "assign"),
    "lottery:publish": ("lottery", "publish"),
    "lottery:public_value": ("lottery", "draw"),
    "lottery:show": ("lottery", "draw"),
    "lottery:show_draw": ("lottery", "draw"),
    "lottery:announce": ("lottery", "announce"),
    "lottery:winners": ("lottery", "announce"),
    "lottery:winners_export": ("lottery", "announce"),
    "lottery:public": ("lottery", "verify"),
    "lottery:public_document": ("lottery", "verify"),
    "lottery:public_entries": ("lottery", "verify"),
    "lottery:verifier_script": ("lottery", "verify"),
    "system:status": ("administration", "system-status"),
    "audit:access_log": ("privacy", "access-log"),
    "audit:access_log_export": ("privacy", "access-log"),
    "help:tour_done": ("getting-started", "tour"),
    "help:tour_restart": ("getting-started", "tour"),
}
# Prefixes of URL names within a namespace (customers:import_job, customers:pool_claim …).
HELP_PREFIXES: dict[str, tuple[str, str]] = {
    "customers:import": ("customers", "import"),
    "customers:export": ("customers", "export"),
    "customers:pool": ("customers", "pool"),
    "customers:product": ("customers", "products"),
    "customers:access_request": ("privacy", "access-requests"),
    "followups:task": ("followups", "tasks"),
    "followups:notification": ("followups", "notifications"),
    "followups:campaign": ("followups", "campaigns"),
    "accounts:employee": ("administration", "employees"),
    "accounts:department": ("administration", "departments"),
    "system:backup": ("administration", "backups"),
    "system:api_token": ("administration", "api-tokens"),
    "system:webhook": ("administration", "webhooks"),
    "audit:history": ("administration", "audit"),
}
HELP_NAMESPACES: dict[str, tuple[str, str]] = {
    "reports": ("reports", "reports"),
    "customers": ("customers", "list"),
    "followups": ("followups", "followups"),
    "complaints": ("complaints", "desk"),
    "lottery": ("lottery", "overview"),
    "system": ("administration", "system-status"),
    "audit": ("administration", "audit"),
    "accounts": ("getting-started", "navigation"),
    "help": ("getting-started", "help"),
}


def help_target(view_name: str | None) -> tuple[str, str] | None:
    """(page slug, section anchor) of the help for the page ``view_name``, or None."""
    if not view_name:
        return None
    if view_name in HELP_LINKS:
        return HELP_LINKS[view_name]
    for prefix, target in HELP_PREFIXES.items():
        if view_name.startswith(prefix):
            return target
    namespace = view_name.split(":", 1)[0] if ":" in view_name else ""
    return HELP_NAMESPACES.get(namespace)


def help_url(view_name: str | None) -> str | None:
    target = help_target(view_name)
    if target is None:
        return None
    slug, anchor = target
    return f"{reverse('help:page', args=[slug])}#{anchor}"


# --- The guided tour ------------------------------------------------------------------------------

# Set by the restart view in the session: the page it lands on opens the tour at its first step.
TOUR_RESTARTED = "help_tour_restarted"
# The pages a role is shown first, in order; each is offered only if the user can open it (the
# navigation's own permission), so a role changed in the admin still gets a tour that works.
TOUR_PAGES: dict[str, tuple[str, ...]] = {
    "admin": ("accounts:employee_list", "customers:settings", "system:status", "system:backups", "audit:history"),
    "manager": ("reports:dashboard", "customers:list", "followups:pipeline", "reports:index"),
    "sales": ("customers:list", "followups:list", "followups:pipeline", "followups:tasks"),
    "service": ("complaints:list", "customers:list", "followups:tasks"),
    "analyst": ("reports:dashboard", "reports:index", "lottery:list"),
}
TOUR_TIPS = {
    "reports:dashboard": _("Your key figures, overdue tasks and alerts at a glance."),
    "reports:index": _("Analyses of customers, sales, service and campaigns; subscribe to get them by e-mail."),
    "customers:list": _("Find customers by name, code or exact phone; filter, export and open the 360° view."),
    "followups:list": _("Every call, visit and message recorded with your customers, with the next contact date."),
    "followups:pipeline": _("Drag deals from stage to stage; dropping one on Won records the sale."),
    "followups:tasks": _("Your to-do list: tasks you were given and reminders you set yourself."),
    "complaints:list": _("The ticket queue, soonest due first; the SLA badge shows what is about to breach."),
    "lottery:list": _("The year-end lottery: prizes, the published entry list and the draw on the big screen."),
    "accounts:employee_list": _("Add employees, give them a role and a department, deactivate leavers."),
    "customers:settings": _("The lists the customer form offers: levels, sources, industries, tags, custom fields."),
    "system:status": _("Versions, workers, database and disk: check here when something seems wrong."),
    "system:backups": _("Back up now, see every backup and restore one when you must."),
    "audit:history": _("Who changed what and when, for every audited record."),
    "help:index": _("The user guide: search it, and use the Help link on every page for that page's section."),
}
# Which role a user plays, read from permissions the request has already loaded (no group query):
# the first that matches wins, from the widest role down.
ROLE_MARKERS = (
    ("admin", "cims.view_backup"),
    ("manager", "customers.transfer_customer"),
    ("sales", "customers.add_customer"),
    ("service", "complaints.view_all_tickets"),
    ("analyst", "reports.view_all_reports"),
)


def tour_role(user) -> str:
    for role, permission in ROLE_MARKERS:
        if user.has_perm(permission):
            return role
    return ""


def tour_steps(user) -> list[dict]:
    from cims.navigation import NAV_ITEMS

    nav = {item.url_name: item for item in NAV_ITEMS}
    steps = []
    for url_name in (*TOUR_PAGES.get(tour_role(user), ("reports:dashboard",)), "help:index"):
        item = nav.get(url_name)
        if item is None or (item.permission and not user.has_perm(item.permission)):
            continue
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        steps.append({"label": item.label, "url": url, "icon": item.icon, "tip": TOUR_TIPS.get(url_name, "")})
    return steps[:6]


def wants_tour(user) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_staff_member
        and getattr(user, "tour_done_at", None) is None
    )


def help_context(request) -> dict:
    """Template context of every staff page: ``help_page_url`` (the "?" link of the page header),
    ``tour_steps`` (the guided tour, empty once done) and ``tour_restarted``. Computed only when a
    template reads them, so htmx fragments pay nothing."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    match = getattr(request, "resolver_match", None)
    view_name = match.view_name if match else None
    return {
        "help_page_url": SimpleLazyObject(lambda: help_url(view_name) or reverse("help:index")),
        "tour_steps": SimpleLazyObject(lambda: tour_steps(user) if wants_tour(user) else []),
        "tour_restarted": SimpleLazyObject(lambda: bool(request.session.pop(TOUR_RESTARTED, False))),
    }
