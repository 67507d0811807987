-- Tables the Dagster control plane needs beside 0002.
-- depends: 0002_fleet_health_rollups

-- The Spark rollup writes one run's per-panel daily figures here over JDBC (no key: Spark's
-- writer only appends); one MariaDB transaction then swaps them into panel_daily_energy and
-- deletes them, so a day is replaced whole or not at all.
CREATE TABLE IF NOT EXISTS stage_panel_daily_energy (
    run_key            VARCHAR(64) NOT NULL,
    day                DATE        NOT NULL,
    panel_id           VARCHAR(64) NOT NULL,
    energy_wh          DOUBLE      NOT NULL,
    peak_w             DOUBLE      NOT NULL,
    uptime_share       DOUBLE      NOT NULL,
    readings_received  INT         NOT NULL,
    KEY ix_stage_panel_daily_energy_run (run_key)
) ENGINE=InnoDB;

-- Dagster runs that failed, recorded by the run-failure sensor for the API and Grafana.
CREATE TABLE IF NOT EXISTS orchestration_run_failures (
    run_id       VARCHAR(64)  NOT NULL,
    job_name     VARCHAR(255) NOT NULL,
    failed_at    DATETIME(3)  NOT NULL,
    message      TEXT         NULL,
    PRIMARY KEY (run_id),
    KEY ix_orchestration_run_failures_failed (failed_at)
) ENGINE=InnoDB;
