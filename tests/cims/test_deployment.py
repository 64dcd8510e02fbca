"""docker-compose.yml, README and .ci/run: checked by reading them (Docker does not run on our machines)."""

from pathlib import Path

import yaml
from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def _compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_it_describes_every_production_service():
    services = _compose()["services"]
    assert {"db", "redis", "web", "worker", "beat"} <= set(services)
    assert services["db"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7")
    assert "gunicorn" in " ".join(services["web"]["command"])
    assert "worker" in services["worker"]["command"] and "celery" in services["worker"]["command"]
    assert "beat" in services["beat"]["command"] and "celery" in services["beat"]["command"]


def test_it_gives_every_long_running_service_a_health_check():
    services = _compose()["services"]
    for name in ("db", "redis", "web", "worker"):
        assert "healthcheck" in services[name], name


def test_it_keeps_data_on_named_volumes():
    compose = _compose()
    assert {"pgdata", "media"} <= set(compose["volumes"])
    assert any(v.startswith("pgdata:") for v in compose["services"]["db"]["volumes"])


def test_it_configures_the_app_only_through_environment_variables():
    compose = _compose()
    text = (ROOT / "docker-compose.yml").read_text()
    for name in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "BLIND_INDEX_KEY", "BACKUP_ENCRYPTION_KEY"):
        assert "${" + name + ":?" in text, f"{name} must be required from the environment"
    web_env = (
        compose["x-app-environment"] if "x-app-environment" in compose else compose["services"]["web"]["environment"]
    )
    assert "DATABASE_URL" in web_env and "REDIS_URL" in web_env


def test_it_documents_every_environment_variable_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    settings_source = (ROOT / "cims" / "settings.py").read_text()
    import re

    names = set(re.findall(r'env_(?:str|bool|int|list)\(\s*"([A-Z_]+)"', settings_source))
    names |= {"SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "BLIND_INDEX_KEY", "BACKUP_ENCRYPTION_KEY"}
    missing = sorted(name for name in names if f"`{name}`" not in readme)
    assert not missing, f"README lacks: {missing}"


def test_it_runs_the_required_steps_in_ci():
    ci = (ROOT / ".ci" / "run").read_text()
    for step in ("make test", "DATABASE_URL=", "makemigrations --check", "ruff check", "check --deploy", "chromium"):
        assert step in ci, step
