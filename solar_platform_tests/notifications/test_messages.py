"""Pure logic, no services: backoff, the payloads, the e-mail made from them, the channel settings."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from solar_platform.notifications.delivery import retry_delay
from solar_platform.notifications.messages import (
    alert_payload,
    body,
    digest_payload,
    mail_message,
    message_id,
    payload_text,
    subject,
)
from solar_platform.settings import SettingsError, load_settings
from solar_platform.storage.notifications import AlertEvent, EvaluationSummary

AT = datetime(2026, 12, 3, 9, 30, 15, 250000)
OFFLINE = AlertEvent(id=7, alert_id=41, panel_id="panel-000003", kind="offline", event="opened", severity="critical",
                     detail="status 0 for 3.0 min", metric=180.0, occurred_at=AT)


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    assert [retry_delay(n, 30, 3600) for n in range(1, 10)] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert retry_delay(0, 30, 3600) == 30  # no attempt yet counts as the first
    assert retry_delay(60, 0.5, 10) == 10  # no overflow far along


def test_an_alert_payload_names_the_alert_and_carries_its_key() -> None:
    payload = alert_payload(OFFLINE, "k" * 32)
    assert payload == {
        "type": "alert", "idempotency_key": "k" * 32, "event": "opened", "alert_id": 41, "panel_id": "panel-000003",
        "kind": "offline", "severity": "critical", "detail": "status 0 for 3.0 min", "metric": 180.0,
        "occurred_at": "2026-12-03T09:30:15.250Z",
    }
    assert json.loads(payload_text(payload)) == payload
    assert " " not in payload_text({"a": [1, 2]})  # compact: what is stored is what is posted


def test_alert_mail_subject_body_and_headers() -> None:
    opened = alert_payload(OFFLINE, "abc123")
    assert subject(opened) == "[solar] opened: offline on panel-000003 (critical)"
    resolved = alert_payload(AlertEvent(**{**OFFLINE.__dict__, "event": "resolved"}), "def456")
    assert subject(resolved) == "[solar] resolved: offline on panel-000003"
    text = body(opened)
    for line in ("Alert opened: offline on panel panel-000003", "Severity: critical", "Detail: status 0 for 3.0 min",
                 "Metric: 180", "Alert id: 41", "At: 2026-12-03T09:30:15.250Z", "Idempotency key: abc123"):
        assert line in text.splitlines(), line

    mail = mail_message(opened, sender="Solar <alerts@plant.example>", recipients=["ops@plant.example", "b@x.example"])
    assert mail["Message-ID"] == "<abc123@plant.example>"
    assert mail["To"] == "ops@plant.example, b@x.example" and mail["From"] == "Solar <alerts@plant.example>"
    assert mail["Subject"] == subject(opened)
    assert mail["Date"] == "Thu, 03 Dec 2026 09:30:15 +0000"
    assert mail.get_content().strip() == text.strip()


def test_message_id_needs_no_domain_in_the_sender() -> None:
    assert message_id("k1", "solar-platform") == "<k1@localhost>"


def test_a_digest_counts_by_group_and_samples_panels() -> None:
    groups = [{"event": "opened", "kind": "silent", "count": 199_990},
              {"event": "opened", "kind": "offline", "count": 6},
              {"event": "resolved", "kind": "stuck", "count": 3},
              {"event": "resolved", "kind": "offline", "count": 1}]
    sample = [OFFLINE, AlertEvent(**{**OFFLINE.__dict__, "panel_id": "panel-000004", "kind": "silent", "detail": None,
                                     "metric": None})]
    payload = digest_payload(EvaluationSummary("e" * 32, 200_000, AT, groups, sample), "dig")
    assert payload["type"] == "digest" and payload["event_count"] == 200_000
    assert payload["group_by"] == ["event", "kind"]  # the dimensions, named: a site dimension is one more
    assert payload["groups"] == groups
    assert [s["panel_id"] for s in payload["sample"]] == ["panel-000003", "panel-000004"]
    assert payload["sample"][0] == {k: v for k, v in alert_payload(OFFLINE, "x").items()
                                    if k not in ("type", "idempotency_key")}
    assert subject(payload) == ("[solar] 200000 alert changes: 199990 silent opened, 6 offline opened, "
                                "3 stuck resolved and 1 more groups")
    lines = body(payload).splitlines()
    assert "By event and kind:" in lines and "  opened  silent  199990" in lines
    assert "Panels (2 of 200000, most severe first):" in lines
    assert "  panel-000004  silent opened  critical" in lines


@pytest.fixture(autouse=True)
def _no_notification_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings from this test's environment only: no developer `.env`, no SOLAR_NOTIFY_* of theirs."""
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith("SOLAR_NOTIFY_")]:
        monkeypatch.delenv(name)


def test_channels_are_on_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().notify_channels == ()
    monkeypatch.setenv("SOLAR_NOTIFY_WEBHOOK_URL", "https://hooks.example/solar")
    monkeypatch.setenv("SOLAR_NOTIFY_SMTP_HOST", "mail.example")
    monkeypatch.setenv("SOLAR_NOTIFY_MAIL_TO", "ops@example.com, oncall@example.com")
    settings = load_settings()
    assert settings.notify_channels == ("webhook", "email")
    assert settings.notify_mail_to == ("ops@example.com", "oncall@example.com")


@pytest.mark.parametrize(("env", "problem"), [
    ({"SOLAR_NOTIFY_SMTP_HOST": "mail.example"}, "SOLAR_NOTIFY_MAIL_TO is empty"),
    ({"SOLAR_NOTIFY_WEBHOOK_URL": "ftp://x"}, "SOLAR_NOTIFY_WEBHOOK_URL"),
    ({"SOLAR_NOTIFY_SMTP_PASSWORD": "p"}, "needs SOLAR_NOTIFY_SMTP_USER"),
])
def test_incomplete_channel_settings_are_refused(monkeypatch: pytest.MonkeyPatch, env: dict, problem: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError, match=problem):
        load_settings()
