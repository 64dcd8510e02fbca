import gettext
import re
from pathlib import Path

from django.conf import settings

PO = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def test_it_switches_to_english_and_back(sales_rep, client_for):
    client = client_for(sales_rep)
    assert "工作台" in client.get("/").content.decode()
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    page = client.get("/").content.decode()
    assert "Dashboard" in page and "工作台" not in page
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert "工作台" in client.get("/").content.decode()


def test_it_runs_in_shanghai_time():
    assert settings.TIME_ZONE == "Asia/Shanghai" and settings.USE_TZ


def _po_entries():
    text = PO.read_text(encoding="utf-8")
    for block in text.split("\n\n"):
        if "#, fuzzy" in block:
            continue
        msgctxt = re.search(r'^msgctxt "(.*)"', block, re.M)
        msgid = re.search(r'^msgid ((?:".*"\n?)+)', block, re.M)
        msgstr = re.search(r'^msgstr ((?:".*"\n?)+)', block, re.M)
        if msgid and msgstr:
            ident = "".join(re.findall(r'"(.*)"', msgid.group(1)))
            translated = "".join(re.findall(r'"(.*)"', msgstr.group(1)))
            if ident and translated:
                ident = ident.encode().decode("unicode_escape").encode("latin-1").decode("utf-8")
                # A message with a context is looked up as "context\x04msgid" (what pgettext does).
                yield (f"{msgctxt.group(1)}\x04{ident}" if msgctxt else ident), translated


def test_it_ships_compiled_translations_in_step_with_the_sources():
    catalog = gettext.GNUTranslations(open(PO.with_suffix(".mo"), "rb"))
    entries = list(_po_entries())
    assert len(entries) > 50
    stale = [ident for ident, _ in entries if catalog.gettext(ident) == ident]
    assert not stale, f"django.mo is older than django.po; run `make messages`: {stale[:5]}"


def test_it_leaves_no_ui_string_untranslated():
    text = PO.read_text(encoding="utf-8")
    # A flag line such as "#, fuzzy" or "#, fuzzy, python-format", whatever follows it ("#| msgid …").
    assert not re.search(r"^#,.*\bfuzzy\b", text, re.M), "fuzzy translations left in django.po"
    empty = re.findall(r'^msgid "(.+)"\nmsgstr ""\n\n', text, re.M)
    assert not empty, f"untranslated: {empty[:10]}"
