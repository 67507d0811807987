"""Request parameters and response bodies. flask-openapi3 validates requests against these models
and builds the OpenAPI document from them, so the spec cannot drift from the code.

Times: parameters accept ISO 8601 (`2024-05-01T12:00:00Z`, `+02:00` offsets; a naive time is UTC).
Responses always give ISO 8601 UTC with milliseconds and a `Z`, e.g. `2024-05-01T12:00:05.000Z`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator

from solar_platform.contracts import PANEL_ID_MAX_LENGTH, PANEL_ID_PATTERN
from solar_platform.settings import SITE_ID_PATTERN
from solar_platform.storage.health.faults import ALERT_KINDS
from solar_platform.storage.periods import EnergyUnit, zone

EARLIEST = datetime(1970, 1, 2)
LATEST = datetime(2100, 1, 1)

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
MAX_PAGE = 100  # Enphase-style pages for lists of panels and alerts


def to_naive_utc(moment: datetime | None) -> datetime | None:
    """What the DATETIME(3) columns hold: naive UTC. A naive input is taken as UTC."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"time must lie between {EARLIEST.date()} and {LATEST.date()}")
    return moment


class _Query(BaseModel):
    # Unknown parameters are errors: a typo such as `form=` must not silently widen a query.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _TimeRange(_Query):
    start: datetime | None = Field(None, alias="from", description="Inclusive start, ISO 8601 (naive = UTC).")
    end: datetime | None = Field(None, alias="to", description="Exclusive end, ISO 8601 (naive = UTC).")

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return to_naive_utc(value)


class OutputFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


class PanelPath(BaseModel):
    panel_id: str = Field(min_length=1, max_length=PANEL_ID_MAX_LENGTH, pattern=PANEL_ID_PATTERN,
                          description="The panel id (the Kafka key).")


# ---------------------------------------------------------------- legacy route (the seed project's, legacy_routes.py)
class SeedPowerQuery(_TimeRange):
    limit: int = Field(
        DEFAULT_LIMIT,
        ge=1,
        le=MAX_LIMIT,
        description="At most this many rows. Without `from`, the most recent ones (still oldest first).",
    )


class SeedReading(BaseModel):
    """One row of `panelData` with the seed's names and types."""

    Panel_id: str
    power_panel: float = Field(description="Watts.")
    current_status: int = Field(description="1 = producing/online, 0 = offline.")
    time_data: str = Field(description="ISO 8601 UTC with milliseconds, e.g. `2024-05-01T12:00:05.000Z`.")


class SeedReadings(RootModel[list[SeedReading]]):
    """The seed's response: a bare JSON list of rows, oldest first."""


# ---------------------------------------------------------------- panels
class PanelsQuery(_Query):
    limit: int = Field(MAX_PAGE, ge=1, le=MAX_PAGE, description="Page size (at most 100).")
    cursor: str | None = Field(None, max_length=200, description="`next_cursor` of the previous page.")


class Reading(BaseModel):
    time: str = Field(description="ISO 8601 UTC.")
    power_w: float
    status: int = Field(description="1 = online, 0 = offline.")


class Panel(BaseModel):
    panel_id: str
    pmax_w: float | None = Field(description="Rated peak power; null when the panel is not registered.")
    first_seen: str | None
    last_seen: str | None = Field(description="Time of the newest reading.")
    current_status: int | None = Field(description="Status of the newest reading.")
    health: str = Field(
        description="Most severe open alert (silent > offline > zero_production > over_range > stuck > "
        "underperforming), else `reporting`; `unknown` when never seen; `retired` when retired."
    )


class PanelsPage(BaseModel):
    items: list[Panel]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class PanelDetail(Panel):
    latest_reading: Reading | None
    lifetime_energy_wh: float = Field(description="All energy recorded for the panel, Wh.")


# ---------------------------------------------------------------- readings and windows
_CSV_CONTENT = {"content": {"text/csv": {"schema": {"type": "string"}}}}


class ReadingsQuery(_TimeRange):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size.")
    cursor: str | None = Field(None, max_length=200, description="`next_cursor` of the previous page.")
    format: OutputFormat = Field(
        OutputFormat.JSON,
        description="`csv` streams the whole range (after `cursor`, if given) as text/csv, paging internally; "
        "`limit` does not apply.",
    )


