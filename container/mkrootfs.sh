#!/usr/bin/env bash
# Assembles Berth's minimal container root filesystem in a directory.
#
#   container/mkrootfs.sh [--no-strip] BERTH_BINARY CADDYFILE OUTDIR
#
# Used by both builds of the image: container/Containerfile (in its builder stage) and
# container/build-image.sh (offline, on the host). OUTDIR must not exist or be empty.
#
# Contents: /usr/bin/berth (stripped), /usr/bin/caddy -> berth, the binary's shared-library
# closure exactly as `ldd` resolves it here (glibc, libstdc++, OpenSSL, nghttp2, zlib, zstd, ...
# and the dynamic loader), /etc/caddy/Caddyfile, the CA bundle if this system has one,
# /etc/nsswitch.conf, and empty /tmp /var/tmp /run /data /config /srv /proc /sys /dev.
# No shell, no package manager, no /etc/passwd (Berth looks up no user; Podman runs any UID
# without one), no setuid/setgid bit, no file capability, everything owned by root; only /tmp,
# /var/tmp, /run, /data and /config are writable, by anyone (sticky, like /tmp), so any UID works.
# File times are set to $SOURCE_DATE_EPOCH (default 0) for a reproducible tarball.
set -euo pipefail

strip_binary=1
if [ "${1:-}" = "--no-strip" ]; then strip_binary=0; shift; fi
[ $# -eq 3 ] || { echo "usage: $0 [--no-strip] BERTH_BINARY CADDYFILE OUTDIR" >&2; exit 2; }
binary=$1 caddyfile=$2 root=$3
epoch=${SOURCE_DATE_EPOCH:-0}

die() { echo "mkrootfs: error: $*" >&2; exit 1; }
[ -x "$binary" ] || die "berth binary not found or not executable: $binary"
[ -f "$caddyfile" ] || die "no Caddyfile at $caddyfile"
command -v ldd >/dev/null || die "ldd not found (libc-bin)"
if [ -e "$root" ] && [ -n "$(ls -A "$root")" ]; then die "$root is not empty"; fi

# The shared-library closure, as the dynamic loader resolves it on this system.
mapfile -t libs < <(ldd "$binary" 2>/dev/null | awk '
  /=> not found/ { print "MISSING " $1; next }
  $2 == "=>" && $3 ~ /^\// { print $3; next }
  $1 ~ /^\// { print $1 }')
for l in "${libs[@]}"; do
  case $l in MISSING*) die "shared library ${l#MISSING } of $binary not found" ;; esac
done

mkdir -p "$root"
# Mirror this system's merged-/usr layout (Debian 12: /lib -> usr/lib, /lib64 -> usr/lib64, ...)
# so every library lands at the path ldd printed and the loader finds it.
for d in bin sbin lib lib32 lib64 libx32; do
  if [ -L "/$d" ]; then
    t=$(readlink "/$d"); mkdir -p "$root/${t#/}"; ln -s "$t" "$root/$d"
  fi
done
mkdir -p "$root/usr/bin" "$root/etc/caddy" "$root/etc/ssl/certs" \
         "$root/tmp" "$root/var/tmp" "$root/run" "$root/data" "$root/config" "$root/srv" \
         "$root/proc" "$root/sys" "$root/dev"

if [ "$strip_binary" = 1 ] && command -v strip >/dev/null; then
  strip --strip-all -o "$root/usr/bin/berth" "$binary"
else
  cp "$binary" "$root/usr/bin/berth"
fi
chmod 0755 "$root/usr/bin/berth"
ln -s berth "$root/usr/bin/caddy"

for l in "${libs[@]}"; do
  mkdir -p "$root$(dirname "$l")"
  cp -L "$l" "$root$l"   # follows this system's soname links; writes through the rootfs's /lib link
  chmod 0755 "$root$l"
done

install -m 0644 "$caddyfile" "$root/etc/caddy/Caddyfile"
for c in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
  if [ -f "$c" ]; then install -m 0644 "$c" "$root/etc/ssl/certs/ca-certificates.crt"; break; fi
done
# glibc >= 2.34 has the files and dns NSS modules built into libc.so.6, so name lookups
# (reverse_proxy upstreams through aardvark-dns) need only this and the /etc/hosts and
# /etc/resolv.conf that Podman mounts.
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$root/etc/nsswitch.conf"
chmod 0644 "$root/etc/nsswitch.conf"
# /run too: under --read-only Podman mounts a tmpfs there that takes this mode (tmpcopyup), and
# the seed's `admin unix//run/admin.sock` must bind as any UID (with 0755, `--user 12345` fails
# with "listen unix /run/admin.sock: bind: permission denied" — as the Caddy image does).
chmod 1777 "$root/tmp" "$root/var/tmp" "$root/run" "$root/data" "$root/config"
chmod 0755 "$root" "$root/srv" "$root/etc" "$root/etc/caddy" "$root/usr" "$root/usr/bin"

# Nothing setuid/setgid, no file capabilities (the image must start under NoNewPrivileges and
# --cap-drop=ALL without EPERM at exec).
find "$root" -perm /6000 -exec chmod ug-s {} +
if command -v setfattr >/dev/null; then
  find "$root" -type f -exec setfattr -x security.capability {} + 2>/dev/null || true
fi
find "$root" -exec touch -h -d "@$epoch" {} +
echo "mkrootfs: $root: berth $(stat -c %s "$root/usr/bin/berth") bytes, ${#libs[@]} libraries, $(du -sk "$root" | cut -f1) KiB" >&2
