#!/usr/bin/env bash
# Pins the Dockerfile's BASE_IMAGE to the current multi-platform index digest of its tag (docs/release.md).
#   hack/image/pin-base.sh                      # python:3.11-slim-bookworm, or the tag already in the Dockerfile
#   hack/image/pin-base.sh python:3.12-slim-bookworm
# Needs skopeo (Debian package) or docker buildx, and access to the image's registry. Rewrites the line
# `ARG BASE_IMAGE=...` of the Dockerfile; review and commit the change.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
dockerfile="$repo/Dockerfile"
current=$(sed -n 's/^ARG BASE_IMAGE=//p' "$dockerfile")
tag=${1:-${current%@*}}
if command -v skopeo >/dev/null; then
  digest=$(skopeo inspect --raw "docker://docker.io/library/${tag#library/}" | sha256sum | cut -d' ' -f1)
  digest="sha256:$digest"
elif docker buildx version >/dev/null 2>&1; then
  digest=$(docker buildx imagetools inspect "$tag" --format '{{json .Manifest.Digest}}' | tr -d '"')
else
  echo "pin-base.sh: needs skopeo or docker buildx" >&2
  exit 1
fi
[[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "pin-base.sh: no digest for $tag" >&2; exit 1; }
sed -i "s|^ARG BASE_IMAGE=.*|ARG BASE_IMAGE=$tag@$digest|" "$dockerfile"
echo "BASE_IMAGE=$tag@$digest"
