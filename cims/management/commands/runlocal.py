"""Serve the quick start: the web server plus a Celery worker with embedded beat, in one command.

Without REDIS_URL the worker uses kombu's file-system transport under var/celery, so background
jobs really run with nothing but Python installed. Ctrl-C stops both.
"""

from __future__ import annotations

import signal
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the web server and the background worker (with beat) together, for the quick start."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--no-worker", action="store_true", help="Serve the web app only.")

    def handle(self, *args, **options):
        worker = None
        if not options["no_worker"]:
            worker = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "cims", "worker", "--beat",
                    "--pool", "solo", "--loglevel", "INFO",
                    "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME,
                ],
            )  # fmt: skip
            self.stdout.write(
                f"Background worker started (pid {worker.pid}, broker {settings.CELERY_BROKER_URL.split('@')[-1]})."
            )
        try:
            call_command("runserver", options["addrport"], use_reloader=False)
        finally:
            if worker and worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    worker.kill()
