import socket

from celery import shared_task
from django.db.models import F
from django.utils import timezone

# Celery's autodiscovery imports each app's ``tasks`` module only: these hold the backup and audit jobs.
from cims import tasks_audit, tasks_backup, tasks_webhooks  # noqa: F401, E402
from cims.models import Heartbeat


@shared_task(name="cims.tasks.heartbeat", ignore_result=True)
def heartbeat(name: str = "celery") -> None:
    now = timezone.now()
    hostname = socket.gethostname()[:255]
    updated = Heartbeat.objects.filter(name=name).update(last_seen=now, hostname=hostname, beats=F("beats") + 1)
    if not updated:
        Heartbeat.objects.get_or_create(name=name, defaults={"last_seen": now, "hostname": hostname, "beats": 1})


@shared_task(name="cims.tasks.purge_idempotency_keys", ignore_result=True)
def purge_idempotency_keys() -> int:
    """Forget API Idempotency-Keys older than API_IDEMPOTENCY_HOURS."""
    from cims.api.idempotency import purge

    return purge()
