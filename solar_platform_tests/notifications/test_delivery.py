"""Alert notifications end to end on the real stack: alerts change in MariaDB, the delivery step sends
them to a real HTTP receiver and a real SMTP server on loopback, and what arrives is checked.

The delivery step takes the platform's clock as `now`, so retries and backoff are driven by moving
that clock, not by sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from solar_platform.api.app import create_app
from solar_platform.notifications.delivery import DeliveryReport, run_once
from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.health import alerts, registry
from solar_platform.storage.health.faults import Decision
from solar_platform_tests.notifications.receivers import HOST, MailReceiver, WebhookReceiver
from solar_platform_tests.stream_writes import write_as_stream

pytestmark = pytest.mark.integration

SENDER = "Solar platform <solar@plant.example>"
RECIPIENTS = ("ops@plant.example", "oncall@plant.example")


# ---------------------------------------------------------------- helpers
def notifying(settings: Settings, *, webhook: WebhookReceiver | None = None, mail: MailReceiver | None = None,
              **overrides: object) -> Settings:
    """`settings` with the given receivers as channels (retry base 30 s, cap 1 h unless overridden)."""
    update: dict[str, object] = {"notify_retry_base_seconds": 30.0, "notify_retry_max_seconds": 3600.0}
    if webhook is not None:
        update["notify_webhook_url"] = webhook.url
    if mail is not None:
        update.update(notify_smtp_host=HOST, notify_smtp_port=mail.port, notify_smtp_security="none",
                      notify_mail_from=SENDER, notify_mail_to=RECIPIENTS)
    return settings.model_copy(update={**update, **overrides})


def change_alerts(settings: Settings, now: datetime, *, opened: Sequence[tuple[str, str]] = (),
                  resolved: Sequence[tuple[str, str]] = ()) -> None:
    """Open and resolve alerts the way fault detection does: `apply_decisions` in one transaction."""
    decisions = [Decision(p, k, "open", 12.5, None, {"offline_s": 180.0}) for p, k in opened]
    decisions += [Decision(p, k, "resolve", None, None, {}) for p, k in resolved]
    with db.engine(settings).begin() as conn:
        alerts.apply_decisions(conn, decisions, now)


def alert_ids(settings: Settings) -> dict[tuple[str, str, str], int]:
    with db.engine(settings).connect() as conn:
        rows = conn.execute(text("SELECT panel_id, kind, state, id FROM panel_alerts")).all()
    return {(p, k, s): i for p, k, s, i in rows}


def deliveries(settings: Settings) -> list[dict]:
    with db.engine(settings).connect() as conn:
        return [dict(r) for r in conn.execute(text(
            "SELECT message_key, channel, shape, state, attempts, next_attempt_at, last_error, event_count "
            "FROM notification_deliveries ORDER BY id")).mappings()]


def deliver(settings: Settings, now: datetime) -> DeliveryReport:
    return run_once(db.engine(settings), settings, now=now)


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def mail() -> Iterator[MailReceiver]:
    receiver = MailReceiver().start()
    yield receiver
    receiver.stop()


T0 = datetime.now(UTC).replace(microsecond=123456)  # sub-millisecond digits, as the sensor's clock has


# ---------------------------------------------------------------- tests
def test_alert_changes_reach_the_webhook_and_the_mail(fresh_settings: Settings, webhook: WebhookReceiver,
                                                      mail: MailReceiver) -> None:
    settings = notifying(fresh_settings, webhook=webhook.start(), mail=mail)
    change_alerts(settings, T0, opened=[("panel-000001", "offline"), ("panel-000002", "stuck")])
    report = deliver(settings, T0)
    assert (report.events_planned, report.messages_planned, report.delivered, report.failed) == (2, 2, 4, 0)

    ids = alert_ids(settings)
    assert [posted.body for posted in webhook.received] == [
        {"type": "alert", "idempotency_key": posted.headers["Idempotency-Key"], "event": "opened",
         "alert_id": ids[(panel, kind, "open")], "panel_id": panel, "kind": kind, "severity": severity,
         "detail": detail, "metric": 12.5, "occurred_at": T0.isoformat(timespec="milliseconds").replace("+00:00", "Z")}
        for posted, (panel, kind, severity, detail) in zip(webhook.received, [
            ("panel-000001", "offline", "critical", "status 0 for 180 s"),
            ("panel-000002", "stuck", "major", "stuck at 0.0 W (spread 0.00 W) while expected power moved 0 W"),
        ], strict=True)]
    assert all(p.headers["Content-Type"] == "application/json" for p in webhook.received)
    keys = webhook.keys()
    assert len(set(keys)) == 2

    assert [m.message["Subject"] for m in mail.mails] == ["[solar] opened: offline on panel-000001 (critical)",
                                                          "[solar] opened: stuck on panel-000002 (major)"]
    for sent, key in zip(mail.mails, keys, strict=True):
        assert sent.recipients == list(RECIPIENTS) and sent.sender == "solar@plant.example"
        assert sent.message["Message-ID"] == f"<{key}@plant.example>"  # the webhook's key: one message, two channels
        assert f"Idempotency key: {key}" in sent.message.get_content()
    assert "Detail: status 0 for 180 s" in mail.mails[0].message.get_content()

    later = T0 + timedelta(minutes=3)
    change_alerts(settings, later, resolved=[("panel-000001", "offline")])
    assert deliver(settings, later).delivered == 2
    resolved = webhook.received[-1].body
    assert (resolved["event"], resolved["alert_id"]) == ("resolved", ids[("panel-000001", "offline", "open")])
    assert mail.mails[-1].message["Subject"] == "[solar] resolved: offline on panel-000001"

    again = deliver(settings, later + timedelta(minutes=1))  # nothing new: nothing sent twice
    assert (again.events_planned, again.delivered, len(webhook.received), len(mail.mails)) == (0, 0, 3, 3)
    assert again.status is not None and (again.status.pending, again.status.failing) == (0, 0)


def test_a_receiver_that_is_down_gets_the_pending_messages_when_it_is_back(fresh_settings: Settings,
                                                                          webhook: WebhookReceiver) -> None:
    settings = notifying(fresh_settings, webhook=webhook)  # not started: connection refused
    panels = [f"panel-00000{i}" for i in range(1, 4)]
    change_alerts(settings, T0, opened=[(p, "silent") for p in panels])

    first = deliver(settings, T0)
    assert (first.messages_planned, first.delivered, first.failed) == (3, 0, 1)  # one probe, not three
    assert "Connection refused" in first.errors[0] or "ConnectionRefused" in first.errors[0]
    status = first.status
    assert status is not None and (status.pending, status.failing) == (3, 1)
    assert status.last_error is not None and status.last_error.startswith("webhook: ")

    health = create_app(settings, rate_per_second=None, clock=lambda: T0).test_client().get("/api/v1/health")
    notified = health.get_json()["notifications"]
    assert notified["channels"] == ["webhook"] and (notified["pending"], notified["failing"]) == (3, 1)
    assert notified["last_error"] == status.last_error and notified["abandoned_last_24h"] == 0

    def at(seconds: float) -> DeliveryReport:
        return deliver(settings, T0 + timedelta(seconds=seconds))

    assert (at(29).failed, at(29).delivered) == (0, 0)  # the whole channel waits for the backoff
    assert at(30).failed == 1  # second attempt, still down: next in 60 s
    rows = deliveries(settings)
    assert [r["attempts"] for r in rows] == [2, 0, 0]
    stored_t0 = T0.replace(tzinfo=None, microsecond=123000)  # DATETIME(3)
    assert {r["next_attempt_at"] for r in rows} == {stored_t0 + timedelta(seconds=90)}

    webhook.fail_next = 1
    webhook.start()  # back, but its first answer is a 503
    assert at(89).failed == 0
    assert at(90).failed == 1  # third attempt refused: next in 120 s
    assert at(209).delivered == 0
    back = at(210)
    assert (back.delivered, back.failed) == (3, 0)
    assert [p.body["panel_id"] for p in webhook.received] == panels  # in the order the alerts opened
    assert webhook.received[0].headers["Idempotency-Key"] == webhook.refused[0].headers["Idempotency-Key"]
    assert len(set(webhook.keys())) == 3
    assert [r["attempts"] for r in deliveries(settings)] == [4, 1, 1]
    assert at(400).delivered == 0 and len(webhook.received) == 3


def test_a_fleet_wide_change_is_one_digest(fresh_settings: Settings, webhook: WebhookReceiver,
                                           mail: MailReceiver) -> None:
    settings = notifying(fresh_settings, webhook=webhook.start(), mail=mail, notify_digest_threshold=5)
    stuck = [(f"panel-9{i:05d}", "stuck") for i in range(3)]
    change_alerts(settings, T0, opened=stuck)
    assert deliver(settings, T0).messages_planned == 3  # at the threshold or below: one message each

    later = T0 + timedelta(minutes=1)
    change_alerts(settings, later, resolved=stuck,
                  opened=[(f"panel-{i:06d}", "silent") for i in range(30)] + [(f"panel-1{i:05d}", "underperforming")
                                                                           for i in range(10)])
    report = deliver(settings, later)
    assert (report.events_planned, report.messages_planned, report.digests_planned, report.delivered) == (43, 1, 1, 2)
    digest = webhook.received[-1].body
    assert digest["type"] == "digest" and digest["event_count"] == 43 and digest["group_by"] == ["event", "kind"]
    assert digest["groups"] == [{"event": "opened", "kind": "silent", "count": 30},
                                {"event": "opened", "kind": "underperforming", "count": 10},
                                {"event": "resolved", "kind": "stuck", "count": 3}]
    sample = digest["sample"]
    assert len(sample) == 20 and [s["severity"] for s in sample] == ["critical"] * 20  # the most severe first
    assert webhook.received[-1].headers["Idempotency-Key"] == digest["idempotency_key"]
    assert mail.mails[-1].message["Subject"] == ("[solar] 43 alert changes: 30 silent opened, "
                                                 "10 underperforming opened, 3 stuck resolved")
    assert [r["shape"] for r in deliveries(settings)][-2:] == ["digest", "digest"]


def test_retiring_a_panel_tells_its_alerts_resolved(fresh_settings: Settings, webhook: WebhookReceiver) -> None:
    settings = notifying(fresh_settings, webhook=webhook.start())
    registry.register_panel(db.engine(settings), "panel-000005", 400.0)
    change_alerts(settings, T0, opened=[("panel-000005", "offline"), ("panel-000005", "underperforming")])
    deliver(settings, T0)
    assert registry.retire_panel(db.engine(settings), "panel-000005", now=T0 + timedelta(minutes=1))
    deliver(settings, T0 + timedelta(minutes=1))
    resolved = [p.body for p in webhook.received[2:]]
    assert sorted((r["event"], r["kind"]) for r in resolved) == [("resolved", "offline"),
                                                                 ("resolved", "underperforming")]
    assert all(r["detail"].endswith("[panel retired by an operator]") for r in resolved)


def test_only_changes_are_events_recorded_with_the_evaluation(fresh_settings: Settings) -> None:
    """Fault detection's own run: an opened alert is one event; confirming it the next minute is none."""
    settings = fresh_settings
    now = datetime.now(UTC).replace(microsecond=0)
    with db.engine(settings, role="migrator").begin() as conn:
        conn.execute(text("INSERT INTO panels (panel_id, pmax_w) VALUES ('p-live', 400), ('p-quiet', 400)"))
    live = [("p-live", 200.0, 1, (now - timedelta(seconds=5 * k)).replace(tzinfo=None)) for k in range(1, 60)]
    quiet = [("p-quiet", 200.0, 1, (now - timedelta(minutes=10, seconds=5 * k)).replace(tzinfo=None))
             for k in range(12)]
    write_as_stream(settings, live + quiet, batch_seconds=5.0, commit_delay_seconds=1.0)
    alerts.run_health(db.engine(settings), settings, now=now)
    alerts.run_health(db.engine(settings), settings, now=now + timedelta(seconds=1))
    with db.engine(settings).connect() as conn:
        events = conn.execute(text("SELECT panel_id, kind, event, alert_id FROM alert_events")).all()
        alert = conn.execute(text("SELECT id FROM panel_alerts WHERE panel_id = 'p-quiet'")).scalar_one()
    assert [tuple(e) for e in events] == [("p-quiet", "silent", "opened", alert)]


