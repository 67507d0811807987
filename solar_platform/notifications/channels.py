"""The two channels, on the standard library: a JSON webhook (urllib) and SMTP e-mail (smtplib).

Each sends one stored message and returns normally only when the receiver took it (a 2xx answer;
the SMTP server accepted it for at least one recipient). Anything else raises `DeliveryError`,
which the delivery step retries with backoff.
"""

from __future__ import annotations

import http.client
import json
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from solar_platform.notifications.messages import mail_message
from solar_platform.settings import NotifyChannel, Settings
from solar_platform.storage.notifications import Delivery

USER_AGENT = "solar-platform-notifications"
# Send one delivery; returns a note to keep beside success (or None), raises DeliveryError.
Sender = Callable[[Delivery], str | None]


class DeliveryError(Exception):
    """The receiver did not take the message (stored as the delivery's last error)."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is a failure: urllib would turn the POST into a GET without its body."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def post_webhook(url: str, body: str, idempotency_key: str, timeout: float) -> None:
    """POST the JSON body with its `Idempotency-Key`; success is a 2xx answer."""
    request = urllib.request.Request(url, data=body.encode(), method="POST", headers={
        "Content-Type": "application/json", "Idempotency-Key": idempotency_key, "User-Agent": USER_AGENT})
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:  # a non-2xx answer (redirects included)
        raise DeliveryError(f"HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise DeliveryError(f"{type(exc.reason).__name__}: {exc.reason}") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc


def send_mail(settings: Settings, delivery: Delivery) -> str | None:
    """One SMTP session that sends the message to every recipient; a note names any recipient the
    server refused while it accepted the others."""
    message = mail_message(json.loads(delivery.payload), sender=settings.notify_mail_from,
                           recipients=settings.notify_mail_to)
    host, port, timeout = settings.notify_smtp_host or "", settings.notify_smtp_port, settings.notify_timeout_seconds
    try:
        if settings.notify_smtp_security == "ssl":
            session: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout,
                                                     context=ssl.create_default_context())
        else:
            session = smtplib.SMTP(host, port, timeout=timeout)
        with session:
            if settings.notify_smtp_security == "starttls":
                session.starttls(context=ssl.create_default_context())
            if settings.notify_smtp_user:
                session.login(settings.notify_smtp_user, settings.notify_smtp_password or "")
            refused = session.send_message(message)
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(f"SMTP {exc.smtp_code} {exc.smtp_error.decode(errors='replace')}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
    return f"refused by the server: {', '.join(sorted(refused))}" if refused else None


def senders(settings: Settings) -> dict[NotifyChannel, Sender]:
    """A sender per configured channel."""
    made: dict[NotifyChannel, Sender] = {}
    if "webhook" in settings.notify_channels:
        url, timeout = settings.notify_webhook_url or "", settings.notify_timeout_seconds

        def webhook(delivery: Delivery) -> None:
            post_webhook(url, delivery.payload, delivery.message_key, timeout)

        made["webhook"] = webhook
    if "email" in settings.notify_channels:
        made["email"] = lambda delivery: send_mail(settings, delivery)
    return made
