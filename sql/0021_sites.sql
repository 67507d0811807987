-- Sites: where panels are (location, time zone, commissioning date); every panel belongs to one.
-- depends: 0010_notifications

-- One row per site. registered_by: 'fleet' (the fleet config's SOLAR_FLEET_SITES, kept in step by
-- the registry sync) or 'operator' (`solar-platform sites register/edit`: the sync never overwrites it).
CREATE TABLE IF NOT EXISTS sites (
    site_id          VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    name             VARCHAR(200) NOT NULL,
    latitude         DOUBLE       NOT NULL,
    longitude        DOUBLE       NOT NULL,
    time_zone        VARCHAR(64)  NOT NULL,   -- IANA name: the site's days are local days of this zone
    commissioned_on  DATE         NULL,
    registered_by    VARCHAR(16)  NOT NULL DEFAULT 'operator',
    created_at       DATETIME(3)  NOT NULL,
    updated_at       DATETIME(3)  NOT NULL,
    PRIMARY KEY (site_id)
) ENGINE=InnoDB;

-- The default site: every panel that existed before sites did goes here, and so does every panel
-- the stream sees that nobody registered. Its place and zone come from the fleet config at the next
-- registry sync (SOLAR_SITE_LATITUDE/LONGITUDE/TIMEZONE) unless an operator edits it.
INSERT IGNORE INTO sites (site_id, name, latitude, longitude, time_zone, registered_by, created_at, updated_at)
VALUES ('default', 'Default site', 0, 0, 'UTC', 'fleet', UTC_TIMESTAMP(3), UTC_TIMESTAMP(3));

ALTER TABLE panels
    ADD COLUMN IF NOT EXISTS site_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT 'default'
        AFTER pmax_w,
    ADD KEY IF NOT EXISTS ix_panels_site (site_id, retired_at, pmax_w);

ALTER TABLE panels ADD CONSTRAINT fk_panels_site FOREIGN KEY (site_id) REFERENCES sites (site_id);