class ReadingsPage(BaseModel):
    model_config = ConfigDict(openapi_extra=_CSV_CONTENT)  # type: ignore[typeddict-unknown-key]

    panel_id: str
    start: str = Field(alias="from")
    end: str = Field(alias="to")
    items: list[Reading]
    next_cursor: str | None


class WindowsQuery(_TimeRange):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size.")
    cursor: str | None = Field(None, max_length=200, description="`next_cursor` of the previous page.")


class Window(BaseModel):
    window_start: str
    window_end: str
    mean_power_w: float = Field(description="Mean of the readings in the window (panelDataAgg.total_power).")
    reading_count: int


class WindowsPage(BaseModel):
    panel_id: str
    start: str = Field(alias="from")
    end: str = Field(alias="to")
    items: list[Window]
    next_cursor: str | None


# ---------------------------------------------------------------- energy
class EnergyQuery(_TimeRange):
    unit: EnergyUnit = Field(
        EnergyUnit.DAY,
        description="Bucket size. Longest range: QUARTER_OF_AN_HOUR and HOUR 1 month (31 days), DAY 1 year "
        "(366 days), WEEK/MONTH/YEAR unlimited.",
    )
    tz: str | None = Field(
        None,
        max_length=64,
        description="IANA time zone of the buckets' wall clock, e.g. `Europe/Madrid`: days start at local "
        "midnight (a DST day has 23 or 25 hours), weeks on Monday. Default: the site's zone "
        "(`SOLAR_SITE_TIMEZONE`, UTC unless set).",
    )
    format: OutputFormat = Field(OutputFormat.JSON, description="`csv` returns text/csv `date,value_wh,coverage`.")

    @field_validator("tz")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)  # ValueError with a readable message -> 400
        return value


class EnergyValue(BaseModel):
    date: str = Field(
        description="Bucket start in the request's zone, ISO 8601 with its offset (`Z` when zero); a week's "
        "bucket is labelled by its Monday, a month's by its 1st, even when the range starts later."
    )
    value: float | None = Field(description="Wh; null when no data at all fell in the bucket.")
    coverage: float | None = Field(
        description="Covered seconds / expected seconds: the share of the bucket (up to now) spanned by credited "
        "readings; for the fleet, expected = seconds x panels registered. null for a bucket wholly in the future."
    )


class Energy(BaseModel):
    model_config = ConfigDict(openapi_extra=_CSV_CONTENT)  # type: ignore[typeddict-unknown-key]

    panel_id: str | None = Field(description="null for the fleet.")
    site_id: str | None = Field(None, description="The site, for a site's energy; absent otherwise.")
    time_unit: EnergyUnit
    unit: Literal["Wh"] = "Wh"
    time_zone: str = Field(description="The zone the buckets follow.")
    start: str = Field(alias="from", description="Start of the first bucket (the range rounded outward), UTC.")
    end: str = Field(alias="to", description="End of the last bucket, UTC.")
    total_wh: float
    coverage: float | None = Field(description="Coverage of the whole range.")
    values: list[EnergyValue]


# ---------------------------------------------------------------- yield
class YieldUnit(StrEnum):
    DAY = "DAY"
    MONTH = "MONTH"


class YieldQuery(_TimeRange):
    unit: YieldUnit = Field(YieldUnit.DAY, description="DAY (range at most 1 year, default the last 31 days) or "
                            "MONTH (at most 10 years, default the last year).")
    tz: str | None = Field(None, max_length=64, description="IANA zone of the days and months. Default: the site's "
                           "zone for a site and its panels, `SOLAR_SITE_TIMEZONE` for the fleet.")

    @field_validator("tz")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)
        return value


class YieldValue(BaseModel):
    date: str = Field(description="Period start in the request's zone, ISO 8601 with its offset.")
    energy_wh: float | None = Field(description="Measured energy, Wh (null: no data in the period).")
    expected_wh: float = Field(description="Energy the power model expected of the kWp over the period up to now, Wh.")
    specific_yield: float | None = Field(description="kWh per kWp: measured kWh / nameplate kW.")
    performance_ratio: float | None = Field(description="Measured / expected energy (null when nothing was expected).")
    coverage: float | None = Field(description="As in the energy routes: the share of the period the data covers.")


