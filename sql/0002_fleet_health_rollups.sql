-- Tables for the control plane: the panel registry, panel-health alerts and daily rollups.

-- One row per panel, kept in step with the fleet config and with what the stream has seen.
CREATE TABLE IF NOT EXISTS panels (
    panel_id    VARCHAR(64) NOT NULL,
    pmax_w      DOUBLE      NULL,      -- rated peak; NULL for a panel seen but not configured
    first_seen  DATETIME(3) NULL,
    last_seen   DATETIME(3) NULL,
    updated_at  DATETIME(3) NOT NULL DEFAULT UTC_TIMESTAMP(3),
    PRIMARY KEY (panel_id)
) ENGINE=InnoDB;

-- Panel-health alerts written by the Dagster sensor; at most one open alert per (panel, kind).
CREATE TABLE IF NOT EXISTS panel_alerts (
    id            BIGINT       NOT NULL AUTO_INCREMENT,
    panel_id      VARCHAR(64)  NOT NULL,
    kind          VARCHAR(32)  NOT NULL,   -- offline | silent | underperforming
    state         VARCHAR(16)  NOT NULL,   -- open | resolved
    opened_at     DATETIME(3)  NOT NULL,
    resolved_at   DATETIME(3)  NULL,
    last_checked  DATETIME(3)  NOT NULL,   -- last evaluation that confirmed it
    detail        VARCHAR(255) NULL,
    open_key      VARCHAR(100) AS (IF(state = 'open', CONCAT(panel_id, '|', kind), NULL)) PERSISTENT,
    PRIMARY KEY (id),
    UNIQUE KEY uq_panel_alerts_open (open_key),
    KEY ix_panel_alerts_state_opened (state, opened_at),
    KEY ix_panel_alerts_panel (panel_id, opened_at)
) ENGINE=InnoDB;

-- Per-panel daily rollup (UTC days), rewritten whole per day by the partitioned asset.
CREATE TABLE IF NOT EXISTS panel_daily_energy (
    day                DATE        NOT NULL,
    panel_id           VARCHAR(64) NOT NULL,
    energy_wh          DOUBLE      NOT NULL,  -- trapezoid integral of the day's readings
    peak_w             DOUBLE      NOT NULL,
    uptime_share       DOUBLE      NOT NULL,  -- share of readings with status 1
    readings_received  INT         NOT NULL,
    readings_expected  INT         NOT NULL,
    computed_at        DATETIME(3) NOT NULL,
    PRIMARY KEY (day, panel_id),
    KEY ix_panel_daily_energy_panel (panel_id, day)
) ENGINE=InnoDB;

-- The fleet's daily totals, derived from panel_daily_energy.
CREATE TABLE IF NOT EXISTS fleet_daily_energy (
    day                DATE        NOT NULL,
    energy_wh          DOUBLE      NOT NULL,
    peak_panel_w       DOUBLE      NOT NULL,
    panels_reporting   INT         NOT NULL,
    readings_received  BIGINT      NOT NULL,
    readings_expected  BIGINT      NOT NULL,
    mean_uptime_share  DOUBLE      NOT NULL,
    computed_at        DATETIME(3) NOT NULL,
    PRIMARY KEY (day)
) ENGINE=InnoDB;
