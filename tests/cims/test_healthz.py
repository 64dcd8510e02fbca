"""/healthz: 200 when the database and the broker answer, 503 otherwise, and it tells nobody why."""

from __future__ import annotations

import logging

import pytest
from django.db import OperationalError, connection
from django.test import Client, override_settings

URL = "/healthz"


def _get(**extra):
    return Client().get(URL, **extra)


def test_it_answers_ok_when_the_database_and_broker_answer(db):
    response = _get()
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-store" in response["Cache-Control"]


def test_it_sets_no_session_and_needs_no_login(db):
    response = _get()
    assert response.status_code == 200
    assert not response.cookies
    assert "Set-Cookie" not in response


def test_it_answers_head_too(db):
    assert Client().head(URL).status_code == 200


def _break_every_query(execute, sql, params, many, context):
    raise OperationalError("server closed the connection unexpectedly")


def test_it_answers_503_when_the_database_fails(db, caplog):
    # Django's execute wrapper makes every query of the real connection fail as a dead server would.
    with caplog.at_level(logging.WARNING, logger="cims"), connection.execute_wrapper(_break_every_query):
        response = _get()
    assert response.status_code == 503
    assert response.json() == {"status": "error"}
    assert "no-store" in response["Cache-Control"]
    assert "health check failed: database (OperationalError)" in caplog.text


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="an SQLite test database lives in memory and cannot be disconnected"
)
@pytest.mark.django_db(transaction=True)
def test_it_answers_503_when_the_database_server_is_unreachable():
    # A real connection to a port where no PostgreSQL listens.
    connection.close()
    saved = connection.settings_dict["PORT"]
    connection.settings_dict["PORT"] = "1"
    try:
        response = _get()
    finally:
        connection.close()
        connection.settings_dict["PORT"] = saved
    assert response.status_code == 503 and response.json() == {"status": "error"}


@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
def test_it_answers_503_when_the_broker_is_unreachable(db, caplog):
    with caplog.at_level(logging.WARNING, logger="cims"):
        response = _get()
    assert response.status_code == 503
    assert response.json() == {"status": "error"}
    assert "health check failed: broker (ConnectionError)" in caplog.text


def test_it_answers_503_when_the_queue_folder_cannot_be_made(db, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    impossible = tmp_path / "a-file" / "queue"
    options = {"data_folder_in": str(impossible), "data_folder_out": str(impossible)}
    with override_settings(CELERY_BROKER_URL="filesystem://", CELERY_BROKER_TRANSPORT_OPTIONS=options):
        response = _get()
    assert response.status_code == 503 and response.json() == {"status": "error"}


def test_it_answers_ok_with_a_writable_queue_folder_and_makes_it_if_missing(db, tmp_path):
    folder = tmp_path / "celery" / "out"
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder)}
    with override_settings(CELERY_BROKER_URL="filesystem://", CELERY_BROKER_TRANSPORT_OPTIONS=options):
        assert _get().status_code == 200
    assert folder.is_dir()


@pytest.mark.redis
@pytest.mark.skipif(not __import__("os").environ.get("REDIS_URL"), reason="needs a real Redis: set REDIS_URL")
def test_it_answers_ok_with_a_reachable_redis(db):
    import os

    with override_settings(CELERY_BROKER_URL=os.environ["REDIS_URL"]):
        assert _get().status_code == 200


def test_it_leaks_nothing_in_either_failure(db):
    with connection.execute_wrapper(_break_every_query):
        database_down = _get()
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0"):
        broker_down = _get()
    assert database_down.content == broker_down.content == b'{"status": "error"}'
    assert database_down.headers.keys() == broker_down.headers.keys()


@override_settings(ALLOWED_HOSTS=["cims.example.com"], SECURE_SSL_REDIRECT=True)
def test_it_answers_probes_on_an_internal_address_over_plain_http(db):
    assert _get(HTTP_HOST="10.0.3.7:8000").status_code == 200
