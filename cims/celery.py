"""The Celery app. Beat schedules are defined here, in code."""

import os
from datetime import timedelta

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cims.settings")

app = Celery("cims")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _refresh_minutes() -> int:
    from django.conf import settings

    return settings.REPORT_REFRESH_MINUTES


def _cron(setting: str) -> crontab:
    from django.conf import settings

    minute, hour, day_of_month, month_of_year, day_of_week = getattr(settings, setting).split()
    return crontab(
        minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year, day_of_week=day_of_week
    )


app.conf.beat_schedule = {
    # Proves the path web → broker → worker → database end to end; shown on the dashboard.
    "heartbeat": {"task": "cims.tasks.heartbeat", "schedule": timedelta(minutes=1)},
    # Reminders of tasks falling due (exactly once per task, however often or widely it runs).
    "followups-reminders": {"task": "followups.tasks.send_reminders", "schedule": timedelta(minutes=1)},
    # The customer pool (公海), at night in Asia/Shanghai (CELERY_TIMEZONE): warn first, then return.
    "pool-warn-idle": {"task": "followups.tasks.warn_idle_customers", "schedule": crontab(hour=1, minute=50)},
    "pool-return-idle": {"task": "followups.tasks.return_idle_customers", "schedule": crontab(hour=2, minute=0)},
    # Contracts: expire those past their end date, remind owners of those ending soon.
    "contract-renewals": {"task": "followups.tasks.contract_renewals", "schedule": crontab(hour=2, minute=30)},
    # Tickets about to breach their SLA (assignee notified) or breached (managers alerted).
    "complaints-sla": {"task": "complaints.tasks.check_sla", "schedule": timedelta(minutes=5)},
    # The summary tables behind the reports and the dashboard (REPORT_REFRESH_MINUTES).
    "reports-refresh": {"task": "reports.tasks.refresh_facts", "schedule": timedelta(minutes=_refresh_minutes())},
    # Customer profiles (RFM, automatic tags) every night, after the pool and contract jobs.
    "reports-profiles": {"task": "reports.tasks.refresh_profiles", "schedule": crontab(hour=3, minute=0)},
    # Scheduled report e-mails: due ones go out at 07:00 Asia/Shanghai (daily, Mondays, the 1st).
    "reports-subscriptions": {"task": "reports.tasks.send_subscriptions", "schedule": crontab(hour=7, minute=0)},
    # Encrypted backups (BACKUP_SCHEDULE, nightly) with pruning, and the restore drill (weekly).
    "backup": {"task": "cims.tasks_backup.backup_scheduled", "schedule": _cron("BACKUP_SCHEDULE")},
    "backup-drill": {"task": "cims.tasks_backup.restore_drill", "schedule": _cron("BACKUP_DRILL_SCHEDULE")},
    # The access log: seal new rows into the hash chain every minute; verify it and apply retention nightly.
    "audit-seal": {"task": "cims.tasks_audit.seal", "schedule": timedelta(minutes=1)},
    "audit-verify": {"task": "cims.tasks_audit.verify", "schedule": crontab(hour=3, minute=30)},
    "audit-retention": {"task": "cims.tasks_audit.apply_retention", "schedule": crontab(hour=4, minute=0)},
    # Approved access requests (数据访问权限审批) end when their grant expires.
    "access-grants-expire": {"task": "customers.tasks.expire_access_grants", "schedule": timedelta(minutes=5)},
    # REST API: forget Idempotency-Keys past API_IDEMPOTENCY_HOURS.
    "api-idempotency-purge": {"task": "cims.tasks.purge_idempotency_keys", "schedule": crontab(hour=4, minute=30)},
    # Webhook deliveries whose task was lost (broker down, worker killed mid-attempt) are queued again.
    "webhooks-sweep": {"task": "cims.tasks_webhooks.sweep", "schedule": timedelta(minutes=5)},
}


@app.on_after_configure.connect
def _prepare_filesystem_broker(sender, **kwargs):
    # kombu's file-system transport needs its folders to exist before the first message.
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            os.makedirs(options[key], exist_ok=True)
