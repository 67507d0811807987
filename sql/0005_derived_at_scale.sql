-- Derived data at scale: energy buckets and each panel's latest reading, kept by the stream in
-- each micro-batch's transaction, and day partitions on the raw tables so that retention drops a
-- day instead of deleting rows. The stream owns these tables; `solar-platform rebuild` recomputes
-- them from panelData. Times are UTC.
-- depends: 0004_case_sensitive_panel_ids

-- Energy per panel per 15-minute UTC bucket. Every real time zone's day is a whole number of
-- them (offsets are multiples of 15 min), so local days, weeks, months and years are sums.
-- Energy = trapezoid segments between consecutive readings no further apart than the max gap,
-- cut exactly at bucket edges (storage/energy.py).
CREATE TABLE IF NOT EXISTS panel_energy_15min (
    panel_id        VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    bucket_start    DATETIME    NOT NULL,
    energy_wh       DOUBLE      NOT NULL,
    covered_seconds DOUBLE      NOT NULL,  -- seconds of the bucket those segments cover
    readings        INT         NOT NULL,  -- readings stamped in the bucket
    readings_on     INT         NOT NULL,  -- of which with status 1
    peak_w          DOUBLE      NULL,      -- highest reading stamped in the bucket; NULL if none
    PRIMARY KEY (panel_id, bucket_start),
    KEY ix_panel_energy_15min_bucket (bucket_start)
) ENGINE=InnoDB;

-- The fleet's sum of panel_energy_15min per bucket (covered_seconds in panel-seconds), kept in
-- the same transaction, so fleet-wide figures never read per-panel or raw rows.
CREATE TABLE IF NOT EXISTS fleet_energy_15min (
    bucket_start    DATETIME NOT NULL,
    energy_wh       DOUBLE   NOT NULL,
    covered_seconds DOUBLE   NOT NULL,
    readings        BIGINT   NOT NULL,
    readings_on     BIGINT   NOT NULL,
    PRIMARY KEY (bucket_start)
) ENGINE=InnoDB;

-- Each panel's newest reading and the span it has reported over: "what every panel is doing
-- now" without a GROUP BY over panelData.
CREATE TABLE IF NOT EXISTS panel_latest (
    panel_id       VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    first_seen     DATETIME(3) NOT NULL,
    last_seen      DATETIME(3) NOT NULL,
    power_panel    DOUBLE      NOT NULL,
    current_status TINYINT     NOT NULL,
    PRIMARY KEY (panel_id)
) ENGINE=InnoDB;

-- Per-batch profile (ms per step) beside the heartbeat; see streaming/job.py.
ALTER TABLE stream_progress ADD COLUMN IF NOT EXISTS profile VARCHAR(1024) NULL;

-- Stage rows carry the writing job's lock-connection id: a job that lost its lock can never
-- clear or merge its successor's rows.
ALTER TABLE stage_panel_data ADD COLUMN IF NOT EXISTS job_id BIGINT NOT NULL DEFAULT 0 FIRST;
-- Windows are recomputed in SQL from panelData now; Spark no longer stages them.
DROP TABLE IF EXISTS stage_panel_data_agg;

-- Day partitions (storage/retention.py adds days ahead and drops expired ones). p_start holds
-- nothing (the contract rejects readings before 2000); p_future catches days not yet created.
ALTER TABLE panelData PARTITION BY RANGE (TO_DAYS(time_data)) (
    PARTITION p_start  VALUES LESS THAN (TO_DAYS('2000-01-01')),
    PARTITION p_future VALUES LESS THAN MAXVALUE
);
ALTER TABLE panelDataAgg PARTITION BY RANGE (TO_DAYS(window_start)) (
    PARTITION p_start  VALUES LESS THAN (TO_DAYS('2000-01-01')),
    PARTITION p_future VALUES LESS THAN MAXVALUE
);
