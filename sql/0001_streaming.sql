-- The streaming path's tables. Applied by yoyo-migrations (`solar-platform db migrate`),
-- which records what ran, so applying again is a no-op.
-- All times are UTC, DATETIME(3): millisecond precision, no session time-zone conversion.

-- The seed's raw table, names and column order kept for its dashboards and clients.
-- One row per (panel, reading time): the stream upserts, so a replay never duplicates.
CREATE TABLE IF NOT EXISTS panelData (
    Panel_id       VARCHAR(64) NOT NULL,
    power_panel    DOUBLE      NOT NULL,
    current_status TINYINT     NOT NULL,
    time_data      DATETIME(3) NOT NULL,
    PRIMARY KEY (Panel_id, time_data),
    KEY ix_panelData_time (time_data)
) ENGINE=InnoDB;

-- The seed's 30-second window means per panel (total_power is the mean, as in the seed).
CREATE TABLE IF NOT EXISTS panelDataAgg (
    Panel_id      VARCHAR(64) NOT NULL,
    total_power   DOUBLE      NOT NULL,
    window_start  DATETIME(3) NOT NULL,
    window_end    DATETIME(3) NOT NULL,
    reading_count INT         NOT NULL,
    PRIMARY KEY (Panel_id, window_start),
    KEY ix_panelDataAgg_window (window_start)
) ENGINE=InnoDB;

-- Messages that failed the contract, kept whole so nothing is lost.
CREATE TABLE IF NOT EXISTS dead_letters (
    id              BIGINT       NOT NULL AUTO_INCREMENT,
    kafka_topic     VARCHAR(255) NOT NULL,
    kafka_partition INT          NOT NULL,
    kafka_offset    BIGINT       NOT NULL,
    kafka_key       VARBINARY(1024) NULL,
    payload         MEDIUMBLOB   NULL,
    reason          VARCHAR(64)  NOT NULL,
    kafka_timestamp DATETIME(3)  NULL,
    recorded_at     DATETIME(3)  NOT NULL DEFAULT UTC_TIMESTAMP(3),
    PRIMARY KEY (id),
    UNIQUE KEY uq_dead_letters_source (kafka_topic, kafka_partition, kafka_offset),
    KEY ix_dead_letters_recorded (recorded_at)
) ENGINE=InnoDB;

-- One row per micro-batch: the stream's heartbeat for sensors, the API and Grafana.
CREATE TABLE IF NOT EXISTS stream_progress (
    query_id         CHAR(36)    NOT NULL,
    query_name       VARCHAR(32) NOT NULL,  -- 'readings' (raw + dead letters) or 'windows'
    batch_id         BIGINT      NOT NULL,
    rows_in          BIGINT      NOT NULL,
    rows_written     BIGINT      NOT NULL,
    dead_letters     BIGINT      NOT NULL,
    max_event_time   DATETIME(3) NULL,
    duration_ms      BIGINT      NOT NULL,
    recorded_at      DATETIME(3) NOT NULL,
    PRIMARY KEY (query_id, batch_id),
    KEY ix_stream_progress_recorded (recorded_at)
) ENGINE=InnoDB;

-- Spark writes each micro-batch here over JDBC, then one server-side
-- INSERT ... ON DUPLICATE KEY UPDATE moves it into the real tables.
CREATE TABLE IF NOT EXISTS stage_panel_data (
    Panel_id       VARCHAR(64) NOT NULL,
    power_panel    DOUBLE      NOT NULL,
    current_status TINYINT     NOT NULL,
    time_data      DATETIME(3) NOT NULL
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS stage_panel_data_agg (
    Panel_id      VARCHAR(64) NOT NULL,
    total_power   DOUBLE      NOT NULL,
    window_start  DATETIME(3) NOT NULL,
    window_end    DATETIME(3) NOT NULL,
    reading_count INT         NOT NULL
) ENGINE=InnoDB;
