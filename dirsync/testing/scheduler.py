"""APScheduler driven by the test, for frozen time: no thread, jobs run when the test says.

``ManualScheduler`` is APScheduler's own ``BaseScheduler`` (triggers, coalescing, misfire
grace, max instances) without the thread that sleeps until the next job: ``fire_due()`` does
one round of the scheduler's loop at the current (frozen) time. ``QueuedExecutor`` runs the
submitted jobs only after that round, in the order a thread pool would observe: the scheduler
has already moved each job to its next regular time when the job body runs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.job import Job
from apscheduler.schedulers.base import BaseScheduler


class QueuedExecutor(BaseExecutor):
    def __init__(self) -> None:
        super().__init__()
        self._queue: list[tuple[Job, list[datetime]]] = []

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        self._queue.append((job, run_times))

    def run_queued(self) -> int:
        """Run what the scheduler submitted; returns how many jobs ran."""
        queue, self._queue = self._queue, []
        for job, run_times in queue:
            try:
                events = run_job(job, job._jobstore_alias, run_times, self._logger.name)
            except BaseException as exc:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, events)
        return len(queue)


class ManualScheduler(BaseScheduler):
    def __init__(self, **options: Any) -> None:
        self.executor = QueuedExecutor()
        options.setdefault("timezone", UTC)
        super().__init__(executors={"default": self.executor}, **options)

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)

    def wakeup(self) -> None:
        """Nothing sleeps here: the test calls ``fire_due``."""

    def fire_due(self) -> int:
        """One round at the current time: submit the due jobs, then run them."""
        self._process_jobs()
        return self.executor.run_queued()
