# syntax=docker/dockerfile:1
# The pipeline's one image: `pipeline <subcommand>` (emulator, schemas, produce, worker, wallboard).
# docker-compose.yml builds it as genesys-kafka-pipeline:local; tests/unit/test_compose.py
# checks this file (no Docker engine runs on the development machines).
#
# Only the runtime dependencies are installed: not the `local` extra (Tansu broker binary) and
# not `dev`.

# ----------------------------------------------------------------------------- builder
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# What the wheel needs: the metadata (pyproject.toml, its readme), the package and the Avro
# schemas (force-included as pipeline/_schemas).
COPY pyproject.toml README.md ./
COPY schemas/ schemas/
COPY pipeline/ pipeline/

# The last line fails the build if a service module imports something the image lacks.
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip install /wheels/genesys_kafka_pipeline-*.whl \
 && /opt/venv/bin/python -c "import pipeline.cli, pipeline.services.producer, pipeline.services.freshness_worker, pipeline.services.dashboard_worker, pipeline.services.schemas, pipeline.emulator.server, pipeline.dashboard.wallboard" \
 && /opt/venv/bin/pipeline --version

# ----------------------------------------------------------------------------- runtime
FROM python:3.11-slim AS runtime

# Logs are JSON lines in the container (one object per line, for the log shipper); set
# PIPELINE_LOG_FORMAT=text (or pass --log-format text) to read them by eye.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIPELINE_LOG_FORMAT=json \
    PIPELINE_LOG_LEVEL=INFO \
    PATH="/opt/venv/bin:${PATH}"

RUN groupadd --system --gid 10001 pipeline \
 && useradd --system --uid 10001 --gid pipeline --no-create-home --home-dir /app \
        --shell /usr/sbin/nologin pipeline

COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY --chown=10001:10001 examples/ /app/examples/

USER 10001:10001

# wallboard 8088, emulator 8089, producer ops 9100, worker ops 9101
EXPOSE 8088 8089 9100 9101

ENTRYPOINT ["pipeline"]
CMD ["--help"]
