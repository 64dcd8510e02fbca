"""The public verification page and its three downloads: no login, drafts hidden, and the files as
served check out with the standalone script (MATCH), and stop checking out when tampered with."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from customers.models import Customer
from lottery.models import LotteryWinner
from lottery.services import event_announce, event_draw, event_publish, event_set_public_value
from tests.customers.factories import CustomerFactory
from tests.lottery.factories import make_event

pytestmark = pytest.mark.django_db

PUBLIC_VALUE = "福彩3D 2026-12-31: 4 0 7"


def page(event) -> str:
    return reverse("lottery:public", args=[event.pk])


def document(event) -> str:
    return reverse("lottery:public_document", args=[event.pk])


def entries(event) -> str:
    return reverse("lottery:public_entries", args=[event.pk])


VERIFIER = reverse("lottery:verifier_script")


@pytest.fixture
def customers(sales_rep):
    return [
        CustomerFactory(status=Customer.Status.WON, owner=sales_rep, name=f"王{n}号", mobile=f"+861390000{n:04d}")
        for n in range(8)
    ]


@pytest.fixture
def draft(administrator, customers):
    return make_event(by=administrator)


@pytest.fixture
def published(administrator, draft):
    return event_publish(event=draft, by=administrator)


@pytest.fixture
def drawn(administrator, published):
    event_set_public_value(event=published, by=administrator, value=PUBLIC_VALUE)
    event_draw(event=published, by=administrator)
    published.refresh_from_db()
    return published


def _download(client: Client, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200, url
    assert response["Content-Disposition"].startswith("attachment;")
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def _save_downloads(client: Client, event, folder: Path) -> None:
    """The three files as a visitor of the public page downloads them, into one folder."""
    for name, url in (
        ("published.json", document(event)),
        ("entries.tsv", entries(event)),
        ("verify_lottery.py", VERIFIER),
    ):
        (folder / name).write_bytes(_download(client, url))


def _verify(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own script, run by the interpreter running the tests
        [sys.executable, "verify_lottery.py", "published.json"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- Who may open it -------------------------------------------------------------------------------


def test_it_shows_a_published_event_to_anyone_without_logging_in(client, published):
    response = client.get(page(published))
    assert response.status_code == 200
    assert response["X-Robots-Tag"] == "noindex"
    body = response.content.decode()
    assert published.name in body and published.list_hash in body and published.commitment in body


def test_it_shows_the_page_to_staff_and_portal_customers_alike(client_for, published, sales_rep, portal_customer):
    for user in (sales_rep, portal_customer):
        assert client_for(user).get(page(published)).status_code == 200


def test_it_hides_a_draft_from_everyone(client, client_for, draft, administrator):
    for who in (client, client_for(administrator)):
        for url in (page(draft), document(draft), entries(draft)):
            assert who.get(url).status_code == 404, url


def test_it_answers_404_for_an_unknown_event(client):
    assert client.get(reverse("lottery:public", args=[999999])).status_code == 404
    assert client.get(reverse("lottery:public_document", args=[999999])).status_code == 404


def test_it_refuses_other_methods(client, published):
    for url in (page(published), document(published), entries(published), VERIFIER):
        assert client.post(url).status_code == 405, url
    assert client.head(page(published)).status_code == 200


# --- What it shows ---------------------------------------------------------------------------------


def test_it_keeps_the_secret_hidden_before_the_draw(client, published):
    with translation.override("en"):
        body = client.get(page(published), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert published.secret not in body
    assert 'data-testid="not-drawn"' in body and 'data-testid="winner"' not in body
    assert "cims-lottery-v1" in body and 'href="#how-it-works"' in body
    for tier in ("一等奖", "笔记本电脑", "二等奖", "智能手表", "参与奖", "保温杯"):
        assert tier in body
    assert 'data-testid="entry-count">8<' in body


def test_it_shows_the_rules_in_words_as_published(client, administrator, customers):
    from customers.models import CustomerLevel

    vip = CustomerLevel.objects.create(name="钻石VIP", sort_order=99)
    Customer.objects.filter(pk=customers[0].pk).update(level=vip)
    event = make_event(by=administrator, weights={vip.pk: 3}, created_before=datetime.date(2099, 1, 1))
    event_publish(event=event, by=administrator)
    with translation.override("en"):
        body = client.get(page(event), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "钻石VIP: 3 entries" in body and "Every other level: 1 entry" in body
    assert "Any level" in body and "No minimum" in body and "Not required" in body and "Cannot enter" in body
    assert "2099-01-01" in body and "3 entries" in body


def test_it_shows_the_secret_and_the_masked_winners_after_the_draw(client, drawn, customers):
    body = client.get(page(drawn)).content.decode()
    assert drawn.secret in body and PUBLIC_VALUE in body
    winners = list(LotteryWinner.objects.filter(event=drawn).select_related("entry", "customer"))
    assert body.count('data-testid="winner"') == len(winners) == 6
    for winner in winners:
        assert winner.entry.entry_id in body
        assert winner.customer.name not in body  # 王3号 → 王**
        assert winner.customer.code not in body
    assert "王**" in body
    for customer in customers:
        assert customer.mobile[-8:] not in body and customer.mobile[3:6] + "****" not in body


def test_it_keeps_showing_the_result_once_announced(client, drawn, administrator):
    event_announce(event=drawn, by=administrator)
    body = client.get(page(drawn)).content.decode()
    assert drawn.secret in body and body.count('data-testid="winner"') == 6


def test_it_builds_the_page_in_a_few_queries(client, drawn, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        assert client.get(page(drawn)).status_code == 200


# --- The downloads ---------------------------------------------------------------------------------


def test_it_publishes_no_secret_and_no_winners_before_the_draw(client, published):
    response = client.get(document(published))
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="published.json"'
    assert response["X-Robots-Tag"] == "noindex"
    data = json.loads(response.content.decode("utf-8"))
    assert data["secret"] is None and data["winners"] is None
    assert data["entry_count"] == 8 and data["list_hash"] == published.list_hash
    assert data["entries_file"] == "entries.tsv"
    assert "一等奖" in response.content.decode("utf-8")  # UTF-8, not \\u escapes


def test_it_streams_the_canonical_entry_list(client, published):
    response = client.get(entries(published))
    assert response.streaming
    assert response["Content-Type"] == "text/tab-separated-values; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="entries.tsv"'
    import hashlib

    data = b"".join(response.streaming_content)
    assert hashlib.sha256(data).hexdigest() == published.list_hash
    assert data.count(b"\n") == 8


def test_it_serves_the_verifier_from_the_file_beside_the_module(client):
    import lottery.verify_lottery

    response = client.get(VERIFIER)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/x-python; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="verify_lottery.py"'
    assert response.content == Path(lottery.verify_lottery.__file__).read_bytes()


def test_it_says_match_with_the_downloaded_files_and_mismatch_once_tampered(client, drawn, tmp_path):
    _save_downloads(client, drawn, tmp_path)

    result = _verify(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("MATCH")

    # One customer's weight raised by one: the list no longer hashes to what was published.
    lines = (tmp_path / "entries.tsv").read_text("ascii").splitlines(keepends=True)
    entry_id, weight = lines[0].rstrip("\n").split("\t")
    lines[0] = f"{entry_id}\t{int(weight) + 1}\n"
    (tmp_path / "entries.tsv").write_text("".join(lines), "ascii")
    result = _verify(tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith("MISMATCH") and "list hash wrong" in result.stdout


def test_it_tells_that_the_draw_has_not_happened_before_it(client, published, tmp_path):
    _save_downloads(client, published, tmp_path)
    result = _verify(tmp_path)
    assert result.returncode == 1 and "has not happened yet" in result.stdout
