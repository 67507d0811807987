-- Health at fleet scale: alarms about the platform itself, and the fleet's counters as of the
-- stream's newest batch (what the overview reads instead of every panel's latest row).
-- depends: 0008_appends_and_window_summaries

-- One open row per kind (`pipeline_lag`: the stream's frontier is behind the platform's clock).
-- A slow stream is one alarm here, never one silent alert per panel (storage/health/alerts.py).
CREATE TABLE IF NOT EXISTS platform_alerts (
    id            BIGINT       NOT NULL AUTO_INCREMENT,
    kind          VARCHAR(32)  NOT NULL,
    state         VARCHAR(16)  NOT NULL,   -- open | resolved
    severity      VARCHAR(16)  NOT NULL,
    opened_at     DATETIME(3)  NOT NULL,
    resolved_at   DATETIME(3)  NULL,
    last_checked  DATETIME(3)  NOT NULL,
    detail        VARCHAR(255) NULL,
    metric        DOUBLE       NULL,
    open_key      VARCHAR(32) AS (IF(state = 'open', kind, NULL)) PERSISTENT,
    PRIMARY KEY (id),
    UNIQUE KEY uq_platform_alerts_open (open_key),
    KEY ix_platform_alerts_opened (opened_at)
) ENGINE=InnoDB;

-- Written by the stream after each batch, from the latest readings it holds in memory: the panels
-- it has seen, those that reported within the horizon before the batch, how many of those are
-- online, and their power. One row.
CREATE TABLE IF NOT EXISTS fleet_now (
    id                TINYINT     NOT NULL,
    as_of             DATETIME(3) NOT NULL,   -- the batch's clock
    horizon_seconds   DOUBLE      NOT NULL,
    panels_seen       INT         NOT NULL,
    panels_reporting  INT         NOT NULL,
    panels_online     INT         NOT NULL,
    power_w           DOUBLE      NOT NULL,
    newest_reading    DATETIME(3) NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB;

-- The lowest reading of each 15-min bucket beside its peak: the live power-bounds check reads the
-- buckets (negative or above-Pmax readings) instead of raw readings. Rebuilt rows get it from raw.
ALTER TABLE panel_energy_15min ADD COLUMN IF NOT EXISTS min_w DOUBLE NULL AFTER peak_w;
