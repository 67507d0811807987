-- Daily rollups per site day, in each site's own time zone, with the figures yield needs.
-- depends: 0021_sites

-- One row per (site, local day of the site's zone): the sum of its panels' 15-min buckets whose
-- start lies in [local midnight, next local midnight) (92 or 100 buckets on DST days: day_seconds),
-- its panels and nameplate kWp then, and the energy the power model expected of them (expected_wh =
-- kWp x 1000 x the model's expected hours at the site that day). Kept by storage/site_rollups.py.
CREATE TABLE IF NOT EXISTS site_daily_energy (
    site_id           VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    day               DATE        NOT NULL,
    time_zone         VARCHAR(64) NOT NULL,
    energy_wh         DOUBLE      NOT NULL,
    covered_seconds   DOUBLE      NOT NULL,
    day_seconds       INT         NOT NULL,
    panels            INT         NOT NULL,   -- panels in service at the site
    panels_reporting  INT         NOT NULL,   -- of which with a bucket that day
    kwp               DOUBLE      NOT NULL,
    expected_wh       DOUBLE      NOT NULL,
    computed_at       DATETIME(3) NOT NULL,
    PRIMARY KEY (site_id, day),
    KEY ix_site_daily_energy_day (day)
) ENGINE=InnoDB;
