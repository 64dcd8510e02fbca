"""The Celery app. Beat schedules are defined here, in code."""

import os
from datetime import timedelta

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cims.settings")

app = Celery("cims")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # Proves the path web → broker → worker → database end to end; shown on the dashboard.
    "heartbeat": {"task": "cims.tasks.heartbeat", "schedule": timedelta(minutes=1)},
    # Reminders of tasks falling due (exactly once per task, however often or widely it runs).
    "followups-reminders": {"task": "followups.tasks.send_reminders", "schedule": timedelta(minutes=1)},
}


@app.on_after_configure.connect
def _prepare_filesystem_broker(sender, **kwargs):
    # kombu's file-system transport needs its folders to exist before the first message.
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            os.makedirs(options[key], exist_ok=True)
