import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client, override_settings

from tests.factories import PASSWORD

ROOT = Path(settings.BASE_DIR)


def test_it_enforces_csrf_on_login(sales_rep):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": sales_rep.username, "password": PASSWORD})
    assert response.status_code == 403
    assert "表单已过期" in response.content.decode()
    page = client.get("/accounts/login/")
    token = page.cookies["csrftoken"].value
    response = client.post(
        "/accounts/login/", {"username": sales_rep.username, "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302


def test_it_enforces_csrf_on_staff_forms(administrator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(administrator, backend="django.contrib.auth.backends.ModelBackend")
    response = client.post("/accounts/departments/new/", {"name": "无令牌", "sort_order": 0})
    assert response.status_code == 403


@override_settings(ROOT_URLCONF="tests.urls_error", DEBUG=False)
def test_it_shows_no_stack_trace_on_a_server_error(db):
    client = Client(raise_request_exception=False)
    response = client.get("/boom/")
    assert response.status_code == 500
    body = response.content.decode()
    assert "服务器" in body or "Something went wrong" in body
    for leak in ("Traceback", "RuntimeError", "secret-internal-detail", "13800138000", "SECRET_KEY"):
        assert leak not in body


def test_it_sends_the_security_headers(db):
    response = Client().get("/accounts/login/")
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


def test_it_answers_the_health_check_without_login(db):
    response = Client().get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@override_settings(ALLOWED_HOSTS=["cims.example.com"], SECURE_SSL_REDIRECT=True)
def test_it_answers_the_health_check_on_an_internal_address_only(db):
    # The container probe uses 127.0.0.1 over plain HTTP…
    assert Client().get("/healthz", HTTP_HOST="127.0.0.1:8000").status_code == 200
    # …while every real page still refuses an unknown host.
    assert Client().get("/accounts/login/", HTTP_HOST="127.0.0.1:8000").status_code == 400


def test_it_answers_404_with_the_product_page(db, client_for, sales_rep):
    response = client_for(sales_rep).get("/no-such-page/")
    assert response.status_code == 404
    assert "页面不存在" in response.content.decode()


def _production_env(**extra):
    # Nothing of the test session's own environment may leak in (DJANGO_ALLOW_ASYNC_UNSAFE from the browser tests).
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update(
        DEBUG="false",
        SECRET_KEY="x" * 20 + "production-like-secret-key-for-the-deploy-check-0123456789",
        FIELD_ENCRYPTION_KEYS="k1:" + "A" * 43 + "=",
        BLIND_INDEX_KEY="B" * 43 + "=",
        BACKUP_ENCRYPTION_KEY="C" * 43 + "=",
        ALLOWED_HOSTS="cims.example.com",
        DATABASE_URL="postgres://cims:secret@db.example.com:5432/cims",
        REDIS_URL="redis://redis.example.com:6379/0",
        CIMS_VAR_DIR=str(ROOT / "var" / "deploy-check"),
    )
    env.update(extra)
    return env


def _manage(*args, env):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_it_passes_the_deploy_check_with_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_it_warns_when_production_reads_secrets_from_the_local_file():
    env = _production_env()
    del env["SECRET_KEY"]
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "cims.W001" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("DEBUG", "maybe", "is not a boolean"),
        ("SESSION_IDLE_MINUTES", "ten", "is not an integer"),
        ("FIELD_ENCRYPTION_KEYS", "k1:tooshort", "32 bytes"),
        ("FIELD_ENCRYPTION_KEYS", "no-colon", "keyid:base64key"),
        ("BLIND_INDEX_KEY", "!!!not base64!!!", "base64"),
        ("SECRET_KEY", "short", "at least 32"),
        ("DATABASE_URL", "nosuchdb://x", "DATABASE_URL"),
        ("ADMIN_URL", "/admin", "ADMIN_URL"),
    ],
)
def test_it_fails_loudly_on_a_bad_setting(name, value, message):
    result = _manage("check", env=_production_env(**{name: value}))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_it_generates_quick_start_secrets_once_and_reuses_them(tmp_path):
    from cims.local_secrets import load_local_secrets

    first = load_local_secrets(tmp_path)
    second = load_local_secrets(tmp_path)
    assert first == second
    assert len(first["SECRET_KEY"]) >= 50
    assert (tmp_path / "secrets.json").stat().st_mode & 0o077 == 0  # readable by the owner only


def test_it_keeps_var_out_of_git():
    ignored = (ROOT / ".gitignore").read_text()
    assert "/var/" in ignored


def test_it_takes_the_client_address_from_trusted_proxies_only(rf, settings):
    from cims.request_ip import client_ip

    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 1.2.3.4")
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.1"
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "1.2.3.4"  # never the spoofable left-most entry
