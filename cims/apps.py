from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CimsConfig(AppConfig):
    name = "cims"
    verbose_name = _("System")

    def ready(self) -> None:
        from cims import (
            checks,  # noqa: F401  (registers the system checks)
            jobs,
        )
        from cims.api import history  # noqa: F401  (history written through the API names the token)

        # Every Celery task run (worker or eager) updates its JobRun row for the system page.
        jobs.connect()
