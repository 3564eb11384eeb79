#!/usr/bin/env bash
# Installs the pinned, hash-checked uv into the user cache (once per uv version) and prints its path.
# Everything else in the Python world comes from uv.lock through this uv.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${IAPRUN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iap-run-operator}
key=$(sha256sum "$here/uv-requirements.txt" | cut -c1-16)
dir="$cache/uv-$key"
if [ ! -x "$dir/bin/uv" ]; then
  # One installer at a time (parallel make targets and test workers share the cache).
  mkdir -p "$cache/locks"
  exec 9>"$cache/locks/uv-$key.lock"
  flock 9
fi
if [ ! -x "$dir/bin/uv" ]; then
  python=${PYTHON:-python3}
  rm -rf "$dir.tmp"
  "$python" -m venv "$dir.tmp" >&2
  "$dir.tmp/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-deps \
    -r "$here/uv-requirements.txt" >&2
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
fi
echo "$dir/bin/uv"
