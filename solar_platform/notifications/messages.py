"""What a notification says: the JSON payload, and the e-mail made from it. Pure: no I/O.

The payload is made once, when the delivery step plans the message, and stored; the webhook posts
it as is and the e-mail is rendered from it. So every attempt carries the same content and the
same idempotency key (`idempotency_key` in the body, the `Idempotency-Key` header, the mail's
`Message-ID`).

- `"type": "alert"`: one alert opened or resolved.
- `"type": "digest"`: one evaluation changed more alerts than the digest threshold: counts per
  group (`group_by` names the dimensions: event and kind today, site once panels have sites) and a
  sample of the panels, most severe first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

from solar_platform.contracts import format_timestamp
from solar_platform.storage.notifications import DIGEST_DIMENSIONS, AlertEvent, EvaluationSummary

# Panels a digest lists by name.
DIGEST_SAMPLE_PANELS = 20
SUBJECT_PREFIX = "[solar]"
Payload = dict[str, Any]


def _utc(moment: datetime) -> datetime:
    """A naive column value is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def event_json(event: AlertEvent) -> dict[str, object]:
    """One alert change, the same in an alert message and in a digest's sample."""
    return {
        "event": event.event,
        "alert_id": event.alert_id,
        "panel_id": event.panel_id,
        "kind": event.kind,
        "severity": event.severity,
        "detail": event.detail,
        "metric": event.metric,
        "occurred_at": format_timestamp(_utc(event.occurred_at)),
    }


def alert_payload(event: AlertEvent, key: str) -> Payload:
    return {"type": "alert", "idempotency_key": key, **event_json(event)}


def digest_payload(summary: EvaluationSummary, key: str) -> Payload:
    return {
        "type": "digest",
        "idempotency_key": key,
        "occurred_at": format_timestamp(_utc(summary.occurred_at)),
        "event_count": summary.event_count,
        "group_by": list(DIGEST_DIMENSIONS),
        "groups": summary.groups,
        "sample": [event_json(event) for event in summary.sample],
    }


def payload_text(payload: Payload) -> str:
    """The stored form and the webhook's body: compact JSON, keys in the order above."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------- e-mail
def _group_text(group: Mapping[str, object]) -> str:
    return f"{group['count']} {group['kind']} {group['event']}"


def subject(payload: Payload) -> str:
    if payload["type"] == "alert":
        severity = f" ({payload['severity']})" if payload["event"] == "opened" else ""
        return f"{SUBJECT_PREFIX} {payload['event']}: {payload['kind']} on {payload['panel_id']}{severity}"
    groups = payload["groups"]
    shown = ", ".join(_group_text(group) for group in groups[:3])
    more = f" and {len(groups) - 3} more groups" if len(groups) > 3 else ""
    return f"{SUBJECT_PREFIX} {payload['event_count']} alert changes: {shown}{more}"


def _event_lines(event: Mapping[str, object]) -> list[str]:
    lines = [
        f"Alert {event['event']}: {event['kind']} on panel {event['panel_id']}",
        f"Severity: {event['severity']}",
        f"Detail: {event['detail'] or '-'}",
    ]
    if event["metric"] is not None:
        lines.append(f"Metric: {event['metric']:g}")
    return [*lines, f"Alert id: {event['alert_id']}", f"At: {event['occurred_at']}"]


def body(payload: Payload) -> str:
    if payload["type"] == "alert":
        lines = _event_lines(payload)
    else:
        dimensions = payload["group_by"]
        lines = [f"{payload['event_count']} alert changes in one evaluation at {payload['occurred_at']}.", "",
                 f"By {' and '.join(dimensions)}:"]
        lines += ["  " + "  ".join(str(group[d]) for d in dimensions) + f"  {group['count']}"
                  for group in payload["groups"]]
        sample = payload["sample"]
        lines += ["", f"Panels ({len(sample)} of {payload['event_count']}, most severe first):"]
        lines += [f"  {e['panel_id']}  {e['kind']} {e['event']}  {e['severity']}  {e['detail'] or ''}".rstrip()
                  for e in sample]
    return "\n".join([*lines, "", f"Idempotency key: {payload['idempotency_key']}", ""])


def message_id(key: str, sender: str) -> str:
    """`<key@sender's domain>`: the same on every attempt, so mail systems can drop a repeat."""
    _, at, domain = parseaddr(sender)[1].rpartition("@")
    return f"<{key}@{domain if at and domain else 'localhost'}>"


def mail_message(payload: Payload, *, sender: str, recipients: Sequence[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject(payload)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(datetime.fromisoformat(payload["occurred_at"]))
    message["Message-ID"] = message_id(payload["idempotency_key"], sender)
    message.set_content(body(payload))
    return message
