#!/usr/bin/env bash
# Builds the Caddyfile libFuzzer target: the Caddyfile module compiled straight from
# Sources/Caddyfile (no SwiftPM), instrumented with -sanitize=fuzzer,address, linked with
# fuzz/caddyfile/main.swift into fuzz/out/caddyfile/fuzz-caddyfile.
#
#   fuzz/build-caddyfile.sh              # -Onone: keeps Swift's debug bounds checks
#   FUZZ_OPT=-O fuzz/build-caddyfile.sh  # faster, fewer checks
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${FUZZ_OUT:-$root/fuzz/out/caddyfile}"
opt="${FUZZ_OPT:--Onone}"
mkdir -p "$out"
flags=(-sanitize=fuzzer,address -parse-as-library -package-name berth -swift-version 6 "$opt" -gline-tables-only -I "$out")

swiftc "${flags[@]}" -module-name Caddyfile -emit-module -emit-module-path "$out/Caddyfile.swiftmodule" \
    -whole-module-optimization -c "$root"/Sources/Caddyfile/*.swift -o "$out/Caddyfile.o"
# lld links the sanitizer runtimes without gold's "cannot export local symbol" noise.
swiftc "${flags[@]}" -use-ld=lld -module-name FuzzCaddyfile "$root/fuzz/caddyfile/main.swift" \
    "$out/Caddyfile.o" -o "$out/fuzz-caddyfile"
echo "built $out/fuzz-caddyfile"