class Yield(BaseModel):
    panel_id: str | None = Field(description="The panel; null for a site or the fleet.")
    site_id: str | None = Field(description="The site; null for the fleet.")
    time_unit: YieldUnit
    time_zone: str
    start: str = Field(alias="from", description="Start of the first period, UTC.")
    end: str = Field(alias="to", description="End of the last period, UTC.")
    kwp: float = Field(description="Nameplate peak power of the panels in service, kW.")
    power_model: str = Field(description="The model expected energy comes from (SOLAR_POWER_MODEL): sech or daylight.")
    total: YieldValue = Field(description="The whole range (its `date` is the first period's).")
    values: list[YieldValue]


# ---------------------------------------------------------------- sites
class SitePath(BaseModel):
    site_id: str = Field(min_length=1, max_length=64, pattern=SITE_ID_PATTERN, description="A site id.")


class SitesQuery(_Query):
    limit: int = Field(MAX_PAGE, ge=1, le=MAX_PAGE, description="Page size (at most 100).")
    cursor: str | None = Field(None, max_length=200, description="`next_cursor` of the previous page.")


class Site(BaseModel):
    site_id: str
    name: str
    latitude: float = Field(description="Degrees north.")
    longitude: float = Field(description="Degrees east.")
    time_zone: str = Field(description="IANA zone of the site's days (its energy and daily rollups).")
    commissioned_on: str | None = Field(description="Commissioning date, YYYY-MM-DD.")
    panels: int = Field(description="Panels in service at the site.")
    kwp: float = Field(description="Their nameplate peak power, kW.")


class SitesPage(BaseModel):
    items: list[Site]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class SiteDetail(Site):
    today_energy_wh: float = Field(description="Energy since local midnight in the site's zone, Wh.")
    today_coverage: float | None = Field(description="Coverage of today so far (see the energy routes).")


# ---------------------------------------------------------------- fleet, alerts, health
class FleetOverview(BaseModel):
    as_of: str
    current_power_w: float = Field(description="Sum of each panel's newest reading within the horizon.")
    horizon_seconds: float = Field(description="How recent a reading must be to count as current.")
    panels_reporting: int = Field(description="Panels with a reading within the horizon.")
    panels_online: int = Field(description="Of those, panels whose newest reading has status 1.")
    panels_expected: int = Field(description="Panels in the registry (`panels` table).")
    newest_reading: str | None
    time_zone: str = Field(description="The site's zone, which defines 'today'.")
    today_energy_wh: float = Field(description="Energy since local midnight in the site's zone.")
    today_coverage: float | None = Field(description="Coverage of today so far (see the energy routes).")
    lifetime_energy_wh: float = Field(description="Daily rollups plus the days after the newest one, Wh.")


