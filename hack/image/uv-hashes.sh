#!/usr/bin/env bash
# Prints hack/uv-requirements.txt for uv version $1: one --hash per wheel on PyPI (every platform), no sdist.
#   hack/image/uv-hashes.sh 0.13.8 > hack/uv-requirements.txt
set -euo pipefail
version=${1:?usage: $0 UV_VERSION}
index=${PIP_INDEX_URL:-https://pypi.org/simple}
curl -fsSL -H 'Accept: application/vnd.pypi.simple.v1+json' "${index%/}/uv/" | python3 -c '
import json, sys
version = sys.argv[1]
files = [f for f in json.load(sys.stdin)["files"] if f["filename"].startswith(f"uv-{version}-") and f["filename"].endswith(".whl")]
if not files:
    sys.exit(f"no wheels of uv {version} on the index")
print("# The one tool bootstrapped with pip: uv, which then installs everything else from uv.lock.")
print("# Hash-pinned (pip --require-hashes), one hash per wheel PyPI has for this version, so it installs on every")
print("# platform the lock supports (Linux x86_64/aarch64/armv7/ppc64le/s390x/riscv64/i686, glibc and musl; macOS;")
print("# Windows), in `docker build` on amd64 and arm64 alike. The sdist is left out on purpose: it needs Rust.")
print("# Update: hack/image/uv-hashes.sh X.Y.Z > hack/uv-requirements.txt (reads PyPI'"'"'s simple index).")
lines = [f"uv=={version}"] + ["    --hash=sha256:" + f["hashes"]["sha256"] for f in files]
print(" \\\n".join(lines))
' "$version"
