"""The delivery step: plan pending alert events into messages, deliver what is due, report.

Run by the Dagster sensor `deliver_notifications` every 30 s and by `solar-platform notify deliver`;
both call `run_once`. Two runs at once are safe: planning locks an evaluation's events, and a
delivery is claimed (leased) before it is sent.

- **Planning**: an evaluation's pending events become one message each, or one digest when there
  are more than `SOLAR_NOTIFY_DIGEST_THRESHOLD` (a fleet-wide event is one message, not 200k).
  Each message gets a random idempotency key and one delivery per configured channel.
- **Delivering**, per channel, oldest first: at least once (a sender that dies mid-send leaves a
  lease that expires, and the message goes again with the same key). A failure is retried after
  `retry_delay` (exponential backoff) and holds the channel's other messages until then, so a
  receiver that is down gets one probe per backoff step, not one per message. A message still
  failing `SOLAR_NOTIFY_GIVE_UP_HOURS` after it was planned is abandoned.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from solar_platform.notifications.channels import DeliveryError, Sender, senders
from solar_platform.notifications.messages import (
    DIGEST_SAMPLE_PANELS,
    alert_payload,
    digest_payload,
    payload_text,
)
from solar_platform.settings import Settings
from solar_platform.storage import notifications as outbox

# Evaluations planned per run; the rest wait for the next run.
MAX_EVALUATIONS_PER_RUN = 100
# A claimed delivery is leased for the send's timeout plus this margin.
LEASE_MARGIN = timedelta(seconds=60)


@dataclass
class DeliveryReport:
    channels: tuple[str, ...]
    events_planned: int = 0
    messages_planned: int = 0
    digests_planned: int = 0
    delivered: int = 0
    failed: int = 0
    abandoned: int = 0
    errors: list[str] = field(default_factory=list)  # "<channel>: <error>", this run's failures
    status: outbox.DeliveryStatus | None = None  # after the run

    @property
    def attempted(self) -> bool:
        return bool(self.events_planned or self.delivered or self.failed or self.abandoned)


def retry_delay(attempts: int, base_seconds: float, max_seconds: float) -> float:
    """Seconds before attempt `attempts + 1`: base, 2 x base, 4 x base, ... at most `max_seconds`."""
    return min(max_seconds, base_seconds * 2 ** max(attempts - 1, 0))


def _naive_utc(moment: datetime | None) -> datetime:
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def plan_messages(engine: Engine, settings: Settings, now: datetime, report: DeliveryReport) -> None:
    """Make each pending evaluation's events into messages (see the module docstring)."""
    channels = settings.notify_channels
    with engine.connect() as conn:
        evaluations = outbox.pending_evaluations(conn, MAX_EVALUATIONS_PER_RUN)
    for evaluation in evaluations:
        with engine.begin() as conn:
            pending = outbox.lock_pending_events(conn, evaluation)
            if not pending:
                continue  # another run planned it meanwhile
            report.events_planned += pending
            if not channels:  # nobody to tell: the events are settled, not kept for a channel added later
                outbox.mark_evaluation_planned(conn, evaluation, None, now)
            elif pending > settings.notify_digest_threshold:
                summary = outbox.evaluation_summary(conn, evaluation, DIGEST_SAMPLE_PANELS)
                key = outbox.new_key()
                outbox.add_deliveries(conn, message_key=key, channels=channels, shape=outbox.DIGEST,
                                      event_count=summary.event_count,
                                      payload=payload_text(digest_payload(summary, key)), now=now)
                outbox.mark_evaluation_planned(conn, evaluation, key, now)
                report.messages_planned += 1
                report.digests_planned += 1
            else:
                for event in outbox.pending_events(conn, evaluation):
                    key = outbox.new_key()
                    outbox.add_deliveries(conn, message_key=key, channels=channels, shape=outbox.ALERT,
                                          event_count=1, payload=payload_text(alert_payload(event, key)), now=now)
                    outbox.mark_event_planned(conn, event.id, key, now)
                    report.messages_planned += 1


def deliver_channel(engine: Engine, settings: Settings, channel: str, send: Sender, now: datetime,
                    deadline: float, report: DeliveryReport) -> None:
    """Send the channel's due deliveries, oldest first, until none is due, one fails, or time is up."""
    lease = timedelta(seconds=settings.notify_timeout_seconds) + LEASE_MARGIN
    give_up_before = now - timedelta(hours=settings.notify_give_up_hours)
    while time.monotonic() < deadline:
        with engine.begin() as conn:
            delivery = outbox.claim_due(conn, channel, now, now + lease)
        if delivery is None:
            return
        try:
            note = send(delivery)
        except DeliveryError as exc:
            error = str(exc) or type(exc).__name__
            report.errors.append(f"{channel}: {error}")
            with engine.begin() as conn:
                if delivery.created_at <= give_up_before:  # and every older one of the channel with it
                    report.abandoned += outbox.abandon_expired(conn, channel, give_up_before, error, now)
                else:
                    delay = retry_delay(delivery.attempts, settings.notify_retry_base_seconds,
                                        settings.notify_retry_max_seconds)
                    outbox.mark_failed(conn, delivery, error, now + timedelta(seconds=delay))
                    report.failed += 1
            return  # the channel is failing: its next attempt waits for the backoff
        with engine.begin() as conn:
            outbox.mark_delivered(conn, delivery.id, now, note)
        report.delivered += 1


def run_once(engine: Engine, settings: Settings, *, now: datetime | None = None,
             budget_seconds: float = 20.0) -> DeliveryReport:
    """Prune, plan, deliver every configured channel within `budget_seconds`, and report the status.

    `now` is the platform's clock, injectable for tests.
    """
    now = _naive_utc(now)
    deadline = time.monotonic() + budget_seconds
    report = DeliveryReport(channels=settings.notify_channels)
    with engine.begin() as conn:
        outbox.prune(conn, now - timedelta(days=settings.notify_retention_days))
        report.abandoned += outbox.abandon_unconfigured(conn, settings.notify_channels, now)
    plan_messages(engine, settings, now, report)
    for channel, send in senders(settings).items():
        deliver_channel(engine, settings, channel, send, now, deadline, report)
    with engine.connect() as conn:
        report.status = outbox.delivery_status(conn, now)
    return report


def describe(report: DeliveryReport) -> str:
    """One line for a log, a sensor tick or the CLI."""
    status = report.status
    parts = [f"channels: {', '.join(report.channels) or 'none configured'}",
             f"planned {report.events_planned} events into {report.messages_planned} messages "
             f"({report.digests_planned} digests)",
             f"delivered {report.delivered}, failed {report.failed}, abandoned {report.abandoned}"]
    if status is not None:
        parts.append(f"pending {status.pending} ({status.failing} failing)")
        if status.last_error:
            parts.append(f"last error {status.last_error}")
    return "; ".join(parts)
