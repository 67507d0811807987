"""Fault detection: the panel_health sensor keeps panel_alerts in step with the live readings."""

from datetime import UTC, datetime

import dagster as dg

from solar_platform.orchestration import keys
from solar_platform.orchestration.resources import SolarSettingsResource
from solar_platform.storage import db
from solar_platform.storage.health import alerts


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Fault detection every minute, from the stream's window summaries: judges every active "
                       "panel for offline, silent, zero_production, stuck, underperforming and over_range "
                       "(storage/health/faults.py) and keeps panel_alerts in step: opens after the delay, resolves "
                       "after a sustained recovery, never for lack of data. Silence is judged against the "
                       "pipeline's frontier; a stream behind the clock raises one pipeline_lag alarm instead. "
                       "Open alerts by kind are recorded on panel_alerts.")
def panel_health(context: dg.SensorEvaluationContext, solar: SolarSettingsResource) -> dg.SensorResult | dg.SkipReason:
    settings = solar.get()  # the rules' thresholds are its SOLAR_HEALTH_* settings
    run = alerts.run_health(db.engine(settings), settings, now=datetime.now(UTC))
    if not run.evaluation.panel_ids:
        return dg.SkipReason("no panels registered or seen yet")
    changes = run.changes
    if run.pipeline.open:
        context.log.warning(f"pipeline alarm: {run.pipeline.detail}; panel silence is judged against the "
                            "pipeline, so a slow stream raises this one alarm instead of an alert per panel")
    context.log.info(f"panel health: open {changes.open_by_kind}; opened {changes.opened}, "
                     f"resolved {changes.resolved}")
    return dg.SensorResult(asset_events=[dg.AssetObservation(asset_key=keys.PANEL_ALERTS, metadata={
        **{f"open_{kind}": n for kind, n in changes.open_by_kind.items()},
        "alerts_open": changes.open_now, "alerts_opened": changes.opened, "alerts_resolved": changes.resolved,
        "panels_judged": len(run.evaluation.panel_ids),
        "silence_suppressed": run.evaluation.silence_suppressed,
        "pipeline_alarm": run.pipeline.open,
        "pipeline_lag_seconds": round(run.pipeline.lag_seconds, 1) if run.pipeline.lag_seconds is not None else -1.0,
        "frontier": run.frontier.isoformat() if run.frontier else "none",
        "window": f"{run.window_start.isoformat()} .. {run.window_end.isoformat()}"})])
