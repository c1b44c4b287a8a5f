#!/usr/bin/env bash
# Runs the HTTP/1 fuzz target for SECONDS (default 60) on the checked-in corpus.
# New inputs go to fuzz/out/http1/corpus (the seed corpus stays untouched); crashes go to
# fuzz/artifacts/http1/. Extra arguments are passed to libFuzzer (e.g. -jobs=2).
#
#   fuzz/run-http1.sh 600 -jobs=1
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-60}"
shift || true
bin="$root/fuzz/out/http1/fuzz-http1"
[ -x "$bin" ] || "$root/fuzz/build-http1.sh"
work="$root/fuzz/out/http1/corpus"
artifacts="$root/fuzz/artifacts/http1"
mkdir -p "$work" "$artifacts"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}"
exec "$bin" "$work" "$root/fuzz/corpus/http1" \
    -max_total_time="$seconds" -print_final_stats=1 -max_len=4096 -timeout=10 \
    -artifact_prefix="$artifacts/" "$@"
