# syntax=docker/dockerfile:1
# Multi-stage: build a wheel with the toolchain, run it on a slim image as a non-root user.
FROM python:3.11-slim-bookworm AS build
# A C compiler for the optional C modules (the framing loop, the huge-page arenas); only in this stage.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY callbridge ./callbridge
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN useradd --system --uid 10001 --home-dir /var/lib/callbridge --create-home callbridge
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY config/callbridge.yaml /etc/callbridge/callbridge.yaml
COPY dialplans /etc/callbridge/dialplans
# Config and dialplans are meant to be mounted over these. `dialplan.path: dialplans` in the settings is
# resolved beside the settings file (/etc/callbridge/dialplans); the records and the outbox default to the
# working directory, the volume /var/lib/callbridge (tests/deploy/ lays this image out and runs it).
VOLUME ["/etc/callbridge", "/var/lib/callbridge"]
USER callbridge
WORKDIR /var/lib/callbridge
EXPOSE 8080
# Secrets come from the environment or mounted secret files, e.g.
#   -e CALLBRIDGE_AMI_SECRET_FILE=/run/secrets/ami_secret
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["callbridge"]
CMD ["run", "--config", "/etc/callbridge/callbridge.yaml"]
