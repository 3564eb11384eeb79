#!/usr/bin/env bash
# Builds the operator's image for real with buildah from the repository's Dockerfile, without a registry:
#
#  1. buildah and debootstrap come from Debian's packages (installed if missing);
#  2. the base image is made locally: debootstrap (minbase, bookworm) + Debian's python3 (3.11), tarred once
#     into $IAPRUN_CACHE/images/<key>/rootfs.tar (key: the recipe below) and imported as
#     localhost/iaprun-base:<key>;
#  3. the locked wheels are downloaded on the host from uv.lock (pip --require-hashes, binary only) into
#     $IAPRUN_CACHE/images/wheels-<key>/ (key: uv.lock, pyproject.toml and the pinned build tools), and the
#     Dockerfile installs them with OFFLINE=true: nothing inside the build reaches a package index;
#  4. `buildah bud --isolation chroot --storage-driver vfs` builds localhost/iap-run-operator:<version>.
#
# buildah's storage is its own, under $IAPRUN_CACHE/buildah (IAPRUN_BUILDAH_ROOT), so it never meets another
# container tool's storage. The last line printed is the image name. With IAPRUN_IMAGE_PACKAGES=<file>, the
# image's package list (/usr/share/iap-run-operator/packages.txt: Debian and Python packages, locked) is copied
# there (make release does).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${IAPRUN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iap-run-operator}
buildah_root=${IAPRUN_BUILDAH_ROOT:-$cache/buildah}
suite=bookworm
mirror=${IAPRUN_DEBIAN_MIRROR:-http://deb.debian.org/debian}
base_packages=python3,python3-venv,ca-certificates
# Part of the base image's key: bump when the recipe in make_base changes.
base_recipe="v1 debootstrap --variant=minbase --include=$base_packages $suite; slimmed; tar --numeric-owner"

log() { printf '[image] %s\n' "$*" >&2; }
elapsed() { echo "$(( $(date +%s) - $1 ))s"; }
bah() { buildah --root "$buildah_root/root" --runroot "$buildah_root/runroot" --storage-driver vfs "$@"; }

ensure_tools() {
  local missing=()
  command -v buildah >/dev/null || missing+=(buildah)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  if ((${#missing[@]})); then
    log "installing ${missing[*]} from Debian's packages"
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
  fi
  log "$(buildah --version)"
}

make_base() {  # $1: cache dir of this key; writes $1/rootfs.tar
  local dir=$1 tmp
  tmp=$(mktemp -d "$cache/images/.base-XXXXXX")
  log "debootstrap $suite ($base_packages) from $mirror"
  debootstrap --variant=minbase --include="$base_packages" "$suite" "$tmp/rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 \
    || { tail -20 "$tmp/debootstrap.log" >&2; rm -rf "$tmp"; return 1; }
  # What an image does not need: package indexes and caches, docs, man pages, locales.
  rm -rf "$tmp"/rootfs/var/lib/apt/lists/* "$tmp"/rootfs/var/cache/apt/* "$tmp"/rootfs/var/log/* \
    "$tmp"/rootfs/usr/share/doc/* "$tmp"/rootfs/usr/share/man/* "$tmp"/rootfs/usr/share/info/* \
    "$tmp"/rootfs/usr/share/locale/*
  tar --numeric-owner --xattrs -C "$tmp/rootfs" -cf "$tmp/rootfs.tar" .
  mkdir -p "$dir"
  mv "$tmp/rootfs.tar" "$dir/rootfs.tar"
  printf '%s\n' "$base_recipe" >"$dir/recipe"
  rm -rf "$tmp"
}

ensure_base() {  # prints the base image name
  local key dir image start ctr
  key=$(printf '%s\n%s\n' "$base_recipe" "$mirror" | sha256sum | cut -c1-16)
  dir="$cache/images/base-$key"
  image="localhost/iaprun-base:$key"
  if bah inspect --type image "$image" >/dev/null 2>&1; then
    log "base image $image: cached"
  else
    start=$(date +%s)
    if [ ! -f "$dir/rootfs.tar" ]; then
      make_base "$dir"
      log "base rootfs built in $(elapsed "$start") -> $dir/rootfs.tar"
    fi
    ctr=$(bah from scratch)
    bah add "$ctr" "$dir/rootfs.tar" / >/dev/null
    bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
      --cmd /usr/bin/python3 "$ctr"
    bah commit --quiet --rm "$ctr" "$image" >/dev/null
    log "base image $image imported in $(elapsed "$start")"
  fi
  echo "$image"
}

ensure_wheels() {  # fills hack/image/wheels/ from the cache
  local key dir uv pip tmp start
  key=$(cat "$repo/uv.lock" "$repo/pyproject.toml" "$repo/hack/uv-requirements.txt" \
    "$repo/hack/image/build-requirements.txt" | sha256sum | cut -c1-16)
  dir="$cache/images/wheels-$key"
  if [ ! -f "$dir/.complete" ]; then
    start=$(date +%s)
    uv=$("$repo/hack/bootstrap-uv.sh")
    pip=("$(dirname "$uv")/python" -m pip)
    tmp=$(mktemp -d "$cache/images/.wheels-XXXXXX")
    (cd "$repo" && "$uv" export --frozen --no-dev --no-emit-project --no-header --format requirements-txt \
      -o "$tmp/requirements.txt" >&2)
    log "downloading the locked wheels (pip --require-hashes, binary only)"
    # The host's Python 3.11 on glibc picks the same wheels as Debian bookworm's python3 in the image.
    "${pip[@]}" download --quiet --disable-pip-version-check --no-deps --require-hashes --only-binary=:all: \
      -r "$tmp/requirements.txt" -r "$repo/hack/uv-requirements.txt" -r "$repo/hack/image/build-requirements.txt" \
      -d "$tmp/wheels" >&2
    rm -rf "$dir" && mv "$tmp/wheels" "$dir" && rm -rf "$tmp"
    touch "$dir/.complete"
    log "wheels downloaded in $(elapsed "$start") -> $dir"
  else
    log "wheels: cached ($dir)"
  fi
  find "$repo/hack/image/wheels" -name '*.whl' -delete
  cp --link "$dir"/*.whl "$repo/hack/image/wheels/" 2>/dev/null || cp "$dir"/*.whl "$repo/hack/image/wheels/"
}

inputs_key() {  # $1: base image; everything the build reads (the files .dockerignore lets through)
  (
    cd "$repo"
    printf '%s\n' "$1"
    git ls-files -co --exclude-standard Dockerfile .dockerignore pyproject.toml uv.lock README.md operator \
      hack/uv-requirements.txt hack/image/build-requirements.txt hack/image/discovery-documents.txt \
      | grep -v '__pycache__' | sort | xargs sha256sum
  ) | sha256sum | cut -c1-16
}

packages_list() {  # $1: image, $2: where to write its package list
  local ctr mnt
  ctr=$(bah from --pull=false --quiet "$1")
  mnt=$(bah mount "$ctr")
  cp "$mnt/usr/share/iap-run-operator/packages.txt" "$2"
  bah umount "$ctr" >/dev/null
  bah rm "$ctr" >/dev/null
  log "package list: $2 ($(grep -c '^deb ' "$2") Debian, $(grep -c '^pypi ' "$2") Python packages)"
}

main() {
  local start base version image key
  start=$(date +%s)
  mkdir -p "$cache/images" "$buildah_root"
  ensure_tools
  base=$(ensure_base)
  version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml" | head -1)
  image="localhost/iap-run-operator:$version"
  key=$(inputs_key "$base")
  if [ "$(bah inspect --type image --format '{{index .OCIv1.Config.Labels "dev.iaprun.inputs"}}' "$image" 2>/dev/null)" = "$key" ]; then
    log "image $image: up to date (inputs $key)"
  else
    ensure_wheels
    log "buildah bud $image on $base"
    bah bud --isolation chroot --layers=false --pull=false --quiet \
      --build-arg BASE_IMAGE="$base" --build-arg OFFLINE=true --label dev.iaprun.inputs="$key" \
      -f "$repo/Dockerfile" -t "$image" "$repo" >&2
    bah rmi --prune >/dev/null 2>&1 || true  # the previous build of this tag, now dangling
    log "image $image built in $(elapsed "$start") (total)"
  fi
  log "image size: $(bah images --format '{{.Size}}' "$image" | head -1) (base $(bah images --format '{{.Size}}' "$base" | head -1))"
  if [ -n "${IAPRUN_IMAGE_PACKAGES:-}" ]; then
    packages_list "$image" "$IAPRUN_IMAGE_PACKAGES"
  fi
  echo "$image"
}

main "$@"
