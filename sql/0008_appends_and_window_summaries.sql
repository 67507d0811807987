-- The stream at fleet scale: appends take a bulk path, corrections the exact one, and the 30-s
-- windows carry the summary that fault detection and the live checks judge from.
-- depends: 0007_rollups_from_buckets

-- Window summaries (storage/windows.py): beside the seed's mean (`total_power`) and count, the
-- sums, extremes, readings per status and the first and last reading of each (panel, window).
-- Instant column adds; rows written before this migration get them from `solar-platform rebuild`.
ALTER TABLE panelDataAgg
    ADD COLUMN IF NOT EXISTS power_sum     DOUBLE      NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS power_min     DOUBLE      NULL,
    ADD COLUMN IF NOT EXISTS power_max     DOUBLE      NULL,
    ADD COLUMN IF NOT EXISTS readings_on   INT         NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS power_on_sum  DOUBLE      NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS power_on_min  DOUBLE      NULL,
    ADD COLUMN IF NOT EXISTS power_on_max  DOUBLE      NULL,
    ADD COLUMN IF NOT EXISTS first_time    DATETIME(3) NULL,
    ADD COLUMN IF NOT EXISTS first_power   DOUBLE      NULL,
    ADD COLUMN IF NOT EXISTS last_time     DATETIME(3) NULL,
    ADD COLUMN IF NOT EXISTS last_power    DOUBLE      NULL,
    ADD COLUMN IF NOT EXISTS last_on_time  DATETIME(3) NULL,
    ADD COLUMN IF NOT EXISTS last_off_time DATETIME(3) NULL;

-- Per batch: how its readings split between the append path and the exact path, and its frontier:
-- the median, over the batch's panels, of each one's newest reading (one wrong clock cannot move it).
ALTER TABLE stream_progress
    ADD COLUMN IF NOT EXISTS readings_appended  BIGINT      NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS readings_corrected BIGINT      NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS frontier_time  DATETIME(3) NULL;

-- The batch in flight, refreshed every few seconds while it runs: a slow batch is not a stuck one.
CREATE TABLE IF NOT EXISTS stream_pulse (
    query_name       VARCHAR(32) NOT NULL,
    batch_id         BIGINT      NOT NULL,
    batch_started_at DATETIME(3) NOT NULL,
    pulse_at         DATETIME(3) NOT NULL,
    in_flight        TINYINT     NOT NULL,
    PRIMARY KEY (query_name)
) ENGINE=InnoDB;

-- Bumped by whoever rewrites panel_latest behind the stream (a rebuild): the stream keeps each
-- panel's latest reading in memory to tell appends from corrections, and reloads it when this moves.
CREATE TABLE IF NOT EXISTS derived_generation (
    id          TINYINT     NOT NULL,
    generation  BIGINT      NOT NULL,
    changed_at  DATETIME(3) NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB;
INSERT IGNORE INTO derived_generation (id, generation, changed_at) VALUES (1, 0, UTC_TIMESTAMP(3));

-- Spark no longer stages readings over JDBC: the driver writes each batch in its own transaction.
DROP TABLE IF EXISTS stage_panel_data;