class AlertState(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    ALL = "all"


# The fault kinds are defined once, with their rules (storage/health/faults.py).
AlertKind = StrEnum("AlertKind", {kind.upper(): kind for kind in ALERT_KINDS})


class AlertsQuery(_Query):
    state: AlertState = Field(AlertState.OPEN, description="open (default), resolved or all.")
    since: datetime | None = Field(
        None, description="Only alerts active at or after this time: still open, or opened/resolved since."
    )
    kind: AlertKind | None = Field(None, description="Only this kind.")
    panel_id: str | None = Field(None, min_length=1, max_length=PANEL_ID_MAX_LENGTH, pattern=PANEL_ID_PATTERN)
    limit: int = Field(MAX_PAGE, ge=1, le=MAX_PAGE, description="Page size (at most 100).")
    cursor: str | None = Field(None, max_length=200, description="`next_cursor` of the previous page.")

    @field_validator("since")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return to_naive_utc(value)


class Alert(BaseModel):
    id: int
    panel_id: str
    kind: str
    state: str
    opened_at: str
    resolved_at: str | None
    last_checked: str
    detail: str | None
    severity: str | None = Field(None, description="critical (offline, silent, zero_production), major "
                                                   "(over_range, stuck) or minor (underperforming).")
    metric: float | None = Field(None, description="The headline figure: PI, stuck value W, silence s, ...")
    evidence: dict[str, float] | None = Field(None, description="The figures behind the alert.")
    fault_since: str | None = Field(None, description="When the condition started, as far as the data shows.")


class AlertsPage(BaseModel):
    items: list[Alert]
    next_cursor: str | None
    open_by_kind: dict[str, int] = Field(description="Open alerts per kind, over the whole fleet.")


class StreamStatus(BaseModel):
    last_heartbeat: str | None = Field(description="`stream_progress.recorded_at` of the newest micro-batch.")
    heartbeat_age_seconds: float | None
    stale: bool = Field(description="True when there is no heartbeat or it is older than `stale_after_seconds`.")
    stale_after_seconds: float
    newest_event_time: str | None
    batch_in_flight: int | None = Field(None, description="The micro-batch running now (its pulse is fresh): a stale "
                                                          "heartbeat with a batch in flight is a slow stream, not a "
                                                          "stuck one.")
    batch_running_seconds: float | None = Field(None, description="How long the batch in flight has been running.")
    waiting_for: str | None = Field(None, description="What the batch in flight waits for: `disk full: MariaDB at "
                                                      "…, data directory … (error 1114: …)`. The stream holds the "
                                                      "batch, retries it, and resumes by itself once there is space.")
    waiting_since: str | None = Field(None, description="Since when the batch in flight waits.")
    summaries_waiting_batches: int | None = Field(None, description="Batches committed to panelData whose windows, "
                                                                    "energy buckets and latest rows the stream writes "
                                                                    "in its next summary round (every "
                                                                    "`SOLAR_STREAM_SUMMARIES_EVERY_SECONDS`).")
    summaries_behind_seconds: float | None = Field(None, description="How long the oldest of them has waited: how far "
                                                                     "the summaries trail panelData. Null when none "
                                                                     "waits.")


class LostOffsetsGap(BaseModel):
    """Kafka offsets of one partition that retention deleted before the stream read them."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int
    records: int
    published_after: str | None = Field(description="The Kafka time of the last record read before the gap.")
    published_before: str | None = Field(description="The Kafka time of the first record read after the gap.")
    detected_at: str


class LostOffsets(BaseModel):
    """Records the stream never read: Kafka's retention deleted them first (the stream was down longer)."""

    gaps_last_24h: int
    records_last_24h: int
    newest: list[LostOffsetsGap] = Field(description="The 10 newest gaps, newest first, whenever they were found.")


class PlatformAlert(BaseModel):
    """An open alarm about the platform itself (`pipeline_lag`: the stream's frontier is behind the clock;
    `disk_full`: the stream holds a batch because MariaDB's disk is full)."""

    kind: str
    severity: str
    opened_at: str
    last_checked: str
    detail: str | None
    metric: float | None = Field(description="The headline figure: for `pipeline_lag`, seconds behind.")


class NotificationStatus(BaseModel):
    """Alert notifications (webhook, e-mail): are they getting through? Counts stop at 10 000."""

    channels: list[str] = Field(description="The configured channels: `webhook`, `email`; empty when none is.")
    pending: int = Field(description="Messages not yet delivered on a channel, retries included.")
    failing: int = Field(description="Of those, the ones whose last attempt failed (retried with backoff).")
    abandoned_last_24h: int = Field(description="Messages given up on in the last 24 h (`SOLAR_NOTIFY_GIVE_UP_HOURS` "
                                                "of failures, or their channel was removed).")
    events_waiting: int = Field(description="Alert changes not yet made into messages (the next delivery run's).")
    oldest_pending: str | None = Field(description="When the oldest undelivered message was planned.")
    last_error: str | None = Field(description="`<channel>: <error>` of the newest failure still failing or "
                                               "abandoned in the last 24 h.")


class Health(BaseModel):
    status: Literal["ok", "degraded", "down"] = Field(
        description="ok; degraded = database up but the stream is stale; down = database unreachable (503)."
    )
    database_reachable: bool
    stream: StreamStatus | None
    dead_letters_total: int | None = Field(description="Counted up to 10 000: 10000 means at least that many.")
    dead_letters_last_24h: int | None = Field(description="Counted up to 10 000.")
    notifications: NotificationStatus | None = Field(
        None, description="Alert notifications' delivery; null when the database is down.")
    platform_alerts: list[PlatformAlert] | None = Field(
        None, description="Open alarms about the platform itself (one per kind); null when the database is down.")
    lost_offsets: LostOffsets | None = Field(
        None, description="Kafka records deleted by retention before the stream read them; null when the database "
                          "is down.")