def test_without_a_channel_events_are_settled_not_kept(fresh_settings: Settings, webhook: WebhookReceiver) -> None:
    change_alerts(fresh_settings, T0, opened=[("panel-000001", "offline")])
    report = deliver(fresh_settings, T0)
    assert (report.channels, report.events_planned, report.messages_planned) == ((), 1, 0)
    later = notifying(fresh_settings, webhook=webhook.start())
    assert deliver(later, T0 + timedelta(minutes=1)).events_planned == 0  # a channel added later gets no backlog
    assert webhook.received == [] and deliveries(fresh_settings) == []


def test_messages_still_failing_after_the_give_up_are_abandoned(fresh_settings: Settings,
                                                                webhook: WebhookReceiver) -> None:
    settings = notifying(fresh_settings, webhook=webhook, notify_give_up_hours=1.0, notify_retry_max_seconds=600.0)
    change_alerts(settings, T0, opened=[("panel-000001", "offline"), ("panel-000002", "offline")])
    assert deliver(settings, T0).failed == 1
    late = deliver(settings, T0 + timedelta(hours=1, seconds=1))
    assert (late.failed, late.abandoned) == (0, 2)  # the failing one and the one it held back
    status = late.status
    assert status is not None and (status.pending, status.failing, status.abandoned_recently) == (0, 0, 2)
    assert [r["state"] for r in deliveries(settings)] == ["abandoned", "abandoned"]

    change_alerts(settings, T0 + timedelta(hours=2), opened=[("panel-000003", "offline")])
    deliver(settings, T0 + timedelta(hours=2))  # planned for the webhook, which then goes away
    removed = deliver(fresh_settings, T0 + timedelta(hours=2, minutes=1))
    assert removed.abandoned == 1
    assert deliveries(settings)[-1]["last_error"] == "channel webhook is no longer configured"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # loopback only
