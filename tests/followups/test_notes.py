"""Personal notes (记事本) belong to their author only."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from followups.models import Note

pytestmark = pytest.mark.django_db


def test_it_sends_anonymous_users_to_login(client):
    response = client.get(reverse("followups:note_create"))
    assert response.status_code == 302 and "login" in response["Location"]


def test_it_refuses_roles_without_notes(client_for, analyst):
    assert client_for(analyst).get(reverse("followups:note_create")).status_code == 403


def test_it_creates_a_note_for_a_day(client_for, service_agent):
    client = client_for(service_agent)
    day = timezone.localdate() + datetime.timedelta(days=2)
    form = client.get(reverse("followups:note_create"), {"date": day.isoformat()}).content.decode()
    assert f'value="{day.isoformat()}"' in form
    response = client.post(reverse("followups:note_create"), {"date": day.isoformat(), "text": "准备报价单"})
    assert response.status_code == 302 and response["Location"] == reverse("followups:calendar")
    note = Note.objects.get()
    assert note.author == service_agent and note.date == day and note.text == "准备报价单"
    assert "准备报价单" in client.get(reverse("followups:calendar")).content.decode()


def test_it_answers_bad_input_with_a_message(client_for, sales_rep):
    response = client_for(sales_rep).post(
        reverse("followups:note_create"), {"date": "not a date", "text": ""}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 200
    assert "Enter a valid date." in response.content.decode()
    assert not Note.objects.exists()


def test_it_ignores_a_bad_date_in_the_link(client_for, sales_rep):
    assert client_for(sales_rep).get(reverse("followups:note_create"), {"date": "2026-13-45"}).status_code == 200


def test_it_edits_own_note(client_for, sales_rep):
    note = Note.objects.create(author=sales_rep, text="old")
    client = client_for(sales_rep)
    assert client.get(reverse("followups:note_edit", args=[note.pk])).status_code == 200
    past = timezone.localdate() - datetime.timedelta(days=3)
    response = client.post(reverse("followups:note_edit", args=[note.pk]), {"date": past.isoformat(), "text": "new"})
    # A note moved into the past lives in the history now.
    assert response.status_code == 302 and response["Location"] == reverse("followups:history")
    note.refresh_from_db()
    assert note.text == "new" and note.date == past


def test_it_hides_another_users_note_even_from_a_manager(client_for, sales_rep, manager, other_sales_rep):
    note = Note.objects.create(author=sales_rep, text="private")
    for user in (manager, other_sales_rep):
        client = client_for(user)
        assert client.get(reverse("followups:note_edit", args=[note.pk])).status_code == 404
        assert (
            client.post(reverse("followups:note_edit", args=[note.pk]), {"date": "2026-11-24", "text": "x"}).status_code
            == 404
        )
        assert client.post(reverse("followups:note_delete", args=[note.pk])).status_code == 404
    note.refresh_from_db()
    assert note.text == "private"


def test_it_deletes_own_note_by_post_only(client_for, sales_rep):
    note = Note.objects.create(author=sales_rep, text="gone soon")
    client = client_for(sales_rep)
    assert client.get(reverse("followups:note_delete", args=[note.pk])).status_code == 405
    assert client.post(reverse("followups:note_delete", args=[note.pk])).status_code == 302
    assert not Note.objects.exists()
