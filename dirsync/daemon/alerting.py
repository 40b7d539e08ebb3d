"""The daemon's alerts: each organization's open incident, who was told, and telling them.

The open incidents live in ``<runtime dir>/alerts.json`` (owner-only, replaced atomically), so a
restarted daemon neither announces an incident again nor forgets to say it recovered. An alert
that could not be delivered is tried again after the organization's next run (retries
included) while the incident is open; a ``recovered`` notice is sent once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import structlog

from dirsync.config.alerts import AlertSettings
from dirsync.daemon import incidents
from dirsync.daemon.alert_delivery import AlertNotDelivered, deliver
from dirsync.daemon.incidents import Incident, Notice
from dirsync.state.files import private_folder, write_private_text
from dirsync.sync.result import RunResult

log = structlog.get_logger("dirsync.daemon.alerting")

STATE_FILE = "alerts.json"
Deliver = Callable[[AlertSettings, Notice], None]


class Alerter:
    def __init__(self, directory: Path, *, send: Deliver = deliver) -> None:
        self.path = directory / STATE_FILE
        self._send = send
        self._lock = threading.Lock()
        self._incidents = _load(self.path)

    def open_incident(self, organization: str) -> Incident | None:
        with self._lock:
            return self._incidents.get(organization)

    def after_run(self, alerts: Sequence[AlertSettings], result: RunResult, now: datetime) -> None:
        """Open, keep or close the organization's incident, and tell whom it concerns."""
        name = result.organization
        with self._lock:
            incident, closing = incidents.after_run(self._incidents.get(name), result, now)
            self._set(name, incident)
        if closing is not None:
            for alert in alerts:
                if alert.covers(name, closing.event):
                    self._try(alert, closing)
        if incident is not None:
            self._announce(alerts, incident)

    def stale(
        self, alerts: Sequence[AlertSettings], organization: str, since: datetime, problem: str
    ) -> None:
        """``organization`` has gone without a completed run for too long."""
        with self._lock:
            if organization in self._incidents:
                return  # one alert per incident: this one is already open
            incident = incidents.went_stale(organization, since, problem)
            self._set(organization, incident)
        self._announce(alerts, incident)

    def forget(self, organization: str) -> None:
        """An organization that left the config: its incident ends unannounced."""
        with self._lock:
            self._set(organization, None)

    def _announce(self, alerts: Sequence[AlertSettings], incident: Incident) -> None:
        opening = incident.opening
        for alert in alerts:
            if alert.label in incident.notified or not alert.covers(
                opening.organization, opening.event
            ):
                continue
            if self._try(alert, opening):
                with self._lock:
                    current = self._incidents.get(opening.organization)
                    if current is not None and current.opening == opening:
                        self._set(opening.organization, current.told(alert.label))

    def _try(self, alert: AlertSettings, notice: Notice) -> bool:
        try:
            self._send(alert, notice)
        except AlertNotDelivered as exc:
            log.warning(
                "alert.not_delivered",
                organization=notice.organization,
                alert_event=notice.event,
                error=str(exc),
            )
            return False
        log.info(
            "alert.sent", organization=notice.organization, alert_event=notice.event, to=alert.label
        )
        return True

    def _set(self, organization: str, incident: Incident | None) -> None:
        """Change one incident and write the file (the caller holds the lock)."""
        if incident is None:
            if self._incidents.pop(organization, None) is None:
                return
        elif self._incidents.get(organization) == incident:
            return
        else:
            self._incidents[organization] = incident
        data = {name: i.to_json() for name, i in sorted(self._incidents.items())}
        try:
            private_folder(self.path.parent)
            write_private_text(self.path, json.dumps(data, indent=1) + "\n")
        except OSError as exc:
            log.warning("alert.state_not_written", error=exc.strerror or str(exc))


def _load(path: Path) -> dict[str, Incident]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(name): Incident.from_json(value) for name, value in data.items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("alert.state_unreadable", path=str(path), error=str(exc))
        return {}
