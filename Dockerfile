# The operator's image: a venv built from uv.lock in a builder stage, copied to the same path in a clean
# final stage that runs as a numeric non-root user.
#
#   docker build -t iap-run-operator .                          # from PyPI, on python:3.11-slim
#   make image                                                  # buildah, local Debian base, offline wheels
#
# BASE_IMAGE must provide python3 (3.11+) with the venv module, identically in both stages (the venv's
# interpreter is the base image's). OFFLINE=true installs only from hack/image/wheels/ (filled by
# `make image` from uv.lock with pip --require-hashes), so the build needs no network.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS builder
ARG OFFLINE=false
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
WORKDIR /src
COPY hack/uv-requirements.txt hack/image/build-requirements.txt /src/hack/
COPY hack/image/wheels/ /wheels/
# Build tools (uv, and hatchling for the project's own wheel), hash-pinned, in a venv of their own that the
# final stage never sees.
RUN set -eu; \
    if [ "$OFFLINE" = true ]; then offline="--no-index --find-links /wheels"; else offline=""; fi; \
    python3 -m venv /opt/buildtools; \
    /opt/buildtools/bin/pip install --require-hashes --no-deps $offline \
        -r hack/uv-requirements.txt -r hack/build-requirements.txt
COPY pyproject.toml uv.lock README.md /src/
COPY operator/ /src/operator/
# The locked runtime dependencies (no dev group), every file checked against the lock's hashes, then the
# project itself as a regular (non-editable) wheel.
RUN set -eu; \
    if [ "$OFFLINE" = true ]; then offline="--no-index --find-links /wheels"; else offline=""; fi; \
    uv=/opt/buildtools/bin/uv; \
    "$uv" export --frozen --no-dev --no-emit-project --no-header --format requirements-txt -o /tmp/requirements.txt; \
    "$uv" venv --python "$(command -v python3)" /opt/venv; \
    "$uv" pip install --python /opt/venv/bin/python --require-hashes --no-deps $offline -r /tmp/requirements.txt; \
    /opt/buildtools/bin/python -m hatchling build --target wheel --directory /tmp/dist; \
    "$uv" pip install --python /opt/venv/bin/python --no-deps /tmp/dist/*.whl; \
    /opt/venv/bin/iap-run-operator --version
# The runtime user, with a passwd entry: kopf names itself user@host (getpass.getuser()), which fails for a uid
# that has none.
RUN echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin' >>/etc/passwd; \
    echo 'nonroot:x:65532:' >>/etc/group

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="iap-run-operator" \
      org.opencontainers.image.description="Kubernetes operator for Cloud Run services protected by Identity-Aware Proxy" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /etc/passwd /etc/group /etc/
# USER also covers any other uid a pod's securityContext picks (getpass.getuser() reads it before passwd).
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    USER=nonroot \
    HOME=/tmp
# Numeric, so Kubernetes' runAsNonRoot can verify it without a passwd entry.
USER 65532:65532
# 8080: Prometheus metrics (IAPRUN_METRICS_PORT); 8081: kopf's liveness endpoint (--liveness).
EXPOSE 8080 8081
ENTRYPOINT ["/opt/venv/bin/iap-run-operator"]
