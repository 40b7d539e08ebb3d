"""The daemon's optional Prometheus endpoint (``[daemon] metrics_listen``), on prometheus-client.

Every series is labelled with its ``organization``; an organization removed by a reload loses
its series. The registry is the daemon's own, never the library's global one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from dirsync.errors import DirsyncError
from dirsync.plan import Outcome
from dirsync.sync.result import RunResult

_SUCCESS = {Outcome.APPLIED, Outcome.UNCHANGED}


class Metrics:
    def __init__(self) -> None:
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

    def observe(
        self, result: RunResult, *, started: datetime, finished: datetime, failures: int
    ) -> None:
        name = result.organization
        self.runs.labels(name, str(result.outcome)).inc()
        self.last_duration.labels(name).set((finished - started).total_seconds())
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
        for metric in (self.last_success, self.last_duration, self.failures, self.next_run):
            metric.remove(organization)
        for labelled in (self.runs, self.changes, self.objects):
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


class MetricsError(DirsyncError):
    """The metrics endpoint cannot listen, e.g. the port is taken (exit 1: systemd retries)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsServer:
    host: str
    port: int
    server: WSGIServer
    thread: Thread

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(metrics: Metrics, listen: str) -> MetricsServer:
    """Serve ``/metrics`` on ``host:port`` (port 0: any free port; see ``.port``)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    try:
        server, thread = start_http_server(int(port), addr=host, registry=metrics.registry)
    except OSError as exc:
        raise MetricsError(
            f"cannot serve metrics on {listen} ([daemon] metrics_listen): {exc.strerror}"
        ) from exc
    return MetricsServer(host=host, port=server.server_address[1], server=server, thread=thread)
