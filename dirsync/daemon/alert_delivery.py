"""Sending one notice to one ``[[alert]]``: a webhook (httpx) or an email (smtplib).

The seam for both libraries: their exceptions become ``AlertNotDelivered``, whose message names
the alert and the reason and never a secret. TLS is always verified: the system's CAs plus the
alert's ``ca_file``; the environment's proxies and CA bundle are ignored, so the config alone
decides where alerts go.
"""

from __future__ import annotations

import json
import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import urlsplit

from dirsync.config.alerts import AlertSettings, EmailAlert, WebhookAlert
from dirsync.daemon.incidents import Notice
from dirsync.errors import DirsyncError

TIMEOUT = 10.0


class AlertNotDelivered(DirsyncError):
    """An alert could not be sent; it is tried again with the next run's result."""

    retryable = True


def deliver(alert: AlertSettings, notice: Notice) -> None:
    if isinstance(alert, WebhookAlert):
        _post(alert, notice)
    elif isinstance(alert, EmailAlert):
        _mail(alert, notice)
    else:  # the config knows no other type
        raise AlertNotDelivered(f"{alert.label}: unknown alert type {alert.type!r}")


def _tls(alert: AlertSettings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if alert.ca_file is not None:
        context.load_verify_locations(cafile=str(alert.ca_file))
    return context


def _post(alert: WebhookAlert, notice: Notice) -> None:
    # imported here, not at the top: httpx costs the daemon over 1 MB for as long as it runs,
    # and only a daemon with a webhook alert ever posts
    import httpx

    headers = {"User-Agent": "dirsync"}
    if alert.secret_file is not None:
        headers["Authorization"] = f"Bearer {alert.secret_file.reveal()}"
    try:
        with httpx.Client(verify=_tls(alert), trust_env=False, timeout=TIMEOUT) as client:
            response = client.post(alert.url, json=notice.to_json(), headers=headers)
    except httpx.HTTPError as exc:
        raise AlertNotDelivered(f"{alert.label}: {type(exc).__name__}: {exc}") from exc
    if not response.is_success:
        raise AlertNotDelivered(f"{alert.label}: HTTP {response.status_code}")


def _mail(alert: EmailAlert, notice: Notice) -> None:
    url = urlsplit(alert.smtp_url)
    scheme = url.scheme.lower()
    host = url.hostname or "localhost"
    context = _tls(alert)
    try:
        if scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                host, url.port or 465, timeout=TIMEOUT, context=context
            )
        else:
            client = smtplib.SMTP(host, url.port or 25, timeout=TIMEOUT)
        with client:
            client.ehlo()
            if scheme != "smtps":
                if client.has_extn("starttls"):
                    client.starttls(context=context)
                    client.ehlo()
                elif scheme == "smtp+starttls":
                    raise AlertNotDelivered(f"{alert.label}: {host} does not offer STARTTLS")
            if alert.username is not None:
                password = alert.password_file.reveal() if alert.password_file else ""
                client.login(alert.username, password)
            client.send_message(_message(alert, notice))
    except (smtplib.SMTPException, OSError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise AlertNotDelivered(f"{alert.label}: {reason}") from exc


def _message(alert: EmailAlert, notice: Notice) -> EmailMessage:
    data = notice.to_json()
    message = EmailMessage()
    message["From"] = alert.sender
    message["To"] = ", ".join(alert.to)
    message["Subject"] = f"[dirsync] {notice.organization}: {notice.event}"
    lines = [f"{key}: {value}" for key, value in data.items() if key != "refusal"]
    lines += [f"refusal: {reason}" for reason in notice.refusal]
    message.set_content("\n".join(lines) + "\n\n" + json.dumps(data, indent=1) + "\n")
    return message
