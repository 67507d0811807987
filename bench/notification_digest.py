"""A fleet-wide alert change at scale: what the outbox adds to the alert transaction, and the one digest.

    .venv/bin/python bench/notification_digest.py [--panels 200000] [--threshold 20]

On a scratch database of the running stack:

1. One evaluation opens a `silent` alert on every panel (`alerts.apply_decisions`, as fault
   detection does when the whole site goes quiet). Timed: the whole transaction, and the outbox's
   part of it (`record_alert_events` run again on the same rows, rolled back).
2. The delivery step (`run_once`) plans the events and posts to a webhook receiver on loopback:
   timed, with the messages that arrive (one digest) and its size.
3. The same for resolving every alert.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from solar_platform.notifications.delivery import run_once
from solar_platform.settings import load_settings
from solar_platform.stack.scratch import scratch_environment
from solar_platform.storage import db, notifications
from solar_platform.storage.health import alerts
from solar_platform.storage.health.faults import Decision
from solar_platform_tests.notifications.receivers import WebhookReceiver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", type=int, default=200_000)
    parser.add_argument("--threshold", type=int, default=20)
    args = parser.parse_args()
    receiver = WebhookReceiver().start()
    base = load_settings()
    with scratch_environment(base, f"bench_notify_{int(time.time())}") as scratch:
        settings = scratch.model_copy(update={"notify_webhook_url": receiver.url,
                                              "notify_digest_threshold": args.threshold})
        engine = db.engine(settings)
        keys = [(f"panel-{i:06d}", "silent") for i in range(args.panels)]
        now = datetime.now(UTC).replace(tzinfo=None)
        figures: dict[str, object] = {"panels": args.panels}
        for step, action in (("open", "open"), ("resolve", "resolve")):
            moment = now + timedelta(minutes=1 if step == "resolve" else 0)
            decisions = [Decision(p, k, action, None, None, {"silence_s": 600.0}) for p, k in keys]
            started = time.perf_counter()
            with engine.begin() as conn:
                alerts.apply_decisions(conn, decisions, moment)
            figures[f"{step}_transaction_s"] = round(time.perf_counter() - started, 2)
            with engine.connect() as conn:  # the outbox's part: the same statements on the same rows, undone
                transaction = conn.begin()
                started = time.perf_counter()
                recorded = notifications.record_alert_events(
                    conn, now=moment, opened=keys if step == "open" else [], resolved=keys if step == "resolve" else [])
                figures[f"{step}_outbox_s"] = round(time.perf_counter() - started, 2)
                transaction.rollback()
            figures[f"{step}_events"] = recorded
            before = len(receiver.received)
            started = time.perf_counter()
            report = run_once(engine, settings, now=moment + timedelta(seconds=30), budget_seconds=300)
            figures[f"{step}_delivery_s"] = round(time.perf_counter() - started, 2)
            arrived = receiver.received[before:]
            figures[f"{step}_messages"] = len(arrived)
            figures[f"{step}_digest_bytes"] = len(json.dumps(arrived[0].body)) if arrived else 0
            figures[f"{step}_report"] = f"{report.events_planned} events, {report.digests_planned} digests"
        with engine.connect() as conn:
            figures["alert_events_rows"] = conn.execute(text("SELECT COUNT(*) FROM alert_events")).scalar_one()
    receiver.stop()
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
