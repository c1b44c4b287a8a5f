#!/usr/bin/env bash
# Builds the HTTP/1 libFuzzer target: IOCore, HTTPCore and HTTP1 compiled as separate modules
# straight from Sources/ (no SwiftPM), instrumented with -sanitize=fuzzer,address, linked with
# fuzz/http1/main.swift into fuzz/out/http1/fuzz-http1.
#
#   fuzz/build-http1.sh            # -Onone: keeps Swift's debug bounds checks on unsafe buffers
#   FUZZ_OPT=-O fuzz/build-http1.sh  # faster, fewer checks
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${FUZZ_OUT:-$root/fuzz/out/http1}"
opt="${FUZZ_OPT:--Onone}"
mkdir -p "$out"
flags=(-sanitize=fuzzer,address -parse-as-library -package-name berth -swift-version 6 "$opt" -gline-tables-only -I "$out")

build_module() {  # name, then its source directory
    local name="$1" dir="$2"
    swiftc "${flags[@]}" -module-name "$name" -emit-module -emit-module-path "$out/$name.swiftmodule" \
        -whole-module-optimization -c "$dir"/*.swift -o "$out/$name.o"
}

build_module IOCore "$root/Sources/IOCore"
build_module HTTPCore "$root/Sources/HTTPCore"
build_module HTTP1 "$root/Sources/HTTP1"
# lld links the sanitizer runtimes without gold's "cannot export local symbol" noise.
swiftc "${flags[@]}" -use-ld=lld -module-name FuzzHTTP1 "$root/fuzz/http1/main.swift" \
    "$out/IOCore.o" "$out/HTTPCore.o" "$out/HTTP1.o" -o "$out/fuzz-http1"
echo "built $out/fuzz-http1"
