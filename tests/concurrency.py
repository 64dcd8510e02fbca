"""Run a function in several threads at once, each on its own database connection.

Used by the tests that prove a rule holds under concurrency (numbers unique, reminders exactly
once): the threads wait at a barrier so that they really start together, and each closes its
connection when done. Errors are collected and returned, not lost in a thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_at_once(function: Callable[[], object], threads: int) -> tuple[list, list[BaseException]]:
    """Call ``function`` in ``threads`` threads started together; returns (results, errors)."""
    from django.db import connections

    barrier = threading.Barrier(threads)
    results: list = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            results.append(function())
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results, errors
