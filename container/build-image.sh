#!/usr/bin/env bash
# Builds the Berth container image offline: no registry, no base image, no package manager.
#
#   container/build-image.sh [--binary PATH] [--tag TAG] [--caddyfile FILE] [--method import|build]
#                            [--no-strip] [--force] [--tar FILE] [--quiet]
#
#   1. Takes the berth binary given by --binary or $BERTH, else builds it in this repo with
#      `swift build -c release --static-swift-stdlib`.
#   2. Assembles the minimal root filesystem with container/mkrootfs.sh (the binary, its `ldd`
#      closure, /usr/bin/caddy -> berth, /etc/caddy/Caddyfile = seed Example 1, CA bundle, and
#      empty /tmp /data /config /srv ...; see that script).
#   3. --method import (default): tars it reproducibly and `podman import`s it with
#      CMD ["/usr/bin/caddy","run","--config","/etc/caddy/Caddyfile"], XDG_DATA_HOME=/data,
#      XDG_CONFIG_HOME=/config, PATH, WORKDIR /srv, EXPOSE 80 443 443/udp.
#      --method build: runs `podman build` on container/Containerfile's `runtime` stage with
#      `--build-context builder=DIR`, which stands the host-built root filesystem in for the
#      Swift builder stage (Buildah then skips that stage and pulls nothing) — the same
#      Containerfile a registry-based build uses, proven offline.
#   4. Tags it (default localhost/berth:latest), removes the image it replaces, and prints the
#      size (stderr) and the tag (stdout). --tar FILE writes the root filesystem tarball instead.
#
# CMD, not ENTRYPOINT: a quadlet's Exec= (and `podman run IMAGE ARGS`) replaces CMD, exactly as
# with docker.io/library/caddy; with an ENTRYPOINT, Exec=/usr/bin/caddy run ... would be
# appended to it. There is no entrypoint script that could close fd 3.
#
# Idempotent: the image carries a label with the SHA-256 of everything that went into it; when
# the tagged image already has that label nothing is done (--force rebuilds anyway).
#
# Environment: BERTH (binary), BERTH_IMAGE (tag), PODMAN (default podman), SWIFT (default
# swift), SOURCE_DATE_EPOCH (file times in the image, default 0).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

binary=${BERTH:-}
tag=${BERTH_IMAGE:-localhost/berth:latest}
caddyfile=$here/examples/example1/Caddyfile
method=import
strip_flag=
force=0
tar_out=
quiet=0
PODMAN=${PODMAN:-podman}
SWIFT=${SWIFT:-swift}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-0}

usage() { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case $1 in
    --binary) binary=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --caddyfile) caddyfile=$2; shift 2 ;;
    --method) method=$2; shift 2 ;;
    --no-strip) strip_flag=--no-strip; shift ;;
    --force) force=1; shift ;;
    --tar) tar_out=$2; shift 2 ;;
    --quiet|-q) quiet=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "build-image: unknown argument $1" >&2; usage 2 >&2 ;;
  esac
done
case $method in import|build) ;; *) echo "build-image: --method is import or build" >&2; exit 2 ;; esac

say() { [ "$quiet" = 1 ] || echo "build-image: $*" >&2; }
die() { echo "build-image: error: $*" >&2; exit 1; }

[ -n "$tar_out" ] || command -v "$PODMAN" >/dev/null || die "podman not found (container/ensure-podman.sh installs it)"
[ -f "$caddyfile" ] || die "no Caddyfile at $caddyfile"

# 1. The binary.
if [ -z "$binary" ]; then
  say "building berth: $SWIFT build -c release --static-swift-stdlib (in $repo)"
  (cd "$repo" && "$SWIFT" build -c release --static-swift-stdlib >&2)
  binary=$(cd "$repo" && "$SWIFT" build -c release --static-swift-stdlib --show-bin-path)/berth
fi
[ -x "$binary" ] || die "berth binary not found or not executable: $binary"
binary=$(readlink -f "$binary")
[ "$(head -c 4 "$binary" | od -An -c | tr -d ' ')" = '177ELF' ] ||
  die "$binary is not an ELF executable (a wrapper script? pass the real binary)"

