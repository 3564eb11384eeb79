# The operator's image: a venv built from uv.lock in a builder stage, copied to the same path in a clean
# final stage that runs as a numeric non-root user.
#
#   docker build -t iap-run-operator .                          # from PyPI, on python:3.11-slim-bookworm
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/iap-run-operator:X --push .
#   make image                                                  # buildah, local Debian base, offline wheels
#
# Every input is hash-pinned for every platform uv.lock supports (uv itself: hack/uv-requirements.txt; the
# runtime: `uv export` of the lock; hatchling: pure-Python wheels), so amd64 and arm64 build alike.
# BASE_IMAGE must provide python3 (3.11+) with the venv module, identically in both stages (the venv's
# interpreter is the base image's). Pin it by digest for a reproducible build (docs/release.md, "The base
# image": `hack/image/pin-base.sh` resolves the tag's multi-platform index digest). OFFLINE=true installs only
# from hack/image/wheels/ (filled by `make image` from uv.lock with pip --require-hashes): no network.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder
ARG OFFLINE=false
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
WORKDIR /src
COPY hack/uv-requirements.txt hack/image/build-requirements.txt hack/image/discovery-documents.txt /src/hack/
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
# Only what runs: of google-api-python-client's ~600 discovery documents the operator reads three
# (hack/image/discovery-documents.txt), and kubernetes' asyncio client (kubernetes.aio, a second copy of the
# whole API) is never imported (the operator's one direct read uses the synchronous client).
RUN set -eu; \
    site=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
    docs="$site/googleapiclient/discovery_cache/documents"; \
    mkdir /tmp/keep; \
    for doc in $(grep -v '^#' hack/discovery-documents.txt); do cp "$docs/$doc.json" /tmp/keep/; done; \
    rm -rf "$docs" "$site/kubernetes/aio"; \
    mv /tmp/keep "$docs"; \
    /opt/venv/bin/python -c 'import iaprun_operator.handlers, kubernetes.client, googleapiclient.discovery'
# The image's package list, written with it: the Debian packages of the base (the final stage's base is this
# stage's) and the Python packages of /opt/venv, as installed from uv.lock with --require-hashes.
RUN set -eu; \
    out=/usr/share/iap-run-operator; mkdir -p "$out"; \
    { echo "# Packages of the iap-run-operator $(/opt/venv/bin/iap-run-operator --version | cut -d' ' -f2) image: <ecosystem> <name> <version> [<arch>]"; \
      if command -v dpkg-query >/dev/null; then dpkg-query -W -f 'deb ${Package} ${Version} ${Architecture}\n'; fi; \
      /opt/buildtools/bin/uv pip list --python /opt/venv/bin/python --format freeze | sed 's/^\(.*\)==\(.*\)$/pypi \1 \2/'; \
    } >"$out/packages.txt"; \
    cp /tmp/requirements.txt "$out/requirements.txt"
# The runtime user, with a passwd entry: kopf names itself user@host (getpass.getuser()), which fails for a uid
# that has none.
RUN echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin' >>/etc/passwd; \
    echo 'nonroot:x:65532:' >>/etc/group

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="iap-run-operator" \
      org.opencontainers.image.description="Kubernetes operator for Cloud Run services protected by Identity-Aware Proxy" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /usr/share/iap-run-operator /usr/share/iap-run-operator
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
