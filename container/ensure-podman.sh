#!/usr/bin/env bash
# Installs what the container build, the quadlet converter and the container tests need on
# Debian 12, and nothing that is already there. Safe to run repeatedly.
#
#   container/ensure-podman.sh            # podman + runc + bridge networking + systemd-socket-activate
#   container/ensure-podman.sh --rootless # also pasta, slirp4netns, uidmap, fuse-overlayfs
#
# Podman 4.3 on this kind of host: crun may reject hybrid cgroup hierarchies, so runc is
# installed too (the tests pick whichever runtime works); netavark + aardvark-dns give the
# `NAME.network` networks of Examples 2 and 4; iproute2 gives the private network namespaces
# the tests keep bridge traffic in.
set -euo pipefail

pkgs=(podman runc conmon netavark aardvark-dns iptables iproute2 systemd util-linux curl ca-certificates binutils)
[ "${1:-}" = "--rootless" ] && pkgs+=(passt slirp4netns uidmap fuse-overlayfs)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "ensure-podman: apt-get install ${missing[*]}" >&2
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