# Everything that decides the image's content goes into the input hash.
inputs_hash=$(
  {
    sha256sum "$binary" "$caddyfile" "$0" "$here/mkrootfs.sh"
    [ "$method" = build ] && sha256sum "$here/Containerfile"
    { ldd "$binary" 2>/dev/null || true; } | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
      while read -r l; do sha256sum "$(readlink -f "$l")"; done
    for c in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
      [ -f "$c" ] && sha256sum "$c"
    done
    echo "strip=$strip_flag epoch=$SOURCE_DATE_EPOCH method=$method"
  } | sha256sum | cut -c1-32)

image_size() {
  local size
  size=$("$PODMAN" image inspect --format '{{.Size}}' "$tag")
  say "image size: $size bytes ($(awk "BEGIN { printf \"%.1f\", $size / 1000000 }") MB, $((size / 1024 / 1024)) MiB) $*"
}

if [ "$force" = 0 ] && [ -z "$tar_out" ]; then
  have=$("$PODMAN" image inspect --format '{{index .Labels "org.berth.inputs"}}' "$tag" 2>/dev/null || true)
  if [ "$have" = "$inputs_hash" ]; then
    say "$tag is up to date (inputs $inputs_hash)"
    image_size
    echo "$tag"
    exit 0
  fi
fi

# 2. The root filesystem.
work=$(mktemp -d "${TMPDIR:-/tmp}/berth-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$here/mkrootfs.sh" $strip_flag "$binary" "$caddyfile" "$work/rootfs" 2>"$work/mkrootfs.log" ||
  { cat "$work/mkrootfs.log" >&2; exit 1; }
[ "$quiet" = 1 ] || sed 's/^/build-image: /' "$work/mkrootfs.log" >&2

if [ -n "$tar_out" ]; then
  tar --numeric-owner --owner=0 --group=0 --sort=name --mtime="@$SOURCE_DATE_EPOCH" --no-xattrs --no-acls \
      -C "$work/rootfs" -cf "$tar_out" .
  say "wrote $tar_out ($(du -h "$tar_out" | cut -f1))"
  exit 0
fi

version=$("$binary" version 2>/dev/null | head -1 || echo unknown)
old_id=$("$PODMAN" image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)

# 3. The image.
if [ "$method" = import ]; then
  tar --numeric-owner --owner=0 --group=0 --sort=name --mtime="@$SOURCE_DATE_EPOCH" --no-xattrs --no-acls \
      -C "$work/rootfs" -cf "$work/rootfs.tar" .
  say "podman import as $tag"
  # Podman 4.3 takes one port per EXPOSE in --change.
  "$PODMAN" import --quiet \
    --change 'CMD ["/usr/bin/caddy", "run", "--config", "/etc/caddy/Caddyfile"]' \
    --change 'ENV XDG_DATA_HOME=/data' \
    --change 'ENV XDG_CONFIG_HOME=/config' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'WORKDIR /srv' \
    --change 'EXPOSE 80' --change 'EXPOSE 443' --change 'EXPOSE 443/udp' \
    --change 'STOPSIGNAL SIGTERM' \
    --change 'LABEL org.opencontainers.image.title=berth' \
    --change 'LABEL org.opencontainers.image.description="Berth: a Caddyfile-compatible HTTP server for socket activation and Podman"' \
    --change "LABEL org.opencontainers.image.version=\"$version\"" \
    --change "LABEL org.berth.inputs=$inputs_hash" \
    --message "berth root filesystem ($inputs_hash)" \
    "$work/rootfs.tar" "$tag" >/dev/null
else
  say "podman build --target runtime --build-context builder=<host-built rootfs> as $tag"
  out=$work/build.log
  "$PODMAN" build --target runtime --build-context "builder=$work" \
      --label "org.opencontainers.image.version=$version" --label "org.berth.inputs=$inputs_hash" \
      -f "$here/Containerfile" -t "$tag" "$repo" >"$out" 2>&1 || { cat "$out" >&2; die "podman build failed"; }
fi

# The image this tag named before is removed once nothing uses it (no dangling images pile up
# across rebuilds; one a container still runs stays).
new_id=$("$PODMAN" image inspect --format '{{.Id}}' "$tag")
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
  "$PODMAN" rmi "$old_id" >/dev/null 2>&1 || true
fi

# 4. Size (compare: docker.io/library/caddy:2 is about 50 MB uncompressed).
image_size "(method $method)"
echo "$tag"
