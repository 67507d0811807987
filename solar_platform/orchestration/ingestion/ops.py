"""Ops for bounded work that is not an asset: publishing a past time range of fleet readings."""

from datetime import UTC, datetime, timedelta

import dagster as dg
from pydantic import Field

from solar_platform.fleet.faults import FaultSpecError
from solar_platform.fleet.publisher import fast_forward
from solar_platform.orchestration.resources import SolarSettingsResource

# A run must stay bounded: a month of history at a time (several runs cover more).
MAX_HISTORY = timedelta(days=31)


class FleetHistoryConfig(dg.Config):
    start: str = Field(description="First simulated instant, ISO 8601 (UTC if no zone), e.g. 2026-11-20.")
    end: str = Field(description="End of the range, exclusive, e.g. 2026-11-23 for three whole days.")
    panels: int | None = Field(None, description="Panels to simulate (default: the fleet config's).")
    faults: str | None = Field(None, description="Fault spec to inject: inline JSON or a JSON file path, as "
                                                 "`fleet run --faults` (README, Fault detection).")


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dg.op(description="Publish the fleet's readings for a past time range (fast-forward), as fast as Kafka takes them.")
def publish_fleet_history(
    context: dg.OpExecutionContext, config: FleetHistoryConfig, solar: SolarSettingsResource
) -> dg.Output[int]:
    try:
        start, end = _instant(config.start), _instant(config.end)
    except ValueError as exc:
        raise dg.Failure(f"start/end must be ISO 8601 timestamps: {exc}") from exc
    if not start < end <= start + MAX_HISTORY:
        raise dg.Failure(f"need start < end and a range of at most {MAX_HISTORY.days} days, got {start} .. {end}")
    settings = solar.get()
    try:
        summary = fast_forward(settings, start=start, end=end, panels=config.panels, faults=config.faults)
    except FaultSpecError as exc:
        raise dg.Failure(f"bad fault spec: {exc}") from exc
    metadata = {
        "topic": settings.topic,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "messages_delivered": summary.messages_delivered,
        "messages_failed": summary.messages_failed,
        "messages_per_second": round(summary.messages_per_second),
        "seed": summary.seed,
    }
    if not summary.all_delivered:
        raise dg.Failure(
            f"{summary.messages_sent - summary.messages_delivered} of {summary.messages_sent} readings were not "
            f"acknowledged: {summary.first_errors[:3]}",
            metadata=metadata,
        )
    context.log.info(f"published {summary.messages_delivered} readings of {start} .. {end} to {settings.topic}")
    return dg.Output(summary.messages_delivered, metadata=metadata)
