"""The daemon's optional Prometheus endpoint (``[daemon] metrics_listen``), on prometheus-client.

Every series is labelled with its ``organization``; an organization removed by a reload loses
its series. The registry is the daemon's own, never the library's global one.

- Counters are created at zero for every outcome and change kind as an organization is added,
  so the first refusal shows in ``increase()`` (a series born at 1 shows no increase).
- No ``_created`` series: they double every counter and nothing here reads them.
- ``dirsync_build_info{version, python}`` and ``dirsync_node_info{node}``: every series of this
  endpoint is about the runs this node made (with several nodes on one store, each serves its
  own, and ``node`` says whose they are), seats used and total per organization (the MSP's
  billing number), the latest outcome as a 0/1 gauge per outcome, and the run duration as a
  histogram beside the last duration.
- The HTTP side (``/metrics``, ``/healthz``) is ``metrics_server``.
"""

from __future__ import annotations

import contextlib
import platform
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from dirsync.plan import Outcome, Plan
from dirsync.sync.result import RunResult

_SUCCESS = {Outcome.APPLIED, Outcome.UNCHANGED}
#: the outcomes a daemon run can have, each a series from the start
OUTCOMES = (Outcome.APPLIED, Outcome.UNCHANGED, Outcome.REFUSED, Outcome.FAILED)
#: the change kinds of a plan (invite, revoke, create_groups, ...)
KINDS = tuple(Plan().counts())
#: run durations: from a quiet run (well under a second) to a first sync of 100,000 users
DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

# process-wide, and the daemon's registry is the only one this process exposes
prometheus_client.disable_created_metrics()


def dirsync_version() -> str:
    try:
        return version("dirsync")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class Metrics:
    def __init__(self, *, node: str | None = None) -> None:
        self.registry = CollectorRegistry()
        org = ["organization"]
        self.last_success = Gauge(
            "dirsync_last_success_timestamp_seconds",
            "When the organization's last successful run finished (Unix time).",
            org,
            registry=self.registry,
        )
        self.last_duration = Gauge(
            "dirsync_last_run_duration_seconds",
            "How long the organization's last run took.",
            org,
            registry=self.registry,
        )
        self.runs = Counter(
            "dirsync_runs",
            "Runs by outcome (applied, unchanged, refused, failed).",
            [*org, "outcome"],
            registry=self.registry,
        )
        self.changes = Counter(
            "dirsync_changes_applied",
            "Changes applied to the organization, by kind (invite, revoke, create_groups, ...).",
            [*org, "kind"],
            registry=self.registry,
        )
        self.objects = Gauge(
            "dirsync_directory_objects",
            "Users and groups in the directory after the last run that read it.",
            [*org, "kind"],
            registry=self.registry,
        )
        self.failures = Gauge(
            "dirsync_consecutive_failures",
            "Failed runs in a row (0 after a success).",
            org,
            registry=self.registry,
        )
        self.next_run = Gauge(
            "dirsync_next_run_timestamp_seconds",
            "When the organization's next run is scheduled (Unix time).",
            org,
            registry=self.registry,
        )
        self.healthy = Gauge(
            "dirsync_scheduler_healthy",
            "1 while the scheduler runs and no run exceeds its budget.",
            registry=self.registry,
        )
        self.duration = Histogram(
            "dirsync_run_duration_seconds",
            "How long runs take.",
            org,
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.last_outcome = Gauge(
            "dirsync_last_run_outcome",
            "1 for the outcome of the organization's latest run, 0 for the others.",
            [*org, "outcome"],
            registry=self.registry,
        )
        self.seats_used = Gauge(
            "dirsync_seats_used",
            "Seats the organization uses: invited, accepted and confirmed members.",
            org,
            registry=self.registry,
        )
        self.seats_total = Gauge(
            "dirsync_seats_total",
            "The organization's seat limit (0: unlimited).",
            org,
            registry=self.registry,
        )
        build = Info("dirsync_build", "The running dirsync.", registry=self.registry)
        build.info({"version": dirsync_version(), "python": platform.python_version()})
        if node is not None:
            names = Info(
                "dirsync_node", "The node whose runs these series count.", registry=self.registry
            )
            names.info({"node": node})
        #: why the daemon is unhealthy (empty: healthy); None until it first looked
        self.problems: list[str] | None = None

    def track(self, organization: str, *, seats: int) -> None:
        """An organization the daemon schedules: its counters exist, at zero, from now on."""
        for outcome in OUTCOMES:
            self.runs.labels(organization, str(outcome))
            self.last_outcome.labels(organization, str(outcome))
        for kind in KINDS:
            self.changes.labels(organization, kind)
        self.duration.labels(organization)
        self.seats_total.labels(organization).set(seats)

    def seats(self, organization: str, used: int) -> None:
        self.seats_used.labels(organization).set(used)

    def health(self, problems: list[str]) -> None:
        self.problems = list(problems)
        self.healthy.set(0 if problems else 1)

    def observe(
        self, result: RunResult, *, started: datetime, finished: datetime, failures: int
    ) -> None:
        name = result.organization
        seconds = (finished - started).total_seconds()
        self.runs.labels(name, str(result.outcome)).inc()
        self.last_duration.labels(name).set(seconds)
        self.duration.labels(name).observe(seconds)
        for outcome in OUTCOMES:
            self.last_outcome.labels(name, str(outcome)).set(outcome == result.outcome)
        self.failures.labels(name).set(failures)
        if result.outcome in _SUCCESS:
            self.last_success.labels(name).set(finished.timestamp())
        if result.outcome == Outcome.APPLIED:
            for kind, count in result.plan.counts().items():
                if count:
                    self.changes.labels(name, kind).inc(count)
        if result.directory_users is not None:
            self.objects.labels(name, "users").set(result.directory_users)
        if result.directory_groups is not None:
            self.objects.labels(name, "groups").set(result.directory_groups)

    def scheduled(self, organization: str, when: datetime | None) -> None:
        if when is not None:
            self.next_run.labels(organization).set(when.timestamp())

    def forget(self, organization: str) -> None:
        """Drop every series of an organization that left the config."""
        for metric in (
            self.last_success,
            self.last_duration,
            self.failures,
            self.next_run,
            self.duration,
            self.seats_used,
            self.seats_total,
        ):
            with contextlib.suppress(KeyError):  # a series that was never set
                metric.remove(organization)
        for labelled in (self.runs, self.changes, self.objects, self.last_outcome):
            for labels in _label_sets(labelled, organization):
                labelled.remove(*labels)


def _label_sets(metric: Counter | Gauge, organization: str) -> list[tuple[str, ...]]:
    # prometheus-client has no public "labels present" call; collect() reports every sample
    found: set[tuple[str, ...]] = set()
    names = metric._labelnames  # the declared label order, needed to call remove()
    for family in metric.collect():
        for sample in family.samples:
            if sample.labels.get("organization") == organization and set(sample.labels) >= set(
                names
            ):
                found.add(tuple(sample.labels[n] for n in names))
    return sorted(found)
