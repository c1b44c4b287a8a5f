#!/bin/sh
# Builds malloccount.so and a test program that allocates a known number of
# times; fails (exit 1) unless every counter delta is exact.  Also smoke-tests
# the preload on real programs (shell, python) to catch bootstrap recursion.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
make -s malloccount.so malloccount-bootstrap.so selftest-bin
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

LD_PRELOAD="$here/malloccount.so" MALLOCCOUNT_SHM="$tmp/shm" MALLOCCOUNT_OUT="$tmp/out" ./selftest-bin

# Same test with a resolver that allocates during dlsym (bootstrap arena).
LD_PRELOAD="$here/malloccount-bootstrap.so" MALLOCCOUNT_SHM="$tmp/shmb" MALLOCCOUNT_OUT="$tmp/outb" ./selftest-bin
grep -q '^arena [1-9]' "$tmp/outb" || { echo "FAIL: bootstrap arena was not used"; exit 1; }
echo "bootstrap: $(grep '^arena' "$tmp/outb") allocations served by the static arena"

# The exit-time dump must exist and report the test's own allocations.
grep -q '^malloc [1-9]' "$tmp/out" || { echo "FAIL: no exit-time dump"; exit 1; }

# Smoke: real programs must run normally under the preload.
pre="$here/malloccount.so"
LD_PRELOAD="$pre" MALLOCCOUNT_SHM="$tmp/shm1" sh -c 'ls / >/dev/null' \
  || { echo "FAIL: sh failed under the preload"; exit 1; }
LD_PRELOAD="$pre" MALLOCCOUNT_SHM="$tmp/shm2" \
  python3 -c 'import json, threading, ctypes; json.dumps(list(range(10000)))' \
  || { echo "FAIL: python3 failed under the preload"; exit 1; }
n=$(python3 -c "import struct,sys;d=open(sys.argv[1],'rb').read(96);print(struct.unpack_from('<10Q',d,16)[0])" "$tmp/shm2")
[ "$n" -gt 1000 ] || { echo "FAIL: python counted only $n mallocs"; exit 1; }
echo "smoke: python3 made $n malloc calls under the preload"
echo "selftest.sh: PASS"
