# syntax=docker/dockerfile:1
# charter's container image: `charter serve` (the admission webhook) and the CLI.
# Build (see docs/deploy.md):
#   docker build -t ghcr.io/charter-dev/charter:0.1.0 .
# The base is pinned to an exact release; for reproducible builds also pin its digest:
#   docker build --build-arg PYTHON_IMAGE=python:3.11.11-slim-bookworm@sha256:<digest> .

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# --- build: a virtualenv with charter and its dependencies (wheels only) ---------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/charter
WORKDIR /src
# The package folders pyproject.toml maps (charter, engine, admission, audit, policies, ...);
# .dockerignore keeps tests, docs, charts and caches out of the context.
COPY . .
# --only-binary: no compiler in the image; every dependency ships manylinux wheels.
RUN /opt/charter/bin/pip install --only-binary=:all: --upgrade pip \
 && /opt/charter/bin/pip install --only-binary=:all: --no-binary=charter . \
 && /opt/charter/bin/python -m compileall -q /opt/charter \
 && /opt/charter/bin/charter version

# --- runtime: the virtualenv on a slim base, as an unprivileged user --------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="charter" \
      org.opencontainers.image.description="Policy-as-code admission webhook and CLI for Kubernetes AI workloads" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/charter-dev/charter"
RUN groupadd --system --gid 10001 charter \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/charter --create-home --shell /usr/sbin/nologin charter
COPY --from=build --chown=root:root /opt/charter /opt/charter
ENV PATH=/opt/charter/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/charter
WORKDIR /home/charter
USER 10001:10001
# 8443: TLS admission (POST /validate); 9090: /healthz, /readyz, /metrics (plain HTTP).
EXPOSE 8443 9090
ENTRYPOINT ["charter"]
CMD ["--help"]
