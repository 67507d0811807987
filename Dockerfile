# syntax=docker/dockerfile:1
# One image for every Python part of the platform: the fleet, the Spark stream, the REST API, the
# Dagster webserver and daemon, the Spark master and workers (pyspark's own distribution, started by
# `solar-platform stack spark-master|spark-worker`), and the one-shot `db migrate` / topic jobs of
# docker-compose.yml.
#
#   docker build -t solar-platform .
#
# Spark's extra jars (spark-sql-kafka, the MariaDB JDBC driver) are resolved here, at build time,
# from solar_platform/runtime/pom.xml and laid out exactly as solar_platform/runtime/jars.py expects
# ($SOLAR_HOME/jars/spark/*.jar plus a .pom-sha256 stamp of the pom), so no Maven runs in a container.

# ---------------------------------------------------------------- jars: Maven, build stage only
FROM maven:3-eclipse-temurin-17 AS jars
WORKDIR /build
COPY solar_platform/runtime/pom.xml pom.xml
RUN --mount=type=cache,target=/root/.m2 \
    mvn -B -q -f pom.xml -Pspark dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory=/out/spark \
 # jars.py compares the stamp with sha256(pom.xml bytes): the bare hex digest, no newline.
 && sha256sum pom.xml | cut -c1-64 | tr -d '\n' > /out/spark/.pom-sha256 \
 && ls /out/spark/*.jar

# ---------------------------------------------------------------- runtime
# bookworm, not the default trixie: Debian 13 ships no OpenJDK 17.
FROM python:3.11-slim-bookworm AS runtime

ARG DEBIAN_FRONTEND=noninteractive
# procps: Spark's launch scripts call `ps`; tini: PID 1 that forwards signals and reaps the JVM.
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps tini \
 && ln -s "/usr/lib/jvm/java-17-openjdk-$(dpkg --print-architecture)" /usr/lib/jvm/java-17 \
 && rm -rf /var/lib/apt/lists/*

ENV JAVA_HOME=/usr/lib/jvm/java-17 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # The stack's home: jars, Spark's log config, stream checkpoints (a volume in compose).
    SOLAR_HOME=/opt/solar \
    # Dagster's instance config (MySQL run/event/schedule storage): docker/dagster.yaml.
    DAGSTER_HOME=/opt/dagster/home \
    # No SPARK_LOCAL_IP: on compose's network the driver, master and workers must each bind the
    # container's own address (SOLAR_SPARK_HOST=auto), not loopback, to reach one another.
    PYSPARK_PYTHON=/usr/local/bin/python \
    PYSPARK_DRIVER_PYTHON=/usr/local/bin/python

WORKDIR /app

# Dependencies first (cached while only the code changes). The package is installed editable from
# /app because it finds sql/ (migrations) and workspace.yaml relative to its source tree.
# pyspark 4.2.0 comes as a ~450 MB sdist: the pip cache mount keeps the wheel built once.
COPY pyproject.toml README.md ./
RUN --mount=type=cache,target=/root/.cache/pip \
    mkdir -p solar_platform && touch solar_platform/__init__.py \
 && pip install -e . "dagster-mysql==0.29.27" \
 && rm -rf solar_platform solar_platform.egg-info

COPY solar_platform ./solar_platform
COPY sql ./sql
COPY workspace.yaml ./
RUN pip install --no-deps -e . \
 && python -c "import solar_platform.cli, dagster_mysql"

COPY --from=jars /out/spark /opt/solar/jars/spark
COPY docker/dagster.yaml /opt/dagster/home/dagster.yaml
# The log config every executor's JVM is started with (-Dlog4j2.configurationFile): written at build
# time, so it exists in the worker containers too, not only where a driver ran.
RUN python -c "from solar_platform.settings import load_settings; \
from solar_platform.streaming.session import log4j2_config; print(log4j2_config(load_settings()))"

# /app (the code) stays root's; Spark may create its default warehouse dir under the working dir.
RUN useradd --system --uid 10001 --home-dir /opt/solar --shell /usr/sbin/nologin solar \
 && mkdir -p /opt/solar/checkpoints /opt/solar/spark/work /opt/dagster/storage /app/spark-warehouse \
 && chown -R solar:solar /opt/solar /opt/dagster /app/spark-warehouse
USER solar

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["python", "-m", "solar_platform", "--help"]
