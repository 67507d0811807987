-- Run once by the official mariadb image, on its first start with an empty data volume
-- (mounted at /docker-entrypoint-initdb.d by docker-compose.yml).
-- Names and passwords are the defaults of solar_platform/settings.py (SOLAR_MYSQL_*). If you change
-- them in the compose .env, change them here too (or run these statements by hand on a live server).
-- solar_platform_tests/deploy checks that this file and the settings' defaults agree.

CREATE DATABASE IF NOT EXISTS `solar` CHARACTER SET utf8mb4;
-- Dagster's run/event/schedule storage (docker/dagster.yaml), apart from the platform's tables.
CREATE DATABASE IF NOT EXISTS `dagster` CHARACTER SET utf8mb4;

-- The writer: migrations, the stream, Dagster.
CREATE USER IF NOT EXISTS 'solar_writer'@'%' IDENTIFIED BY 'solar_writer';
GRANT ALL PRIVILEGES ON `solar`.* TO 'solar_writer'@'%';
GRANT ALL PRIVILEGES ON `dagster`.* TO 'solar_writer'@'%';

-- The read-only user: the REST API and Grafana.
CREATE USER IF NOT EXISTS 'solar_reader'@'%' IDENTIFIED BY 'solar_reader';
GRANT SELECT ON `solar`.* TO 'solar_reader'@'%';

FLUSH PRIVILEGES;
