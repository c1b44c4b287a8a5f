#!/usr/bin/env bash
# Runs the Caddyfile fuzz target for SECONDS (default 60) on the checked-in corpus.
# New inputs go to fuzz/out/caddyfile/corpus (the seed corpus stays untouched); crashes and
# hangs go to fuzz/artifacts/caddyfile/. Extra arguments are passed to libFuzzer (e.g. -jobs=1).
#
#   fuzz/run-caddyfile.sh 600 -jobs=1
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-60}"
shift || true
out="${FUZZ_OUT:-$root/fuzz/out/caddyfile}"
bin="$out/fuzz-caddyfile"
[ -x "$bin" ] || "$root/fuzz/build-caddyfile.sh"
work="$out/corpus"
artifacts="$root/fuzz/artifacts/caddyfile"
mkdir -p "$work" "$artifacts"
out="$(cd "$out" && pwd)"; work="$out/corpus"
# With -jobs=N libFuzzer writes fuzz-<i>.log into the current directory: keep it out of the repo.
cd "$out"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}"
exec "$bin" "$work" "$root/fuzz/corpus/caddyfile" \
    -max_total_time="$seconds" -print_final_stats=1 -max_len=4096 -timeout=5 \
    -rss_limit_mb=2048 -artifact_prefix="$artifacts/" "$@"
