-- Daily rollups built from the 15-minute energy buckets, per site-time-zone day, staged and checked before they are served.
-- depends: 0005_derived_at_scale

-- A day is a local day of `time_zone` (SOLAR_SITE_TIMEZONE): the UTC 15-min buckets inside it,
-- 23 or 25 hours on DST days (day_seconds). covered_seconds / day_seconds is the data coverage.
ALTER TABLE panel_daily_energy
    ADD COLUMN IF NOT EXISTS covered_seconds DOUBLE      NOT NULL DEFAULT 0 AFTER energy_wh,
    ADD COLUMN IF NOT EXISTS day_seconds     INT         NOT NULL DEFAULT 86400 AFTER readings_expected,
    ADD COLUMN IF NOT EXISTS time_zone       VARCHAR(64) NOT NULL DEFAULT 'UTC' AFTER day_seconds;

ALTER TABLE fleet_daily_energy
    ADD COLUMN IF NOT EXISTS covered_seconds DOUBLE      NOT NULL DEFAULT 0 AFTER energy_wh,
    ADD COLUMN IF NOT EXISTS day_seconds     INT         NOT NULL DEFAULT 86400 AFTER mean_uptime_share,
    ADD COLUMN IF NOT EXISTS time_zone       VARCHAR(64) NOT NULL DEFAULT 'UTC' AFTER day_seconds;

-- Stages: a run writes its rows here under its run_key, the checks read them, and one transaction
-- swaps them into the served tables (or, when a blocking check fails, they are deleted unserved).
-- Same columns as the served tables; the key stops a run from staging one (day, panel) twice.
DROP TABLE IF EXISTS stage_panel_daily_energy;
CREATE TABLE stage_panel_daily_energy (
    run_key            VARCHAR(64) NOT NULL,
    day                DATE        NOT NULL,
    panel_id           VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    energy_wh          DOUBLE      NOT NULL,
    covered_seconds    DOUBLE      NOT NULL,
    peak_w             DOUBLE      NOT NULL,
    uptime_share       DOUBLE      NOT NULL,
    readings_received  INT         NOT NULL,
    readings_expected  INT         NOT NULL,
    day_seconds        INT         NOT NULL,
    time_zone          VARCHAR(64) NOT NULL,
    computed_at        DATETIME(3) NOT NULL,
    PRIMARY KEY (run_key, day, panel_id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS stage_fleet_daily_energy (
    run_key            VARCHAR(64) NOT NULL,
    day                DATE        NOT NULL,
    energy_wh          DOUBLE      NOT NULL,
    covered_seconds    DOUBLE      NOT NULL,
    peak_panel_w       DOUBLE      NOT NULL,
    panels_reporting   INT         NOT NULL,
    readings_received  BIGINT      NOT NULL,
    readings_expected  BIGINT      NOT NULL,
    mean_uptime_share  DOUBLE      NOT NULL,
    day_seconds        INT         NOT NULL,
    time_zone          VARCHAR(64) NOT NULL,
    computed_at        DATETIME(3) NOT NULL,
    PRIMARY KEY (run_key, day)
) ENGINE=InnoDB;