def test_smtp_login_and_a_refused_one(fresh_settings: Settings) -> None:
    server = MailReceiver(login=("solar", "s3cret")).start()
    try:
        good = notifying(fresh_settings, mail=server, notify_smtp_user="solar", notify_smtp_password="s3cret")
        change_alerts(good, T0, opened=[("panel-000001", "offline")])
        assert deliver(good, T0).delivered == 1 and len(server.mails) == 1

        bad = good.model_copy(update={"notify_smtp_password": "wrong"})
        change_alerts(bad, T0 + timedelta(minutes=1), resolved=[("panel-000001", "offline")])
        report = deliver(bad, T0 + timedelta(minutes=1))
        assert report.failed == 1 and report.errors[0].startswith("email: SMTP 535")
        assert len(server.mails) == 1
    finally:
        server.stop()


def test_two_delivery_runs_at_once_send_each_message_once(fresh_settings: Settings, webhook: WebhookReceiver) -> None:
    settings = notifying(fresh_settings, webhook=webhook.start())
    for minute in range(4):  # four evaluations, 3 changes each
        change_alerts(settings, T0 + timedelta(minutes=minute),
                      opened=[(f"panel-{minute}{i:05d}", "offline") for i in range(3)])
    reports: list[DeliveryReport] = []
    runs = [threading.Thread(target=lambda: reports.append(deliver(settings, T0 + timedelta(minutes=5))))
            for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert sum(r.messages_planned for r in reports) == 12 and sum(r.delivered for r in reports) == 12
    assert len(webhook.received) == 12 and len(set(webhook.keys())) == 12


def test_the_cli_delivers_and_says_when_it_failed(fresh_settings: Settings, webhook: WebhookReceiver,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from solar_platform.cli import app

    for name, value in {"SOLAR_MYSQL_DATABASE": fresh_settings.mysql_database, "SOLAR_NOTIFY_WEBHOOK_URL": webhook.url,
                        "SOLAR_NOTIFY_RETRY_BASE_SECONDS": "0.2"}.items():
        monkeypatch.setenv(name, value)
    change_alerts(fresh_settings, datetime.now(UTC), opened=[("panel-000001", "offline")])

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["notify", *args])
        return result.exit_code, " ".join(result.output.split())

    code, output = run("deliver")  # the receiver is down
    assert code == 1 and "delivered 0, failed 1" in output and "failed webhook: " in output
    code, output = run("status")
    assert code == 0 and "pending deliveries: 1 (1 failing)" in output and "last error: webhook: " in output
    webhook.start()
    time.sleep(0.3)  # past the backoff
    code, output = run("deliver")
    assert code == 0 and "delivered 1, failed 0" in output and "pending 0 (0 failing)" in output
    assert len(webhook.received) == 1
