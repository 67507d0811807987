-- History that outlives MySQL: change marks that make daily figures follow late data, and buckets folded into daily figures.
-- depends: 0010_notifications

-- One row per 15-minute UTC bucket whose energy figures changed (storage/history/changes.py). The
-- stream upserts it in the transaction that changes the bucket and bumps `version`; a daily
-- rollup deletes the marks of its day it read before staging, only if their version is still the
-- one it read, so a change that lands while a rollup runs stays marked. A quarter-hour (not an
-- hour) belongs to exactly one local day in every real time zone (their offsets are multiples of
-- 15 minutes), so a mark is never shared by two days.
CREATE TABLE IF NOT EXISTS energy_changes (
    bucket_start DATETIME    NOT NULL,
    version      BIGINT      NOT NULL,
    changed_at   DATETIME(3) NOT NULL,
    PRIMARY KEY (bucket_start)
) ENGINE=InnoDB;

-- Buckets folded into daily figures (storage/history/folding.py): once a day's rollup equals its
-- buckets and the day is older than SOLAR_BUCKET_RETENTION_DAYS, its panel and fleet buckets are
-- deleted and its rollup rows say when. Lifetime energy = the folded rollups + every bucket kept.
ALTER TABLE panel_daily_energy ADD COLUMN IF NOT EXISTS buckets_folded_at DATETIME(3) NULL;
ALTER TABLE fleet_daily_energy ADD COLUMN IF NOT EXISTS buckets_folded_at DATETIME(3) NULL;

-- What retention has dropped, per table: readings before `dropped_before` are gone from MariaDB
-- (storage/retention.py writes it when it drops day partitions). A rebuild reads panelData from
-- this instant on and the archive before it (storage/history/sources.py).
CREATE TABLE IF NOT EXISTS retention_horizons (
    table_name     VARCHAR(64) NOT NULL,
    dropped_before DATETIME    NOT NULL,
    changed_at     DATETIME(3) NOT NULL,
    PRIMARY KEY (table_name)
) ENGINE=InnoDB;
