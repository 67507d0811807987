-- What the last fleet registry sync applied: the fleet config's digest and a checksum of `panels`
-- as that sync left it. A sync whose config and registry both match skips the 200k-row config
-- comparison (about 2 s at 200k panels) and only adds newly seen panels.
-- depends: 0024_registry_counts

CREATE TABLE IF NOT EXISTS registry_sync (
    id              TINYINT         NOT NULL,  -- one row
    config_digest   CHAR(64)        NOT NULL,  -- sha256 of the configured ids, Pmax and sites
    panels_checksum BIGINT UNSIGNED NOT NULL,  -- storage.health.registry's checksum of every panels row
    synced_at       DATETIME(3)     NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB;
