from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def check_secrets_from_environment(app_configs, **kwargs):
    if settings.SECRETS_FROM_LOCAL_FILE:
        return [
            Warning(
                "These secrets are read from var/secrets.json (the quick-start fallback): "
                + ", ".join(settings.SECRETS_FROM_LOCAL_FILE),
                hint="Set them in the environment of every web and worker process; see docs/operations.md.",
                id="cims.W001",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_database_is_postgresql(app_configs, **kwargs):
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        return [
            Warning(
                "Production runs on PostgreSQL; the database is not PostgreSQL.",
                hint="Set DATABASE_URL=postgres://user:password@host:5432/cims.",
                id="cims.W002",
            )
        ]
    return []
